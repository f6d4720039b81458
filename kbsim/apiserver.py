"""An in-memory Kubernetes API server: one per simulated cluster.

This is a shell, not a mock: the same conformance tests run against it and a real
kube-apiserver, so every behaviour below is the real one unless listed under "Known differences".
It is synchronous, single-threaded and deterministic: time comes from the `clock` callable
(virtual epoch seconds), and UIDs and generated names from `random.Random(seed)`.

Theory of operation
-------------------

1. **Storage.** Objects live in one dict per *storage* (`ResourceInfo.storage`, e.g. core and
   `events.k8s.io` Events share one), keyed by `ObjectKey`, in the storage version's form. A
   request is answered in the requested version (`_present`). Stored dicts are never mutated nor
   handed out; every write stores a fresh dict, every answer is a deep copy.

2. **resourceVersion.** One cluster-wide counter, bumped by every write (create, update, delete,
   deletion marking). A write whose result equals the stored object is a no-op: no bump, no
   watch event, the stored object is returned (as etcd3's GuaranteedUpdate does).

3. **History.** Every write appends `(rv, storage, type, key, object, previous)`. Watches replay it
   from a resourceVersion; `get_at`/`list_at` rewind it; `compact()` forgets it, after which
   older resourceVersions answer 410 Expired.

4. **Request pipeline** (`_request`): request hooks (fault injection) -> RBAC -> resolve resource
   -> verb logic: admission (namespace lifecycle), field manager (managedFields), strategy
   (status/spec split, generation, defaults), validation (422), storage (404/409), commit. The
   order matters because it decides which error a request that is wrong in two ways gets.

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
- Controllers (`tick`) bypass request hooks and RBAC; a hook's `AfterWrite` error is raised
  even when the request itself failed (the client never sees the real outcome).
"""

from __future__ import annotations

import base64
import builtins
import datetime
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import attrs

from kbcore import limits
from kbcore import objects as o
from kbcore.api.resources import CRDS as CRD_GVR
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.redaction import redacted_repr
from kbcore.selectors import Selector
from kbcore.selectors import parse as parse_selector
from kbsim import apierrors as errs
from kbsim import discovery, fieldsets
from kbsim import schema as crschema
from kbsim import validation as v
from kbsim.discovery import State as DiscoveryState
from kbsim.patch import json_patch, merge_patch
from kbsim.rbac import ADMIN, Attributes, Authorizer, User, forbidden_reason
from kbsim.resources import BUILTINS, VERBS, ResourceInfo, event_from_core, event_to_core, from_crd

__all__ = [
    "ADMIN",
    "APIServer",
    "AfterWrite",
    "DiscoveredResource",
    "ResourceInfo",
    "ResponseLost",
    "User",
    "Watch",
    "WriteRecord",
]

T = TypeVar("T")

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
INITIAL_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
NAMESPACE_FINALIZER = "kubernetes"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ORPHAN_FINALIZER = "orphan"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
FOREGROUND_FINALIZER = "foregroundDeletion"
ACCEPTED_PATCH_TYPES = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)

# Identities of the simulated control-plane components (what a WriteRecord shows).
KUBE_APISERVER = User("system:apiserver", ("system:masters",))
NAMESPACE_CONTROLLER = User("system:serviceaccount:kube-system:namespace-controller")
GARBAGE_COLLECTOR = User("system:serviceaccount:kube-system:generic-garbage-collector")
CONTROLLER_MANAGER = User("system:kube-controller-manager")


@attrs.frozen
class AfterWrite:
    """A request-hook verdict: perform the request, then fail it with `error`.

    Models a 500/504 after the write committed ("write happened, response lost"): the outcome
    is unknown to the client.
    """

    error: ApiError


ResponseLost = AfterWrite


@attrs.frozen
class WriteRecord:
    """One committed write, as given to write observers (objects in storage form).

    `before`/`after` are deep copies made on access (most observers never look), so an
    observer cannot corrupt the store.
    """

    verb: str
    gvr: GVR
    key: ObjectKey
    user: User
    field_manager: str
    subresource: str
    _before: Obj | None = attrs.field(repr=False)
    _after: Obj | None = attrs.field(repr=False)
    rv: str

    @property
    def before(self) -> Obj | None:
        return o.deepcopy(self._before)

    @property
    def after(self) -> Obj | None:
        return o.deepcopy(self._after)


class DiscoveredResource(NamedTuple):
    gvr: GVR
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    subresources: tuple[str, ...]


RequestHook = Callable[[str, GVR, ObjectKey, User], "ApiError | AfterWrite | None"]
WriteObserver = Callable[[WriteRecord], None]


@attrs.frozen
class _Event:
    rv: int
    storage: tuple[str, str]
    type: str
    key: ObjectKey
    obj: Obj = attrs.field(repr=redacted_repr)  # Secrets' events too
    prev: Obj | None = attrs.field(repr=redacted_repr)


class Watch:
    """A watch stream: `drain()` returns the events that arrived since the last drain.

    The server ends a watch (`closed`) on `expire_watches()`, after an ERROR event, or when its
    resource stops being served; a closed watch delivers what it already queued, then nothing.
    """

    def __init__(
        self,
        server: APIServer,
        info: ResourceInfo,
        version: str,
        namespace: str,
        selector: Selector,
        fields: tuple[tuple[str, str, str], ...],
        allow_bookmarks: bool,
    ) -> None:
        self._server = server
        self.info = info
        self.gvr = info.gvr(version)
        self.version = version
        self.namespace = namespace
        self.allow_bookmarks = allow_bookmarks
        self._selector = selector
        self._fields = fields
        self._queue: list[dict[str, Any]] = []
        self.closed = False
        self.start_rv = 0  # the resourceVersion the watch started from

    def drain(self) -> list[dict[str, Any]]:
        out, self._queue = self._queue, []
        return out

    def stop(self) -> None:
        """Client-side stop: undelivered events are discarded and no more are queued."""
        self._queue = []
        self._close()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _close(self) -> None:
        self.closed = True
        if self in self._server._watches:
            self._server._watches.remove(self)

    def _matches(self, obj: Obj) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace", "") != self.namespace:
            return False
        if not _fields_match(self._fields, obj):
            return False
        return self._selector.matches(meta.get("labels") or {})

    def _offer(self, ev: _Event) -> None:
        if self.closed or ev.storage != self.info.storage:
            return
        now = self._matches(ev.obj) if ev.type != "DELETED" else False
        before = ev.prev is not None and self._matches(ev.prev)
        if ev.type == "ADDED":
            kind, obj = ("ADDED", ev.obj) if now else ("", ev.obj)
        elif ev.type == "MODIFIED":
            if now:
                kind, obj = ("MODIFIED" if before else "ADDED"), ev.obj
            elif before:
                assert ev.prev is not None
                obj = o.deepcopy(ev.prev)
                obj["metadata"]["resourceVersion"] = str(ev.rv)
                kind = "DELETED"
            else:
                kind, obj = "", ev.obj
        else:
            kind, obj = ("DELETED", ev.obj) if self._matches(ev.obj) else ("", ev.obj)
        if kind:
            self._queue.append(
                {"type": kind, "object": self._server._present(self.info, self.version, obj)}
            )

    def _error(self, error: ApiError) -> None:
        self._queue.append({"type": "ERROR", "object": error.status()})
        self._close()


def _parse_field_selector(text: str) -> tuple[tuple[str, str, str], ...]:
    """`metadata.name=x,metadata.namespace!=y` -> ((field, op, value), ...)."""
    out: list[tuple[str, str, str]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        for op in ("!=", "==", "="):
            if op in part:
                field, _, value = part.partition(op)
                field = field.strip()
                if field not in ("metadata.name", "metadata.namespace"):
                    raise errs.bad_request(f"field label not supported: {field}")
                out.append((field, "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise errs.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
    return tuple(out)


def _fields_match(fields: tuple[tuple[str, str, str], ...], obj: Obj) -> bool:
    meta = obj.get("metadata") or {}
    for field, op, value in fields:
        have = meta.get(field.split(".", 1)[1], "") or ""
        if (have == value) != (op == "="):
            return False
    return True


_NO_BODY = object()


def _too_deep_at(value: Any) -> str:
    """The character Go's JSON scanner stops at (`{` or `[`) when `value`, written out, nests
    deeper than `MAX_JSON_DEPTH`: the first container past it in document order; else ''."""
    if limits.json_depth(value, limits.MAX_JSON_DEPTH) <= limits.MAX_JSON_DEPTH:
        return ""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > limits.MAX_JSON_DEPTH:
            return "{" if isinstance(node, dict) else "["
        children = list(node.values()) if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in reversed(children))
    return "{"  # deeper only through tuples, which JSON writes as lists


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def _same_ignoring_rv(a: Obj, b: Obj) -> bool:
    """JSON equality of two objects, ignoring metadata.resourceVersion (no copies)."""
    if a.keys() != b.keys():
        return False
    for k in a:
        if k != "metadata":
            if not fieldsets.json_equal(a[k], b[k]):
                return False
            continue
        ma, mb = a[k] or {}, b[k] or {}
        keys_a = {x for x in ma if x != "resourceVersion"}
        if keys_a != {x for x in mb if x != "resourceVersion"}:
            return False
        if not all(fieldsets.json_equal(ma[x], mb[x]) for x in keys_a):
            return False
    return True


def _condition(ctype: str, status: str, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def _set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Upsert by type; keeps lastTransitionTime when the status did not change."""
    out = [dict(c) for c in conditions]
    for i, cond in enumerate(out):
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"]:
                new = {**new, "lastTransitionTime": cond.get("lastTransitionTime")}
            out[i] = new
            return out
    out.append(new)
    return out


def _allows_unconditional_update(info: ResourceInfo) -> bool:
    """`AllowUnconditionalUpdate()` of the resource's strategy: may a PUT omit
    metadata.resourceVersion? Not for custom resources, CRDs and Leases."""
    return info.builtin and info.group not in ("apiextensions.k8s.io", "coordination.k8s.io")


def _condition_true(obj: Obj, ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
        if isinstance(c, dict)
    )


class APIServer:
    """One simulated cluster's API server. See the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float],
        seed: int,
        namespace_defaults: bool = False,
    ) -> None:
        self.name = name
        self._clock = clock
        self._rng = random.Random(seed)
        self._namespace_defaults = namespace_defaults
        self._rv = 0
        self._compacted = 0
        self._objects: dict[tuple[str, str], dict[ObjectKey, Obj]] = {}
        self._history: builtins.list[_Event] = []
        self._watches: builtins.list[Watch] = []
        self._observers: builtins.list[WriteObserver] = []
        self._hooks: builtins.list[RequestHook] = []
        self._builtin: dict[tuple[str, str], ResourceInfo] = {
            (i.group, i.resource): i for i in BUILTINS
        }
        self._custom: dict[tuple[str, str], ResourceInfo] = {}
        self._authorizer = Authorizer(self._rbac_lookup)
        self._pending: tuple[int, bool] | None = None
        self._bootstrap()

    # --- public: hooks, observers -------------------------------------------------------------

    def add_write_observer(self, fn: WriteObserver) -> None:
        """`fn(record)` is called after every committed write, in commit order."""
        self._observers.append(fn)

    def add_request_hook(self, fn: RequestHook) -> None:
        """`fn(verb, gvr, key, user)` runs before every request; returning an `ApiError` fails
        the request without performing it, an `AfterWrite` performs it and then fails it."""
        self._hooks.append(fn)

    def current_resource_version(self) -> str:
        """The current cluster-wide resourceVersion (what a list would return)."""
        return str(self._rv)

    # --- public: reads ------------------------------------------------------------------------

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

    # --- public: writes -----------------------------------------------------------------------

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

    # --- public: watches and history ----------------------------------------------------------

    def emit_bookmarks(self) -> None:
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them and
        started before it (the cacher sends none while nothing happened since the start)."""
        for w in list(self._watches):
            if w.allow_bookmarks and not w.closed and self._rv > w.start_rv:
                w._queue.append(self._bookmark(w))

    def _bookmark(self, w: Watch, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if annotations:
            meta["annotations"] = annotations
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": w.info.kind,
                "apiVersion": w.info.api_version(w.version),
                "metadata": meta,
            },
        }

    def compact(self, rv: str | None = None) -> None:
        """Forget history up to `rv` (default: the current resourceVersion)."""
        target = self._rv if rv is None else min(int(rv), self._rv)
        self._compacted = max(self._compacted, target)
        self._history = [e for e in self._history if e.rv > self._compacted]

    def expire_watches(self) -> None:
        """End every open watch, as a server-side watch timeout does."""
        for w in list(self._watches):
            w._close()

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    # --- public: discovery --------------------------------------------------------------------

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

    # Annotated with the imported name: inside the class, `discovery` is the method above.
    def _discovery_state(self) -> DiscoveryState:
        crds = self._store(self._crd_info())
        return discovery.State(self._builtin.values(), [crds[k] for k in sorted(crds)])

    def _nonresource_request(self, path: str, user: User, fn: Callable[[], T]) -> T:
        """A GET of a non-resource URL: request hooks, no RBAC (every authenticated user may
        read discovery and OpenAPI documents)."""
        parts = [p for p in path.split("?", 1)[0].strip("/").split("/") if p]
        if parts[:2] == ["openapi", "v3"]:
            parts = parts[2:]
        group = version = ""
        if parts[:1] == ["api"] and len(parts) > 1:
            version = parts[1]
        elif parts[:1] == ["apis"] and len(parts) > 1:
            group, version = parts[1], parts[2] if len(parts) > 2 else ""
        verdict: ApiError | AfterWrite | None = None
        for hook in self._hooks:
            verdict = hook("get", GVR(group, version, ""), ObjectKey("", ""), user)
            if verdict is not None:
                break
        if isinstance(verdict, ApiError):
            raise verdict
        result = fn()
        if isinstance(verdict, AfterWrite):
            raise verdict.error
        return o.deepcopy(result)

    def kind_to_gvr(self, api_version: str, kind: str) -> GVR:
        group, _, version = api_version.rpartition("/")
        for info in [*self._builtin.values(), *self._custom.values()]:
            if info.group == group and info.kind == kind and version in info.versions:
                return info.gvr(version)
        raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')

    # --- public: controllers ------------------------------------------------------------------

    def tick(self) -> int:
        """Run the asynchronous controllers once; returns the number of writes they made."""
        if not self.pending_work():
            return 0
        before = self._rv
        self._crd_controller(act=True)
        self._namespace_controller(act=True)
        self._garbage_collector(act=True)
        if self._namespace_defaults:
            self._namespace_defaults_controller(act=True)
        return self._rv - before

    def pending_work(self) -> bool:
        """Whether `tick()` would do anything (memoized per resourceVersion: controllers only
        react to stored state)."""
        if self._pending is not None and self._pending[0] == self._rv:
            return self._pending[1]
        pending = self._compute_pending()
        self._pending = (self._rv, pending)
        return pending

    def _compute_pending(self) -> bool:
        return (
            self._crd_controller(act=False)
            or self._namespace_controller(act=False)
            or self._garbage_collector(act=False)
            or (self._namespace_defaults and self._namespace_defaults_controller(act=False))
        )

    # === internals ============================================================================

    def _now(self) -> str:
        t = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _url_key(self, gvr: GVR, body: Obj, url_namespace: str | None = None) -> ObjectKey:
        """The namespace/name in the URL for this body: `url_namespace` when the client said,
        else what a scope-aware client would send."""
        meta = _meta(body)
        info = self._builtin.get((gvr.group, gvr.resource)) or self._custom.get(
            (gvr.group, gvr.resource)
        )
        namespace = str(meta.get("namespace") or "")
        if url_namespace is not None:
            namespace = url_namespace
        elif info is not None and not info.namespaced:
            namespace = ""
        return ObjectKey(namespace, str(meta.get("name") or ""))

    def _in_scope(self, gvr: GVR, key: ObjectKey, explicit: bool) -> None:
        """A URL whose scope is not the resource's is routed nowhere: 404, as the apiextensions
        handler answers for a namespaced URL of a cluster-scoped resource (and, for a custom
        resource, a cluster URL of a namespaced one when the client named the URL itself)."""
        info = self._builtin.get((gvr.group, gvr.resource)) or self._custom.get(
            (gvr.group, gvr.resource)
        )
        if info is None:
            return
        if key.namespace and not info.namespaced:
            raise errs.resource_not_found()
        if explicit and not key.namespace and info.namespaced and not info.builtin:
            raise errs.resource_not_found()

    @staticmethod
    def _body(obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise errs.bad_request("the body of the request must be a JSON object")
        body = o.deepcopy(obj)
        if not isinstance(body.get("metadata", {}), dict):
            raise errs.bad_request("metadata must be an object")
        _meta(body)
        return body

    def _request(
        self,
        verb: str,
        gvr: GVR,
        key: ObjectKey,
        user: User,
        subresource: str,
        fn: Callable[[], T],
        *,
        body: Any = _NO_BODY,
        patch_type: str = "",
    ) -> T:
        verdict: ApiError | AfterWrite | None = None
        for hook in self._hooks:
            verdict = hook(verb, gvr, key, user)
            if verdict is not None:
                break
        if isinstance(verdict, ApiError):
            raise verdict
        # A POST names no object in its URL: RBAC sees no name (so resourceNames never match).
        self._authorize(
            user, verb, gvr, subresource, ObjectKey(key.namespace, "") if verb == "create" else key
        )
        try:
            if body is not _NO_BODY:
                self._check_readable(gvr, body, patch_type)
            result = fn()
        except ApiError:
            if isinstance(verdict, AfterWrite):
                raise verdict.error from None
            raise
        if isinstance(verdict, AfterWrite):
            if isinstance(result, Watch):
                result.stop()
            raise verdict.error
        return result

    def _check_readable(self, gvr: GVR, body: Any, patch_type: str) -> None:
        """What the handler does before it decodes a body: read at most
        `MAX_REQUEST_BODY_BYTES` (413), then decode with Go's JSON decoder, which refuses a
        document nested deeper than `MAX_JSON_DEPTH` (400). kbsim has no bytes: the size is the
        compact UTF-8 JSON encoding, the smallest a client sends."""
        try:
            size = len(o.canonical_json(body, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError):
            size = 0  # not JSON at all: the verb's own checks answer
        if size > limits.MAX_REQUEST_BODY_BYTES:
            raise errs.request_entity_too_large(f"limit is {limits.MAX_REQUEST_BODY_BYTES}")
        opening = _too_deep_at(body)
        if opening:
            raise errs.too_deep(patch_type, self._resolve(gvr)[0].kind, opening, body)

    def _authorize(
        self,
        user: User,
        verb: str,
        gvr: GVR,
        subresource: str,
        key: ObjectKey,
        reason_only: bool = False,
    ) -> None:
        namespace = key.namespace
        if gvr.group == "" and gvr.resource == "namespaces" and key.name:
            # RequestInfo: /api/v1/namespaces/NAME[/status] is a request "in the namespace" NAME.
            namespace = key.name
        a = Attributes(user, verb, gvr.group, gvr.resource, subresource, namespace, key.name)
        allowed, reason = self._authorizer.authorize(a)
        if allowed:
            return
        text = reason if reason_only else forbidden_reason(a, reason)
        raise errs.forbidden(gvr.group, gvr.resource, key.name, text)

    def _rbac_lookup(self, kind: str, namespace: str) -> Iterable[Obj]:
        resource = {
            "ClusterRole": "clusterroles",
            "ClusterRoleBinding": "clusterrolebindings",
            "Role": "roles",
            "RoleBinding": "rolebindings",
        }[kind]
        store = self._objects.get(("rbac.authorization.k8s.io", resource), {})
        return [store[k] for k in sorted(store) if k.namespace == namespace]

    def _resolve(self, gvr: GVR) -> tuple[ResourceInfo, str]:
        info = self._builtin.get((gvr.group, gvr.resource)) or self._custom.get(
            (gvr.group, gvr.resource)
        )
        if info is None or gvr.version not in info.versions:
            raise errs.resource_not_found()
        return info, gvr.version

    def _store(self, info: ResourceInfo) -> dict[ObjectKey, Obj]:
        return self._objects.setdefault(info.storage, {})

    @staticmethod
    def _check_scope(info: ResourceInfo, key: ObjectKey) -> None:
        if info.namespaced != bool(key.namespace):
            raise errs.resource_not_found()

    # --- presentation -------------------------------------------------------------------------

    def _present(
        self,
        info: ResourceInfo,
        version: str,
        obj: Obj,
        *,
        in_list: bool = False,
        view: bool = False,
    ) -> Obj:
        """A stored object in the requested version's form: a deep copy, or with `view=True` a
        cheap read-only view that shares nested values with the store (never mutate it)."""
        out = dict(obj) if view else o.deepcopy(obj)
        if info.group == "events.k8s.io":
            out = event_from_core(out)
        else:
            out["apiVersion"] = info.api_version(version)
        out["kind"] = info.kind
        if not info.builtin:
            schema = info.schema(version)
            out = crschema.default_in_place(crschema.prune(out, schema, share=True), schema)
        out = {
            "apiVersion": out.pop("apiVersion"),
            "kind": out.pop("kind"),
            "metadata": out.pop("metadata", {}),
            **out,
        }
        if in_list and info.builtin:
            del out["apiVersion"], out["kind"]
        return out

    def _to_storage(self, info: ResourceInfo, obj: Obj) -> Obj:
        """The storage form of a freshly built object (shares nested values with `obj`)."""
        out = dict(obj)
        if info.group == "events.k8s.io":
            out = event_to_core(out)
        else:
            out["apiVersion"] = info.api_version()
        out["kind"] = info.kind
        return out

    # --- commit -------------------------------------------------------------------------------

    def _commit(
        self,
        info: ResourceInfo,
        key: ObjectKey,
        before: Obj | None,
        after: Obj | None,
        *,
        verb: str,
        user: User,
        field_manager: str = "",
        subresource: str = "",
        version: str = "",
    ) -> Obj:
        """Store `after` (None = remove) at a new resourceVersion; returns the stored object
        (for a removal: the last state, carrying the deletion's resourceVersion)."""
        self._rv += 1
        rv = str(self._rv)
        store = self._store(info)
        if after is None:
            assert before is not None
            result = o.deepcopy(before)
            _meta(result)["resourceVersion"] = rv
            del store[key]
            event = _Event(self._rv, info.storage, "DELETED", key, result, before)
        else:
            _meta(after)["resourceVersion"] = rv
            result = self._canonical(info, after)
            store[key] = result
            kind = "ADDED" if before is None else "MODIFIED"
            event = _Event(self._rv, info.storage, kind, key, result, before)
        self._history.append(event)
        if info.storage == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._sync_served(before, after)
        for w in list(self._watches):
            w._offer(event)
        record = WriteRecord(
            verb,
            info.gvr(version),
            key,
            user,
            field_manager,
            subresource,
            before,
            result if after is not None else None,
            rv,
        )
        for observer in list(self._observers):
            observer(record)
        return result

    def _sync_served(self, before: Obj | None, after: Obj | None) -> None:
        """Serve, re-serve or stop serving the resource a CRD defines."""
        old = from_crd(before) if before and _condition_true(before, "Established") else None
        new = from_crd(after) if after and _condition_true(after, "Established") else None
        if old is not None and (
            new is None or (new.group, new.resource) != (old.group, old.resource)
        ):
            self._custom.pop((old.group, old.resource), None)
            for w in list(self._watches):
                if w.info.storage == old.storage:
                    w._close()
        if new is not None:
            self._custom[(new.group, new.resource)] = new
            for w in self._watches:
                if w.info.storage == new.storage:
                    w.info = new

    # --- history ------------------------------------------------------------------------------

    def _too_old(self, rv: int) -> ApiError:
        return errs.expired(f"too old resource version: {rv} ({self._compacted})")

    def _state_at(self, info: ResourceInfo, rv: int) -> dict[ObjectKey, Obj]:
        if rv < self._compacted:
            raise self._too_old(rv)
        if rv > self._rv:
            raise errs.timeout(f"Too large resource version: {rv}, current: {self._rv}", 1)
        state = dict(self._store(info))
        for ev in reversed(self._history):
            if ev.rv <= rv:
                break
            if ev.storage != info.storage:
                continue
            if ev.prev is None:
                state.pop(ev.key, None)
            else:
                state[ev.key] = ev.prev
        return state

    # --- reads --------------------------------------------------------------------------------

    def _get(self, gvr: GVR, key: ObjectKey, subresource: str) -> Obj:
        info, version = self._resolve(gvr)
        self._check_subresource(info, subresource, key, reading=True)
        self._check_scope(info, key)
        obj = self._store(info).get(key)
        if obj is None:
            raise errs.not_found(info.group, info.resource, key.name)
        return self._present(info, version, obj)

    def _list(
        self, gvr: GVR, namespace: str, label_selector: str, field_selector: str
    ) -> tuple[builtins.list[Obj], str]:
        info, version = self._resolve(gvr)
        if namespace and not info.namespaced:
            raise errs.resource_not_found()
        selector = self._selector(label_selector)
        fields = _parse_field_selector(field_selector)
        store = self._store(info)
        items = []
        for key in sorted(store):
            obj = store[key]
            if namespace and key.namespace != namespace:
                continue
            if not _fields_match(fields, obj):
                continue
            if not selector.matches((obj.get("metadata") or {}).get("labels") or {}):
                continue
            items.append(self._present(info, version, obj, in_list=True))
        return items, str(self._rv)

    @staticmethod
    def _selector(text: str) -> Selector:
        try:
            return parse_selector(text)
        except ValueError as exc:
            raise errs.bad_request(f"unable to parse requirement: {exc}") from None

    def _watch(
        self,
        gvr: GVR,
        namespace: str,
        resource_version: str,
        allow_bookmarks: bool,
        label_selector: str,
        field_selector: str,
    ) -> Watch:
        info, version = self._resolve(gvr)
        if namespace and not info.namespaced:
            raise errs.resource_not_found()
        w = Watch(
            self,
            info,
            version,
            namespace,
            self._selector(label_selector),
            _parse_field_selector(field_selector),
            allow_bookmarks,
        )
        if resource_version in ("", "0"):
            w.start_rv = self._rv
            store = self._store(info)
            for key in sorted(store):
                obj = store[key]
                if w._matches(obj):
                    w._queue.append({"type": "ADDED", "object": self._present(info, version, obj)})
            if allow_bookmarks:
                # The end of the synthetic ADDED events is marked (kube-apiserver >= 1.3x).
                w._queue.append(self._bookmark(w, {INITIAL_EVENTS_END: "true"}))
            self._watches.append(w)
            return w
        try:
            start = int(resource_version)
        except ValueError:
            raise errs.bad_request(f'invalid resource version "{resource_version}"') from None
        w.start_rv = start
        self._watches.append(w)
        if start < self._compacted:
            w._error(self._too_old(start))
            return w
        if start > self._rv:
            error = errs.timeout(f"Too large resource version: {start}, current: {self._rv}", 1)
            error.details = {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            }
            w._error(error)
            return w
        for ev in self._history:
            if ev.rv > start:
                w._offer(ev)
        return w

    # --- write helpers ------------------------------------------------------------------------

    def _check_subresource(
        self, info: ResourceInfo, subresource: str, key: ObjectKey, *, reading: bool = False
    ) -> None:
        if subresource and subresource not in info.subresources:
            if not info.builtin:  # the CR handler answers for the object
                raise errs.not_found(info.group, info.resource, key.name)
            raise errs.resource_not_found()
        if reading and subresource == "finalize":
            raise errs.method_not_supported()

    def _check_body_type(self, info: ResourceInfo, version: str, body: Obj) -> None:
        """What decoding a request body checks. Built-in kinds default a missing apiVersion and
        kind from the URL. A custom resource body is decoded as unstructured: it must carry
        both; a wrong kind is left for validation to reject (422, `ValidateTypeMeta`)."""
        expected = info.api_version(version)
        api_version = body.get("apiVersion")
        if (api_version or not info.builtin) and api_version != expected:
            raise errs.bad_request(
                f"the API version in the data ({api_version or ''}) does not match the expected "
                f"API version ({expected})"
            )
        kind = body.get("kind")
        if not info.builtin:
            if not kind:
                raise errs.bad_request(
                    f"the object provided is unrecognized (must be of type {info.kind}): Object "
                    f"'Kind' is missing in '{o.json_text(body)}'"
                )
            return
        if kind and kind != info.kind:
            raise errs.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
            )
        body["apiVersion"], body["kind"] = expected, info.kind

    def _ignored_fields(self, info: ResourceInfo, subresource: str) -> fieldsets.FieldSet:
        """The reset fields of the strategy (the field manager never records them)."""
        if subresource == "status":
            return fieldsets.FieldSet.of([("f:spec",)])
        if subresource == "finalize" or info.status:
            return fieldsets.FieldSet.of([("f:status",)])
        return fieldsets.EMPTY

    def _name_fn(self, info: ResourceInfo) -> v.NameFn:
        if info.resource == "namespaces" and info.group == "":
            return v.name_is_dns_label
        if info.group == "rbac.authorization.k8s.io":
            return v.path_segment_name
        return v.name_is_dns_subdomain

    def _namespace_admission(self, info: ResourceInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        ns = self._objects.get(("", "namespaces"), {}).get(ObjectKey("", namespace))
        if ns is None:
            raise errs.not_found("", "namespaces", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating":
            error = errs.forbidden(
                info.group,
                info.resource,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )
            error.details.setdefault("causes", []).append(
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            )
            raise error

    def _managed_entries(self, obj: Obj) -> tuple[fieldsets.ManagedFieldsEntry, ...]:
        try:
            return fieldsets.decode_managed_fields((obj.get("metadata") or {}).get("managedFields"))
        except fieldsets.FieldSetError:
            return ()

    def _provided_entries(
        self, obj: Obj, fallback: tuple[fieldsets.ManagedFieldsEntry, ...]
    ) -> tuple[fieldsets.ManagedFieldsEntry, ...]:
        """managedFields sent by the client: used when non-empty and decodable (a `[{}]` list
        resets them), otherwise the live ones (clients that drop the field lose nothing)."""
        raw = (obj.get("metadata") or {}).get("managedFields")
        if not isinstance(raw, list) or not raw:
            return fallback
        entries = [e for e in raw if e]
        if not entries:
            return ()
        try:
            return fieldsets.decode_managed_fields(entries)
        except fieldsets.FieldSetError:
            return fallback

    @staticmethod
    def _encode_managed(obj: Obj, entries: Iterable[fieldsets.ManagedFieldsEntry]) -> None:
        encoded = fieldsets.encode_managed_fields(entries)
        meta = _meta(obj)
        if encoded:
            meta["managedFields"] = encoded
        else:
            meta.pop("managedFields", None)

    def _decode_request(self, info: ResourceInfo, version: str, obj: Obj) -> Obj:
        """What decoding does to a request body, before the field manager sees it: CR pruning
        and defaulting, Secret data checks and stringData conversion, defaulting funcs."""
        if not info.builtin:
            schema = info.schema(version)
            # The request body is already our own copy: prune may share its values.
            return crschema.default_in_place(crschema.prune(obj, schema, share=True), schema)
        if info.kind == "Secret":
            problem = v.decode_secret_data(obj.get("data"))
            if problem:
                raise errs.bad_request(
                    f'Secret in version "v1" cannot be handled as a Secret: {problem}'
                )
            if isinstance(obj.get("data"), dict):
                obj["data"] = {**obj["data"], **v.normalized_secret_data(obj["data"])}
            string_data = obj.pop("stringData", None)
            if isinstance(string_data, dict) and string_data:
                data = dict(obj.get("data") or {})
                for k, val in string_data.items():
                    data[k] = base64.b64encode(str(val).encode()).decode()
                obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif info.kind == "Namespace":
            meta = _meta(obj)
            if meta.get("name"):
                meta["labels"] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: meta["name"]}
        elif info.kind == "CustomResourceDefinition":
            crschema.default_crd(obj)
        return obj

    # --- strategies ---------------------------------------------------------------------------

    def _prepare_create(self, info: ResourceInfo, obj: Obj) -> None:
        meta = _meta(obj)
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ):
            meta.pop(key, None)
        if info.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if info.status and info.kind not in ("Namespace", "CustomResourceDefinition"):
            obj.pop("status", None)
        self._prepare_kind(info, obj, None)

    def _prepare_kind(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        meta = _meta(obj)
        if info.kind == "Namespace" and info.group == "":
            meta["labels"] = {
                **(meta.get("labels") or {}),
                NAMESPACE_NAME_LABEL: meta.get("name", ""),
            }
            if old is None:
                obj["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
                obj["status"] = {"phase": "Active"}
        elif info.kind == "CustomResourceDefinition":
            versions = (obj.get("spec") or {}).get("versions") or []
            storage = [x.get("name") for x in versions if isinstance(x, dict) and x.get("storage")]
            if old is None:
                obj["status"] = {
                    "acceptedNames": {"plural": "", "kind": ""},
                    "storedVersions": storage[:1],
                }
            elif storage:
                # PrepareForUpdate: a new storage version joins status.storedVersions.
                status = obj.setdefault("status", {})
                stored = list(status.get("storedVersions") or [])
                if storage[0] not in stored:
                    status["storedVersions"] = [*stored, storage[0]]

    def _prepare_update(self, info: ResourceInfo, new: Obj, old: Obj, subresource: str) -> Obj:
        if subresource == "status":
            out = o.deepcopy(old)
            if "status" in new:
                out["status"] = o.deepcopy(new["status"])
            else:
                out.pop("status", None)
            return out
        if subresource == "finalize":
            out = o.deepcopy(old)
            out.setdefault("spec", {})["finalizers"] = o.deepcopy(
                (new.get("spec") or {}).get("finalizers") or []
            )
            return out
        out = o.deepcopy(new)
        meta, old_meta = _meta(out), old.get("metadata") or {}
        if not meta.get("uid"):
            meta["uid"] = old_meta.get("uid")
        for key in ("creationTimestamp", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if old_meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
            if "deletionGracePeriodSeconds" in old_meta:
                meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
        meta.pop("selfLink", None)
        if info.status:
            if "status" in old:
                out["status"] = o.deepcopy(old["status"])
            else:
                out.pop("status", None)
        if info.kind == "Namespace" and info.group == "":
            out["spec"] = o.deepcopy(old.get("spec") or {})
        self._prepare_kind(info, out, old)
        if info.tracks_generation:
            if info.builtin:  # CRDs: spec changes only
                changed = not fieldsets.json_equal(out.get("spec"), old.get("spec"))
            else:  # custom resources: anything but metadata (status is reset above if split)
                changed = not fieldsets.json_equal(
                    {k: x for k, x in out.items() if k != "metadata"},
                    {k: x for k, x in old.items() if k != "metadata"},
                )
            if changed:
                meta["generation"] = int(old_meta.get("generation") or 0) + 1
        return out

    def _validate(
        self, info: ResourceInfo, version: str, obj: Obj, old: Obj | None, subresource: str = ""
    ) -> builtins.list[errs.FieldError]:
        problems: builtins.list[errs.FieldError] = []
        meta = obj.get("metadata") or {}
        if not info.builtin and obj.get("kind") != info.kind:
            # ValidateTypeMeta: reported alone
            return [errs.invalid_value("kind", obj.get("kind"), f"must be {info.kind}")]
        if info.kind == "CustomResourceDefinition":
            # The status strategy validates only the status (ValidateUpdate...Status).
            problems += crschema.validate_crd(obj, None if subresource else old)
        elif not info.builtin:
            problems += crschema.validate(obj, info.schema(version))
        elif info.kind == "Secret":
            problems += v.validate_secret(obj, old)
        elif info.kind == "ConfigMap":
            problems += v.validate_config_map(obj, old)
        elif info.kind == "Lease":
            problems += v.validate_lease(obj)
        elif info.group == "rbac.authorization.k8s.io":
            if info.kind in ("Role", "ClusterRole"):
                problems += v.validate_rules(obj.get("rules"))
            else:
                problems += v.validate_binding(obj, old, cluster=info.kind == "ClusterRoleBinding")
        problems += v.validate_object_meta(
            meta, namespaced=info.namespaced, name_fn=self._name_fn(info)
        )
        if old is not None:
            problems += v.validate_object_meta_update(meta, old.get("metadata") or {})
        return problems

    def _raise_invalid(
        self, info: ResourceInfo, obj: Obj, problems: builtins.list[errs.FieldError]
    ) -> None:
        if problems:
            name = (obj.get("metadata") or {}).get("name") or ""
            # The object's own kind (a custom resource may carry a wrong one).
            kind = str(obj.get("kind") or info.kind) if not info.builtin else info.kind
            raise errs.invalid(info.group, kind, name, problems)

    # --- create -------------------------------------------------------------------------------

    def _create_request(self, gvr: GVR, body: Obj, field_manager: str, user: User) -> Obj:
        info, version = self._resolve(gvr)
        self._check_body_type(info, version, body)
        return self._create(info, version, body, field_manager, user, managed=None)

    def _create(
        self,
        info: ResourceInfo,
        version: str,
        body: Obj,
        field_manager: str,
        user: User,
        *,
        managed: tuple[fieldsets.ManagedFieldsEntry, ...] | None,
    ) -> Obj:
        meta = _meta(body)
        if not info.namespaced:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            # The client would POST to the all-namespaces collection, which only lists.
            raise errs.method_not_supported()
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if not info.builtin:
            crd = self._objects.get(("apiextensions.k8s.io", "customresourcedefinitions"), {}).get(
                ObjectKey("", info.crd_name)
            )
            if crd is not None and _condition_true(crd, "Terminating"):
                raise errs.method_not_allowed(info.group, info.resource, "create")
        self._namespace_admission(info, namespace, name)
        if meta.get("resourceVersion"):
            # etcd3 store.Create's plain error: a 500 without a reason.
            raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
        obj = self._decode_request(info, version, body)
        now = self._now()
        if managed is None:
            managed = fieldsets.update_managed_fields(
                None,
                obj,
                self._provided_entries(obj, ()),
                manager=field_manager,
                api_version=info.api_version(version),
                typ=info.smd_type(version),
                now=now,
                ignore=self._ignored_fields(info, ""),
            )
        if info.group == "events.k8s.io":
            self._raise_invalid(info, obj, v.validate_events_v1(obj))
        self._prepare_create(info, obj)
        meta = _meta(obj)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if generated:
            meta["name"] = self._generate_name(info, namespace, str(meta["generateName"]))
        self._raise_invalid(info, obj, self._validate(info, version, obj, None))
        key = ObjectKey(str(namespace), str(meta["name"]))
        if key in self._store(info):
            raise errs.already_exists(info.group, info.resource, key.name)
        meta["uid"] = self._uid()
        meta["creationTimestamp"] = now
        self._encode_managed(obj, managed)
        stored = self._commit(
            info,
            key,
            None,
            self._canonical(info, self._to_storage(info, obj)),
            verb="create",
            user=user,
            field_manager=field_manager,
            version=version,
        )
        return self._present(info, version, stored)

    def _generate_name(self, info: ResourceInfo, namespace: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(5))
            if ObjectKey(namespace, name) not in self._store(info):
                return name
        return name

    @staticmethod
    def _canonical(info: ResourceInfo, obj: Obj) -> Obj:
        """Key order as a real server serializes: apiVersion, kind, metadata, then the rest."""
        meta = obj.get("metadata") or {}
        ordered = {k: meta[k] for k in o.OBJECT_META_FIELDS if k in meta}
        ordered.update({k: x for k, x in meta.items() if k not in ordered})
        rest = {k: x for k, x in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        return {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "metadata": ordered,
            **rest,
        }

    # --- update -------------------------------------------------------------------------------

    def _update_request(
        self, gvr: GVR, key: ObjectKey, body: Obj, subresource: str, field_manager: str, user: User
    ) -> Obj:
        info, version = self._resolve(gvr)
        self._check_subresource(info, subresource, key)
        self._check_body_type(info, version, body)
        if not info.namespaced:
            _meta(body).pop("namespace", None)
            key = ObjectKey("", key.name)
        self._check_scope(info, key)
        existing = self._store(info).get(key)
        if existing is None:
            raise errs.not_found(info.group, info.resource, key.name)
        return self._write_update(
            info,
            version,
            key,
            existing,
            body,
            verb="update",
            subresource=subresource,
            field_manager=field_manager,
            user=user,
            applied=None,
        )

    @staticmethod
    def _etcd_key(info: ResourceInfo, key: ObjectKey) -> str:
        """The object's etcd key, as storage errors quote it (`/registry/configmaps/ns/name`;
        custom resources and CRDs are prefixed with their group)."""
        group, resource = info.storage
        custom = not info.builtin or info.group == "apiextensions.k8s.io"
        prefix = f"{group}/{resource}" if custom else resource
        return "/".join(["/registry", prefix, *filter(None, (key.namespace, key.name))])

    def _preconditions(
        self, info: ResourceInfo, key: ObjectKey, existing: Obj, new: Obj, verb: str
    ) -> None:
        """A PUT's body uid is a storage precondition (409); a patched or applied body with
        another uid instead fails validation (422, metadata.uid is immutable). Both check
        metadata.resourceVersion (409)."""
        meta, old_meta = new.get("metadata") or {}, existing.get("metadata") or {}
        uid = meta.get("uid")
        if verb == "update" and uid and uid != old_meta.get("uid"):
            raise errs.conflict(
                info.group,
                info.resource,
                key.name,
                f"StorageError: invalid object, Code: 4, Key: {self._etcd_key(info, key)}, "
                f"ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in "
                f"precondition: {uid}, UID in object meta: {old_meta.get('uid')}",
            )
        rv = meta.get("resourceVersion")
        if verb == "update" and not rv and not _allows_unconditional_update(info):
            raise errs.invalid(
                info.group,
                info.resource,
                key.name,
                [
                    errs.invalid_value(
                        "metadata.resourceVersion", 0, "must be specified for an update"
                    )
                ],
            )
        if rv and rv != old_meta.get("resourceVersion"):
            raise errs.conflict(info.group, info.resource, key.name, errs.OPTIMISTIC_LOCK_MESSAGE)

    def _write_update(
        self,
        info: ResourceInfo,
        version: str,
        key: ObjectKey,
        existing: Obj,
        body: Obj,
        *,
        verb: str,
        subresource: str,
        field_manager: str,
        user: User,
        applied: tuple[fieldsets.ManagedFieldsEntry, ...] | None,
    ) -> Obj:
        """The shared tail of update, patch and apply: preconditions, field manager, strategy,
        validation, finalizer-emptied deletion, no-op detection, commit."""
        body_meta = dict(_meta(body))
        body["metadata"] = body_meta
        if body_meta.get("name", key.name) != key.name:
            raise errs.bad_request(
                f"the name of the object ({body_meta.get('name')}) does not match the name on "
                f"the URL ({key.name})"
            )
        if info.namespaced and body_meta.get("namespace", key.namespace) != key.namespace:
            raise errs.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        body_meta["name"] = key.name
        if info.namespaced:
            body_meta["namespace"] = key.namespace
        self._preconditions(info, key, existing, body, verb)
        live = self._present(info, version, existing, view=True)
        new = self._decode_request(info, version, body)
        live_entries = self._managed_entries(existing)
        if applied is None:
            base = live_entries if subresource else self._provided_entries(new, live_entries)
            entries = fieldsets.update_managed_fields(
                live,
                new,
                base,
                manager=field_manager,
                api_version=info.api_version(version),
                typ=info.smd_type(version),
                now=self._now(),
                subresource=subresource,
                ignore=self._ignored_fields(info, subresource),
            )
        else:
            entries = applied
        if info.group == "events.k8s.io":
            self._raise_invalid(info, new, v.validate_events_v1(new))
        final = self._prepare_update(info, new, live, subresource)
        self._raise_invalid(info, final, self._validate(info, version, final, live, subresource))
        self._encode_managed(final, entries)
        stored_form = self._canonical(info, self._to_storage(info, final))
        meta = _meta(stored_form)
        meta["resourceVersion"] = (existing.get("metadata") or {}).get("resourceVersion")
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            namespace_held = info.kind == "Namespace" and (stored_form.get("spec") or {}).get(
                "finalizers"
            )
            if not namespace_held:
                self._commit(
                    info,
                    key,
                    existing,
                    None,
                    verb=verb,
                    user=user,
                    field_manager=field_manager,
                    subresource=subresource,
                    version=version,
                )
                return self._present(info, version, existing)
        if _same_ignoring_rv(stored_form, existing):
            return self._present(info, version, existing)
        stored = self._commit(
            info,
            key,
            existing,
            stored_form,
            verb=verb,
            user=user,
            field_manager=field_manager,
            subresource=subresource,
            version=version,
        )
        return self._present(info, version, stored)

    # --- patch --------------------------------------------------------------------------------

    def _patch_request(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: str,
        field_manager: str,
        force: bool,
        subresource: str,
        user: User,
    ) -> Obj:
        info, version = self._resolve(gvr)
        self._check_subresource(info, subresource, key)
        if patch_type not in ("merge", "json", "apply"):
            raise errs.unsupported_media_type(ACCEPTED_PATCH_TYPES)
        if patch_type == "apply" and not field_manager:
            raise errs.invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [errs.required("fieldManager", "is required for apply patch")],
            )
        if patch_type != "apply" and force:
            raise errs.invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [errs.forbidden_field("force", "may not be specified for non-apply patch")],
            )
        self._check_scope(info, key)
        existing = self._store(info).get(key)
        if patch_type == "apply":
            return self._apply(
                info, version, key, existing, body, field_manager, force, subresource, user
            )
        if existing is None:
            raise errs.not_found(info.group, info.resource, key.name)
        live = self._present(info, version, existing, view=True)
        if patch_type == "merge":
            if not isinstance(body, dict):
                raise errs.bad_request(
                    "json: cannot unmarshal into Go value of type map[string]interface {}"
                )
            patched = merge_patch(live, body)
        else:
            patched = json_patch(live, body)
        if not isinstance(patched, dict):
            raise errs.bad_request("the patched object must be a JSON object")
        self._check_body_type(info, version, patched)
        return self._write_update(
            info,
            version,
            key,
            existing,
            patched,
            verb="patch",
            subresource=subresource,
            field_manager=field_manager,
            user=user,
            applied=None,
        )

    def _apply(
        self,
        info: ResourceInfo,
        version: str,
        key: ObjectKey,
        existing: Obj | None,
        body: Any,
        field_manager: str,
        force: bool,
        subresource: str,
        user: User,
    ) -> Obj:
        if not isinstance(body, dict):
            raise errs.bad_request(
                "error decoding YAML: the applied configuration must be an object"
            )
        expected = info.api_version(version)
        if body.get("apiVersion") != expected or body.get("kind") != info.kind:
            # The field manager's version check (its first step), with the GVK's String().
            api_version, kind = str(body.get("apiVersion") or ""), str(body.get("kind") or "")
            gv = api_version if "/" in api_version else "/" + api_version
            if api_version.count("/") > 1:
                gv = "/"
            raise errs.bad_request(f"invalid object type: {gv}, Kind={kind}")
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errs.bad_request("metadata must be an object")
        if isinstance(meta, dict) and meta.get("managedFields") is not None:
            raise errs.bad_request("metadata.managedFields must be nil")
        meta = _meta(body)
        if meta.get("name", key.name) != key.name:
            raise errs.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({key.name})"
            )
        typ = info.smd_type(version)
        now = self._now()
        if existing is None:
            if subresource:
                raise errs.not_found(info.group, info.resource, key.name)
            if meta.get("uid"):
                raise errs.conflict(
                    info.group,
                    info.resource,
                    key.name,
                    f"uid mismatch: the provided object specified uid {meta['uid']}, and no "
                    "existing object was found",
                )
            self._authorize(user, "create", info.gvr(version), "", key, reason_only=True)
            config = o.deepcopy(body)
            _meta(config)["name"] = key.name
            _meta(config).pop("resourceVersion", None)  # nothing to compare it with
            if info.namespaced:
                _meta(config)["namespace"] = key.namespace
            result = fieldsets.apply(
                None,
                config,
                manager=field_manager,
                managed=(),
                api_version=expected,
                typ=typ,
                now=now,
                force=force,
                ignore=self._ignored_fields(info, ""),
            )
            return self._create(
                info, version, result.obj, field_manager, user, managed=result.managed
            )
        live = self._present(info, version, existing, view=True)
        try:
            result = fieldsets.apply(
                live,
                body,
                manager=field_manager,
                api_version=expected,
                typ=typ,
                now=now,
                force=force,
                subresource=subresource,
                ignore=self._ignored_fields(info, subresource),
            )
        except fieldsets.FieldSetError as exc:
            raise errs.internal(f"failed to create typed patch object: {exc}") from None
        if result.conflicts:
            raise ApiError(
                409,
                "Conflict",
                fieldsets.conflict_message(result.conflicts),
                details={"causes": fieldsets.conflict_causes(result.conflicts)},
            )
        return self._write_update(
            info,
            version,
            key,
            existing,
            result.obj,
            verb="patch",
            subresource=subresource,
            field_manager=field_manager,
            user=user,
            applied=result.managed,
        )

    # --- delete -------------------------------------------------------------------------------

    def _delete_request(
        self,
        gvr: GVR,
        key: ObjectKey,
        uid: str | None,
        resource_version: str | None,
        propagation_policy: str | None,
        user: User,
    ) -> Obj | None:
        info, version = self._resolve(gvr)
        self._check_scope(info, key)
        if info.kind == "Namespace" and info.group == "" and key.name in IMMORTAL_NAMESPACES:
            raise errs.forbidden("", "namespaces", key.name, "this namespace may not be deleted")
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise errs.invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                [
                    errs.not_supported(
                        "propagationPolicy",
                        propagation_policy,
                        ["Foreground", "Background", "Orphan", "nil"],
                    )
                ],
            )
        existing = self._store(info).get(key)
        if existing is None:
            raise errs.not_found(info.group, info.resource, key.name)
        result = self._delete(
            info, key, existing, uid, resource_version, propagation_policy, user, version
        )
        return None if result is None else self._present(info, version, result)

    def _delete(
        self,
        info: ResourceInfo,
        key: ObjectKey,
        existing: Obj,
        uid: str | None,
        resource_version: str | None,
        propagation_policy: str | None,
        user: User,
        version: str = "",
    ) -> Obj | None:
        meta = existing.get("metadata") or {}
        special = (
            info.kind == "Namespace" and info.group == ""
        ) or info.kind == "CustomResourceDefinition"
        if special:
            if uid is not None and uid != meta.get("uid"):
                raise errs.conflict(
                    info.group,
                    info.resource,
                    key.name,
                    "Precondition failed: UID in precondition: "
                    f"{uid}, UID in object meta: {meta.get('uid')}",
                )
            if resource_version is not None and resource_version != meta.get("resourceVersion"):
                raise errs.conflict(
                    info.group,
                    info.resource,
                    key.name,
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{resource_version}, ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
        else:
            if uid is not None and uid != meta.get("uid"):
                raise errs.conflict(
                    info.group,
                    info.kind,
                    key.name,
                    f"the UID in the precondition ({uid}) does not match the UID in record "
                    f"({meta.get('uid')}). The object might have been deleted and then recreated",
                )
            if resource_version is not None and resource_version != meta.get("resourceVersion"):
                raise errs.conflict(
                    info.group,
                    info.kind,
                    key.name,
                    f"the ResourceVersion in the precondition ({resource_version}) does not match "
                    f"the ResourceVersion in record ({meta.get('resourceVersion')}). The object "
                    "might have been modified",
                )
        now = self._now()
        if special and not meta.get("deletionTimestamp"):
            marked = o.deepcopy(existing)
            mmeta = _meta(marked)
            mmeta["deletionTimestamp"] = now
            if info.kind == "Namespace":
                marked.setdefault("status", {})["phase"] = "Terminating"
            else:
                finalizers = list(mmeta.get("finalizers") or [])
                if crschema.CLEANUP_FINALIZER not in finalizers:
                    finalizers.append(crschema.CLEANUP_FINALIZER)
                mmeta["finalizers"] = finalizers
                status = marked.setdefault("status", {})
                status["conditions"] = _set_condition(
                    status.get("conditions") or [],
                    _condition(
                        "Terminating",
                        "True",
                        "InstanceDeletionPending",
                        "CustomResourceDefinition marked for deletion; CustomResource deletion "
                        "will begin soon",
                        now,
                    ),
                )
            return self._commit(
                info, key, existing, marked, verb="delete", user=user, version=version
            )
        if (
            info.kind == "Namespace"
            and info.group == ""
            and (existing.get("spec") or {}).get("finalizers")
        ):
            return existing
        finalizers = list(meta.get("finalizers") or [])
        if propagation_policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
            finalizers.append(ORPHAN_FINALIZER)
        if propagation_policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        if not finalizers:
            self._commit(info, key, existing, None, verb="delete", user=user, version=version)
            return None
        marked = o.deepcopy(existing)
        mmeta = _meta(marked)
        mmeta["finalizers"] = finalizers
        if not mmeta.get("deletionTimestamp"):
            if int(mmeta.get("generation") or 0) > 0:
                mmeta["generation"] = int(mmeta["generation"]) + 1
            mmeta["deletionTimestamp"] = now
        mmeta["deletionGracePeriodSeconds"] = 0
        marked = self._canonical(info, marked)
        if _same_ignoring_rv(marked, existing):
            return existing
        return self._commit(info, key, existing, marked, verb="delete", user=user, version=version)

    # --- bootstrap ----------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        ns_info = self._builtin[("", "namespaces")]
        for name in INITIAL_NAMESPACES:
            self._system_create(ns_info, {"metadata": {"name": name}})
        rbac = "rbac.authorization.k8s.io"
        self._system_create(
            self._builtin[(rbac, "clusterroles")],
            {
                "metadata": {
                    "name": "cluster-admin",
                    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                },
                "rules": [
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ],
            },
        )
        self._system_create(
            self._builtin[(rbac, "clusterrolebindings")],
            {
                "metadata": {
                    "name": "cluster-admin",
                    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                },
                "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": rbac, "kind": "Group", "name": "system:masters"}],
            },
        )

    def _system_create(
        self,
        info: ResourceInfo,
        body: Obj,
        *,
        user: User = KUBE_APISERVER,
        manager: str = "kube-apiserver",
    ) -> Obj:
        body = o.deepcopy(body)
        body["apiVersion"], body["kind"] = info.api_version(), info.kind
        return self._create(info, info.storage_version, body, manager, user, managed=None)

    # --- controllers --------------------------------------------------------------------------

    def _crd_info(self) -> ResourceInfo:
        return self._builtin[("apiextensions.k8s.io", "customresourcedefinitions")]

    def _system_status(
        self, info: ResourceInfo, existing: Obj, status: dict[str, Any], *, user: User, manager: str
    ) -> None:
        """A controller's status write (an Update on /status, recorded in managedFields)."""
        meta = existing.get("metadata") or {}
        key = ObjectKey(meta.get("namespace", ""), meta["name"])
        body = self._present(info, info.storage_version, existing, view=True)
        body["status"] = status
        self._write_update(
            info,
            info.storage_version,
            key,
            existing,
            body,
            verb="update",
            subresource="status",
            field_manager=manager,
            user=user,
            applied=None,
        )

    def _crd_controller(self, *, act: bool) -> bool:
        info = self._crd_info()
        work = False
        for key in sorted(self._store(info)):
            crd = self._store(info).get(key)
            if crd is None:
                continue
            if crd["metadata"].get("deletionTimestamp"):
                held = crschema.CLEANUP_FINALIZER in (crd["metadata"].get("finalizers") or [])
                if held and self._crd_cleanup_pending(crd):
                    work = True
                    if act:
                        self._crd_cleanup(info, key)
                continue
            names = dict((crd.get("spec") or {}).get("names") or {})
            status = crd.get("status") or {}
            established = _condition_true(crd, "Established")
            if established and status.get("acceptedNames") == names:
                continue
            conflict = self._names_conflict(crd, names)
            if conflict and any(
                c.get("type") == "NamesAccepted" and c.get("status") == "False"
                for c in status.get("conditions") or []
            ):
                continue
            work = True
            if act:
                self._crd_establish(info, crd, names, conflict)
        return work

    def _names_conflict(self, crd: Obj, names: Mapping[str, Any]) -> str:
        group = (crd.get("spec") or {}).get("group")
        for other in self._store(self._crd_info()).values():
            if other is crd or (other.get("spec") or {}).get("group") != group:
                continue
            accepted = (other.get("status") or {}).get("acceptedNames") or {}
            if accepted.get("plural") and accepted.get("plural") == names.get("plural"):
                return f'"{names.get("plural")}" is already in use'
            if accepted.get("kind") and accepted.get("kind") == names.get("kind"):
                return f'"{names.get("kind")}" is already in use'
        return ""

    def _crd_establish(
        self, info: ResourceInfo, crd: Obj, names: dict[str, Any], conflict: str
    ) -> None:
        now = self._now()
        status = o.deepcopy(crd.get("status") or {})
        conditions = status.get("conditions") or []
        if conflict:
            plural = f'"{names.get("plural")}"'
            reason = "PluralConflict" if conflict.startswith(plural) else "KindConflict"
            status["conditions"] = _set_condition(
                conditions, _condition("NamesAccepted", "False", reason, conflict, now)
            )
            self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
            return
        status["acceptedNames"] = names
        status["conditions"] = _set_condition(
            conditions,
            _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", now),
        )
        if _condition_true(crd, "Established"):
            self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
            return
        self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
        crd = self._store(info)[ObjectKey("", crd["metadata"]["name"])]
        status = o.deepcopy(crd.get("status") or {})
        status["conditions"] = _set_condition(
            status.get("conditions") or [],
            _condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                now,
            ),
        )
        self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")

    def _crd_cleanup_pending(self, crd: Obj) -> bool:
        """Whether the CRD finalizer has something to do (not just waiting on finalizers)."""
        in_progress = any(
            c.get("type") == "Terminating" and c.get("reason") == "InstanceDeletionInProgress"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
        served = from_crd(crd) if _condition_true(crd, "Established") else None
        if not in_progress or served is None:
            return True
        instances = self._store(served).values()
        return not instances or any(not i["metadata"].get("deletionTimestamp") for i in instances)

    def _crd_cleanup(self, info: ResourceInfo, key: ObjectKey) -> None:
        crd = self._store(info)[key]
        now = self._now()
        status = o.deepcopy(crd.get("status") or {})
        in_progress = _condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        )
        if not any(
            c.get("type") == "Terminating" and c.get("reason") == "InstanceDeletionInProgress"
            for c in status.get("conditions") or []
        ):
            status["conditions"] = _set_condition(status.get("conditions") or [], in_progress)
            self._system_status(info, crd, status, user=KUBE_APISERVER, manager="kube-apiserver")
            crd = self._store(info)[key]
        served = from_crd(crd) if _condition_true(crd, "Established") else None
        remaining = 0
        if served is not None:
            store = self._store(served)
            for okey in sorted(store):
                obj = store.get(okey)
                if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                    self._delete(served, okey, obj, None, None, None, KUBE_APISERVER)
            remaining = len(self._store(served))
            final = _condition(
                "Terminating", "False", "InstanceDeletionCompleted", "removed all instances", now
            )
        else:
            final = _condition(
                "Terminating", "False", "NeverEstablished", "resource was never established", now
            )
        if remaining:
            return
        crd = self._store(info)[key]
        status = o.deepcopy(crd.get("status") or {})
        status["conditions"] = _set_condition(status.get("conditions") or [], final)
        finalizers = [
            f for f in crd["metadata"].get("finalizers") or [] if f != crschema.CLEANUP_FINALIZER
        ]
        marked = o.deepcopy(crd)
        marked["status"] = status
        _meta(marked)["finalizers"] = finalizers
        if not finalizers:
            # Removing the last finalizer deletes the CRD (the update path does the same).
            self._commit(
                info,
                key,
                crd,
                None,
                verb="update",
                user=KUBE_APISERVER,
                field_manager="kube-apiserver",
                subresource="status",
            )
        else:
            self._commit(
                info,
                key,
                crd,
                self._canonical(info, marked),
                verb="update",
                user=KUBE_APISERVER,
                field_manager="kube-apiserver",
                subresource="status",
            )

    def _namespaced_infos(self) -> builtins.list[ResourceInfo]:
        seen: set[tuple[str, str]] = set()
        out: builtins.list[ResourceInfo] = []
        for info in [*self._builtin.values(), *self._custom.values()]:
            if info.namespaced and info.storage not in seen:
                seen.add(info.storage)
                out.append(info)
        return sorted(out, key=lambda i: i.storage)

    def _namespace_controller(self, *, act: bool) -> bool:
        ns_info = self._builtin[("", "namespaces")]
        work = False
        for key in sorted(self._store(ns_info)):
            ns = self._store(ns_info).get(key)
            if ns is None or not ns["metadata"].get("deletionTimestamp"):
                continue
            if NAMESPACE_FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
                continue
            contents = [
                (info, okey, obj)
                for info in self._namespaced_infos()
                for okey, obj in sorted(self._store(info).items())
                if okey.namespace == key.name
            ]
            deletable = [c for c in contents if not c[2]["metadata"].get("deletionTimestamp")]
            pending = (
                bool(deletable)
                or not contents
                or self._namespace_conditions(ns, contents)
                != (ns.get("status") or {}).get("conditions")
            )
            if pending:
                work = True
                if act:
                    self._finalize_namespace(ns_info, key, deletable)
        return work

    def _namespace_conditions(
        self, ns: Obj, contents: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]]
    ) -> builtins.list[dict[str, Any]]:
        now = self._now()
        by_resource: dict[str, int] = {}
        by_finalizer: dict[str, int] = {}
        for info, _, obj in contents:
            by_resource[info.group_resource] = by_resource.get(info.group_resource, 0) + 1
            for f in obj["metadata"].get("finalizers") or []:
                by_finalizer[f] = by_finalizer.get(f, 0) + 1
        conditions = list((ns.get("status") or {}).get("conditions") or [])
        updates = [
            _condition(
                "NamespaceDeletionDiscoveryFailure",
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered",
                now,
            ),
            _condition(
                "NamespaceDeletionGroupVersionParsingFailure",
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
                now,
            ),
            _condition(
                "NamespaceDeletionContentFailure",
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
                now,
            ),
        ]
        if by_resource:
            remaining = ", ".join(
                f"{r} has {n} resource instances" for r, n in sorted(by_resource.items())
            )
            updates.append(
                _condition(
                    "NamespaceContentRemaining",
                    "True",
                    "SomeResourcesRemain",
                    f"Some resources are remaining: {remaining}",
                    now,
                )
            )
        else:
            updates.append(
                _condition(
                    "NamespaceContentRemaining",
                    "False",
                    "ContentRemoved",
                    "All content successfully removed",
                    now,
                )
            )
        if by_finalizer:
            held = ", ".join(
                f"{f} in {n} resource instances" for f, n in sorted(by_finalizer.items())
            )
            updates.append(
                _condition(
                    "NamespaceFinalizersRemaining",
                    "True",
                    "SomeFinalizersRemain",
                    f"Some content in the namespace has finalizers remaining: {held}",
                    now,
                )
            )
        else:
            updates.append(
                _condition(
                    "NamespaceFinalizersRemaining",
                    "False",
                    "ContentHasNoFinalizers",
                    "All content-preserving finalizers finished",
                    now,
                )
            )
        for cond in updates:
            conditions = _set_condition(conditions, cond)
        return conditions

    def _finalize_namespace(
        self,
        ns_info: ResourceInfo,
        key: ObjectKey,
        deletable: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]],
    ) -> None:
        for info, okey, _ in deletable:
            current = self._store(info).get(okey)
            if current is not None and not current["metadata"].get("deletionTimestamp"):
                self._delete(info, okey, current, None, None, None, NAMESPACE_CONTROLLER)
        contents = [
            (info, okey, obj)
            for info in self._namespaced_infos()
            for okey, obj in sorted(self._store(info).items())
            if okey.namespace == key.name
        ]
        ns = self._store(ns_info)[key]
        conditions = self._namespace_conditions(ns, contents)
        if conditions != (ns.get("status") or {}).get("conditions"):
            status = o.deepcopy(ns.get("status") or {})
            status["conditions"] = conditions
            self._system_status(
                ns_info, ns, status, user=NAMESPACE_CONTROLLER, manager="kube-controller-manager"
            )
            ns = self._store(ns_info)[key]
        if contents:
            return
        body = self._present(ns_info, "v1", ns, view=True)
        body["spec"] = dict(body.get("spec") or {})
        body["spec"]["finalizers"] = [
            f for f in body["spec"].get("finalizers") or [] if f != NAMESPACE_FINALIZER
        ]
        self._write_update(
            ns_info,
            "v1",
            key,
            ns,
            body,
            verb="update",
            subresource="finalize",
            field_manager="kube-controller-manager",
            user=NAMESPACE_CONTROLLER,
            applied=None,
        )

    # garbage collection

    def _all_objects(self) -> builtins.list[tuple[ResourceInfo, ObjectKey, Obj]]:
        out: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]] = []
        seen: set[tuple[str, str]] = set()
        for info in sorted(
            [*self._builtin.values(), *self._custom.values()], key=lambda i: (i.group, i.resource)
        ):
            if info.storage in seen:
                continue
            seen.add(info.storage)
            out += [(info, k, o) for k, o in sorted(self._store(info).items())]
        return out

    def _owner_info(self, ref: Mapping[str, Any]) -> ResourceInfo | None:
        group = str(ref.get("apiVersion") or "").rpartition("/")[0]
        for info in [*self._builtin.values(), *self._custom.values()]:
            if info.group == group and info.kind == ref.get("kind"):
                return info
        return None

    def _owner_state(self, dependent_ns: str, ref: Mapping[str, Any]) -> str:
        """`present`, `absent` or `unknown` (unresolvable: the GC leaves the dependent alone)."""
        info = self._owner_info(ref)
        if info is None:
            return "unknown"
        if info.namespaced and not dependent_ns:
            return "unknown"
        key = ObjectKey(dependent_ns if info.namespaced else "", str(ref.get("name") or ""))
        owner = self._store(info).get(key)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return "absent"
        return "present"

    def _garbage_collector(self, *, act: bool) -> bool:
        work = False
        objects = self._all_objects()
        by_owner: dict[str, builtins.list[tuple[ResourceInfo, ObjectKey, Obj]]] = {}
        for info, key, obj in objects:
            for ref in obj["metadata"].get("ownerReferences") or []:
                if isinstance(ref, dict) and ref.get("uid"):
                    by_owner.setdefault(str(ref["uid"]), []).append((info, key, obj))
        # Dangling dependents: every owner is gone.
        for info, key, obj in objects:
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if isinstance(r, dict)]
            if not refs or obj["metadata"].get("deletionTimestamp"):
                continue
            states = {self._owner_state(key.namespace, r) for r in refs}
            if states == {"absent"}:
                work = True
                if act:
                    current = self._store(info).get(key)
                    if current is not None:
                        self._delete(
                            info,
                            key,
                            current,
                            current["metadata"].get("uid"),
                            None,
                            None,
                            GARBAGE_COLLECTOR,
                        )
        # Owners deleted with Orphan or Foreground propagation.
        for info, key, obj in objects:
            meta = obj["metadata"]
            finalizers = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp"):
                continue
            dependents = by_owner.get(str(meta.get("uid")), [])
            if ORPHAN_FINALIZER in finalizers:
                work = True
                if act:
                    self._orphan(info, key, meta.get("uid"), dependents)
            elif FOREGROUND_FINALIZER in finalizers:
                live = [d for d in dependents if self._store(d[0]).get(d[1]) is not None]
                pending = [d for d in live if not d[2]["metadata"].get("deletionTimestamp")]
                if pending or not live:
                    work = True
                if act:
                    for dinfo, dkey, _ in pending:
                        current = self._store(dinfo).get(dkey)
                        if current is not None:
                            self._delete(
                                dinfo, dkey, current, None, None, "Foreground", GARBAGE_COLLECTOR
                            )
                    if not [d for d in live if self._store(d[0]).get(d[1]) is not None]:
                        self._remove_finalizer(info, key, FOREGROUND_FINALIZER)
        return work

    def _orphan(
        self,
        info: ResourceInfo,
        key: ObjectKey,
        uid: Any,
        dependents: builtins.list[tuple[ResourceInfo, ObjectKey, Obj]],
    ) -> None:
        for dinfo, dkey, _ in dependents:
            current = self._store(dinfo).get(dkey)
            if current is None:
                continue
            body = self._present(dinfo, dinfo.storage_version, current, view=True)
            body["metadata"] = dict(body["metadata"])
            body["metadata"]["ownerReferences"] = [
                r for r in body["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
            ]
            if not body["metadata"]["ownerReferences"]:
                del body["metadata"]["ownerReferences"]
            self._write_update(
                dinfo,
                dinfo.storage_version,
                dkey,
                current,
                body,
                verb="patch",
                subresource="",
                field_manager="kube-controller-manager",
                user=GARBAGE_COLLECTOR,
                applied=None,
            )
        self._remove_finalizer(info, key, ORPHAN_FINALIZER)

    def _remove_finalizer(self, info: ResourceInfo, key: ObjectKey, finalizer: str) -> None:
        current = self._store(info).get(key)
        if current is None:
            return
        body = self._present(info, info.storage_version, current, view=True)
        body["metadata"] = dict(body["metadata"])
        body["metadata"]["finalizers"] = [
            f for f in body["metadata"].get("finalizers") or [] if f != finalizer
        ]
        self._write_update(
            info,
            info.storage_version,
            key,
            current,
            body,
            verb="patch",
            subresource="",
            field_manager="kube-controller-manager",
            user=GARBAGE_COLLECTOR,
            applied=None,
        )

    # namespace defaults (ServiceAccount controller, root CA publisher)

    def _namespace_defaults_controller(self, *, act: bool) -> bool:
        ns_info = self._builtin[("", "namespaces")]
        sa_info = self._builtin[("", "serviceaccounts")]
        cm_info = self._builtin[("", "configmaps")]
        work = False
        for key in sorted(self._store(ns_info)):
            ns = self._store(ns_info)[key]
            if ns["metadata"].get("deletionTimestamp"):
                continue
            if ObjectKey(key.name, "default") not in self._store(sa_info):
                work = True
                if act:
                    self._system_create(
                        sa_info,
                        {"metadata": {"name": "default", "namespace": key.name}},
                        user=CONTROLLER_MANAGER,
                        manager="kube-controller-manager",
                    )
            if ObjectKey(key.name, "kube-root-ca.crt") not in self._store(cm_info):
                work = True
                if act:
                    self._system_create(
                        cm_info,
                        {
                            "metadata": {
                                "name": "kube-root-ca.crt",
                                "namespace": key.name,
                                "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
                            },
                            "data": {
                                "ca.crt": "-----BEGIN CERTIFICATE-----\n"
                                f"kbsim-{self.name}\n-----END CERTIFICATE-----\n"
                            },
                        },
                        user=CONTROLLER_MANAGER,
                        manager="kube-controller-manager",
                    )
        return work


# Re-exported for callers that address the well-known resources.
CUSTOM_RESOURCE_DEFINITIONS = CRD_GVR
