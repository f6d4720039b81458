"""The two implementations of `tests.conformance.client.Api`: kbsim and a real kube-apiserver.

`KbsimClient` wraps a `kbsim.apiserver.APIServer` on a virtual clock that only its waits
advance. `RealClient` speaks HTTP to a cluster of `tests/harness/clusters.py` through the
`kubernetes` client at dict level (`param_serialize` + `call_api`, as the harness's smoke test
does: no model classes, nothing interpreted), and turns every error response into the same
`ApiError` kbsim raises, from the server's `Status` body.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import ADMIN, APIServer, User, Watch
from tests.conformance.client import (
    CRDS,
    DEFAULT_FIELD_MANAGER,
    Obj,
    PatchType,
)
from tests.harness.clusters import Cluster, api_client

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


def _crd_resource(crd: Obj) -> GVR:
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    return GVR(spec["group"], version, spec["names"]["plural"])


def _established(crd: Obj) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


# ============================================================================= kbsim


class VirtualClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class KbsimWatch:
    def __init__(self, api: KbsimClient, watch: Watch, timeout_seconds: int) -> None:
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


class _Waits:
    """Waits written once over `eventually`, `get` and `list`, which each backend provides."""

    eventually: Any
    get: Any
    list: Any

    def wait_established(self, crd_name: str, timeout: float = 30.0) -> Obj:
        def served() -> Obj | None:
            crd = self.get(CRDS, crd_name)
            if not _established(crd):
                return None
            self.list(_crd_resource(crd))
            return crd

        return self.eventually(served, timeout, f"CRD {crd_name} established")

    def wait_gone(self, gvr: GVR, name: str, namespace: str = "", timeout: float = 60.0) -> None:
        self.eventually(lambda: _is_gone(self, gvr, name, namespace), timeout, f"{name} gone")


class KbsimClient(_Waits):
    """`Api` over an in-memory `APIServer` (a fresh one per test)."""

    backend = "kbsim"

    def __init__(
        self, server: APIServer, clock: VirtualClock, namespace: str, user: User = ADMIN
    ) -> None:
        self.server = server
        self.clock = clock
        self.namespace = namespace
        self.user = user

    @classmethod
    def new(cls, namespace: str, seed: int = 1) -> KbsimClient:
        clock = VirtualClock()
        return cls(APIServer("conformance", clock=clock, seed=seed), clock, namespace)

    # --- requests

    def get(self, gvr: GVR, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        return self.server.get(
            gvr, ObjectKey(namespace, name), user=self.user, subresource=subresource
        )

    def list(
        self, gvr: GVR, namespace: str = "", *, label_selector: str = ""
    ) -> tuple[list[Obj], str]:
        return self.server.list(gvr, namespace, label_selector, user=self.user)

    def create(self, gvr: GVR, body: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER) -> Obj:
        return self.server.create(gvr, body, field_manager, user=self.user)

    def update(
        self,
        gvr: GVR,
        body: Obj,
        *,
        subresource: str = "",
        field_manager: str = DEFAULT_FIELD_MANAGER,
    ) -> Obj:
        return self.server.update(gvr, body, subresource, field_manager, user=self.user)

    def patch(
        self,
        gvr: GVR,
        name: str,
        body: Any,
        namespace: str = "",
        *,
        patch_type: PatchType = "merge",
        field_manager: str = DEFAULT_FIELD_MANAGER,
        force: bool = False,
        subresource: str = "",
    ) -> Obj:
        return self.server.patch(
            gvr,
            ObjectKey(namespace, name),
            body,
            patch_type,
            field_manager,
            force,
            subresource,
            user=self.user,
        )

    def delete(
        self,
        gvr: GVR,
        name: str,
        namespace: str = "",
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> Obj | None:
        return self.server.delete(
            gvr,
            ObjectKey(namespace, name),
            uid,
            resource_version,
            user=self.user,
            propagation_policy=propagation_policy,
        )

    def watch(
        self,
        gvr: GVR,
        namespace: str = "",
        *,
        resource_version: str = "",
        allow_bookmarks: bool = False,
        label_selector: str = "",
        timeout_seconds: int = 10,
    ) -> KbsimWatch:
        w = self.server.watch(
            gvr,
            namespace,
            resource_version,
            allow_bookmarks,
            user=self.user,
            label_selector=label_selector,
        )
        return KbsimWatch(self, w, timeout_seconds)

    def discovery(self, path: str) -> Obj:
        return self.server.discovery(path, user=self.user)

    def openapi(self, path: str) -> Obj:
        return self.server.openapi(path, user=self.user)

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


def _is_gone(api: Any, gvr: GVR, name: str, namespace: str) -> bool:
    try:
        api.get(gvr, name, namespace)
    except ApiError as err:
        if err.code == 404:
            return True
        raise
    return False


# ============================================================================= real


_GENERIC_RESPONSES = {
    # client-go's errors.NewGenericServerResponse: what a client reports for an error response
    # without a Status body (e.g. the text/plain "404 page not found" of an unknown API group).
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", "the server does not allow access to the requested resource"),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    500: ("InternalError", "an error on the server has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be processing the request",
    ),
}


def api_error(status: int, data: Any, headers: Any = None) -> ApiError:
    """The `ApiError` for an error response (a `metav1.Status` body, as kbsim builds it).

    A body that is not a Status is interpreted as client-go does (`NewGenericServerResponse`):
    reason and message from the HTTP code, the body kept as an `UnexpectedServerResponse` cause.
    """
    retry_after = None
    if headers is not None and headers.get("Retry-After"):
        with contextlib.suppress(ValueError):
            retry_after = float(headers["Retry-After"])
    if isinstance(data, dict) and data.get("kind") == "Status":
        return ApiError(
            int(data.get("code") or status),
            str(data.get("reason") or ""),
            str(data.get("message") or ""),
            retry_after=retry_after,
            details=data.get("details") or None,
        )
    reason, message = _GENERIC_RESPONSES.get(
        status,
        (
            "",
            f"the server responded with the status code {status} but did not return more information",
        ),
    )
    body = data if isinstance(data, str) else json.dumps(data)
    return ApiError(
        status,
        reason,
        message,
        retry_after=retry_after,
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": body.strip()}]},
    )


class RealWatch:
    """A watch stream read by a background thread, one JSON event per line."""

    def __init__(self, response: Any) -> None:
        self._response = response  # a urllib3 HTTPResponse, not preloaded
        self._events: list[Obj] = []
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, name="conformance-watch", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self._response.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._push(line)
            self._push(buffer)
        except Exception:  # closed by stop(), or the server went away
            pass
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            with contextlib.suppress(Exception):
                self._response.release_conn()

    def _push(self, line: bytes) -> None:
        if not line.strip():
            return
        event = json.loads(line)
        with self._cond:
            self._events.append(event)
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
        with contextlib.suppress(Exception):
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.close()
        self._thread.join(5.0)


_MINTED: dict[tuple[str, str, tuple[str, ...]], Any] = {}
"""Kubeconfigs minted per (cluster directory, user, groups): minting runs openssl."""


class RealClient(_Waits):
    """`Api` over a real cluster of the test harness (kube-apiserver + etcd + kcm)."""

    backend = "real"

    def __init__(self, cluster: Cluster, namespace: str, kubeconfig: Any = None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self._client = api_client(kubeconfig or cluster.kubeconfig)
        self._children: list[RealClient] = []
        self._watches: list[RealWatch] = []

    # --- transport

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: Any = 30.0,
    ) -> Any:
        """One request; the urllib3 response (not yet read) for a 2xx, else raises ApiError."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self._client.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._client.call_api(
            method, url, header_params=headers, body=body, _request_timeout=timeout
        )
        if response.status >= 400:
            raw = response.read()
            try:
                data = json.loads(raw) if raw else None
            except ValueError:
                data = raw.decode(errors="replace")
            raise api_error(response.status, data, response.headers)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        raw = self._call(method, path, **kwargs).read()
        return json.loads(raw) if raw else None

    @staticmethod
    def _path(gvr: GVR, namespace: str = "", name: str = "", subresource: str = "") -> str:
        parts = ["/api/v1" if not gvr.group else f"/apis/{gvr.group}/{gvr.version}"]
        if namespace:
            parts += ["namespaces", namespace]
        parts.append(gvr.resource)
        if name:
            parts.append(name)
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    # --- requests

    def get(self, gvr: GVR, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        result: Obj = self._json("GET", self._path(gvr, namespace, name, subresource))
        return result

    def list(
        self, gvr: GVR, namespace: str = "", *, label_selector: str = ""
    ) -> tuple[list[Obj], str]:
        query = [("labelSelector", label_selector)] if label_selector else []
        data = self._json("GET", self._path(gvr, namespace), query=query)
        return list(data.get("items") or []), str(data["metadata"].get("resourceVersion", ""))

    def create(self, gvr: GVR, body: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER) -> Obj:
        namespace = (body.get("metadata") or {}).get("namespace", "")
        if namespace and gvr == GVR("", "v1", "namespaces"):
            namespace = ""
        result: Obj = self._json(
            "POST",
            self._path(gvr, namespace),
            query=[("fieldManager", field_manager)],
            body=body,
        )
        return result

    def update(
        self,
        gvr: GVR,
        body: Obj,
        *,
        subresource: str = "",
        field_manager: str = DEFAULT_FIELD_MANAGER,
    ) -> Obj:
        meta = body.get("metadata") or {}
        path = self._path(gvr, meta.get("namespace", ""), meta["name"], subresource)
        result: Obj = self._json("PUT", path, query=[("fieldManager", field_manager)], body=body)
        return result

    def patch(
        self,
        gvr: GVR,
        name: str,
        body: Any,
        namespace: str = "",
        *,
        patch_type: PatchType = "merge",
        field_manager: str = DEFAULT_FIELD_MANAGER,
        force: bool = False,
        subresource: str = "",
    ) -> Obj:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "apply": "application/apply-patch+yaml",
        }[patch_type]
        query = [("fieldManager", field_manager)]
        if force:
            query.append(("force", "true"))
        result: Obj = self._json(
            "PATCH",
            self._path(gvr, namespace, name, subresource),
            query=query,
            body=body,
            content_type=content_type,
        )
        return result

    def delete(
        self,
        gvr: GVR,
        name: str,
        namespace: str = "",
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation_policy: str | None = None,
    ) -> Obj | None:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        preconditions = {}
        if uid is not None:
            preconditions["uid"] = uid
        if resource_version is not None:
            preconditions["resourceVersion"] = resource_version
        if preconditions:
            options["preconditions"] = preconditions
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        data = self._json("DELETE", self._path(gvr, namespace, name), body=options)
        # 200 with the object: still there (marked) if it carries a deletionTimestamp, else it
        # was the last state of an object now gone; or a Status for a finished deletion.
        if not isinstance(data, dict) or data.get("kind") == "Status":
            return None
        return data if (data.get("metadata") or {}).get("deletionTimestamp") else None

    def watch(
        self,
        gvr: GVR,
        namespace: str = "",
        *,
        resource_version: str = "",
        allow_bookmarks: bool = False,
        label_selector: str = "",
        timeout_seconds: int = 10,
    ) -> RealWatch:
        query = [("watch", "1"), ("timeoutSeconds", str(timeout_seconds))]
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if label_selector:
            query.append(("labelSelector", label_selector))
        # (connect, read) timeouts: the server ends the stream after timeout_seconds.
        response = self._call(
            "GET", self._path(gvr, namespace), query=query, timeout=(10.0, timeout_seconds + 30.0)
        )
        stream = RealWatch(response.response)
        self._watches.append(stream)
        return stream

    def discovery(self, path: str) -> Obj:
        return self._get_url(path)

    def openapi(self, path: str) -> Obj:
        return self._get_url(path)

    def _get_url(self, url: str) -> Obj:
        """GET of a server-relative URL (its query string passed on, e.g. `?hash=`)."""
        path, _, query = url.partition("?")
        result: Obj = self._json(
            "GET", path, query=urllib.parse.parse_qsl(query, keep_blank_values=True)
        )
        return result

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
        self._client.close()


def _etcd(base: str, path: str, body: Obj) -> Obj:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        result: Obj = json.loads(response.read())
        return result
