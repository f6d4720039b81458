"""The work queue shared by worker threads: kbcore's `WorkQueue` behind one lock.

Every rule (dedupe, one worker per key, add-after, per-key backoff plus the token bucket, how
an outcome requeues) stays in `kbcore.runtime.workqueue` and `kbcore.runtime.worker.settle`; this
class only serializes calls from reflector and worker threads, blocks idle workers until a key is
ready or due, and feeds the workqueue metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

from kbcore.runtime.keys import WorkKey
from kbcore.runtime.worker import Outcome, settle
from kbcore.runtime.workqueue import WorkQueue
from kbshell.ops import Metrics

NAME = "konnector"
K = TypeVar("K", bound=Hashable)


class SharedQueue(Generic[K]):
    """Keys of any hashable kind: the konnector's `WorkKey`s (`settle`), or a provider-side
    controller's object keys (`done`)."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
        name: str = NAME,
    ) -> None:
        self._queue: WorkQueue[K] = WorkQueue()
        self._cond = threading.Condition()
        self._clock = clock
        self._metrics = metrics
        self._name = name
        self._added: dict[Hashable, float] = {}
        self._started: dict[Hashable, float] = {}
        self._closed = False
        if metrics is not None:
            metrics.queue(name)

    @property
    def name(self) -> str:
        return self._name

    def _depth(self) -> int:
        return len(self._queue)

    def add(self, key: K) -> None:
        with self._cond:
            self._queue.add(key)
            self._added.setdefault(key, time.monotonic())
            if self._metrics is not None:
                self._metrics.queue_add(self._name, self._depth())
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        with self._cond:
            self._queue.add_after(key, delay, self._clock())
            self._cond.notify()

    def get(self, timeout: float | None = None) -> K | None:
        """The next ready key (now in process), waiting up to `timeout`; None when closed or
        nothing became ready in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                key = self._queue.get(self._clock())
                if key is not None:
                    added = self._added.pop(key, None)
                    self._started[key] = time.monotonic()
                    if self._metrics is not None:
                        waited = time.monotonic() - added if added is not None else 0.0
                        self._metrics.queue_get(self._name, waited, self._depth())
                    return key
                wait = 1.0  # re-check for due keys at least this often
                due = self._queue.next_due()
                if due is not None:
                    wait = min(wait, max(0.0, due - self._clock()))
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = min(wait, left)
                self._cond.wait(wait)
            return None

    def settle(self, key: K, outcome: Outcome, verified: dict[str, str | None]) -> None:
        """Apply a konnector worker's outcome (kbcore.runtime.worker.settle) and mark the key
        done."""
        with self._cond:
            queue = cast(WorkQueue[WorkKey], self._queue)
            settle(queue, cast(WorkKey, key), outcome, self._clock(), verified)
            if outcome.verdict is not None and self._metrics is not None:
                self._metrics.queue_retry(self._name)
            self._done(key)

    def done(self, key: K, requeue_after: float | None = None) -> None:
        """Handled: forget its backoff, look again after `requeue_after` if given."""
        with self._cond:
            self._queue.forget(key)
            if requeue_after is not None:
                self._queue.add_after(key, requeue_after, self._clock())
            self._done(key)

    def retry(self, key: K) -> None:
        """An unexpected failure handling `key`: back off and mark it done."""
        with self._cond:
            self._queue.add_rate_limited(key, self._clock())
            if self._metrics is not None:
                self._metrics.queue_retry(self._name)
            self._done(key)

    def _done(self, key: K) -> None:
        started = self._started.pop(key, None)
        self._queue.done(key)
        if self._metrics is not None and started is not None:
            self._metrics.queue_done(self._name, time.monotonic() - started)
            self._metrics.queue_depth(self._name, self._depth())
        self._cond.notify_all()

    def in_flight(self) -> dict[Hashable, float]:
        with self._cond:
            return dict(self._started)

    def idle(self) -> bool:
        """Nothing queued, due now or in process (delayed keys may still wait)."""
        with self._cond:
            return not self._queue.ready(self._clock()) and self._queue.pending() == 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
