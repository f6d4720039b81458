"""A provider-side controller: reflectors wake keys, one worker reconciles them.

The backend's controllers (the issuer's claims and grants; the reaper is a periodic pass
instead, `kbshell.backend.reaper`) are each a function from one key to "done, look again after
N seconds" that asks a pure kbcore planner what to do and carries its actions out. This class
is the loop around such a function, as client-go's controllers are: a shared work queue
(`kbshell.queue`, so dedupe, one worker per key and backoff are the konnector's), a reflector
per watched resource whose events map to keys, the first reconciles only once every cache has
synced, and a failure retried with backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Generic, TypeVar

import attrs

from kbcore import objects as o
from kbcore.objects import GVR
from kbshell.client import KubeClient
from kbshell.queue import SharedQueue
from kbshell.reflector import Reflector

log = logging.getLogger("backend")
K = TypeVar("K", bound=Hashable)


@attrs.frozen
class Watch(Generic[K]):
    """Watch `gvr` (all namespaces, optionally selected) and map each change to keys."""

    gvr: GVR
    keys: Callable[[o.Obj], Iterable[K]]
    label_selector: str = ""


class Controller(Generic[K]):
    def __init__(
        self,
        name: str,
        client: KubeClient,
        watches: Sequence[Watch[K]],
        reconcile: Callable[[K], float | None],
    ) -> None:
        self.name = name
        self.queue: SharedQueue[K] = SharedQueue(name=name)
        self.reconcile = reconcile
        self.reflectors = [
            Reflector(
                client,
                w.gvr,
                label_selector=w.label_selector,
                name=f"{name}/{w.gvr.group_resource}",
                on_event=self._handler(w),
            )
            for w in watches
        ]
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _handler(self, w: Watch[K]) -> Callable[[str, o.Obj | None, o.Obj | None], None]:
        def on_event(_type: str, old: o.Obj | None, new: o.Obj | None) -> None:
            for obj in (old, new):
                if obj is not None:
                    for key in w.keys(obj):
                        self.queue.add(key)

        return on_event

    def cache(self, gvr: GVR) -> Reflector:
        return next(r for r in self.reflectors if r.gvr == gvr)

    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors)

    def start(self) -> None:
        for r in self.reflectors:
            r.start()
        self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.queue.close()
        if self._thread is not None:
            self._thread.join(timeout)
        for r in self.reflectors:
            r.stop()

    def _work(self) -> None:
        while not self._stopping.is_set():
            if not self.synced():
                self._stopping.wait(0.05)  # as controllers wait for their caches
                continue
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                after = self.reconcile(key)
            except Exception:
                log.exception("reconcile failed", extra={"controller": self.name, "key": str(key)})
                self.queue.retry(key)
            else:
                self.queue.done(key, after)
