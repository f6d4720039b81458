"""Watch history: every committed write as an event, and the watch streams it feeds.

`History` owns the event log (from the last compaction on), the compaction point and the open
watches: it replays the log to a watch that starts from a resourceVersion, rewinds it for
`get_at`/`list_at`, and sends bookmarks. It knows nothing of storage or presentation: the
server hands it the events and a function that presents a stored object in a version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import Obj, ObjectKey
from kbcore.redaction import redacted_repr
from kbcore.selectors import Selector
from kbsim import apierrors as errs
from kbsim.resources import ResourceInfo

INITIAL_EVENTS_END = "k8s.io/initial-events-end"

# (info, version, stored object) -> the object as a client of that version sees it
Presenter = Callable[[ResourceInfo, str, Obj], Obj]
FieldSelector = tuple[tuple[str, str, str], ...]


@attrs.frozen
class Event:
    rv: int
    storage: tuple[str, str]
    type: str
    key: ObjectKey
    obj: Obj = attrs.field(repr=redacted_repr)  # Secrets' events too
    prev: Obj | None = attrs.field(repr=redacted_repr)


class Watch:
    """A watch stream: `drain()` returns the events that arrived since the last drain.

    The server ends a watch (`closed`) on `expire_watches()`, after an ERROR event, or when its
    resource stops being served; a closed watch delivers what it already queued, then nothing.
    """

    def __init__(
        self,
        history: History,
        info: ResourceInfo,
        version: str,
        namespace: str,
        selector: Selector,
        fields: FieldSelector,
        allow_bookmarks: bool,
    ) -> None:
        self._history = history
        self.info = info
        self.gvr = info.gvr(version)
        self.version = version
        self.namespace = namespace
        self.allow_bookmarks = allow_bookmarks
        self._selector = selector
        self._fields = fields
        self._queue: list[dict[str, Any]] = []
        self.closed = False
        self.start_rv = 0  # the resourceVersion the watch started from

    def drain(self) -> list[dict[str, Any]]:
        out, self._queue = self._queue, []
        return out

    def stop(self) -> None:
        """Client-side stop: undelivered events are discarded and no more are queued."""
        self._queue = []
        self._close()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _close(self) -> None:
        self.closed = True
        if self in self._history.watches:
            self._history.watches.remove(self)

    def _matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace", "") != self.namespace:
            return False
        if not fields_match(self._fields, obj):
            return False
        return self._selector.matches(meta.get("labels") or {})

    def _offer(self, ev: Event) -> None:
        if self.closed or ev.storage != self.info.storage:
            return
        now = self._matches(ev.obj) if ev.type != "DELETED" else False
        before = ev.prev is not None and self._matches(ev.prev)
        if ev.type == "ADDED":
            kind, obj = ("ADDED", ev.obj) if now else ("", ev.obj)
        elif ev.type == "MODIFIED":
            if now:
                kind, obj = ("MODIFIED" if before else "ADDED"), ev.obj
            elif before:
                assert ev.prev is not None
                obj = o.deepcopy(ev.prev)
                obj["metadata"]["resourceVersion"] = str(ev.rv)
                kind = "DELETED"
            else:
                kind, obj = "", ev.obj
        else:
            kind, obj = ("DELETED", ev.obj) if self._matches(ev.obj) else ("", ev.obj)
        if kind:
            self._queue.append(
                {"type": kind, "object": self._history.present(self.info, self.version, obj)}
            )

    def _error(self, error: ApiError) -> None:
        self._queue.append({"type": "ERROR", "object": error.status()})
        self._close()


class History:
    """The event log since the last compaction and the open watches (see the module docstring)."""

    def __init__(self, present: Presenter) -> None:
        self.present = present
        self.events: list[Event] = []
        self.compacted = 0
        self.watches: list[Watch] = []

    def offer(self, event: Event) -> None:
        """Queue a committed write's event on every open watch it concerns."""
        for w in list(self.watches):
            w._offer(event)

    def too_old(self, rv: int) -> ApiError:
        return errs.expired(f"too old resource version: {rv} ({self.compacted})")

    def state_at(
        self, storage: tuple[str, str], current: Mapping[ObjectKey, Obj], rv: int, latest: int
    ) -> dict[ObjectKey, Obj]:
        """The objects of `storage` as of `rv`, rewound from `current` (the state at `latest`)."""
        if rv < self.compacted:
            raise self.too_old(rv)
        if rv > latest:
            raise errs.timeout(f"Too large resource version: {rv}, current: {latest}", 1)
        state = dict(current)
        for ev in reversed(self.events):
            if ev.rv <= rv:
                break
            if ev.storage != storage:
                continue
            if ev.prev is None:
                state.pop(ev.key, None)
            else:
                state[ev.key] = ev.prev
        return state

    def start(self, w: Watch, start: int, latest: int) -> None:
        """Open `w` from resourceVersion `start`: replay what happened after it, or end it with
        a 410 (compacted) or a 504 (not reached yet) ERROR event."""
        w.start_rv = start
        self.watches.append(w)
        if start < self.compacted:
            w._error(self.too_old(start))
            return
        if start > latest:
            error = errs.timeout(f"Too large resource version: {start}, current: {latest}", 1)
            error.details = {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            }
            w._error(error)
            return
        for ev in self.events:
            if ev.rv > start:
                w._offer(ev)

    def start_with_state(self, w: Watch, objects: Mapping[ObjectKey, Obj], latest: int) -> None:
        """Open `w` from "now": synthetic ADDED events for `objects`, then (with bookmarks) the
        bookmark that ends them."""
        w.start_rv = latest
        for key in sorted(objects):
            obj = objects[key]
            if w._matches(obj):
                w._queue.append({"type": "ADDED", "object": self.present(w.info, w.version, obj)})
        if w.allow_bookmarks:
            # The end of the synthetic ADDED events is marked (kube-apiserver >= 1.3x).
            w._queue.append(bookmark(w, latest, {INITIAL_EVENTS_END: "true"}))
        self.watches.append(w)

    def emit_bookmarks(self, latest: int) -> None:
        for w in list(self.watches):
            if w.allow_bookmarks and not w.closed and latest > w.start_rv:
                w._queue.append(bookmark(w, latest))

    def compact(self, target: int) -> None:
        self.compacted = max(self.compacted, target)
        self.events = [e for e in self.events if e.rv > self.compacted]

    def expire(self) -> None:
        for w in list(self.watches):
            w._close()

    def stop_serving(self, storage: tuple[str, str]) -> None:
        """The resource of `storage` is no longer served: its watches end."""
        for w in list(self.watches):
            if w.info.storage == storage:
                w._close()

    def serve(self, info: ResourceInfo) -> None:
        """`info` is what is now served for its storage (a CRD changed): watches follow it."""
        for w in self.watches:
            if w.info.storage == info.storage:
                w.info = info


def bookmark(w: Watch, rv: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if annotations:
        meta["annotations"] = annotations
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": w.info.kind,
            "apiVersion": w.info.api_version(w.version),
            "metadata": meta,
        },
    }


def parse_field_selector(text: str) -> FieldSelector:
    """`metadata.name=x,metadata.namespace!=y` -> ((field, op, value), ...)."""
    out: list[tuple[str, str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        for op in ("!=", "==", "="):
            if op in part:
                field, _, value = part.partition(op)
                field = field.strip()
                if field not in ("metadata.name", "metadata.namespace"):
                    raise errs.bad_request(f"field label not supported: {field}")
                out.append((field, "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise errs.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return tuple(out)


def fields_match(fields: FieldSelector, obj: Obj) -> bool:
    meta = obj.get("metadata") or {}
    for field, op, value in fields:
        have = meta.get(field.split(".", 1)[1], "") or ""
        if (have == value) != (op == "="):
            return False
    return True
