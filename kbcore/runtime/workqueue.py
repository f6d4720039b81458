"""A work queue with client-go semantics, driven by a clock the caller passes in.

Guarantees (the same as client-go's rate-limiting work queue, which controllers rely on):
- a key waiting in the queue is there once, however often it is added (dedupe);
- a key handed to a worker is not handed to another until `done`; adds that arrive meanwhile
  are remembered and the key is queued again on `done`, so no change is lost;
- `add_after` delays a key (the earliest pending due time wins);
- `add_rate_limited` delays by the larger of a per-key exponential backoff (5 ms doubling to
  1000 s, reset by `forget`) and an overall token bucket (10 per second, burst 100).

The queue holds no clock and starts no threads: every method that needs time takes `now`, and
`next_due` tells a driver when to wake up. kbsim drives it from a virtual clock, kbshell from
worker threads.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

BASE_DELAY = 0.005
MAX_DELAY = 1000.0
BUCKET_QPS = 10.0
BUCKET_BURST = 100.0


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY,
        qps: float = BUCKET_QPS,
        burst: float = BUCKET_BURST,
    ) -> None:
        self._queue: list[K] = []
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._seq = 0
        self._failures: dict[K, int] = {}
        self._base, self._max = base_delay, max_delay
        self._qps, self._burst = qps, burst
        self._tokens = burst
        self._bucket_time: float | None = None

    def __len__(self) -> int:
        return len(self._queue) + len(self._due)

    def add(self, key: K) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)

    def add_after(self, key: K, delay: float, now: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        due = now + delay
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._waiting, (due, self._seq, key))

    def add_rate_limited(self, key: K, now: float, *, bucket: bool = True) -> float:
        """Queue `key` after its backoff; returns the delay chosen. `bucket=False` applies the
        per-key backoff only, not the overall token bucket."""
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        item_delay: float = min(self._base * 2.0 ** min(n, 60), self._max)
        delay = max(item_delay, self._bucket_delay(now)) if bucket else item_delay
        self.add_after(key, delay, now)
        return delay

    def _bucket_delay(self, now: float) -> float:
        if self._bucket_time is not None:
            elapsed = max(0.0, now - self._bucket_time)
            self._tokens = min(self._burst, self._tokens + elapsed * self._qps)
        self._bucket_time = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def _promote(self, now: float) -> None:
        while self._waiting and self._waiting[0][0] <= now:
            due, _, key = heapq.heappop(self._waiting)
            if self._due.get(key) == due:
                del self._due[key]
                self.add(key)

    def get(self, now: float) -> K | None:
        """Hand out the next ready key (marking it in process), or None."""
        self._promote(now)
        if not self._queue:
            return None
        key = self._queue.pop(0)
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)

    def ready(self, now: float) -> bool:
        self._promote(now)
        return bool(self._queue)

    def next_due(self) -> float | None:
        """When the earliest delayed key becomes ready, if any is waiting."""
        while self._waiting and self._due.get(self._waiting[0][2]) != self._waiting[0][0]:
            heapq.heappop(self._waiting)
        return self._waiting[0][0] if self._waiting else None

    def pending(self) -> int:
        """Keys queued or being processed (delayed keys not counted)."""
        return len(self._queue) + len(self._processing)
