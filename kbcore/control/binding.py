"""The binding kernel: ClusterBinding and Binding, from a list of API names to bound APIs.

`plan_binding` decides from the binding, its Connection (with the credentials the Connection's
Secret yields) and the reads it asks for (`kbcore.reads`). A ClusterBinding binds its APIs in
every namespace, a Binding only in its own. Rules, in order (upstream's,
except where docs/design.md, "Differences from upstream" says otherwise):

 1. Deleting (unbind) drains, for every listed API no other live binding covers (a read
    that fails holds the drain, with the reason in `Ready=False/DrainingObjects`; with no
    usable credentials at all only finalizers are released, as upstream does; credentials the
    Connection found reaching another cluster, the consumer itself included
    (`kbcore.control.connection.misdirected`), are never used, and objects that may have a copy on
    the real provider keep their finalizer, with the reason, until the kubeconfig is fixed):
    a. each consumer object holding our `syncer` finalizer and not covered by another binding,
       decided as instance sync decides a deletion (`kbcore.sync.instance.release_or_delete`):
       `Orphan` or no provider access -> release the finalizer; provider copy ours (both
       markers) -> delete it (UID precondition) and keep waiting; copy ours and deleting ->
       wait; copy absent or not ours -> release the finalizer (a fresh read: provider reads
       are never cached);
    b. once no object of the API holds our finalizer, a ClusterBinding deletes the consumer CRD
       it installed (a Binding never does: the CRD is cluster-wide);
    c. related copies this binding made are deleted;
    d. while anything is left, `Ready=False/DrainingObjects` and look again shortly;
    e. then provider namespaces instance sync created, in scope and now empty, are deleted
       (`kbcore.sync.namespaces`), and the binding's cleanup finalizer is released.
    For a tenant, an object in a namespace whose claim is not granted (read fresh) has no
    copy of ours to delete: it is released without reading there; and provider namespaces are
    the issuer's, never deleted by the konnector.
 2. The cleanup finalizer is added before anything else is written.
 3. The Connection must exist and be Ready, else `Connected=False/Pending` and
    `Ready=False/Pending` (upstream documents `Connected` on bindings but never sets it); every
    `boundAPIs` entry says so too (`Pending`), as its objects are not synced meanwhile.
 4. Per listed API, in order (duplicates ignored), one entry in `boundAPIs` with a per-API
    `Ready` condition. It is the truth about that API alone: `Ready=True` exactly when its
    objects are synced, which is what instance sync asks (`kbcore.control.engagement.syncs_api`), so
    one refused API never stops the others:
    a. a Binding listing an API a live ClusterBinding lists: the ClusterBinding wins, the
       Binding does nothing for it and says so (`BoundByClusterBinding`; not an error);
    b. not in the Connection's `exportedAPIs`: `APINotExported`;
    c. a Binding listing a cluster-scoped API, or any binding of a tenant's Connection
       (`kbcore.sync.tenancy` rule 3: a shared provider cannot share one): refused
       (`ClusterScopedAPI`);
    d. schema source OpenAPI: the Connection installs the CRD; wait for it (`Pending`), then
       refuse it if what the provider serves (the `exportedAPIs` entry) changed in a way the
       consumer CRD cannot follow (`kbcore.schema.policy.refuse_exported_change`,
       `IncompatibleSchemaChange`);
    e. schema source CRD: read the provider CRD (Forbidden -> `PermissionDenied=True`), refuse
       what `kbcore.schema.policy` refuses (conversion webhook, protected group, foreign consumer
       CRD, a schema change the consumer CRD cannot follow), else install it as
       `pullPolicy`/`updatePolicy` say (`kbcore.schema.policy.plan_install`);
    f. installed: `conflictCount` counts consumer objects in scope carrying the conflict
       annotation. The same list says which namespaces the binding syncs objects in (those
       holding an object not being deleted), which related resources need (`kbcore.control.related`
       T1); a failed list counts as no conflicts, and for a ClusterBinding leaves related
       resources waiting (`RelatedResources=False/Pending`): an unknown answer is never taken
       for "no namespaces", which would collect every copy.
    g. `crdHash` is the hash the live consumer CRD carries, never that of a write not yet
       landed: after an update it moves on the next pass, which the CRD's event wakes.
 5. Related Secrets and ConfigMaps (`kbcore.control.related`) once at least one API is bound (its
    objects sync, so what they need follows; an API refused or still pending does not hold
    the others back), only in the namespaces the binding syncs (a Binding: its own; a
    ClusterBinding: those of 4f), never in `kube-*` or the konnector's namespace
    (`BindingView.konnector_namespace`); a foreign same-named target is a conflict, never
    overwritten.
 6. Conditions: `Connected`, `Synced` (every API installed), `Conflicts` (instances and
    related targets), `PermissionDenied`, `RelatedResources` (only with relatedResources
    rules: what was not copied and why, or which rules are invalid; it never makes the binding
    unready), `Ready`; status written only when it differs, and before the consumer CRD writes
    of the same plan (it claims only what is live, so a CRD write the API server refuses
    cannot hide it). `Ready=True` only when every API is bound; otherwise `Ready=False` with
    the reason of the first problem (Forbidden, then refusals, then APIs not exported, then
    pending ones) and a message naming each API that is not bound and why, and the APIs that
    are bound and syncing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from kbcore import objects as o
from kbcore.actions import (
    CONSUMER,
    PROVIDER,
    Action,
    AddFinalizer,
    Plan,
    RemoveFinalizer,
    RequeueAfter,
    plan_or_ask,
)
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.api.convert import InvalidObject, structure
from kbcore.api.resources import BINDINGS, BOUND_NAMESPACES, CLUSTERBINDINGS, CRDS
from kbcore.api.types import RelatedResource
from kbcore.control import related
from kbcore.control.connection import misdirected, schema_policy
from kbcore.control.kubeconfig import Credentials, SecretProblem
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List, Observed, list_items, need_all
from kbcore.schema import policy as schema
from kbcore.schema.crds import served_resource
from kbcore.status import Conditions, condition_is_true, status_update
from kbcore.sync import namespaces
from kbcore.sync.coverage import api_names, connection_name, lists_api, resolve_coverage
from kbcore.sync.instance import is_orphaned, release_or_delete
from kbcore.sync.mapper import IDENTITY, Mapper
from kbcore.sync.tenancy import Claim, Tenant, claim_ref, claim_state, tenant_of
from kbcore.timestamps import rfc3339

DRAIN_REQUEUE_SECONDS = 2.0
DRAIN_RETRY_SECONDS = 5.0
"""How soon a drain blocked by a failed read tries again."""
RESYNC_INTERVAL_SECONDS = 30.0
"""How often a shell re-plans every binding (conflict counts, related resources; upstream 30 s)."""


@attrs.frozen(hash=False)
class BindingView:
    binding: o.Obj
    connection: o.Obj | None
    credentials: Credentials | SecretProblem | None
    """What the Connection's Secret yields; None when there is no Connection."""
    observed: Observed
    now: float
    mapper: Mapper = IDENTITY
    konnector_namespace: str = attrs.field(kw_only=True)
    """Where the konnector runs (its kubeconfig Secrets): never used by related resources."""


def gvr_of(binding: Mapping[str, Any]) -> GVR:
    kind = binding.get("kind")
    return BINDINGS if kind == "Binding" else CLUSTERBINDINGS


def binding_ref(binding: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef(CONSUMER, gvr_of(binding), o.key_of(binding))


M = TypeVar("M", bound=Mapping[str, Any])


def drained_objects(
    api: str,
    items: Iterable[M],
    live_cluster_bindings: Sequence[Mapping[str, Any]],
    live_bindings: Sequence[Mapping[str, Any]],
) -> list[M]:
    """Rule 1: the consumer objects of `api` an unbind releases: synced by us (our finalizer)
    and covered by no other live binding."""
    return [
        i
        for i in items
        if keys.FINALIZER_SYNCER in o.finalizers(i)
        and not resolve_coverage(
            api, o.namespace(i), live_cluster_bindings, live_bindings, lambda _b: True
        ).bound
    ]


def unbind_uninstalls(
    binding: Mapping[str, Any],
    api: str,
    live_cluster_bindings: Sequence[Mapping[str, Any]],
    live_bindings: Sequence[Mapping[str, Any]],
) -> bool:
    """Rule 1: unbinding a ClusterBinding uninstalls `api`'s consumer CRD (one it created) once
    drained, unless another live binding lists the API."""
    return binding.get("kind") == "ClusterBinding" and not any(
        lists_api(x, api) for x in [*live_cluster_bindings, *live_bindings]
    )


def api_is_ready(entry: Mapping[str, Any]) -> bool:
    """Whether a `boundAPIs` entry's `Ready` condition is True (rule 4)."""
    raw = entry.get("conditions")
    return any(
        isinstance(x, Mapping) and x.get("type") == c.READY and x.get("status") == "True"
        for x in (raw if isinstance(raw, list) else [])
    )


def related_rules(binding: Mapping[str, Any]) -> tuple[tuple[RelatedResource, ...], str]:
    """The well-formed relatedResources rules, and a message naming the malformed ones."""
    spec = binding.get("spec")
    raw = spec.get("relatedResources") if isinstance(spec, Mapping) else None
    rules: list[RelatedResource] = []
    bad: list[str] = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            rules.append(structure(item, RelatedResource))
        except InvalidObject as err:
            bad.append(f"relatedResources[{i}]: {err}")
    return tuple(rules), "; ".join(bad)


def plan_binding(view: BindingView) -> Plan:
    """The next step for one ClusterBinding or Binding (rules in the module docstring).

    A failed read a decision depends on is raised as its ApiError (the shell backs off and
    retries); it is never taken for absence."""
    return plan_or_ask(lambda: _Planner(view).plan())


class _Planner:
    def __init__(self, view: BindingView) -> None:
        self.view = view
        self.b = view.binding
        self.ref = binding_ref(self.b)
        self.scope = o.namespace(self.b) if self.b.get("kind") == "Binding" else ""
        status = self.b.get("status")
        # A status that is not a mapping (a hostile or broken writer) is rewritten whole.
        self.status: dict[str, Any] = dict(status) if isinstance(status, Mapping) else {}
        self.conds = Conditions(
            self.status.get("conditions"), o.generation(self.b), rfc3339(view.now)
        )
        self.actions: list[Action] = []
        self.crd_writes: list[Action] = []
        """Consumer CRD writes: after the status write (rule 6)."""
        conn = view.connection
        cstatus = conn.get("status") if conn is not None else None
        self.cstatus: Mapping[str, Any] = cstatus if isinstance(cstatus, Mapping) else {}
        local = self.cstatus.get("localClusterUID")
        self.local_uid = local if isinstance(local, str) else ""
        self.conn_name = (conn is not None and o.name(conn)) or ""
        tenant = tenant_of(conn) if conn is not None else None
        self.tenant = tenant if isinstance(tenant, Tenant) else None
        self.synced_namespaces: set[str] = set()
        """Rule 4f: consumer namespaces holding a live object of a bound namespaced API."""
        self.unlisted: list[str] = []
        """Rule 4f: bound APIs whose list failed (then `synced_namespaces` is not known)."""

    def _finish(self, why: str, *tail: Action) -> Plan:
        self.status["conditions"] = self.conds.to_json()
        update = status_update(self.b, self.ref, self.status)
        return Plan(
            (*self.actions, *([update] if update else []), *self.crd_writes, *tail), why=why
        )

    def _not_syncing(self, reason: str, message: str) -> None:
        """Rules 1 and 3: no API of this binding syncs now; every entry says why."""
        for e in o.list_at(self.status, "boundAPIs"):
            if isinstance(e, dict) and isinstance(e.get("name"), str):
                api = Conditions(e.get("conditions"), o.generation(self.b), self.conds.now)
                api.set(c.READY, False, reason, f"{e['name']}: {message}")
                e["conditions"] = api.to_json()

    def _others(self) -> tuple[list[o.Obj], list[o.Obj]]:
        """Every other ClusterBinding and Binding (live or not)."""
        reads = (List(CONSUMER, CLUSTERBINDINGS), List(CONSUMER, BINDINGS))
        need_all(self.view.observed, reads)
        # A failed list raises (never read as "no other binding").
        cbs, bs = (list_items(self.view.observed, r) for r in reads)
        me = (self.b.get("kind"), o.key_of(self.b))

        def other(x: o.Obj, kind: str) -> bool:
            return (kind, o.key_of(x)) != me

        return (
            [x for x in cbs if other(x, "ClusterBinding")],
            [x for x in bs if other(x, "Binding")],
        )

    def plan(self) -> Plan:
        if o.is_deleting(self.b):
            return self._unbind()
        fins = o.finalizers(self.b)
        if keys.FINALIZER_CLEANUP not in fins:
            add = AddFinalizer(
                self.ref,
                keys.FINALIZER_CLEANUP,
                o.resource_version(self.b),
                (*fins, keys.FINALIZER_CLEANUP),
            )
            return Plan((add,), why="adding the cleanup finalizer")
        conn = self.view.connection
        if conn is None:
            msg = f'Connection "{connection_name(self.b)}" not found yet'
            self.conds.set(c.CONNECTED, False, c.PENDING, msg)
            self.conds.set(c.READY, False, c.PENDING, msg)
            self._not_syncing(c.PENDING, f"{msg}; objects are not synced")
            return self._finish("no connection")
        if (
            o.is_deleting(conn)
            or not condition_is_true(conn, c.READY)
            or not isinstance(self.view.credentials, Credentials)
            or not self.local_uid
        ):
            msg = f'Connection "{o.name(conn)}" not ready yet'
            self.conds.set(c.CONNECTED, False, c.PENDING, msg)
            self.conds.set(c.READY, False, c.PENDING, msg)
            self._not_syncing(c.PENDING, f"{msg}; objects are not synced")
            return self._finish("connection not ready")
        self.conds.set(c.CONNECTED, True, c.AS_EXPECTED, f'Connection "{o.name(conn)}" is ready')
        return self._bind()

    # -- rule 4 ------------------------------------------------------------------------------
    def _bind(self) -> Plan:
        source = self.cstatus.get("activeSchemaSource")
        exported = {
            a["name"]: a
            for a in o.list_at(self.cstatus, "exportedAPIs")
            if isinstance(a, Mapping) and isinstance(a.get("name"), str)
        }
        cbs, _ = self._others()
        names = api_names(self.b)
        is_binding = self.b.get("kind") == "Binding"
        _, pull, update = schema_policy(self.view.connection or {})
        observed = self.view.observed
        # Ask for every CRD read of every API in one round.
        reads: list[Get] = []
        for n in names:
            reads.append(Get(CONSUMER, CRDS, ObjectKey("", n)))
            if n in exported and source != "OpenAPI":
                reads.append(Get(PROVIDER, CRDS, ObjectKey("", n)))
        need_all(observed, tuple(reads))

        bound: list[dict[str, Any]] = []
        not_exported: list[str] = []
        pending: list[str] = []
        refusals: list[tuple[str, str]] = []
        forbidden = ""
        installed: dict[str, o.Obj] = {}
        for n in names:
            entry: dict[str, Any] = {"name": n}
            api_conds = Conditions(self._api_conditions(n), o.generation(self.b), self.conds.now)
            bound.append(entry)
            if is_binding and any(not o.is_deleting(cb) and lists_api(cb, n) for cb in cbs):
                winner = next(
                    o.name(cb)
                    for cb in sorted(cbs, key=o.name)
                    if not o.is_deleting(cb) and lists_api(cb, n)
                )
                api_conds.set(
                    c.READY,
                    False,
                    c.BOUND_BY_CLUSTER_BINDING,
                    f"ClusterBinding {winner} binds {n} in every namespace; this Binding does not",
                )
                entry["conditions"] = api_conds.to_json()
                continue
            api = exported.get(n)
            consumer_crd = observed[Get(CONSUMER, CRDS, ObjectKey("", n))]
            if isinstance(consumer_crd, Failed):
                pending.append(
                    f"{n}: reading the consumer CRD failed: {consumer_crd.error.message}"
                )
                api_conds.set(c.READY, False, c.PENDING, pending[-1])
                entry["conditions"] = api_conds.to_json()
                continue
            refusal: tuple[str, str] | None = None
            waiting = updating = ""
            if api is None:
                not_exported.append(n)
                api_conds.set(c.READY, False, c.API_NOT_EXPORTED, f"{n} is not exported")
            elif self.tenant is not None and api.get("scope") == "Cluster":
                refusal = (
                    c.CLUSTER_SCOPED_API,
                    f"{n} is cluster-scoped; a provider shared by several consumers cannot "
                    "bind a cluster-scoped API to one of them",
                )
            elif is_binding and api.get("scope") == "Cluster":
                refusal = (
                    c.CLUSTER_SCOPED_API,
                    f"{n} is cluster-scoped; only a ClusterBinding can bind it",
                )
            elif source == "OpenAPI":
                crd = consumer_crd if isinstance(consumer_crd, dict) else None
                changed = schema.refuse_exported_change(crd, api) if crd is not None else None
                if crd is None:
                    waiting = f"waiting for the Connection to install the synthesized CRD {n}"
                elif not schema.owned_by(crd, self.conn_name):
                    refusal = (c.FOREIGN_CRD, f"consumer CRD {n} is not managed by this Connection")
                elif changed is not None:  # rule 4d
                    entry["crdHash"] = schema.live_hash(crd)
                    refusal = (changed.reason, changed.message)
                else:
                    entry["crdHash"] = schema.live_hash(crd)
                    waiting = "" if schema.established(crd) else f"waiting for CRD {n}"
                    installed[n] = crd
            else:
                provider_crd = observed[Get(PROVIDER, CRDS, ObjectKey("", n))]
                if isinstance(provider_crd, Failed):
                    if provider_crd.error.code == 403:
                        forbidden = f'pulling CRD "{n}" is forbidden by provider RBAC'
                        api_conds.set(c.READY, False, c.FORBIDDEN, forbidden)
                    else:
                        waiting = f"reading provider CRD {n} failed: {provider_crd.error.message}"
                elif provider_crd is None:
                    not_exported.append(n)
                    api_conds.set(c.READY, False, c.API_NOT_EXPORTED, f"{n} is not exported")
                else:
                    current = consumer_crd if isinstance(consumer_crd, dict) else None
                    r = schema.refuse_install(provider_crd, current, self.conn_name)
                    if r is not None:
                        if current is not None and schema.owned_by(current, self.conn_name):
                            entry["crdHash"] = schema.live_hash(current)  # rule 4f
                        refusal = (r.reason, r.message)
                    else:
                        install = schema.plan_install(
                            schema.for_consumer(provider_crd, self.conn_name),
                            current,
                            connection=self.conn_name,
                            create=pull != "None",
                            update=update != "Once",
                        )
                        self.crd_writes.extend(install.actions)
                        if install.crd_hash:  # rule 4g: only what is live
                            entry["crdHash"] = install.crd_hash
                        if install.refusal is not None:
                            refusal = (install.refusal.reason, install.refusal.message)
                        elif not install.installed:
                            waiting = f"CRD {n} is not installed (pullPolicy {pull})"
                        else:
                            waiting = install.pending
                            if current is not None and not install.pending:
                                installed[n] = current
                            if current is not None and install.writes_hash:
                                updating = (
                                    f"; its consumer CRD is being updated to the provider's "
                                    f"schema {install.writes_hash}"
                                )
            if refusal is not None:
                refusals.append(refusal)
                api_conds.set(c.READY, False, refusal[0], refusal[1])
            elif waiting:
                pending.append(waiting)
                api_conds.set(c.READY, False, c.PENDING, waiting)
            elif n in installed:
                api_conds.set(c.READY, True, c.AS_EXPECTED, f"{n} is bound{updating}")
            if n in installed:
                entry["conflictCount"] = self._conflicts(installed[n])
            entry["conditions"] = api_conds.to_json()
        bound.sort(key=lambda e: str(e["name"]))
        self.status["boundAPIs"] = bound
        return self._summarize(not_exported, pending, refusals, forbidden, bound)

    def _api_conditions(self, name: str) -> Any:
        for e in o.list_at(self.status, "boundAPIs"):
            if isinstance(e, Mapping) and e.get("name") == name:
                return e.get("conditions")
        return None

    def _conflicts(self, crd: o.Obj) -> int:
        served = served_resource(crd)
        if served is None:
            return 0
        (items,) = need_all(self.view.observed, (List(CONSUMER, served.gvr, self.scope),))
        if not isinstance(items, list):
            if isinstance(items, Failed):
                self.unlisted.append(f"{served.gvr.group_resource} failed: {items.error.message}")
            return 0  # a failed list counts as no conflicts, as upstream
        if served.namespaced:
            self.synced_namespaces.update(
                o.namespace(i)
                for i in items
                if isinstance(i, Mapping) and o.namespace(i) and not o.is_deleting(i)
            )
        return sum(1 for i in items if o.annotations_of(i).get(keys.ANNOTATION_CONFLICT))

    def _summarize(
        self,
        not_exported: list[str],
        pending: list[str],
        refusals: list[tuple[str, str]],
        forbidden: str,
        bound: list[dict[str, Any]],
    ) -> Plan:
        """Rules 5 and 6."""
        syncing = [str(e["name"]) for e in bound if api_is_ready(e)]
        problems: list[tuple[str, str]] = []
        if forbidden:
            self.conds.set(c.PERMISSION_DENIED, True, c.FORBIDDEN, forbidden)
            problems.append((c.FORBIDDEN, forbidden))
        else:
            self.conds.set(c.PERMISSION_DENIED, False, c.AS_EXPECTED, "no RBAC denials")
        problems.extend(refusals)
        if not_exported:
            problems.append(
                (
                    c.API_NOT_EXPORTED,
                    f"APIs not exported by the provider yet: {', '.join(not_exported)}",
                )
            )
        if pending:
            problems.append((c.PENDING, "; ".join(pending)))
        if problems and not syncing:
            self._not_ready(problems, syncing)
            return self._finish("not bound")
        rules, bad = related_rules(self.b)
        try:
            if self.unlisted and not self.scope:
                # Which namespaces hold objects is unknown: nothing is copied or collected on a
                # guess (an empty answer would delete every copy); related resources wait.
                rp = related.EMPTY
            else:
                rp = related.plan_related(
                    rules,
                    binding_uid=o.uid(self.b),
                    scope_namespace=self.scope,
                    local_cluster_uid=self.local_uid,
                    observed=self.view.observed,
                    konnector_namespace=self.view.konnector_namespace,
                    synced_namespaces=({self.scope} if self.scope else self.synced_namespaces),
                    tenant=self.tenant,
                )
        except ApiError as err:
            self.conds.set(c.RELATED_RESOURCES, False, c.PENDING, f"reading failed: {err}")
            problems.append((c.PENDING, f"related resources: {err.message}"))
            self._not_ready(problems, syncing)
            return self._finish("related failed")
        self.actions.extend(rp.actions)
        instance_conflicts = sum(int(e.get("conflictCount") or 0) for e in bound)
        total = instance_conflicts + len(rp.conflicts)
        if total:
            parts = []
            if instance_conflicts:
                parts.append(
                    f"{instance_conflicts} object(s) skipped due to foreign ownership; "
                    "see object Events"
                )
            parts.extend(x.message for x in rp.conflicts)
            self.conds.set(c.CONFLICTS, True, c.FOREIGN_OBJECT_EXISTS, "; ".join(parts))
        else:
            self.conds.set(c.CONFLICTS, False, c.AS_EXPECTED, "no conflicts")
        self._related_condition(rules, bad, rp)
        if problems:
            self._not_ready(problems, syncing)
            return self._finish("partly bound")
        self.conds.set(c.SYNCED, True, c.AS_EXPECTED, "all APIs installed")
        self.conds.set(c.READY, True, c.AS_EXPECTED, "binding ready")
        return self._finish("bound")

    def _related_condition(
        self, rules: tuple[RelatedResource, ...], bad: str, rp: related.RelatedPlan
    ) -> None:
        """Rule 6: the `RelatedResources` condition. Rules that do not parse, rules that
        cannot be followed (a non-core group, a bad selector, FromConsumer without one), and
        objects the trust boundary refused: the related rules' own condition says so; instance
        sync (Ready) is not affected."""
        if (rules or bad) and self.unlisted and not self.scope:
            why = "; ".join(self.unlisted)
            self.conds.set(
                c.RELATED_RESOURCES,
                False,
                c.PENDING,
                f"waiting to learn which namespaces hold objects (rule T1): listing {why}",
            )
        elif rules or bad:
            errors = tuple(m for m in (bad, *rp.errors) if m)
            status, reason, message = related.summary(attrs.evolve(rp, errors=errors))
            self.conds.set(c.RELATED_RESOURCES, status, reason, message)
        else:
            self.conds.remove(c.RELATED_RESOURCES)

    def _not_ready(self, problems: list[tuple[str, str]], syncing: list[str]) -> None:
        """Rule 6: Ready and Synced False with the first problem's reason, every problem and
        the APIs that are bound and syncing nonetheless."""
        message = "; ".join(m for _, m in problems)
        if syncing:
            message += f"; bound and syncing: {', '.join(syncing)}"
        self.conds.set(c.SYNCED, False, problems[0][0], message)
        self.conds.set(c.READY, False, problems[0][0], message)

    # -- rule 1 ------------------------------------------------------------------------------
    def _unbind(self) -> Plan:
        if keys.FINALIZER_CLEANUP not in o.finalizers(self.b):
            return Plan(why="deleting; finalizer already released")
        self._not_syncing(c.DRAINING_OBJECTS, "the binding is being deleted; nothing is synced")
        try:
            return self._drain()
        except ApiError as err:
            # A read the drain depends on failed: nothing is released on a guess. Say why the
            # binding is still here, and try again (the user can fix the kubeconfig, or remove
            # the finalizer to give up on the provider copies).
            self.actions.clear()
            self.conds.set(
                c.READY,
                False,
                c.DRAINING_OBJECTS,
                f"cannot finish unbinding yet: {err.reason}: {err.message}; retrying",
            )
            return self._finish("drain blocked", RequeueAfter(DRAIN_RETRY_SECONDS))

    def _drain(self) -> Plan:
        cbs, bs = self._others()
        live_cbs = [x for x in cbs if not o.is_deleting(x)]
        live_bs = [x for x in bs if not o.is_deleting(x)]
        conn = self.view.connection
        wrong_cluster = misdirected(conn) if conn is not None else ""
        reach = (
            isinstance(self.view.credentials, Credentials)
            and bool(self.local_uid)
            and not wrong_cluster
        )
        observed = self.view.observed
        names = api_names(self.b)
        crds = need_all(observed, tuple(Get(CONSUMER, CRDS, ObjectKey("", n)) for n in names))
        left = 0
        holding: dict[str, int] = {}
        for n, crd in zip(names, crds, strict=True):
            if isinstance(crd, Failed):
                raise crd.error  # never read a failed read as "no CRD": that skips the drain
            served = served_resource(crd) if isinstance(crd, dict) else None
            if served is None:
                continue
            (items,) = need_all(observed, (List(CONSUMER, served.gvr, self.scope),))
            if isinstance(items, Failed):
                raise items.error
            mine = drained_objects(n, items, live_cbs, live_bs)
            holding[n] = len(mine)
            copies = self._provider_copies(served.gvr, mine) if reach else {}
            for i in mine:
                ref = ObjectRef(CONSUMER, served.gvr, o.key_of(i))
                if wrong_cluster and not is_orphaned(i):
                    left += 1  # its copy on the real provider cannot be reached: keep holding
                    continue
                copy = copies.get(o.key_of(i))
                pref = ObjectRef(PROVIDER, served.gvr, o.key_of(copy if copy is not None else i))
                step = release_or_delete(i, ref, copy, pref, self.local_uid)
                if not isinstance(step, RemoveFinalizer):
                    left += 1  # our copy is being deleted: the object waits for it
                if step is not None:
                    self.actions.append(step)
        for n, crd in zip(names, crds, strict=True):
            drained = isinstance(crd, dict) and not holding.get(n, 0)
            if drained and unbind_uninstalls(self.b, n, live_cbs, live_bs):
                self.actions.extend(schema.plan_uninstall(crd, connection=self.conn_name))
                if not o.is_deleting(crd) and schema.created_by(crd, self.conn_name):
                    left += 1
        related_left = False
        if reach:
            rules, _ = related_rules(self.b)
            rp = related.plan_related(
                rules,
                binding_uid=o.uid(self.b),
                scope_namespace=self.scope,
                local_cluster_uid=self.local_uid,
                observed=observed,
                konnector_namespace=self.view.konnector_namespace,
                unbinding=True,
                tenant=self.tenant,
            )
            self.actions.extend(rp.actions)
            related_left = rp.draining
        waiting = left + sum(holding.values())
        if reach and not waiting and not related_left and self.tenant is None:
            self.actions.extend(self._namespace_cleanup(names, crds))
        if waiting or related_left:
            blocked = (
                f": {wrong_cluster}; point its kubeconfig back at the provider, or remove the "
                f"{keys.FINALIZER_CLEANUP} finalizer to leave the provider copies behind"
                if wrong_cluster
                else ""
            )
            self.conds.set(
                c.READY,
                False,
                c.DRAINING_OBJECTS,
                f"waiting for {waiting} object(s){' and related copies' if related_left else ''}"
                f" to be cleaned up{blocked}",
            )
            return self._finish("draining", RequeueAfter(DRAIN_REQUEUE_SECONDS))
        rest = tuple(f for f in o.finalizers(self.b) if f != keys.FINALIZER_CLEANUP)
        self.actions.append(
            RemoveFinalizer(self.ref, keys.FINALIZER_CLEANUP, o.resource_version(self.b), rest)
        )
        return Plan(tuple(self.actions), why="unbound")

    def _namespace_cleanup(self, names: list[str], crds: tuple[Any, ...]) -> tuple[Action, ...]:
        """Rule 1e: our provider namespaces in scope that are now empty (kbcore.sync.namespaces)."""
        only: set[str] | None = None
        if self.scope:
            gvrs = [s.gvr for s in (served_resource(c) for c in crds if isinstance(c, dict)) if s]
            gvr = gvrs[0] if gvrs else GVR("", "v1", "")
            only = {self.view.mapper.to_provider(gvr, ObjectKey(self.scope, "")).namespace}
        return namespaces.plan_namespace_cleanup(
            self.view.observed, local_cluster_uid=self.local_uid, only=only
        )

    def _in_granted_namespaces(self, items: list[o.Obj]) -> list[o.Obj]:
        """Rule 1, for a tenant: the objects whose namespace's claim is granted, read fresh."""
        tenant = self.tenant
        assert tenant is not None
        spaces = sorted({o.namespace(i) for i in items if o.namespace(i)})
        reads = tuple(Get(PROVIDER, BOUND_NAMESPACES, claim_ref(tenant, n).key) for n in spaces)
        granted = set()
        for n, claim in zip(spaces, need_all(self.view.observed, reads), strict=True):
            if isinstance(claim, Failed):
                raise claim.error
            if claim_state(tenant, n, claim if isinstance(claim, dict) else None) is Claim.GRANTED:
                granted.add(n)
        return [i for i in items if o.namespace(i) in granted]

    def _provider_copies(self, gvr: GVR, items: list[o.Obj]) -> dict[ObjectKey, o.Obj]:
        """Fresh provider copies of `items`, keyed by the consumer key."""
        if self.tenant is not None:
            items = self._in_granted_namespaces(items)
        keyed = {o.key_of(i): self.view.mapper.to_provider(gvr, o.key_of(i)) for i in items}
        reads = tuple(Get(PROVIDER, gvr, pk) for pk in keyed.values())
        results = need_all(self.view.observed, reads)
        out: dict[ObjectKey, o.Obj] = {}
        for ck, result in zip(keyed, results, strict=True):
            if isinstance(result, Failed):
                raise result.error
            if isinstance(result, dict):
                out[ck] = result
        return out
