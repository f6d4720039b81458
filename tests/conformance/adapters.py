"""The two implementations of `tests.conformance.client.Api`: kbsim and a real kube-apiserver.

`KbsimClient` wraps a `kbsim.apiserver.APIServer` on a virtual clock that only its waits
advance. `RealClient` speaks HTTP to a cluster of `tests/harness/clusters.py` through the
konnector's own dict-level client, `kbshell.client.KubeClient`, which turns every error
response into the same `ApiError` kbsim raises, from the server's `Status` body.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kbcore.errors import ApiError
from kbcore.objects import GVR
from kbshell.client import KubeClient, WatchStream
from kbsim import apiserver
from kbsim.apiserver import ADMIN, APIServer, User
from kbsim.serverapi import ServerAPI
from tests.conformance.client import Api, Obj, Watch
from tests.harness.clusters import Cluster

T = TypeVar("T")

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, the virtual clock's origin
BOOKMARK_LEAD = 2
"""The real cacher sends a watch's bookmarks from two seconds before its deadline (its
`timeoutSeconds`) on, once a second, when the resourceVersion moved (cacher
`nextBookmarkTime`); the kbsim adapter sends them on the same virtual schedule."""


def _retry(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    step: Callable[[], None],
    clock: Callable[[], float],
) -> T:
    """Call `check` until it returns a truthy value without raising AssertionError/ApiError."""
    deadline = clock() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
        except (AssertionError, ApiError) as exc:
            last, result = exc, None
        else:
            if result:
                return result
            last = None
        if clock() >= deadline:
            detail = f": last error {last!r}" if last is not None else ""
            raise AssertionError(f"not within {timeout:.0f}s: {what}{detail}")
        step()


# ============================================================================= kbsim


class VirtualClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class KbsimWatch:
    def __init__(self, api: KbsimClient, watch: apiserver.Watch, timeout_seconds: int) -> None:
        self._api = api
        self._watch = watch
        self._age = 0
        self._timeout_seconds = timeout_seconds
        self._events: list[Obj] = []

    def events(self, timeout: float, until: Callable[[list[Obj]], bool] | None = None) -> list[Obj]:
        waited = 0
        while True:
            self._events += self._watch.drain()
            if until is not None and until(self._events):
                break
            if waited >= timeout or self._watch.closed:
                break
            # One virtual second passes: controllers run, and the server ends the watch at
            # its timeout, sending bookmarks shortly before.
            self._api._step()
            waited += 1
            self._age += 1
            if self._age >= self._timeout_seconds:
                self._events += self._watch.drain()
                self._watch.stop()
            elif self._watch.allow_bookmarks and self._age >= self._timeout_seconds - BOOKMARK_LEAD:
                self._api.server.emit_bookmarks()
        return list(self._events)

    def stop(self) -> None:
        self._watch.stop()


class KbsimClient(Api):
    """`Api` over an in-memory `APIServer` (a fresh one per test), through kbsim's `ServerAPI`,
    which addresses a write by its body's namespace as `KubeClient` does."""

    backend = "kbsim"

    def __init__(
        self, server: APIServer, clock: VirtualClock, namespace: str, user: User = ADMIN
    ) -> None:
        self.server = server
        self.clock = clock
        self.namespace = namespace
        self.user = user
        self.client = ServerAPI(server, user)

    @classmethod
    def new(cls, namespace: str, seed: int = 1) -> KbsimClient:
        clock = VirtualClock()
        return cls(APIServer("conformance", clock=clock, seed=seed), clock, namespace)

    def _watch(self, w: Watch) -> KbsimWatch:
        watch = self.server.watch(
            w.gvr,
            w.namespace,
            w.resource_version,
            w.allow_bookmarks,
            user=self.user,
            label_selector=w.label_selector,
        )
        return KbsimWatch(self, watch, w.timeout_seconds)

    # --- server operations

    def compact(self) -> None:
        self.server.compact()

    def restart(self) -> None:
        """Nothing to restart: the in-memory server is its own storage."""

    def as_user(self, name: str, groups: Sequence[str] = ()) -> KbsimClient:
        return KbsimClient(self.server, self.clock, self.namespace, User(name, tuple(groups)))

    # --- waiting

    def _step(self) -> None:
        """One virtual second: the asynchronous controllers (kube-controller-manager's, the
        CRD controllers) get to run."""
        self.clock.now += 1.0
        self.server.tick()

    def eventually(self, check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
        return _retry(check, timeout, what, self._step, self.clock)

    def close(self) -> None:
        self.server.expire_watches()


# ============================================================================= real


class RealWatch:
    """A `kbshell.client.WatchStream` drained by a background thread, so `events` can wait."""

    def __init__(self, stream: WatchStream) -> None:
        self._stream = stream
        self._events: list[Obj] = []
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, name="conformance-watch", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                with self._cond:
                    self._events.append(event)
                    self._cond.notify_all()
        except ApiError:  # an undecodable event: the stream is over
            pass
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def events(self, timeout: float, until: Callable[[list[Obj]], bool] | None = None) -> list[Obj]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if until is not None and until(list(self._events)):
                    break
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    break
                self._cond.wait(min(left, 0.5))
            return list(self._events)

    def stop(self) -> None:
        self._stream.close()
        self._thread.join(5.0)


_MINTED: dict[tuple[str, str, tuple[str, ...]], Any] = {}
"""Kubeconfigs minted per (cluster directory, user, groups): minting runs openssl."""


class RealClient(Api):
    """`Api` over a real cluster of the test harness (kube-apiserver + etcd + kcm), through
    `kbshell.client.KubeClient`: the conformance suite measures the konnector's own client."""

    backend = "real"

    def __init__(self, cluster: Cluster, namespace: str, kubeconfig: Any = None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        # The harness's user is named by the certificate, so the User-Agent changes nothing
        # the tests compare (they pass explicit field managers).
        self.kube = KubeClient.from_kubeconfig_file(kubeconfig or cluster.kubeconfig)
        self.client = self.kube
        self._children: list[RealClient] = []
        self._watches: list[RealWatch] = []

    # --- requests

    def list(
        self, gvr: GVR, namespace: str = "", *, label_selector: str = ""
    ) -> tuple[list[Obj], str]:
        # As on the wire (kbsim models the wire): built-in items without apiVersion/kind.
        return self.kube.list(gvr, namespace, label_selector, fill_type_meta=False)

    def _watch(self, w: Watch) -> RealWatch:
        stream = self.kube.watch(
            w.gvr,
            w.namespace,
            resource_version=w.resource_version,
            label_selector=w.label_selector,
            timeout_seconds=w.timeout_seconds,
            allow_bookmarks=w.allow_bookmarks,
        )
        watch = RealWatch(stream)
        self._watches.append(watch)
        return watch

    # --- server operations

    def compact(self) -> None:
        """etcd compaction up to its current revision, then a restart of kube-apiserver.

        The apiserver serves watches from its watch cache, whose history is not trimmed by an
        etcd compaction; a restarted apiserver primes its caches from the compacted store, so
        (as on a long-running server whose cache window has moved on) a watch from an older
        resourceVersion then gets 410 Expired. The etcd v3 JSON gateway is used: no etcdctl.
        """
        etcd = f"http://127.0.0.1:{self.cluster.etcd_port}"
        revision = _etcd(etcd, "/v3/kv/range", {"key": "AA=="})["header"]["revision"]
        try:
            _etcd(etcd, "/v3/kv/compaction", {"revision": revision, "physical": True})
        except urllib.error.HTTPError as err:  # already compacted at this revision
            if b"compacted" not in err.read():
                raise
        self.restart()

    def restart(self) -> None:
        self.cluster.restart_apiserver()

    def as_user(self, name: str, groups: Sequence[str] = ()) -> RealClient:
        key = (str(self.cluster.dir), name, tuple(groups))  # one CA per cluster directory
        if key not in _MINTED:
            _MINTED[key] = self.cluster.mint_kubeconfig(name, groups)
        child = RealClient(self.cluster, self.namespace, _MINTED[key])
        self._children.append(child)
        return child

    # --- waiting

    def eventually(self, check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
        return _retry(check, timeout, what, lambda: time.sleep(0.1), time.monotonic)

    def close(self) -> None:
        for w in self._watches:
            w.stop()
        for child in self._children:
            child.close()
        self.kube.close()


def _etcd(base: str, path: str, body: Obj) -> Obj:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        result: Obj = json.loads(response.read())
        return result
