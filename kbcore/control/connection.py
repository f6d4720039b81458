"""The Connection kernel: from a kubeconfig Secret to a Ready link with a provider.

`plan_connection` is called with the Connection, the provider credentials its Secret yields
(`kbcore.control.kubeconfig.credentials_for`) and everything read so far (`kbcore.reads`). It asks
for the reads it still needs, then plans the writes and the new status. Rules, in order (upstream's,
except where docs/design.md, "Differences from upstream" says otherwise):

 1. Deleting: delete the autoBind ClusterBinding; while any binding names this Connection, stay
    with `Ready=False/DrainingBindings` and look again shortly; then delete the heartbeat Lease
    (best effort: a provider that is unreachable or refuses never blocks teardown), release
    the Secret's cleanup finalizer unless another live Connection uses the same Secret, and
    release our own.
 2. Finalizers first: the Secret (only in the konnector's namespace) and the Connection get
    `core.kube-bind.io/cleanup`; a Connection that just got it is looked at again on its event.
 3. Secret unusable (missing, wrong namespace, bad key, plugin, file path, secrets exposed on
    the network path, ...: `kbcore.control.kubeconfig`): `SecretValid=False/SecretNotFound` with the
    reason, `Ready=False/SecretNotFound`. Usable credentials whose traffic can be read on the
    path (`kubeconfig.transport_warning`) give `SecretValid=True/InsecureTransport`.
 4. Provider identity (kcp LogicalCluster, else kube-system): Forbidden ->
    `PermissionDenied=True/Forbidden`; other failures -> `Connected=False/Pending`.
 5. Consumer identity, the same way on the consumer.
 6. Identity checks, before anything is written on the provider:
    a. a provider identity equal to the consumer's (now, or as pinned) ->
       `Connected=False/SelfBinding`: a cluster is never bound to itself (each object would be
       its own provider copy). Nothing is pinned, discovered, installed or heartbeated, so
       pointing the Secret at the real provider later just works;
    b. a pinned `remoteClusterUID` that differs from the provider's identity ->
       `Connected=False/ClusterIdentityChanged`: objects are never silently re-homed.
    Both UIDs are pinned on first success and never change afterwards.
    Teardown (rule 1) cleans up on the provider only while the credentials still reach the
    pinned provider and not the consumer itself; otherwise it leaves the provider alone.
 7. Discovery by `schema.source`: CRD lists provider CRDs labelled exported; OpenAPI
    synthesizes CRDs from discovery; Auto is CRD when any labelled CRD is readable, else
    OpenAPI. A Forbidden list never falls through to OpenAPI.
 8. Schemas the Connection installs itself, as `pullPolicy` says for either source: All ->
    every exported API; Bound -> under OpenAPI, the APIs some binding of this Connection lists
    (under CRD, bindings pull their own); None -> only stamp markers on existing CRDs.
    Refused schemas (conversion webhook, protected group, foreign consumer CRD) and fidelity
    lost in synthesis are reported in `SchemaInSync`.
 9. autoBind: a ClusterBinding named after the Connection, owned by it and labelled managed,
    listing every exported API; deleted when nothing is exported; a same-named ClusterBinding
    the Connection does not own is never touched (`Ready=False/ForeignObjectExists`).
10. Heartbeat: one Lease per Connection in the provider namespace `kube-bind`, renewed when
    older than a third of its duration; failures never affect readiness.
11. Status is written only when it differs; `Ready=True` when all of the above hold.
12. A tenant (`spec.tenant`, `kbcore.sync.tenancy`) stays inside its boundary: a malformed
    `tenant` is `Ready=False/InvalidTenant` before anything is read on the provider; discovery
    GETs exactly the granted CRDs by name (schema source CRD; a CRD that is missing or not
    labelled exported is not exported); the heartbeat Lease lives in the home namespace (never
    created there: the issuer made it); the granted claims in the home namespace are recorded
    in `status.tenantNamespaces`, looked at again shortly while one is pending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import (
    CONSUMER,
    PROVIDER,
    Action,
    AddFinalizer,
    Create,
    Delete,
    MergePatch,
    Plan,
    RemoveFinalizer,
    RequeueAfter,
    Update,
    plan_or_ask,
)
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.api.keys import LEASE_NAMESPACE
from kbcore.api.resources import (
    BINDINGS,
    BOUND_NAMESPACES,
    CLUSTERBINDINGS,
    CONNECTIONS,
    CRDS,
    LEASES,
    NAMESPACES,
    SECRETS,
)
from kbcore.control.kubeconfig import (
    Credentials,
    SecretProblem,
    secret_ref,
    transport_warning,
)
from kbcore.errors import ApiError
from kbcore.identity import IdentityUnknown, identity_reads, reaches_itself, resolve_identity
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List, Observed, get_obj, list_items, need_all
from kbcore.redaction import redacted_repr
from kbcore.schema import openapi
from kbcore.schema import policy as schema
from kbcore.status import Conditions, read_conditions, status_update
from kbcore.sync.coverage import api_names, connection_name
from kbcore.sync.namespaces import owned_namespace, plan_namespace_cleanup
from kbcore.sync.tenancy import CLAIM_WAIT_SECONDS, Claim, Tenant, claim_state, tenant_of
from kbcore.timestamps import parse_rfc3339, rfc3339

DISCOVERY_INTERVAL_SECONDS = 30.0
"""How often a shell re-plans every Connection (re-discovery, heartbeat; upstream: 30 s)."""
DRAIN_REQUEUE_SECONDS = 2.0
RETRY_SECONDS = 5.0
"""How soon to try again after a transient failure (unreachable provider, 5xx)."""
LEASE_DURATION_SECONDS = 60
LEASE_RENEW_AFTER_SECONDS = 20.0
ANNOTATION_SCHEMA_LOSSES = f"{keys.GROUP}/schema-losses"
"""On a synthesized consumer CRD: what the OpenAPI source could not carry over."""


@attrs.frozen
class ConnectionView:
    """Everything `plan_connection` decides from."""

    connection: o.Obj
    konnector_namespace: str
    secret: o.Obj | None = attrs.field(repr=redacted_repr)
    """The Secret the Connection references, if it exists (from the consumer cache)."""
    credentials: Credentials | SecretProblem
    observed: Observed
    now: float


def connection_ref(name: str) -> ObjectRef:
    return ObjectRef(CONSUMER, CONNECTIONS, ObjectKey("", name))


def lease_name(local_cluster_uid: str, connection: str) -> str:
    """`consumer-<localUID>-<connection>`, hashed when it would exceed a DNS subdomain."""
    name = f"consumer-{local_cluster_uid}-{connection}"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(connection.encode()).hexdigest()[:16]
    return f"consumer-{local_cluster_uid}-{digest}"


def bindings_of(name: str, observed: Observed) -> list[o.Obj]:
    """Every ClusterBinding and Binding (deleting ones too) whose connectionRef is `name`."""
    reads = (List(CONSUMER, CLUSTERBINDINGS), List(CONSUMER, BINDINGS))
    need_all(observed, reads)  # both in one round
    # A failed list raises: taking it for "no bindings" would release finalizers too early.
    return [b for r in reads for b in list_items(observed, r) if connection_name(b) == name]


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    v = obj.get("spec")
    return v if isinstance(v, Mapping) else {}


def schema_policy(connection: Mapping[str, Any]) -> tuple[str, str, str]:
    """(source, pullPolicy, updatePolicy) with defaults applied."""
    sp = _spec(connection).get("schema")
    sp = sp if isinstance(sp, Mapping) else {}

    def pick(field: str, allowed: tuple[str, ...]) -> str:
        v = sp.get(field)
        return v if v in allowed else allowed[0]

    return (
        pick("source", ("Auto", "CRD", "OpenAPI")),
        pick("pullPolicy", ("Bound", "All", "None")),
        pick("updatePolicy", ("Always", "Once")),
    )


def exported_api(crd: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ExportedAPI entry for a provider (or synthesized) CRD; None without served versions."""
    spec = _spec(crd)
    names = spec.get("names")
    names = names if isinstance(names, Mapping) else {}
    versions = spec.get("versions")
    served = [
        v["name"]
        for v in (versions if isinstance(versions, list) else [])
        if isinstance(v, Mapping) and v.get("served") is True and isinstance(v.get("name"), str)
    ]
    group, plural = spec.get("group"), names.get("plural")
    if not served or not isinstance(group, str) or not isinstance(plural, str):
        return None
    return {
        "name": o.name(crd),
        "group": group,
        "resource": plural,
        "scope": spec.get("scope") if isinstance(spec.get("scope"), str) else "Namespaced",
        "versions": served,
    }


def discover_exported(
    observed: Observed, source: str, tenant: Tenant | None = None
) -> tuple[str, list[dict[str, Any]], dict[str, o.Obj], dict[str, tuple[str, ...]]]:
    """Rule 7: what the provider exports under schema `source` (Auto, CRD or OpenAPI); for a
    tenant, rule 12: the granted CRDs, read by name.

    Returns (active source, exportedAPIs sorted by name, provider-side CRD per API name,
    fidelity lost in synthesis per API). Raises `Missing` for reads not done yet and the
    `ApiError` of a failed one. `kubectl bind` lists what it offers to bind with this too."""
    crds: dict[str, o.Obj] = {}
    losses: dict[str, tuple[str, ...]] = {}
    if tenant is not None:
        named = need_all(
            observed, tuple(Get(PROVIDER, CRDS, ObjectKey("", n)) for n in tenant.apis)
        )
        for got in named:
            if isinstance(got, Failed):
                raise got.error
            if (
                isinstance(got, dict)
                and o.labels_of(got).get(keys.LABEL_EXPORTED) == "true"
                and exported_api(got) is not None
            ):
                crds[o.name(got)] = got
        source = "CRD"
    elif source in ("CRD", "Auto"):
        listed = list_items(
            observed, List(PROVIDER, CRDS, label_selector=f"{keys.LABEL_EXPORTED}=true")
        )
        crds = {o.name(crd): crd for crd in listed if exported_api(crd) is not None}
        source = "CRD" if source == "CRD" or crds else "OpenAPI"
    if source == "OpenAPI":
        synthesis = openapi.synthesize(observed, PROVIDER)
        crds = {o.name(api.crd): api.crd for api in synthesis.apis}
        losses = {o.name(api.crd): api.losses for api in synthesis.apis if api.losses}
    apis = [a for a in (exported_api(crd) for crd in crds.values()) if a is not None]
    apis.sort(key=lambda a: str(a["name"]))
    return source, apis, crds, losses


def misdirected(connection: Mapping[str, Any]) -> str:
    """Why the Connection's credentials are known to reach a cluster other than its provider
    (rule 6: the consumer itself, or not the pinned one), or "". Nothing may be done through
    them: an unbind holds what may have a copy on the real provider (`kbcore.control.binding` rule
    1)."""
    status = connection.get("status")
    conds = read_conditions(status.get("conditions") if isinstance(status, Mapping) else None)
    connected = c.find_condition(conds, c.CONNECTED)
    if connected is None or connected.reason not in (c.SELF_BINDING, c.CLUSTER_IDENTITY_CHANGED):
        return ""
    return f"Connection {o.name(connection)} does not reach its provider: {connected.message}"


def plan_connection(view: ConnectionView) -> Plan:
    """The next step for one Connection (rules in the module docstring)."""
    return plan_or_ask(lambda: _Planner(view).plan())


class _Planner:
    def __init__(self, view: ConnectionView) -> None:
        self.view = view
        self.conn = view.connection
        self.name = o.name(self.conn)
        self.ref = connection_ref(self.name)
        status = self.conn.get("status")
        # A status that is not a mapping (a hostile or broken writer) is rewritten whole.
        self.status: dict[str, Any] = dict(status) if isinstance(status, Mapping) else {}
        self.conds = Conditions(
            self.status.get("conditions"), o.generation(self.conn), rfc3339(view.now)
        )
        self.actions: list[Action] = []
        self.tenant = tenant_of(self.conn)
        lease_namespace = self.tenant.namespace if isinstance(self.tenant, Tenant) else ""
        self.lease_namespace = lease_namespace or LEASE_NAMESPACE

    # -- helpers ---------------------------------------------------------------------------
    def _finish(self, why: str, *tail: Action) -> Plan:
        self.status["conditions"] = self.conds.to_json()
        update = status_update(self.conn, self.ref, self.status)
        actions = [*self.actions, *([update] if update else []), *tail]
        return Plan(tuple(actions), why=why)

    def _secret_ref(self) -> ObjectRef | None:
        namespace, name, _ = secret_ref(self.conn)
        if namespace != self.view.konnector_namespace or not name:
            return None
        return ObjectRef(CONSUMER, SECRETS, ObjectKey(namespace, name))

    # -- the rules -------------------------------------------------------------------------
    def plan(self) -> Plan:
        if o.is_deleting(self.conn):
            return self._deleting()
        ensure = self._ensure_finalizers()
        if ensure is not None:
            return ensure
        creds = self.view.credentials
        if isinstance(creds, SecretProblem):
            self.conds.set(c.SECRET_VALID, False, c.SECRET_NOT_FOUND, creds.message)
            self.conds.set(
                c.READY,
                False,
                c.SECRET_NOT_FOUND,
                f"kubeconfig secret not usable yet: {creds.message}",
            )
            return self._finish("secret unusable")
        warning = transport_warning(creds)
        if warning:
            self.conds.set(c.SECRET_VALID, True, c.INSECURE_TRANSPORT, warning)
        else:
            self.conds.set(c.SECRET_VALID, True, c.AS_EXPECTED, "kubeconfig secret resolved")
        if isinstance(self.tenant, str):
            msg = f"the provider's tenancy boundary is malformed: {self.tenant}"
            self.conds.set(c.READY, False, c.INVALID_TENANT, msg)
            return self._finish("tenant malformed")
        identity = self._identities()
        if identity is not None:
            return identity
        try:
            source, apis, crds, losses = self._discover()
        except ApiError as err:
            return self._provider_failure(err, "discovering exported APIs")
        try:
            pending = self._tenant_namespaces()
        except ApiError as err:
            return self._provider_failure(err, "reading the namespaces granted to this consumer")
        self.status["activeSchemaSource"] = source
        self.status["exportedAPIs"] = apis
        self.conds.set(c.PERMISSION_DENIED, False, c.AS_EXPECTED, "no RBAC denials")
        problems = self._install(source, apis, crds, losses)
        if problems is not None:
            reason, message = problems
            self.conds.set(c.SCHEMA_IN_SYNC, False, reason, message)
        else:
            self.conds.set(
                c.SCHEMA_IN_SYNC, True, c.AS_EXPECTED, self._schema_message(source, apis, losses)
            )
        foreign = self._auto_bind(apis)
        if foreign:
            self.conds.set(c.READY, False, c.FOREIGN_OBJECT_EXISTS, foreign)
        else:
            self.conds.set(c.READY, True, c.AS_EXPECTED, "connection ready")
        tail = (RequeueAfter(CLAIM_WAIT_SECONDS),) if pending else ()
        return self._finish("connection reconciled", *self._heartbeat(), *tail)

    def _ensure_finalizers(self) -> Plan | None:
        sref = self._secret_ref()
        secret = self.view.secret
        if sref is not None and secret is not None and not o.is_deleting(secret):
            fins = o.finalizers(secret)
            if keys.FINALIZER_CLEANUP not in fins:
                self.actions.append(
                    AddFinalizer(
                        sref,
                        keys.FINALIZER_CLEANUP,
                        o.resource_version(secret),
                        (*fins, keys.FINALIZER_CLEANUP),
                    )
                )
        fins = o.finalizers(self.conn)
        if keys.FINALIZER_CLEANUP in fins:
            return None
        add = AddFinalizer(
            self.ref,
            keys.FINALIZER_CLEANUP,
            o.resource_version(self.conn),
            (*fins, keys.FINALIZER_CLEANUP),
        )
        return Plan((*self.actions, add), why="adding the cleanup finalizer")

    def _provider_failure(self, err: ApiError, doing: str) -> Plan:
        if err.code == 403:
            msg = f"provider RBAC forbids {doing}: {err.message}"
            self.conds.set(c.PERMISSION_DENIED, True, c.FORBIDDEN, msg)
            self.conds.set(c.READY, False, c.FORBIDDEN, msg)
            return self._finish("forbidden")
        self.conds.set(c.CONNECTED, False, c.PENDING, f"{doing}: {err}")
        self.conds.set(c.READY, False, c.PENDING, "cannot reach provider cluster")
        return self._finish("provider unreachable", RequeueAfter(RETRY_SECONDS))

    def _identities(self) -> Plan | None:
        observed = self.view.observed
        try:
            need_all(observed, _identity_reads())
            remote = resolve_identity(observed, PROVIDER)
        except ApiError as err:
            return self._provider_failure(err, "reading the provider cluster identity")
        except IdentityUnknown as err:
            self.conds.set(c.CONNECTED, False, c.PENDING, str(err))
            self.conds.set(c.READY, False, c.PENDING, "cannot identify provider cluster")
            return self._finish("provider identity unknown", RequeueAfter(RETRY_SECONDS))
        try:
            local = resolve_identity(observed, CONSUMER)
        except (ApiError, IdentityUnknown) as err:
            self.conds.set(
                c.READY, False, c.PENDING, f"cannot identify the consumer cluster: {err}"
            )
            return self._finish("consumer identity unknown", RequeueAfter(RETRY_SECONDS))
        pinned_local = self.status.get("localClusterUID")
        if reaches_itself(remote, local) or (
            isinstance(pinned_local, str) and reaches_itself(remote, pinned_local)
        ):
            namespace, name, _ = secret_ref(self.conn)
            msg = (
                f"the kubeconfig in Secret {namespace}/{name} points at this cluster itself "
                f"(cluster {remote}), not at a provider: a cluster is never bound to itself; "
                "put the provider's kubeconfig in the Secret"
            )
            self.conds.set(c.CONNECTED, False, c.SELF_BINDING, msg)
            self.conds.set(c.READY, False, c.SELF_BINDING, msg)
            return self._finish("self-binding refused")
        pinned = self.status.get("remoteClusterUID")
        if isinstance(pinned, str) and pinned and pinned != remote:
            msg = f"kubeconfig now points at cluster {remote}, but {pinned} was pinned"
            self.conds.set(c.CONNECTED, False, c.CLUSTER_IDENTITY_CHANGED, msg)
            self.conds.set(c.READY, False, c.CLUSTER_IDENTITY_CHANGED, msg)
            return self._finish("identity changed")
        self.status["remoteClusterUID"] = remote
        if not self.status.get("localClusterUID"):
            self.status["localClusterUID"] = local
        self.conds.set(c.CONNECTED, True, c.AS_EXPECTED, "connected to provider")
        return None

    def _discover(
        self,
    ) -> tuple[str, list[dict[str, Any]], dict[str, o.Obj], dict[str, tuple[str, ...]]]:
        """(active source, exportedAPIs, provider-side CRD per API name, losses per API)."""
        source, _, _ = schema_policy(self.conn)
        tenant = self.tenant if isinstance(self.tenant, Tenant) else None
        return discover_exported(self.view.observed, source, tenant)

    def _tenant_namespaces(self) -> bool:
        """Rule 12: record a tenant's granted namespaces; True while a claim is pending."""
        if not isinstance(self.tenant, Tenant):
            return False
        claims = list_items(
            self.view.observed, List(PROVIDER, BOUND_NAMESPACES, self.tenant.namespace)
        )
        states = {o.name(cl): claim_state(self.tenant, o.name(cl), cl) for cl in claims}
        granted = sorted(
            self.tenant.provider_namespace(n) for n, s in states.items() if s is Claim.GRANTED
        )
        self.status["tenantNamespaces"] = granted
        return any(s is Claim.PENDING for s in states.values())

    def _wanted(self, source: str, apis: list[dict[str, Any]]) -> list[str]:
        """Names of the APIs this Connection installs itself (rule 8)."""
        _, pull, _ = schema_policy(self.conn)
        names = [str(a["name"]) for a in apis]
        if pull == "All" or (pull == "None" and source == "OpenAPI"):
            return names
        if source == "OpenAPI":  # Bound: what live bindings of this Connection list
            listed: set[str] = set()
            for b in bindings_of(self.name, self.view.observed):
                if o.is_deleting(b):
                    continue
                listed.update(api_names(b))
            return [n for n in names if n in listed]
        return []  # CRD source, Bound or None: each binding pulls (or stamps) what it lists

    def _install(
        self,
        source: str,
        apis: list[dict[str, Any]],
        crds: dict[str, o.Obj],
        losses: dict[str, tuple[str, ...]],
    ) -> tuple[str, str] | None:
        _, pull, update = schema_policy(self.conn)
        wanted = self._wanted(source, apis)
        currents = need_all(
            self.view.observed, tuple(Get(CONSUMER, CRDS, ObjectKey("", n)) for n in wanted)
        )
        problems: list[tuple[str, str]] = []
        for name, current in zip(wanted, currents, strict=True):
            if isinstance(current, Failed):
                problems.append(
                    (c.PENDING, f"{name}: reading the consumer CRD failed: {current.error}")
                )
                continue
            provider_crd = crds[name]
            live = current if isinstance(current, dict) else None
            refusal = schema.refuse_install(provider_crd, live, self.name)
            if refusal is not None:
                problems.append((refusal.reason, refusal.message))
                continue
            desired = schema.for_consumer(provider_crd, self.name)
            if losses.get(name):
                desired["metadata"].setdefault("annotations", {})[ANNOTATION_SCHEMA_LOSSES] = (
                    "; ".join(losses[name])
                )
            install = schema.plan_install(
                desired,
                current if isinstance(current, dict) else None,
                connection=self.name,
                create=pull != "None",
                update=update != "Once",
            )
            self.actions.extend(install.actions)
            if install.refusal is not None:
                problems.append((install.refusal.reason, install.refusal.message))
        if not problems:
            return None
        return problems[0][0], "; ".join(msg for _, msg in problems)

    def _schema_message(
        self, source: str, apis: list[dict[str, Any]], losses: dict[str, tuple[str, ...]]
    ) -> str:
        _, pull, update = schema_policy(self.conn)
        message = (
            f"{len(apis)} exported API(s) from source {source}; pullPolicy {pull}, "
            f"updatePolicy {update}"
        )
        if losses:
            # Details per API are on each synthesized CRD (annotation schema-losses).
            names = ", ".join(f"{n} ({len(v)})" for n, v in sorted(losses.items()))
            message += f"; fidelity lost in synthesis, see {ANNOTATION_SCHEMA_LOSSES} on: {names}"
        return message

    def _auto_bind(self, apis: list[dict[str, Any]]) -> str:
        """Rule 9; returns a message when a foreign ClusterBinding blocks autoBind."""
        if _spec(self.conn).get("autoBind") is not True:
            return ""
        ref = ObjectRef(CONSUMER, CLUSTERBINDINGS, ObjectKey("", self.name))
        (current,) = need_all(self.view.observed, (Get(CONSUMER, CLUSTERBINDINGS, ref.key),))
        current = current if isinstance(current, dict) else None
        mine = current is not None and self._owns(current)
        if current is not None and not mine:
            return (
                f"ClusterBinding {self.name} exists and is not managed by this Connection; "
                "autoBind cannot maintain it"
            )
        want = [{"name": a["name"]} for a in apis]
        if not apis:
            if current is not None and not o.is_deleting(current):
                self.actions.append(Delete(ref, o.uid(current)))
            return ""
        if current is None:
            body = {
                "apiVersion": keys.API_VERSION,
                "kind": "ClusterBinding",
                "metadata": {
                    "name": self.name,
                    "labels": {keys.LABEL_MANAGED: "true"},
                    "ownerReferences": [
                        {
                            "apiVersion": keys.API_VERSION,
                            "kind": "Connection",
                            "name": self.name,
                            "uid": o.uid(self.conn),
                            "controller": True,
                        }
                    ],
                },
                "spec": {"connectionRef": {"name": self.name}, "apis": want},
            }
            self.actions.append(Create(ref, body, keys.FIELD_MANAGER))
        elif not o.is_deleting(current) and not o.json_equal(_spec(current).get("apis"), want):
            self.actions.append(
                MergePatch(ref, {"spec": {"apis": want}}, o.resource_version(current))
            )
        return ""

    def _owns(self, binding: Mapping[str, Any]) -> bool:
        if o.labels_of(binding).get(keys.LABEL_MANAGED) != "true":
            return False
        owners = o.metadata(binding).get("ownerReferences")
        return any(
            isinstance(r, Mapping)
            and r.get("kind") == "Connection"
            and r.get("uid") == o.uid(self.conn)
            for r in (owners if isinstance(owners, list) else [])
        )

    def _heartbeat(self) -> tuple[Action, ...]:
        """Rule 10: best effort, after the status write, so a failure never hides status."""
        local = self.status.get("localClusterUID")
        if not isinstance(local, str) or not local:
            return ()
        name = lease_name(local, self.name)
        lease_read = Get(PROVIDER, LEASES, ObjectKey(self.lease_namespace, name))
        if isinstance(self.tenant, Tenant):
            (lease,) = need_all(self.view.observed, (lease_read,))
            ns: Any = {"metadata": {"name": self.lease_namespace}}  # the issuer made it
        else:
            ns_read = Get(PROVIDER, NAMESPACES, ObjectKey("", LEASE_NAMESPACE))
            lease, ns = need_all(self.view.observed, (lease_read, ns_read))
        if isinstance(lease, Failed):
            return ()
        now = rfc3339(self.view.now)
        micro = now[:-1] + ".000000Z"
        ref = ObjectRef(PROVIDER, LEASES, lease_read.key)
        spec = {
            "holderIdentity": local,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": micro,
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": self.lease_namespace,
                    "labels": {keys.LABEL_MANAGED: "true"},
                    "annotations": {
                        keys.ANNOTATION_CONSUMER_CLUSTER_UID: local,
                        keys.ANNOTATION_CONNECTION: self.name,
                    },
                },
                "spec": {**spec, "acquireTime": micro},
            }
            pre: tuple[Action, ...] = ()
            if ns is None:
                pre = (owned_namespace(PROVIDER, LEASE_NAMESPACE, local),)
            return (*pre, Create(ref, body, keys.FIELD_MANAGER))
        if o.annotations_of(lease).get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) != local:
            return ()  # not ours: never overwrite someone else's Lease
        lease_spec = _spec(lease)
        renewed = lease_spec.get("renewTime")
        if isinstance(renewed, str) and _age(renewed, self.view.now) < LEASE_RENEW_AFTER_SECONDS:
            return ()
        body = o.deepcopy(lease)
        body["spec"] = {**lease_spec, **spec}
        return (Update(ref, body, keys.FIELD_MANAGER),)

    # -- rule 1 ----------------------------------------------------------------------------
    def _deleting(self) -> Plan:
        if keys.FINALIZER_CLEANUP not in o.finalizers(self.conn):
            return Plan(why="deleting; finalizer already released")
        if _spec(self.conn).get("autoBind") is True:
            ref = ObjectRef(CONSUMER, CLUSTERBINDINGS, ObjectKey("", self.name))
            (auto,) = need_all(self.view.observed, (Get(CONSUMER, CLUSTERBINDINGS, ref.key),))
            if isinstance(auto, dict) and self._owns(auto) and not o.is_deleting(auto):
                self.actions.append(Delete(ref, o.uid(auto)))
        draining = bindings_of(self.name, self.view.observed)
        if draining:
            self.conds.set(
                c.READY,
                False,
                c.DRAINING_BINDINGS,
                f"waiting for {len(draining)} binding(s) to finish unbinding",
            )
            return self._finish("draining bindings", RequeueAfter(DRAIN_REQUEUE_SECONDS))
        # The Lease goes first (a refusal is accepted, a failed read skips it) so a transient
        # failure is retried rather than leaving it behind once our finalizer is gone.
        lease = self._lease_cleanup()
        self.actions.extend(lease)
        self.actions.extend(self._lease_namespace_cleanup(lease))
        conns = list_items(self.view.observed, List(CONSUMER, CONNECTIONS))
        same = secret_ref(self.conn)[:2]
        shared = any(
            secret_ref(other)[:2] == same
            and o.name(other) != self.name
            and not o.is_deleting(other)
            for other in conns
        )
        sref = self._secret_ref()
        secret = None
        if sref is not None:
            # Read afresh: a cache that has not seen the Secret is no evidence it is gone, and
            # once our finalizer is released nobody would release the Secret's.
            secret = get_obj(self.view.observed, Get(CONSUMER, SECRETS, sref.key))
        if sref is not None and secret is not None and not shared:
            fins = o.finalizers(secret)
            if keys.FINALIZER_CLEANUP in fins:
                rest = tuple(f for f in fins if f != keys.FINALIZER_CLEANUP)
                self.actions.append(
                    RemoveFinalizer(sref, keys.FINALIZER_CLEANUP, o.resource_version(secret), rest)
                )
        fins = o.finalizers(self.conn)
        rest = tuple(f for f in fins if f != keys.FINALIZER_CLEANUP)
        self.actions.append(
            RemoveFinalizer(self.ref, keys.FINALIZER_CLEANUP, o.resource_version(self.conn), rest)
        )
        return Plan(tuple(self.actions), why="released")

    def _cleanup_identity(self) -> str:
        """Our pinned identity when the credentials still reach the pinned provider (rule 6:
        not another cluster, not the consumer itself), else "": nothing is cleaned up then."""
        local = self.status.get("localClusterUID")
        if isinstance(self.view.credentials, SecretProblem) or not isinstance(local, str):
            return ""
        try:
            remote = resolve_identity(self.view.observed, PROVIDER)
        except ApiError as err:
            if err.is_retryable:
                raise  # a live server failed: retried, so nothing is left behind
            return ""  # refused or unreachable: the heartbeat never blocks teardown
        except IdentityUnknown:
            return ""
        pinned = self.status.get("remoteClusterUID")
        if reaches_itself(remote, local) or (
            isinstance(pinned, str) and pinned and pinned != remote
        ):
            return ""
        return local

    def _lease_namespace_cleanup(self, lease: tuple[Action, ...]) -> tuple[Action, ...]:
        """The provider namespace we created for Leases, once only this Lease was left in it."""
        local = self._cleanup_identity()
        if not local or isinstance(self.tenant, Tenant):
            return ()  # a tenant's home namespace is the issuer's
        gone = frozenset((a.target.gvr, a.target.key) for a in lease if isinstance(a, Delete))
        # A refusal leaves the namespace; a transient failure is raised and retried.
        return plan_namespace_cleanup(
            self.view.observed, local_cluster_uid=local, only={LEASE_NAMESPACE}, ignore=gone
        )

    def _lease_cleanup(self) -> tuple[Action, ...]:
        local = self._cleanup_identity()
        if not local:
            return ()
        key = ObjectKey(self.lease_namespace, lease_name(local, self.name))
        read = Get(PROVIDER, LEASES, key)
        (lease,) = need_all(self.view.observed, (read,))
        if isinstance(lease, Failed):
            if lease.error.is_retryable:
                raise lease.error  # a live server failed: retried, so nothing is left behind
            return ()  # refused or unreachable: the heartbeat never blocks teardown
        if lease is None or o.is_deleting(lease):
            return ()
        if o.annotations_of(lease).get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) != local:
            return ()
        return (Delete(ObjectRef(PROVIDER, LEASES, read.key), o.uid(lease), best_effort=True),)


def _identity_reads() -> tuple[Get, ...]:
    return (*identity_reads(PROVIDER), *identity_reads(CONSUMER))


def _age(stamp: str, now: float) -> float:
    """Seconds from an RFC 3339 timestamp to `now`; large when unparsable (so it is renewed)."""
    at = parse_rfc3339(stamp)
    return float("inf") if at is None else now - at
