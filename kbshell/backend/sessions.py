"""Where the gateway keeps what must outlive one request: a :class:`SessionStore`.

Three kinds of entry, each with a TTL, all string values under string keys the gateway builds
(``login:…``, ``session:…``, ``pickup:…``, ``rate:…``; the gateway never uses a secret as a key,
only its SHA-256):

- a login in progress (state -> session, nonce, PKCE verifier), taken once by the callback;
- a session (session id hash -> identity);
- a pickup (token hash -> sealed bundle), taken once;
- a rate-limit counter per identity and window.

Rules:

1. An entry is gone once its TTL has passed: ``get`` and ``take`` return None for it.
2. ``take`` is atomic: of any number of concurrent takes of one entry (on any replica, for the
   Redis store) exactly one gets the value; the rest get None.
3. ``count`` adds one and returns the new count; the first count of a key starts its TTL, later
   ones do not extend it (a fixed window).

:class:`MemoryStore` is for development and one replica (its clock can be injected for tests);
:class:`RedisStore` is for production: any replica serves any request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis


class SessionStore(Protocol):
    def put(self, key: str, value: str, ttl: float) -> None: ...

    def get(self, key: str) -> str | None: ...

    def take(self, key: str) -> str | None:
        """Rule 2: the value, deleted in the same step; None if absent or expired."""
        ...

    def count(self, key: str, ttl: float) -> int:
        """Rule 3: increment, returning the new count."""
        ...

    def ping(self) -> bool:
        """Is the store reachable (for /api/healthz)?"""
        ...


class MemoryStore:
    """In this process only: for development and tests. ``clock`` gives seconds (monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def _live(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key]
            return None
        return entry[0]

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, exp) in self._entries.items() if exp <= now]:
            del self._entries[key]

    def put(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            self._sweep()
            self._entries[key] = (value, self._clock() + ttl)

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def take(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            self._entries.pop(key, None)
            return value

    def count(self, key: str, ttl: float) -> int:
        with self._lock:
            value = self._live(key)
            n = int(value) + 1 if value is not None else 1
            expires = self._entries[key][1] if value is not None else self._clock() + ttl
            self._entries[key] = (str(n), expires)
            return n

    def ping(self) -> bool:
        return True


class RedisStore:
    """Entries in Redis under ``prefix``: TTLs are Redis' own (PX), take is GETDEL."""

    def __init__(self, client: redis.Redis, prefix: str = "kube-bind:gateway:") -> None:
        self._redis = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=5))

    def _ms(self, ttl: float) -> int:
        return max(1, int(ttl * 1000))

    def put(self, key: str, value: str, ttl: float) -> None:
        self._redis.set(self._prefix + key, value, px=self._ms(ttl))

    def get(self, key: str) -> str | None:
        value = self._redis.get(self._prefix + key)
        return None if value is None else str(value)

    def take(self, key: str) -> str | None:
        value = self._redis.getdel(self._prefix + key)
        return None if value is None else str(value)

    def count(self, key: str, ttl: float) -> int:
        # One MULTI/EXEC: the count and its expiry land together; NX keeps the first TTL.
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(self._prefix + key)
        pipe.pexpire(self._prefix + key, self._ms(ttl), nx=True)
        n, _ = pipe.execute()
        return int(n)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.close()
