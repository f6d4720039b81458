"""A reflector over a real API server: list, then watch from the list's resourceVersion, threaded.

This is the real-cluster counterpart of kbsim's reflector (client-go's Reflector + Store). What a
list or an event means for the cache (vanished keys reported as deletes, stale events ignored,
the resume point, relist on 410, selector filtering) is decided by `kbcore.runtime.reflector`; this
class holds the cache, the thread and the connection:

 1. List, replace the cache, tell the handler, set `synced`; then watch from the list's
    resourceVersion with bookmarks and apply every event.
 2. A watch the server ends (its timeout) or whose connection breaks is started again from the
    last resourceVersion seen: the server replays what was missed, or answers 410.
 3. 410 (an ERROR event, or the watch request refused with it): relist at once.
 4. A watch request that finds no server (unreachable) or is throttled (429) waits, then watches
    again from the same resourceVersion, as client-go does: an outage costs no relist, and a
    resourceVersion that expired meanwhile gets 410 (rule 3).
 5. Any other failure (the list, a refused watch, an ERROR event) waits, then relists.
 6. Waits are jittered and double from `backoff[0]` up to `backoff[1]`; they start over once a
    watch delivers an event or stays open for a while. A watch that ends at once with nothing
    counts as a failure, so a server that keeps closing streams is not hammered.
 7. Handlers run on the reflector thread, outside the cache lock, in event order, after the
    cache has the change. A handler that raises is reported to `on_error` and skipped.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.runtime import reflector as bookkeeping
from kbcore.selectors import parse as parse_selector
from kbshell.client import KubeClient, WatchStream

Handler = Callable[[str, Obj | None, Obj | None], None]
"""on_event(type, old, new): type is ADDED, MODIFIED or DELETED."""
ErrorHandler = Callable[[Exception], None]

STEADY_WATCH_SECONDS = 1.0
"""A watch open this long is working (rule 6); one that ends sooner with nothing is not."""

log = logging.getLogger(__name__)


class _RetryWatch(Exception):  # noqa: N818 - a signal carrying the error, not an error itself
    """Rule 4 and the short-watch case of rule 6: wait, then watch from the same point."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class Reflector:
    """A cache of one resource (one namespace or all, optionally a label selector) kept by a
    thread."""

    def __init__(
        self,
        client: KubeClient,
        gvr: GVR,
        *,
        namespace: str = "",
        label_selector: str = "",
        on_event: Handler,
        name: str,
        watch_timeout: int = 300,
        backoff: tuple[float, float] = (0.5, 30.0),
        on_error: ErrorHandler | None = None,
        on_relist: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.on_relist = on_relist
        self.gvr = gvr
        self.namespace = namespace
        """Only this namespace ("" for all)."""
        self.label_selector = label_selector
        self._selector = parse_selector(label_selector)  # a bad selector fails here, not later
        self.on_event = on_event
        self.on_error = on_error
        self.name = name
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.synced = threading.Event()
        """Set once the first list is in the cache and its events were handled."""
        self.relists = 0
        """Lists after the first one (410, failures): a rising count means watches break."""
        self.last_event_time: float | None = None
        """time.monotonic() of the last watch event, bookmarks included."""
        self.last_error: Exception | None = None
        self._lock = threading.Lock()
        self._cache: dict[ObjectKey, Obj] = {}
        self._rv = ""
        self._stream: WatchStream | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"<Reflector {self.name} {self.gvr} rv={self._rv or '-'}>"

    # --- for other threads

    @property
    def resource_version(self) -> str:
        with self._lock:
            return self._rv

    def get(self, key: ObjectKey) -> Obj | None:
        """The cached object (shared: do not modify it)."""
        with self._lock:
            return self._cache.get(key)

    def items(self) -> list[Obj]:
        """The cached objects (shared: do not modify them)."""
        with self._lock:
            return list(self._cache.values())

    def has_synced(self) -> bool:
        return self.synced.is_set()

    def keys(self) -> list[ObjectKey]:
        with self._lock:
            return list(self._cache)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"reflector {self.name} already started")
        self._thread = threading.Thread(
            target=self._run, name=f"reflector-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """End the thread: close the open watch and join; False if it is still running (stuck
        in a list request) after `timeout` seconds. No handler runs after a True return."""
        self._stopping.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # --- the thread

    def _run(self) -> None:
        relist = True
        while not self._stopping.is_set():
            error: Exception
            try:
                if relist:
                    self._list()
                relist = self._watch()
                continue
            except _RetryWatch as retry:
                error, relist = retry.error, False
            except Exception as err:  # the thread must outlive any failure: rule 5
                error, relist = err, True
            if self._stopping.is_set():
                break
            self._failures += 1
            delay = self._delay()
            log.warning(
                "list or watch failed; retrying",
                extra={
                    "reflector": self.name,
                    "error": error,
                    "retryIn": round(delay, 1),
                    "relist": relist,
                },
            )
            self._report(error)
            if self._stopping.wait(delay):
                break

    def _delay(self) -> float:
        base, cap = self.backoff
        ceiling = min(cap, base * 2 ** min(self._failures - 1, 32))
        return self._random.uniform(ceiling / 2, ceiling)

    def _selected(self, obj: Obj) -> bool:
        return not self.label_selector or self._selector.matches(dict(o.labels_of(obj)))

    def _list(self) -> None:
        items, rv = self.client.list(self.gvr, self.namespace, self.label_selector)
        if self.synced.is_set():
            self.relists += 1
            if self.on_relist is not None:
                self.on_relist()
            log.info("relisted", extra={"reflector": self.name, "resourceVersion": rv})
        self._apply(bookkeeping.relist(self._cache, items), rv)
        self.synced.set()

    def _watch(self) -> bool:
        """Watch from the last resourceVersion until the stream ends; True if a relist is due."""
        try:
            stream = self.client.watch(
                self.gvr,
                resource_version=self._rv,
                namespace=self.namespace,
                label_selector=self.label_selector,
                timeout_seconds=self.watch_timeout,
                allow_bookmarks=True,
            )
        except ApiError as err:
            if err.is_gone:
                return True
            if err.is_unreachable or err.code == 429:
                raise _RetryWatch(err) from err
            raise
        with self._lock:
            self._stream = stream
        started, delivered = time.monotonic(), False
        try:
            if self._stopping.is_set():  # stop() ran before the stream was visible to it
                return False
            for event in stream:
                delivered = True
                self.last_event_time = time.monotonic()
                outcome = bookkeeping.on_event(self._cache, self._rv, event, self._selected)
                if outcome.relist:
                    return True
                self._failures = 0
                self._apply((outcome.delta,) if outcome.delta else (), outcome.resource_version)
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        if self._stopping.is_set():
            return False
        # A watch the server ends at the timeout we asked for is routine, however short that
        # timeout (our clock starts after the server's, so the elapsed time is a bit under it).
        if time.monotonic() - started >= min(STEADY_WATCH_SECONDS, self.watch_timeout / 2):
            self._failures = 0
        elif not delivered:
            raise _RetryWatch(ConnectionError(f"watch ended at once ({stream.end_reason})"))
        return False

    def _apply(self, deltas: Iterable[bookkeeping.Delta], rv: str) -> None:
        deltas = tuple(deltas)
        with self._lock:
            for delta in deltas:
                if delta.new is None:
                    self._cache.pop(delta.key, None)
                else:
                    self._cache[delta.key] = delta.new
            self._rv = rv
        for delta in deltas:
            if self._stopping.is_set():
                return
            try:
                self.on_event(delta.change.value, delta.old, delta.new)
            except Exception as err:  # a handler's bug must not stop the cache
                log.warning(
                    "event handler failed",
                    extra={
                        "reflector": self.name,
                        "error": err,
                        "event": delta.change.value,
                        "object": {"name": delta.key.name, "namespace": delta.key.namespace},
                    },
                )
                self._report(err)

    def _report(self, error: Exception) -> None:
        """Remember `error` and tell `on_error` (the caller has logged it)."""
        self.last_error = error
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:
                log.exception("reflector on_error handler failed", extra={"reflector": self.name})
