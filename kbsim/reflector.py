"""A reflector: list, then watch from the list's resourceVersion, keeping a cache.

This is the simulated counterpart of client-go's Reflector + Store. It relists on a 410 (and
reports the keys that vanished as deletes), re-watches from its last resourceVersion when a
stream ends, and filters by label selector the way a server-side selector watch does (an object
that stops matching is seen as deleted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.selectors import parse as parse_selector

Handler = Callable[[str, o.Obj | None, o.Obj | None], None]
"""on_event(type, old, new): type is ADDED, MODIFIED or DELETED."""


class Reflector:
    def __init__(
        self,
        server: Any,
        gvr: GVR,
        *,
        user: Any,
        label_selector: str = "",
        on_event: Handler,
    ) -> None:
        self.server = server
        self.gvr = gvr
        self.user = user
        self.label_selector = label_selector
        self._selector = parse_selector(label_selector)
        self.on_event = on_event
        self.cache: dict[ObjectKey, o.Obj] = {}
        self.rv = ""
        self.watch: Any = None
        self.synced = False
        self.stopped = False

    def _selected(self, obj: o.Obj) -> bool:
        return not self.label_selector or self._selector.matches(dict(o.labels_of(obj)))

    def relist(self) -> None:
        """List and replace the cache; raises ApiError if the list fails (caller retries)."""
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
        items, rv = self.server.list(self.gvr, label_selector=self.label_selector, user=self.user)
        fresh = {o.key_of(i): i for i in items}
        for key, old in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                self.on_event("DELETED", old, None)
        for key, new in fresh.items():
            old = self.cache.get(key)
            self.cache[key] = new
            if old is None:
                self.on_event("ADDED", None, new)
            elif o.resource_version(old) != o.resource_version(new):
                self.on_event("MODIFIED", old, new)
        self.rv = rv
        self.synced = True
        self.watch = self.server.watch(
            self.gvr, resource_version=rv, user=self.user, label_selector=self.label_selector
        )

    def rewatch(self) -> None:
        """Resume the watch from the last resourceVersion seen (after a stream ended)."""
        if self.watch is not None:
            self.watch.stop()
        try:
            self.watch = self.server.watch(
                self.gvr,
                resource_version=self.rv,
                user=self.user,
                label_selector=self.label_selector,
            )
        except ApiError as err:
            if not err.is_gone:
                raise
            self.relist()

    def deliver(self, event: dict[str, Any]) -> None:
        """Apply one watch event to the cache and tell the handler what changed."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            status = obj if isinstance(obj, dict) else {}
            if status.get("code") == 410:
                self.relist()
                return
            raise ApiError(int(status.get("code", 500)), str(status.get("reason", "")), "watch")
        rv = o.resource_version(obj)
        if kind == "BOOKMARK":
            self.rv = rv or self.rv
            return
        key = o.key_of(obj)
        old = self.cache.get(key)
        stale = old is not None and rv and _rv_int(rv) <= _rv_int(o.resource_version(old))
        if kind != "DELETED" and stale:
            self.rv = max(self.rv, rv, key=_rv_int)
            return  # duplicate or replayed: already seen
        if kind == "DELETED" or not self._selected(obj):
            if old is not None:
                del self.cache[key]
                self.on_event("DELETED", old, None)
        else:
            self.cache[key] = obj
            self.on_event("ADDED" if old is None else "MODIFIED", old, obj)
        if rv:
            self.rv = max(self.rv, rv, key=_rv_int) if self.rv else rv

    def stop(self) -> None:
        self.stopped = True
        if self.watch is not None:
            self.watch.stop()
            self.watch = None


def _rv_int(rv: str) -> int:
    try:
        return int(rv)
    except ValueError:
        return 0
