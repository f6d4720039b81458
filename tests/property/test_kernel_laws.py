"""The laws of the instance kernel (docs/design.md, "The laws"), as hypothesis properties.

Each law is stated from the documented behaviour (instance sync, conflicts, deletion), not read
off the implementation: ownership is
re-derived by `strategies.ownership_of`, and JSON values are compared by `json_equal` (in which
`true` is not `1`). Views come from `strategies.instance_views` (well-formed, every aspect drawn:
ours / foreign / owned-by-another / absent copies, deleting or not, fresh or cached, mappers) and
`strategies.malformed_views` (anything JSON).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbcore import actions as act
from kbcore.actions import PROVIDER
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES
from kbcore.api.types import ConflictPolicy
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.reads import Get
from kbcore.runtime.requests import to_request
from kbcore.sync.coverage import Coverage
from kbcore.sync.instance import InstanceView, desired_provider_body, plan_instance, read_fresh
from kbcore.sync.tenancy import Claim, claim_ref, claim_state
from tests.property.strategies import (
    GADGETS,
    LOCAL_CLUSTER_UID,
    MAPPERS,
    TENANT,
    WIDGETS,
    Kind,
    bound_coverages,
    consumer_objects,
    instance_views,
    json_contains,
    json_equal,
    json_keys,
    json_objects,
    json_values,
    malformed_views,
    namespace_exists,
    ownership_of,
    server_copy,
    variants_of,
    with_reads,
)

# The loaded profile (tests/property/conftest.py: dev 30, ci 300, nightly 5000) sets the budget.
# These laws draw whole views, so they run a third of it, and never fewer than 50 examples.
LAW = settings(
    max_examples=max(50, settings().max_examples // 3),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ACTION_TYPES = (
    act.AddFinalizer,
    act.RemoveFinalizer,
    act.Apply,
    act.Create,
    act.CreateNamespace,
    act.Delete,
    act.MergePatch,
    act.UpdateStatus,
    act.EmitEvent,
    act.RequeueAfter,
)

# Two in three views are well-formed (where the interesting plans are; one of them of a live,
# covered object, where the writes are), one is anything at all.
_views = instance_views(local_cluster_uid=None)
_live_views = bound_coverages.flatmap(lambda cov: instance_views(coverage=cov, deleting=False))
any_views = st.one_of(_views, _live_views, malformed_views())


# --- helpers ----------------------------------------------------------------------------------


def meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    m = obj.get("metadata") if obj is not None else None
    return m if isinstance(m, Mapping) else {}


def string(m: Mapping[str, Any], field: str) -> str:
    v = m.get(field)
    return v if isinstance(v, str) else ""


def uid(obj: Mapping[str, Any] | None) -> str:
    return string(meta(obj), "uid")


def deleting(obj: Mapping[str, Any] | None) -> bool:
    return string(meta(obj), "deletionTimestamp") != ""


def holds_finalizer(obj: Mapping[str, Any]) -> bool:
    fins = meta(obj).get("finalizers")
    return isinstance(fins, list) and keys.FINALIZER_SYNCER in fins


def annotation(obj: Mapping[str, Any], key: str) -> str | None:
    ann = meta(obj).get("annotations")
    v = ann.get(key) if isinstance(ann, Mapping) else None
    return v if isinstance(v, str) else None


def orphan(obj: Mapping[str, Any]) -> bool:
    return annotation(obj, keys.ANNOTATION_DELETION_POLICY) == keys.DELETION_POLICY_ORPHAN


def consumer_key(obj: Mapping[str, Any]) -> ObjectKey:
    return ObjectKey(string(meta(obj), "namespace"), string(meta(obj), "name"))


def provider_ref(view: InstanceView) -> ObjectRef:
    assert view.consumer is not None
    return ObjectRef(
        PROVIDER, view.gvr, view.mapper.to_provider(view.gvr, consumer_key(view.consumer))
    )


def ownership(view: InstanceView) -> Kind:
    if view.provider is None:
        return Kind.ABSENT
    assert view.consumer is not None
    return ownership_of(view.provider, view.local_cluster_uid, uid(view.consumer))


def is_provider_write(a: act.Action) -> bool:
    if isinstance(a, act.CreateNamespace):
        return True
    target = getattr(a, "target", None)
    return isinstance(target, ObjectRef) and target.cluster == PROVIDER


def containers(value: Any) -> Iterator[int]:
    """The ids of every dict and list inside `value` (to detect aliasing)."""
    if isinstance(value, dict):
        yield id(value)
        for v in value.values():
            yield from containers(v)
    elif isinstance(value, list):
        yield id(value)
        for v in value:
            yield from containers(v)


def without(obj: Mapping[str, Any], *fields: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in fields}


# --- determinism and totality -----------------------------------------------------------------


@LAW
@given(any_views)
def test_determinism(view: InstanceView) -> None:
    """The same view gives an equal plan, however the inputs are copied."""
    twin = InstanceView(
        view.gvr,
        view.namespaced,
        copy.deepcopy(view.consumer),
        view.coverage,
        copy.deepcopy(view.provider),
        view.local_cluster_uid,
        view.mapper,
        observed=copy.deepcopy(dict(view.observed)),
    )
    assert plan_instance(view) == plan_instance(view) == plan_instance(twin)


@LAW
@given(any_views)
def test_purity(view: InstanceView) -> None:
    """Planning mutates nothing, and plan bodies share no mutable part with the inputs (shells
    may not mutate bodies, but a kernel that aliased inputs would break on the first that did)."""
    consumer, prov = copy.deepcopy(view.consumer), copy.deepcopy(view.provider)
    plan = plan_instance(view)
    assert view.consumer == consumer
    assert view.provider == prov
    inputs = set(containers(view.consumer)) | set(containers(view.provider))
    for a in plan.actions:
        for field in ("body", "patch"):
            assert not inputs & set(containers(getattr(a, field, None)))


@LAW
@given(any_views, st.floats(0, 4e9))
def test_totality(view: InstanceView, now: float) -> None:
    """Any input, however malformed, yields a Plan of known actions that all become requests."""
    plan = plan_instance(view)
    assert isinstance(plan, act.Plan)
    assert all(isinstance(a, ACTION_TYPES) for a in plan.actions)
    assert all(isinstance(n, Get) for n in plan.needs)
    assert isinstance(plan.why, str) and plan.why
    for a in plan.actions:
        req = to_request(a, now)
        assert (req is None) == isinstance(a, act.RequeueAfter)


@LAW
@given(any_views)
def test_a_plan_that_needs_a_read_writes_nothing(view: InstanceView) -> None:
    plan = plan_instance(view)
    if plan.needs:
        assert plan.actions == ()


# --- safety -----------------------------------------------------------------------------------


@LAW
@given(any_views)
def test_safety_delete(view: InstanceView) -> None:
    """Only our copy is deleted, with its own UID as precondition, for a deleting consumer object
    that holds our finalizer and is not orphaning."""
    for a in plan_instance(view).actions:
        if not isinstance(a, act.Delete):
            continue
        c, p = view.consumer, view.provider
        assert c is not None and p is not None
        assert ownership(view) is Kind.OURS
        assert a.uid == uid(p) != ""
        assert a.target == provider_ref(view)
        assert deleting(c) and holds_finalizer(c) and not orphan(c)
        assert not deleting(p)


@LAW
@given(any_views)
def test_safety_apply(view: InstanceView) -> None:
    """Apply goes only onto a copy that exists: never onto one owned by another, nor onto a
    foreign-unmanaged one unless the binding says Adopt, nor onto one being deleted, always with
    the copy's UID as precondition; and only for a covered, non-deleting consumer object."""
    plan = plan_instance(view)
    for a in plan.actions:
        if not isinstance(a, act.Apply):
            continue
        c, p = view.consumer, view.provider
        assert c is not None
        assert view.coverage.bound and not deleting(c)
        assert a.target == provider_ref(view)
        assert a.field_manager == keys.FIELD_MANAGER and a.force
        assert p is not None, "a copy believed absent is created, never applied blind"
        kind = ownership(view)
        assert kind is Kind.OURS or (
            kind is Kind.FOREIGN_UNMANAGED and view.coverage.conflict_policy == ConflictPolicy.ADOPT
        )
        assert not deleting(p)
        if uid(p):
            assert a.body["metadata"]["uid"] == uid(p)


@LAW
@given(any_views)
def test_safety_create(view: InstanceView) -> None:
    """A copy is created (POST, which fails on an existing object) only where a fresh read found
    none, for a covered, non-deleting consumer object, at the mapped key."""
    for a in plan_instance(view).actions:
        if not isinstance(a, act.Create):
            continue
        c = view.consumer
        assert c is not None
        assert view.coverage.bound and not deleting(c)
        assert view.provider is None and read_fresh(view)
        assert a.target == provider_ref(view)
        assert a.field_manager == keys.FIELD_MANAGER
        assert "uid" not in a.body["metadata"]


@LAW
@given(any_views)
def test_safety_create_namespace(view: InstanceView) -> None:
    """A namespace is created only when a fresh read found neither copy nor namespace, and it is
    the mapped namespace of the copy about to be applied."""
    plan = plan_instance(view)
    for i, a in enumerate(plan.actions):
        if not isinstance(a, act.CreateNamespace):
            continue
        assert view.provider is None and read_fresh(view)
        assert namespace_exists(view) is False
        assert a.cluster == PROVIDER and a.name == provider_ref(view).key.namespace != ""
        assert a.labels == {
            keys.LABEL_MANAGED: "true",
            keys.ANNOTATION_CONSUMER_CLUSTER_UID: view.local_cluster_uid,
        }
        assert any(isinstance(b, act.Create) for b in plan.actions[i + 1 :])


@LAW
@given(any_views)
def test_safety_remove_finalizer(view: InstanceView) -> None:
    """The finalizer is released only for a deleting consumer object, and only when Orphan, or a
    fresh read found no copy, or a fresh read found a copy that is not ours."""
    for a in plan_instance(view).actions:
        if not isinstance(a, act.RemoveFinalizer):
            continue
        c = view.consumer
        assert c is not None
        assert deleting(c) and holds_finalizer(c)
        assert a.finalizer == keys.FINALIZER_SYNCER
        assert keys.FINALIZER_SYNCER not in a.finalizers
        fins = meta(c)["finalizers"]
        assert list(a.finalizers) == [
            f for f in fins if isinstance(f, str) and f != keys.FINALIZER_SYNCER
        ]
        assert a.resource_version == string(meta(c), "resourceVersion")
        assert orphan(c) or (read_fresh(view) and ownership(view) is not Kind.OURS)


@LAW
@given(any_views)
def test_finalizer_precedes_every_provider_write(view: InstanceView) -> None:
    """When the consumer object lacks our finalizer, AddFinalizer comes before the first write to
    the provider: no provider copy exists that the consumer object is not holding on to."""
    c = view.consumer
    if c is None:
        return
    plan = plan_instance(view)
    writes = [i for i, a in enumerate(plan.actions) if is_provider_write(a)]
    if not writes:
        return
    adds = [i for i, a in enumerate(plan.actions) if isinstance(a, act.AddFinalizer)]
    if holds_finalizer(c):
        assert adds == []
    else:
        assert not deleting(c)
        assert adds and adds[0] < writes[0]
        add = plan.actions[adds[0]]
        assert isinstance(add, act.AddFinalizer)
        assert add.finalizers[-1] == keys.FINALIZER_SYNCER
        assert add.resource_version == string(meta(c), "resourceVersion")


@LAW
@given(any_views)
def test_not_covered_and_not_deleting_writes_nothing(view: InstanceView) -> None:
    c = view.consumer
    if c is None or view.coverage.bound or deleting(c):
        return
    plan = plan_instance(view)
    assert plan.actions == () and plan.needs == ()


@LAW
@given(any_views)
def test_deleting_never_writes_to_a_copy_that_is_not_ours(view: InstanceView) -> None:
    c = view.consumer
    if c is None or not deleting(c):
        return
    plan = plan_instance(view)
    assert not any(
        isinstance(a, act.Apply | act.Create | act.CreateNamespace | act.AddFinalizer)
        for a in plan.actions
    )
    if not holds_finalizer(c):
        assert plan.actions == () and plan.needs == ()


conflict_views = st.tuples(
    bound_coverages, st.sampled_from([Kind.FOREIGN_UNMANAGED, Kind.OWNED_BY_ANOTHER])
).flatmap(lambda ck: instance_views(coverage=ck[0], kind=ck[1], deleting=False))


@LAW
@given(conflict_views)
def test_conflict_never_touches_the_provider(view: InstanceView) -> None:
    """A copy we may not take is never written; the consumer object is annotated with the reason
    and one Warning is emitted, only when the annotation does not say so already."""
    c, kind = view.consumer, ownership(view)
    assert c is not None
    if deleting(c) or kind in (Kind.ABSENT, Kind.OURS):
        return
    if not (uid(c) and view.local_cluster_uid):
        return
    if kind is Kind.FOREIGN_UNMANAGED and view.coverage.conflict_policy == ConflictPolicy.ADOPT:
        return
    plan = plan_instance(view)
    assert not any(is_provider_write(a) for a in plan.actions)
    reason = "ForeignObjectExists" if kind is Kind.FOREIGN_UNMANAGED else "OwnedByAnother"
    rest = [a for a in plan.actions if not isinstance(a, act.AddFinalizer)]
    if annotation(c, keys.ANNOTATION_CONFLICT) == reason:
        assert rest == []
    else:
        assert len(rest) == 2
        patch, event = rest
        assert isinstance(patch, act.MergePatch) and isinstance(event, act.EmitEvent)
        assert patch.patch == {"metadata": {"annotations": {keys.ANNOTATION_CONFLICT: reason}}}
        assert (event.type, event.reason, event.uid) == ("Warning", reason, uid(c))


def annotation_after(c: Mapping[str, Any], plan: act.Plan) -> str | None:
    """The conflict annotation once the plan's merge patches are applied."""
    value = annotation(c, keys.ANNOTATION_CONFLICT)
    for a in plan.actions:
        if isinstance(a, act.MergePatch):
            patched = a.patch.get("metadata", {}).get("annotations", {})
            if keys.ANNOTATION_CONFLICT in patched:
                value = patched[keys.ANNOTATION_CONFLICT]
    return value


@LAW
@given(
    bound_coverages.flatmap(
        lambda cov: instance_views(coverage=cov, deleting=False, provider_deleting=False)
    )
)
def test_conflict_annotation_tracks_the_conflict(view: InstanceView) -> None:
    """After a plan that decides (needs no read), the consumer object carries the conflict
    annotation with the right reason exactly when its copy may not be taken, and none otherwise
    (a clean sync removes a stale one)."""
    c = view.consumer
    assert c is not None
    plan = plan_instance(view)
    if plan.needs or not uid(c):
        return
    kind = ownership(view)
    adopt = kind is Kind.FOREIGN_UNMANAGED and view.coverage.conflict_policy == ConflictPolicy.ADOPT
    if kind in (Kind.ABSENT, Kind.OURS) or adopt:
        assert annotation_after(c, plan) is None
    else:
        reason = "ForeignObjectExists" if kind is Kind.FOREIGN_UNMANAGED else "OwnedByAnother"
        assert annotation_after(c, plan) == reason


# --- direction --------------------------------------------------------------------------------


@LAW
@given(any_views)
def test_direction_bodies_carry_only_spec_and_markers(view: InstanceView) -> None:
    """What goes up (apply or create) is apiVersion, kind, name/namespace at the mapped key, our
    marker label and annotations, and the consumer spec verbatim: nothing else."""
    for a in plan_instance(view).actions:
        if not isinstance(a, act.Apply | act.Create):
            continue
        c = view.consumer
        assert c is not None
        body = a.body
        assert set(body) <= {"apiVersion", "kind", "metadata", "spec"}
        assert body["apiVersion"] == c.get("apiVersion", "")
        assert body["kind"] == c.get("kind", "")
        m = body["metadata"]
        target = provider_ref(view).key
        assert set(m) <= {"name", "namespace", "uid", "labels", "annotations"}
        assert m["name"] == target.name
        assert m.get("namespace", "") == target.namespace
        assert m["labels"] == {keys.LABEL_MANAGED: "true"}
        assert m["annotations"] == {
            keys.ANNOTATION_CONSUMER_CLUSTER_UID: view.local_cluster_uid,
            keys.ANNOTATION_CONSUMER_OBJECT_UID: uid(c),
        }
        assert ("spec" in body) == ("spec" in c)
        if "spec" in c:
            assert json_equal(body["spec"], c["spec"])


@LAW
@given(any_views)
def test_direction_update_status_changes_only_status(view: InstanceView) -> None:
    """Status comes down from our copy alone, exactly, and nothing else of the consumer object
    changes (the body carries the resourceVersion it was planned from)."""
    for a in plan_instance(view).actions:
        if not isinstance(a, act.UpdateStatus):
            continue
        c, p = view.consumer, view.provider
        assert c is not None and p is not None
        assert ownership(view) is Kind.OURS and holds_finalizer(c)
        assert json_equal(without(a.body, "status"), without(c, "status"))
        assert ("status" in a.body) == (p.get("status") is not None)
        if "status" in a.body:
            assert json_equal(a.body["status"], p["status"])


# --- mirroring and drift ----------------------------------------------------------------------

synced_views = bound_coverages.flatmap(
    lambda coverage: instance_views(
        coverage=coverage,
        kind=Kind.OURS,
        deleting=False,
        holds_finalizer=True,
        provider_deleting=False,
    )
)


def status_of(obj: Mapping[str, Any]) -> Any:
    return obj.get("status")


@LAW
@given(synced_views)
def test_status_is_mirrored_exactly(view: InstanceView) -> None:
    """After the plan, the consumer status is the copy's status, exactly (absent when the copy
    has none): either it already was, or the plan writes it."""
    c, p = view.consumer, view.provider
    assert c is not None and p is not None
    plan = plan_instance(view)
    updates = [a for a in plan.actions if isinstance(a, act.UpdateStatus)]
    if json_equal(status_of(c), status_of(p)):
        assert updates == []
    else:
        assert len(updates) == 1
        assert json_equal(status_of(updates[0].body), status_of(p))


@LAW
@given(synced_views)
def test_spec_drift_is_repaired(view: InstanceView) -> None:
    """When our copy lacks a field of the consumer spec or holds another value for it (extra
    fields other managers set are not drift), or it lacks our marker label, the plan applies."""
    c, p = view.consumer, view.provider
    assert c is not None and p is not None
    drift = "spec" in c and ("spec" not in p or not json_contains(p["spec"], c["spec"]))
    labels = meta(p).get("labels")
    unmarked = not isinstance(labels, Mapping) or labels.get(keys.LABEL_MANAGED) != "true"
    if drift or unmarked:
        assert any(isinstance(a, act.Apply) for a in plan_instance(view).actions)


def _our_copy(consumer: dict[str, Any], spec: Any) -> dict[str, Any]:
    """Our copy as the server holds it after applying `consumer` with `spec` (ns/name as is)."""
    c = {**consumer, "spec": spec}
    body = desired_provider_body(c, consumer_key(c), LOCAL_CLUSTER_UID)
    return server_copy(body, uid="p-uid-1", status=copy.deepcopy(consumer.get("status", ...)))


def _synced_view(consumer: dict[str, Any], provider: dict[str, Any]) -> InstanceView:
    view = InstanceView(WIDGETS, True, consumer, Coverage(True), provider, LOCAL_CLUSTER_UID)
    return with_reads(view, fresh=True, namespace_exists=True)


specs = st.dictionaries(json_keys, json_values(8), min_size=1, max_size=4)
ours_consumers = consumer_objects(deleting=False, holds_finalizer=True, conflict=None)


@LAW
@given(ours_consumers, specs.flatmap(lambda s: st.tuples(st.just(s), variants_of(s))))
def test_consumer_spec_edits_are_applied_exactly_when_they_change_something(
    consumer: dict[str, Any], old_new: tuple[Any, Any]
) -> None:
    """Our copy holds what we applied from the old spec; the consumer spec is now a near miss of
    it (a field added, removed, changed, or `true` for `1`). The plan applies if and only if the
    new spec differs from the old as JSON: zero no-op writes, and no edit left behind."""
    old, new = old_new
    view = _synced_view({**consumer, "spec": new}, _our_copy(consumer, old))
    applies = [a for a in plan_instance(view).actions if isinstance(a, act.Apply)]
    assert bool(applies) == (not json_equal(old, new))


@LAW
@given(ours_consumers, specs.flatmap(lambda s: st.tuples(st.just(s), variants_of(s))))
def test_provider_spec_edits_are_overwritten(
    consumer: dict[str, Any], spec_edited: tuple[Any, Any]
) -> None:
    """Someone edits the spec of our copy out of band (near miss of what we applied). The plan
    applies if and only if the copy no longer holds every field we set, with its value."""
    spec, edited = spec_edited
    c = {**consumer, "spec": spec}
    live = _our_copy(c, spec)
    live["spec"] = edited
    applies = [a for a in plan_instance(_synced_view(c, live)).actions if isinstance(a, act.Apply)]
    assert bool(applies) == (not json_contains(edited, spec))


# --- stability --------------------------------------------------------------------------------


@LAW
@given(
    consumer=st.booleans().flatmap(
        lambda ns: consumer_objects(namespaced=ns, deleting=False, holds_finalizer=True)
    ),
    coverage=bound_coverages,
    status=st.one_of(st.just(...), json_objects(6)),
    provider_uid=st.sampled_from(["p-uid-1", "p-uid-2"]),
    fresh=st.booleans(),
    mapper_index=st.integers(0, 1),
    extra=st.dictionaries(st.sampled_from(["app", "tier"]), st.text(max_size=3)),
    associative=st.booleans(),
)
def test_stability(
    consumer: dict[str, Any],
    coverage: Coverage,
    status: Any,
    provider_uid: str,
    fresh: bool,
    mapper_index: int,
    extra: dict[str, str],
    associative: bool,
) -> None:
    """Carry out the plans the way a server would; after the create and one apply, the next
    plan writes nothing.

    The provider copy is what the server holds after our write of the plan's own body (with a
    managedFields entry for the written fields: operation Update after the create, Apply after
    the apply; lists recorded whole or element by element as associative list types make a
    server do) plus a status and metadata of other managers; the consumer object has that
    status and no conflict annotation (the plan's MergePatch).
    """
    namespaced = "namespace" in consumer["metadata"]
    gvr = WIDGETS if namespaced else GADGETS
    mapper = MAPPERS[mapper_index]

    def view_of(c: dict[str, Any], p: dict[str, Any] | None, fresh: bool) -> InstanceView:
        view = InstanceView(gvr, namespaced, c, coverage, p, LOCAL_CLUSTER_UID, mapper)
        return with_reads(view, fresh=fresh, namespace_exists=True)

    def held(body: dict[str, Any], operation: str) -> dict[str, Any]:
        return server_copy(
            body,
            uid=provider_uid,
            status=status,
            extra_labels=extra,
            status_manager=True,
            associative_lists=associative,
            operation=operation,
        )

    first = plan_instance(view_of(consumer, None, True))
    creates = [a for a in first.actions if isinstance(a, act.Create)]
    assert len(creates) == 1
    settled = copy.deepcopy(consumer)
    settled["metadata"].get("annotations", {}).pop(keys.ANNOTATION_CONFLICT, None)
    settled.pop("status", None)
    if status is not ...:
        settled["status"] = copy.deepcopy(status)

    second = plan_instance(view_of(settled, held(creates[0].body, "Update"), fresh))
    applies = [a for a in second.actions if isinstance(a, act.Apply)]
    assert second.actions == tuple(applies) and len(applies) == 1, second

    again = plan_instance(view_of(settled, held(applies[0].body, "Apply"), fresh))
    assert again.writes == (), again
    assert again.needs == ()
    assert again.actions == ()


# --- a tenant of a shared provider (kbcore.sync.tenancy) ------------------------------------

tenant_views = st.one_of(
    instance_views(tenant=TENANT),
    bound_coverages.flatmap(lambda cov: instance_views(tenant=TENANT, coverage=cov)),
    # The create path, where the claim decides: no copy yet, read fresh, bound, not deleting.
    bound_coverages.flatmap(
        lambda cov: instance_views(
            tenant=TENANT, coverage=cov, kind=Kind.ABSENT, fresh=True, deleting=False
        )
    ),
)


def _granted(view: InstanceView) -> bool:
    assert view.consumer is not None
    ns = consumer_key(view.consumer).namespace
    read = Get(PROVIDER, BOUND_NAMESPACES, claim_ref(TENANT, ns).key)
    claim = view.observed.get(read)
    return read in view.observed and claim_state(TENANT, ns, claim) is Claim.GRANTED


@LAW
@given(tenant_views)
def test_a_tenant_writes_only_inside_its_boundary(view: InstanceView) -> None:
    """Every provider write of a tenant is a copy in one of its `<home>-` namespaces or its
    claim in the home namespace; it never creates a namespace."""
    for a in plan_instance(view).actions:
        assert not isinstance(a, act.CreateNamespace)
        if not is_provider_write(a):
            continue
        target = a.target  # type: ignore[union-attr]
        if target.gvr == BOUND_NAMESPACES:
            assert isinstance(a, act.Create)
            assert target.key.namespace == TENANT.namespace
            assert target.key.name == consumer_key(view.consumer).namespace  # type: ignore[arg-type]
        else:
            assert target.key.namespace.startswith(TENANT.prefix)
            assert len(target.key.namespace) > len(TENANT.prefix)


@LAW
@given(tenant_views)
def test_a_tenant_creates_a_copy_only_in_a_granted_namespace(view: InstanceView) -> None:
    """No copy is created, and no provider read is needed there, before the claim is granted."""
    plan = plan_instance(view)
    creates = [
        a for a in plan.actions if isinstance(a, act.Create) and a.target.gvr != BOUND_NAMESPACES
    ]
    if creates:
        assert _granted(view)
    claims_made = [
        a for a in plan.actions if isinstance(a, act.Create) and a.target.gvr == BOUND_NAMESPACES
    ]
    if claims_made:
        assert view.observed.get(Get(PROVIDER, BOUND_NAMESPACES, claims_made[0].target.key)) is None
        assert not creates


@LAW
@given(tenant_views)
def test_a_tenant_releases_without_a_granted_namespace_only_on_a_fresh_claim_read(
    view: InstanceView,
) -> None:
    """A finalizer is released without looking at the copy only when the claim, read fresh,
    is not granted: no copy of ours can be in a namespace never granted."""
    for a in plan_instance(view).actions:
        if isinstance(a, act.RemoveFinalizer) and not orphan(view.consumer or {}):
            assert not _granted(view) or read_fresh(view)
            if not _granted(view):
                ns = consumer_key(view.consumer).namespace  # type: ignore[arg-type]
                assert Get(PROVIDER, BOUND_NAMESPACES, claim_ref(TENANT, ns).key) in view.observed
