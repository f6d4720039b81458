"""An in-memory Kubernetes API server: one per simulated cluster.

This is a shell, not a mock: the same conformance tests run against it and a real
kube-apiserver, so every behaviour below is the real one unless listed under "Known differences".
It is synchronous, single-threaded and deterministic: time comes from the `clock` callable
(virtual epoch seconds), and UIDs and generated names from `random.Random(seed)`.

Theory of operation
-------------------

One module per seam, each a layer on the one before it (`APIServer` is the last):
`store` (objects, resourceVersion, commit), `watch` (history and watch streams, a collaborator
of the store), `pipeline` (hooks, RBAC, reads, create/update/delete), `strategy` (per-kind
decoding, strategies and validation: pure functions), `apply` (patch and server-side apply),
`controllers` (`tick`). What kbsim models and what it deliberately does not: `docs/kbsim.md`.

1. **Storage.** Objects live in one dict per *storage* (`ResourceInfo.storage`, e.g. core and
   `events.k8s.io` Events share one), keyed by `ObjectKey`, in the storage version's form. A
   request is answered in the requested version (`store.present`). Stored dicts are never
   mutated nor handed out; every write stores a fresh dict, every answer is a deep copy.

2. **resourceVersion.** One cluster-wide counter, bumped by every write (create, update, delete,
   deletion marking). A write whose result equals the stored object is a no-op: no bump, no
   watch event, the stored object is returned (as etcd3's GuaranteedUpdate does).

3. **History.** Every write appends `(rv, storage, type, key, object, previous)`. Watches replay it
   from a resourceVersion; `get_at`/`list_at` rewind it; `compact()` forgets it, after which
   older resourceVersions answer 410 Expired.

4. **Request pipeline** (`Pipeline._request`): request hooks (fault injection) -> RBAC ->
   resolve resource -> verb logic: admission (namespace lifecycle), field manager
   (managedFields), strategy (status/spec split, generation, defaults), validation (422),
   storage (404/409), commit. The order matters because it decides which error a request that
   is wrong in two ways gets.

5. **Controllers** (`tick`): what kube-controller-manager and apiextensions-apiserver do
   asynchronously: CRD naming/establishing, CRD instance cleanup, namespace finalization,
   garbage collection (background, orphan and foreground). They write through the same commit
   path (so watches and observers see them) but bypass hooks and RBAC.

Known differences from kube-apiserver (approximations a controller could notice)
---------------------------------------------------------------------------------

Measured, not assumed: `tests/conformance/` runs one suite against this server and a real
kube-apiserver; what it finds is fixed here or listed in `docs/kbsim-known-differences.md`
(with the observable difference and why it stays). The approximations by design:

- Not modelled at all: strategic merge patch (415 for every resource; real servers accept it
  for built-ins), `deletecollection`, `dryRun`, list pagination (`limit`/`continue`),
  `resourceVersionMatch`, `sendInitialEvents`, admission webhooks and policies, quotas, event
  TTL (Events never expire), the managedFields cap of ten Update entries (`ancient-changes`),
  graceful deletion (no pods here: deletion marks set `deletionGracePeriodSeconds: 0`).
- CRDs: only conversion strategy `None` between versions (apiVersion is rewritten); validation
  and defaulting use the request version's schema; CEL rules (`x-kubernetes-validations`),
  `format`, `oneOf`/`anyOf`/`allOf`/`not` and ratcheting are not checked; a schema change
  applies at once; NamesAccepted only detects plural/kind clashes within the group; the
  `InstanceDeletionCheck` (one-minute timeout) condition is never set.
- Field ownership: every version of a resource shares one schema (no conversion of managed
  fields); built-in kinds use hand-written SMD types, approximated as "struct" for nested
  objects not listed in `kbsim.fieldsets.BUILTIN_TYPES`; timestamps have second precision.
- Status subresources of built-ins (Namespace, CRD) use the custom-resource rule: a /status
  write keeps only `.status` (real built-in strategies differ slightly for metadata).
- Built-in validation covers what controllers commonly trip over (names, labels, annotations,
  finalizers, owner references, Secret/ConfigMap keys/size/immutability, Lease and
  events.k8s.io Event fields, RBAC roleRef/subjects, CRD names/scope/versions/schema, and on
  a CRD update the immutable group, names.plural, and (once Established) scope and names.kind,
  and that every version in status.storedVersions stays in spec.versions).
- Watches: the "too large resource version" wait is not modelled (a 504 ERROR event at once);
  there is no watch cache: `compact()` makes every older resourceVersion 410 at once, exactly;
  bookmarks (besides the initial-events-end one) are only sent by `emit_bookmarks()`; field
  selectors support only `metadata.name` and `metadata.namespace`.
- RBAC: no aggregated ClusterRoles, no escalation check, no non-resource URLs; only the
  `cluster-admin` bootstrap ClusterRole/Binding exist.
- `discover()` (the in-process summary the simulated konnector uses) lists the same eight verbs
  for every resource; the discovery documents (`discovery()`, `openapi()`, built by
  `kbsim/discovery.py`) list the real ones.
- `default` ServiceAccounts and `kube-root-ca.crt` ConfigMaps are created per namespace only
  with `namespace_defaults=True` (a kube-controller-manager running all controllers does it).
  The token controller always runs, as on a real cluster: a service-account-token Secret is
  filled while its ServiceAccount exists and deleted when it does not.
- Controllers (`tick`) bypass request hooks and RBAC; a hook's `AfterWrite` error is raised
  even when the request itself failed (the client never sees the real outcome).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, NamedTuple

from kbcore import objects as o
from kbcore.api.resources import CRDS as CRD_GVR
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbsim import discovery
from kbsim.apiserver.controllers import Controllers
from kbsim.apiserver.pipeline import AfterWrite, RequestHook, ResponseLost
from kbsim.apiserver.store import WriteObserver, WriteRecord
from kbsim.apiserver.watch import Watch
from kbsim.discovery import State as DiscoveryState
from kbsim.rbac import ADMIN, User
from kbsim.resources import VERBS, ResourceInfo

__all__ = [
    "ADMIN",
    "APIServer",
    "AfterWrite",
    "DiscoveredResource",
    "RequestHook",
    "ResourceInfo",
    "ResponseLost",
    "User",
    "Watch",
    "WriteObserver",
    "WriteRecord",
]


class DiscoveredResource(NamedTuple):
    gvr: GVR
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    subresources: tuple[str, ...]


class APIServer(Controllers):
    """One simulated cluster's API server: the public API. See the package docstring; the
    layers are `store` < `pipeline` < `apply` < `controllers` < this class."""

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float],
        seed: int,
        namespace_defaults: bool = False,
    ) -> None:
        super().__init__(
            name,
            clock=clock,
            seed=seed,
            namespace_defaults=namespace_defaults,
        )
        self._bootstrap()

    # --- reads --------------------------------------------------------------------------------

    def get(self, gvr: GVR, key: ObjectKey, *, user: User = ADMIN, subresource: str = "") -> Obj:
        return self._request(
            "get", gvr, key, user, subresource, lambda: self._get(gvr, key, subresource)
        )

    def list(
        self,
        gvr: GVR,
        namespace: str = "",
        label_selector: str = "",
        *,
        user: User = ADMIN,
        field_selector: str = "",
    ) -> tuple[builtins.list[Obj], str]:
        """(items sorted by namespace/name, list resourceVersion).

        As on the wire, items of built-in kinds carry no apiVersion/kind; custom resources do.
        """
        key = ObjectKey(namespace, "")
        return self._request(
            "list",
            gvr,
            key,
            user,
            "",
            lambda: self._list(gvr, namespace, label_selector, field_selector),
        )

    def watch(
        self,
        gvr: GVR,
        namespace: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = True,
        *,
        user: User = ADMIN,
        label_selector: str = "",
        field_selector: str = "",
    ) -> Watch:
        """Start a watch. `""`/`"0"`: synthetic ADDED for the current state, then changes;
        a resourceVersion: replay of history after it (410 ERROR event if compacted)."""
        key = ObjectKey(namespace, "")
        return self._request(
            "watch",
            gvr,
            key,
            user,
            "",
            lambda: self._watch(
                gvr, namespace, resource_version, allow_bookmarks, label_selector, field_selector
            ),
        )

    def get_at(self, gvr: GVR, key: ObjectKey, rv: str) -> Obj | None:
        """The object as of resourceVersion `rv` (None if absent then); 410 if compacted."""
        info, version = self._resolve(gvr)
        state = self._state_at(info, int(rv))
        obj = state.get(key)
        return None if obj is None else self._present(info, version, obj)

    def list_at(self, gvr: GVR, namespace: str, rv: str) -> tuple[builtins.list[Obj], str]:
        """The list as of resourceVersion `rv` (same shape as `list`); 410 if compacted."""
        info, version = self._resolve(gvr)
        state = self._state_at(info, int(rv))
        items = [
            self._present(info, version, state[k], in_list=True)
            for k in sorted(state)
            if not namespace or k.namespace == namespace
        ]
        return items, str(int(rv))

    # --- writes -------------------------------------------------------------------------------

    def create(
        self,
        gvr: GVR,
        obj: Obj,
        field_manager: str = "kbsim",
        *,
        user: User = ADMIN,
        url_namespace: str | None = None,
    ) -> Obj:
        """POST. `url_namespace` is the namespace in the URL as the client sent it; None means a
        client that knows the resource's scope (kubectl: a cluster-scoped resource is addressed
        without one, whatever the body says)."""
        body = self._body(obj)
        key = self._url_key(gvr, body, url_namespace)

        def create() -> Obj:
            self._in_scope(gvr, key, url_namespace is not None)
            return self._create_request(gvr, body, field_manager, user)

        return self._request("create", gvr, key, user, "", create, body=body)

    def update(
        self,
        gvr: GVR,
        obj: Obj,
        subresource: str = "",
        field_manager: str = "kbsim",
        *,
        user: User = ADMIN,
        url_namespace: str | None = None,
    ) -> Obj:
        """PUT. A set metadata.resourceVersion must match (else 409); empty is unconditional.
        `url_namespace` as for `create`."""
        body = self._body(obj)
        key = self._url_key(gvr, body, url_namespace)

        def update() -> Obj:
            self._in_scope(gvr, key, url_namespace is not None)
            return self._update_request(gvr, key, body, subresource, field_manager, user)

        return self._request("update", gvr, key, user, subresource, update, body=body)

    def patch(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: str,
        field_manager: str = "kbsim",
        force: bool = False,
        subresource: str = "",
        *,
        user: User = ADMIN,
    ) -> Obj:
        """`patch_type`: `merge` (RFC 7386), `json` (RFC 6902) or `apply` (server-side apply)."""
        return self._request(
            "patch",
            gvr,
            key,
            user,
            subresource,
            lambda: self._patch_request(
                gvr, key, o.deepcopy(body), patch_type, field_manager, force, subresource, user
            ),
            body=body,
            patch_type=patch_type,
        )

    def delete(
        self,
        gvr: GVR,
        key: ObjectKey,
        uid: str | None = None,
        resource_version: str | None = None,
        *,
        user: User = ADMIN,
        propagation_policy: str | None = None,
    ) -> Obj | None:
        """Delete; returns the object if it is only marked for deletion, else None."""
        return self._request(
            "delete",
            gvr,
            key,
            user,
            "",
            lambda: self._delete_request(gvr, key, uid, resource_version, propagation_policy, user),
        )

    # --- watches and history ------------------------------------------------------------------

    def emit_bookmarks(self) -> None:
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them and
        started before it (the cacher sends none while nothing happened since the start)."""
        self._history.emit_bookmarks(self._rv)

    def compact(self, rv: str | None = None) -> None:
        """Forget history up to `rv` (default: the current resourceVersion)."""
        self._history.compact(self._rv if rv is None else min(int(rv), self._rv))

    def expire_watches(self) -> None:
        """End every open watch, as a server-side watch timeout does."""
        self._history.expire()

    @property
    def open_watches(self) -> int:
        return len(self._history.watches)

    # --- discovery ----------------------------------------------------------------------------

    def resource_for(self, gvr: GVR) -> ResourceInfo:
        """The served resource behind `gvr` (404 if not served)."""
        return self._resolve(gvr)[0]

    def discover(self) -> builtins.list[DiscoveredResource]:
        out: builtins.list[DiscoveredResource] = []
        for info in [*self._builtin.values(), *self._custom.values()]:
            for version in info.versions:
                out.append(
                    DiscoveredResource(
                        info.gvr(version),
                        info.kind,
                        info.namespaced,
                        VERBS,
                        info.subresources,
                    )
                )
        return sorted(out, key=lambda d: (d.gvr.group, d.gvr.version, d.gvr.resource))

    def discovery(self, path: str, *, user: User = ADMIN) -> Obj:
        """The discovery document at `path`: `/api`, `/api/v1`, `/apis`, `/apis/<group>` or
        `/apis/<group>/<version>` (query ignored); 404 NotFound for anything else.

        Every user may read it (as `system:discovery` grants on a real cluster); request hooks
        see verb "get" on `GVR(group, version, "")` (no resource: a non-resource request).
        """
        return self._nonresource_request(
            path, user, lambda: discovery.discovery(self._discovery_state(), path)
        )

    def openapi(self, path: str, *, user: User = ADMIN) -> Obj:
        """The OpenAPI v3 document at `path`: the index `/openapi/v3`, or
        `/openapi/v3/api/v1` / `/openapi/v3/apis/<group>/<version>` (query, e.g. `?hash=`,
        ignored); 404 NotFound for anything else. Authorization and hooks as `discovery`."""
        return self._nonresource_request(
            path, user, lambda: discovery.openapi(self._discovery_state(), path)
        )

    def _discovery_state(self) -> DiscoveryState:
        crds = self._store(self._crd_info())
        return discovery.State(self._builtin.values(), [crds[k] for k in sorted(crds)])

    def kind_to_gvr(self, api_version: str, kind: str) -> GVR:
        group, _, version = api_version.rpartition("/")
        for info in [*self._builtin.values(), *self._custom.values()]:
            if info.group == group and info.kind == kind and version in info.versions:
                return info.gvr(version)
        raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')


# Re-exported for callers that address the well-known resources.
CUSTOM_RESOURCE_DEFINITIONS = CRD_GVR
