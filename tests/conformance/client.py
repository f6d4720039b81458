"""The small client interface the conformance tests are written against.

One test body runs against kbsim's in-memory `APIServer` and against a real kube-apiserver;
only the adapter (`tests/conformance/adapters.py`) differs, and the requests of both go through
the interface the konnector uses, `kbcore.runtime.cluster.ClusterAPI`. The interface is
dict-level (no model classes) and every failure is a `kbcore.errors.ApiError` carrying the server's HTTP code,
`reason` and `message` (and `details`), so a test compares *observable* outcomes the same way
for both backends.

Time: the real server is asynchronous (CRD establishment, namespace finalization, garbage
collection, RBAC informers, watch bookmarks) and the adapter waits in wall-clock seconds;
kbsim is synchronous, and its adapter makes progress while "waiting" by running the simulated
controllers (`APIServer.tick()`) and advancing its virtual clock. Tests therefore never sleep:
they call `eventually(...)`, `wait_established(...)`, `wait_gone(...)` or `WatchStream.events`.
"""

from __future__ import annotations

import abc
import contextlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import pytest

from kbcore.api.resources import CONFIGMAPS as CONFIGMAPS
from kbcore.api.resources import CRDS as CRDS
from kbcore.api.resources import NAMESPACES as NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.cluster import ClusterAPI
from kbcore.runtime.requests import PatchType

Obj = dict[str, Any]
T = TypeVar("T")

ROLES = GVR("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = GVR("rbac.authorization.k8s.io", "v1", "rolebindings")

DEFAULT_FIELD_MANAGER = "conformance"
"""Both adapters send an explicit fieldManager (a real client would otherwise be named after
its User-Agent), so managedFields and apply-conflict messages compare equal."""


class WatchStream(Protocol):
    """An open watch. Events are dicts as on the wire: `{"type": ..., "object": {...}}`."""

    def events(self, timeout: float, until: Callable[[list[Obj]], bool] | None = None) -> list[Obj]:
        """Every event received since the watch started, once `until(events)` holds or after
        `timeout` seconds (real: wall clock; kbsim: virtual seconds, each of which runs the
        controllers and, near the watch's own timeout, sends bookmarks as the real server does).
        Without `until`, collects for the whole `timeout`. Never raises for a timeout."""
        ...

    def stop(self) -> None:
        """Close the stream (client side)."""
        ...


@attrs.frozen
class Watch:
    """The watch a test asked for (`Api.watch`)."""

    gvr: GVR
    namespace: str
    resource_version: str
    allow_bookmarks: bool
    label_selector: str
    timeout_seconds: int


class Api(abc.ABC):
    """One API server, as one user. `backend` is "kbsim" or "real"; `namespace` is this test's
    own namespace, created Active before the test and removed after it.

    The requests are written once over `client`, the server as the konnector itself calls it
    (`kbcore.runtime.cluster.ClusterAPI`: kbshell's `KubeClient`, or kbsim's `ServerAPI`); the
    adapters supply watches, server operations and how waiting makes progress."""

    backend: str
    namespace: str
    client: ClusterAPI

    # --- requests ---------------------------------------------------------------------------

    def get(self, gvr: GVR, name: str, namespace: str = "", *, subresource: str = "") -> Obj:
        return self.client.get(gvr, ObjectKey(namespace, name), subresource=subresource)

    def list(
        self, gvr: GVR, namespace: str = "", *, label_selector: str = ""
    ) -> tuple[list[Obj], str]:
        """(items, the list's resourceVersion)."""
        return self.client.list(gvr, namespace, label_selector)

    def create(self, gvr: GVR, body: Obj, *, field_manager: str = DEFAULT_FIELD_MANAGER) -> Obj:
        """POST; the namespace comes from `body.metadata.namespace`."""
        return self.client.create(gvr, body, field_manager)

    def update(
        self,
        gvr: GVR,
        body: Obj,
        *,
        subresource: str = "",
        field_manager: str = DEFAULT_FIELD_MANAGER,
    ) -> Obj:
        """PUT of the whole object; name/namespace from `body.metadata`."""
        return self.client.update(gvr, body, subresource, field_manager)

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
        """PATCH: JSON merge patch, JSON patch, or server-side apply (`force` only for apply)."""
        key = ObjectKey(namespace, name)
        return self.client.patch(gvr, key, body, patch_type, field_manager, force, subresource)

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
        """DELETE with optional preconditions; returns the object if it still exists (marked
        for deletion, held by finalizers), None if it is gone."""
        key = ObjectKey(namespace, name)
        return self.client.delete(gvr, key, uid, resource_version, propagation_policy)

    def watch(
        self,
        gvr: GVR,
        namespace: str = "",
        *,
        resource_version: str = "",
        allow_bookmarks: bool = False,
        label_selector: str = "",
        timeout_seconds: int = 10,
    ) -> WatchStream:
        """Start a watch (`timeoutSeconds` as on the wire: the server ends it after that)."""
        return self._watch(
            Watch(
                gvr, namespace, resource_version, allow_bookmarks, label_selector, timeout_seconds
            )
        )

    @abc.abstractmethod
    def _watch(self, w: Watch) -> WatchStream:
        """Start the watch `w` on this backend."""

    def discovery(self, path: str) -> Obj:
        """GET of a discovery document: `/api`, `/api/v1`, `/apis`, `/apis/<group>`,
        `/apis/<group>/<version>`. Readable by every authenticated user."""
        return self.client.discovery(path)

    def openapi(self, path: str) -> Obj:
        """GET of an OpenAPI v3 document: the index `/openapi/v3`, or a `serverRelativeURL`
        from it (`/openapi/v3/apis/<group>/<version>?hash=...`)."""
        return self.client.openapi(path)

    # --- server operations ----------------------------------------------------------------------

    @abc.abstractmethod
    def compact(self) -> None:
        """Compact the history up to now: watching from an older resourceVersion gets 410."""

    @abc.abstractmethod
    def restart(self) -> None:
        """Restart the API server (real: kube-apiserver, etcd keeps running; kbsim: nothing to
        restart, state is simply kept)."""

    @abc.abstractmethod
    def as_user(self, name: str, groups: Sequence[str] = ()) -> Api:
        """The same server, authenticated as `name` in `groups` (authorized by RBAC only)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop what this client started (watches, connections)."""

    # --- waiting ------------------------------------------------------------------------------

    @abc.abstractmethod
    def eventually(self, check: Callable[[], T | None], timeout: float = 30.0, what: str = "") -> T:
        """Call `check` until it returns a truthy value, and return that. A falsy value, an
        AssertionError or an ApiError mean "not yet"; after `timeout` seconds the test fails."""

    def wait_established(self, crd_name: str, timeout: float = 30.0) -> Obj:
        """Wait until the CRD is Established (and its resource served); returns the CRD."""

        def served() -> Obj | None:
            crd = self.get(CRDS, crd_name)
            if not _established(crd):
                return None
            self.list(_crd_resource(crd))
            return crd

        return self.eventually(served, timeout, f"CRD {crd_name} established")

    def wait_gone(self, gvr: GVR, name: str, namespace: str = "", timeout: float = 60.0) -> None:
        """Wait until a GET answers 404."""
        self.eventually(lambda: self._gone(gvr, name, namespace), timeout, f"{name} gone")

    def _gone(self, gvr: GVR, name: str, namespace: str) -> bool:
        try:
            self.get(gvr, name, namespace)
        except ApiError as err:
            if err.code == 404:
                return True
            raise
        return False


def _crd_resource(crd: Obj) -> GVR:
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    return GVR(spec["group"], version, spec["names"]["plural"])


def _established(crd: Obj) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


# --- test vocabulary (shared by the test modules) ---------------------------------------------


def configmap(
    name: str, namespace: str, *, labels: dict[str, str] | None = None, **data: str
) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def rv(obj: Obj) -> int:
    """metadata.resourceVersion as a number (both backends use etcd-style integers)."""
    return int(obj["metadata"]["resourceVersion"])


@contextlib.contextmanager
def raises_api_error(
    code: int, reason: str, message: str | None = None
) -> Iterator[pytest.ExceptionInfo[ApiError]]:
    """Expect an ApiError with this code and reason (and message, when given: exact)."""
    with pytest.raises(ApiError) as info:
        yield info
    err = info.value
    assert (err.code, err.reason) == (code, reason), f"{err.code} {err.reason}: {err.message}"
    if message is not None:
        assert err.message == message


def widget(gvr: GVR, name: str, namespace: str, **spec: Any) -> Obj:
    """A Widget custom resource (see the `widgets` fixture)."""
    return {
        "apiVersion": f"{gvr.group}/{gvr.version}",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def generation(obj: Obj) -> int:
    return int(obj["metadata"]["generation"])


def unique(prefix: str) -> str:
    """A name no other test (or earlier run on the same real cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
