"""The `KonnectorState` every shell shares: the worker's reads answered from caches it is given.

A shell keeps one cache per control kind (`control`), one `Syncer` per bound API (`syncers`) and,
per Connection, the credentials its last completed reconcile found Ready with
(`verified_credentials`); `CachedState` answers the worker's questions from them, so kbshell's
konnector, kbsim's and `kubectl bind plan`'s snapshot cannot answer differently. How a cache is
filled (a reflector's list and watch, a one-shot LIST) is the shell's business: this module only
reads what it is given. `Konnector` adds what a running konnector does with a control-plane
event: the keys it wakes go on the shell's queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.runtime.enqueue import control_keys
from kbcore.runtime.keys import WorkKey
from kbcore.runtime.observe import Planner, Syncer

S = TypeVar("S", bound=Syncer)

Handler = Callable[[str, Obj | None, Obj | None], None]
"""A reflector's on_event(type, old, new)."""


class Cache(Protocol):
    """One resource's cache: a reflector's store, or the items of one LIST."""

    def get(self, key: ObjectKey) -> Obj | None:
        """The cached object (shared: do not modify it)."""
        ...

    def items(self) -> list[Obj]:
        """The cached objects (shared: do not modify them)."""
        ...

    def has_synced(self) -> bool:
        """Is the first list in the cache (and were its events handled)?"""
        ...


class CachedState(Generic[S]):
    """Implements `kbcore.runtime.observe.KonnectorState` over the attributes below, which the
    shell sets."""

    namespace: str
    planner: Planner
    control: Mapping[GVR, Cache]
    syncers: Mapping[GVR, S]
    verified_credentials: Mapping[str, str | None]

    def cached(self, gvr: GVR) -> list[Obj]:
        cache = self.control.get(gvr)
        return cache.items() if cache is not None else []

    def cached_get(self, gvr: GVR, key: ObjectKey) -> Obj | None:
        cache = self.control.get(gvr)
        return cache.get(key) if cache is not None else None

    def control_synced(self) -> bool:
        return all(cache.has_synced() for cache in self.control.values())

    def syncer(self, gvr: GVR) -> S | None:
        return self.syncers.get(gvr)

    def verified(self, connection: str) -> str | None:
        return self.verified_credentials.get(connection)


class Queue(Protocol):
    def add(self, item: WorkKey) -> None: ...


class Konnector(CachedState[S]):
    """A running konnector's state: `CachedState`, and a work queue the keys events wake go on."""

    queue: Queue

    def enqueue(self, key: WorkKey | None) -> None:
        if key is not None:
            self.queue.add(key)

    def control_handler(self, kind: str) -> Handler:
        """The consumer reflector's callback for one control kind (the event type is not used)."""
        return lambda _type, old, new: self.control_event(kind, old, new)

    def control_event(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for key in control_keys(kind, old, new, self):
            self.queue.add(key)
