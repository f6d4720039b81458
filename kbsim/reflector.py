"""A reflector: list, then watch from the list's resourceVersion, keeping a cache.

This is the simulated counterpart of client-go's Reflector + Store. What a list or an event
means for the cache (vanished keys reported as deletes, stale events ignored, the resume point,
relist on 410, selector filtering) is decided by `kbcore.runtime.reflector`; this class holds the
cache and the stream and re-watches from its last resourceVersion when a stream ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime import reflector as bookkeeping
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
        namespace: str = "",
        label_selector: str = "",
        on_event: Handler,
    ) -> None:
        self.server = server
        self.gvr = gvr
        self.namespace = namespace
        self.user = user
        self.label_selector = label_selector
        self._selector = parse_selector(label_selector)
        self.on_event = on_event
        self.cache: dict[ObjectKey, o.Obj] = {}
        self.rv = ""
        self.watch: Any = None
        self.synced = False
        self.stopped = False

    # -- the cache, as `kbcore.runtime.state.Cache`
    def get(self, key: ObjectKey) -> o.Obj | None:
        return self.cache.get(key)

    def items(self) -> list[o.Obj]:
        return list(self.cache.values())

    def has_synced(self) -> bool:
        return self.synced

    def _selected(self, obj: o.Obj) -> bool:
        return not self.label_selector or self._selector.matches(dict(o.labels_of(obj)))

    def relist(self) -> None:
        """List and replace the cache; raises ApiError if the list fails (caller retries)."""
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
        items, rv = self.server.list(
            self.gvr, self.namespace, label_selector=self.label_selector, user=self.user
        )
        for delta in bookkeeping.relist(self.cache, items):
            self._apply(delta)
        self.rv = rv
        self.synced = True
        self.watch = self.server.watch(
            self.gvr,
            self.namespace,
            resource_version=rv,
            user=self.user,
            label_selector=self.label_selector,
        )

    def _apply(self, delta: bookkeeping.Delta) -> None:
        if delta.new is None:
            self.cache.pop(delta.key, None)
        else:
            self.cache[delta.key] = delta.new
        self.on_event(delta.change.value, delta.old, delta.new)

    def rewatch(self) -> None:
        """Resume the watch from the last resourceVersion seen (after a stream ended)."""
        if self.watch is not None:
            self.watch.stop()
        try:
            self.watch = self.server.watch(
                self.gvr,
                self.namespace,
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
        outcome = bookkeeping.on_event(self.cache, self.rv, event, self._selected)
        if outcome.relist:
            self.relist()
            return
        if outcome.delta is not None:
            self._apply(outcome.delta)
        self.rv = outcome.resource_version

    def stop(self) -> None:
        self.stopped = True
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
