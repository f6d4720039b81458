"""Unit tests of `kbcore.sync.instance.plan_instance`, one group per numbered rule of its docstring.

Plans are values: every test states the exact actions it expects and compares with `==`.
The provider copies are written out the way an API server returns them after our server-side
apply (markers, spec, server metadata and a managedFields entry for the applied fields), so the
"zero no-op writes" rule is checked against what a real server would hold.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import pytest

from kbcore import actions as act
from kbcore import objects as o
from kbcore.actions import PROVIDER
from kbcore.api import keys
from kbcore.api.resources import NAMESPACES
from kbcore.limits import MAX_JSON_DEPTH, MAX_REQUEST_BODY_BYTES
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Get
from kbcore.sync.coverage import NOT_COVERED, Coverage
from kbcore.sync.instance import (
    InstanceView,
    Ownership,
    classify,
    consumer_key_for_provider,
    desired_provider_body,
    fresh_read,
    namespace_read,
    plan_instance,
)
from kbcore.sync.mapper import IDENTITY, Mapper, NamespacePrefix

LOCAL = "11111111-2222-4333-8444-555555555555"
OTHER_CLUSTER = "99999999-2222-4333-8444-555555555555"
CUID = "c-uid-1"
PUID = "p-uid-1"
RV = "41"
GVR_W = GVR("example.org", "v1", "widgets")
GVR_G = GVR("example.org", "v1", "gadgets")

CREF = ObjectRef("consumer", GVR_W, ObjectKey("team-a", "w1"))
PREF = ObjectRef(PROVIDER, GVR_W, ObjectKey("team-a", "w1"))

FIN = keys.FINALIZER_SYNCER
SPEC = {"size": 3, "color": "blue", "ports": [80, 443], "tls": {"enabled": True}}

MARKERS = {
    "core.kube-bind.io/consumer-cluster-uid": LOCAL,
    "core.kube-bind.io/consumer-object-uid": CUID,
}
MANAGED = {"core.kube-bind.io/managed": "true"}

COVERED = Coverage(True, "Fail", "ClusterBinding/widgets")
COVERED_ADOPT = Coverage(True, "Adopt", "ClusterBinding/widgets")


def body(spec: Any = SPEC, uid: str | None = None, ns: str = "team-a") -> dict[str, Any]:
    """The apply body we expect, written out literally."""
    meta: dict[str, Any] = {
        "name": "w1",
        "labels": {"core.kube-bind.io/managed": "true"},
        "annotations": dict(MARKERS),
    }
    if ns:
        meta["namespace"] = ns
    if uid is not None:
        meta["uid"] = uid
    out: dict[str, Any] = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": meta}
    if spec is not None:
        out["spec"] = copy.deepcopy(spec)
    return out


def apply(spec: Any = SPEC, uid: str | None = None, ns: str = "team-a") -> act.Apply:
    target = PREF if ns == "team-a" else ObjectRef(PROVIDER, GVR_W, ObjectKey(ns, "w1"))
    return act.Apply(target, body(spec, uid, ns), "kube-bind-konnector", force=True)


def create(spec: Any = SPEC, ns: str = "team-a") -> act.Create:
    """Rule 5 creates (POST) rather than applies: the same body, without a uid precondition."""
    target = PREF if ns == "team-a" else ObjectRef(PROVIDER, GVR_W, ObjectKey(ns, "w1"))
    return act.Create(target, body(spec, None, ns), "kube-bind-konnector")


def widget(meta: dict[str, Any], spec: Any, status: Any) -> dict[str, Any]:
    """A Widget with this metadata, and copies of `spec` and `status` unless they are None."""
    obj: dict[str, Any] = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": meta}
    if spec is not None:
        obj["spec"] = copy.deepcopy(spec)
    if status is not None:
        obj["status"] = copy.deepcopy(status)
    return obj


def consumer(
    *,
    finalizers: tuple[str, ...] = (FIN,),
    deleting: bool = False,
    annotations: dict[str, str] | None = None,
    spec: Any = SPEC,
    status: Any = None,
    uid: str = CUID,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "w1",
        "namespace": "team-a",
        "uid": uid,
        "resourceVersion": RV,
        "generation": 2,
        "creationTimestamp": "2024-01-01T00:00:00Z",
    }
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if annotations:
        meta["annotations"] = dict(annotations)
    if labels:
        meta["labels"] = dict(labels)
    if deleting:
        meta["deletionTimestamp"] = "2024-01-02T00:00:00Z"
        meta["deletionGracePeriodSeconds"] = 0
    return widget(meta, spec, status)


def fields_for(spec: dict[str, Any]) -> dict[str, Any]:
    def node(v: Any) -> dict[str, Any]:
        if isinstance(v, dict) and v:
            return {f"f:{k}": node(x) for k, x in v.items()}
        return {}

    return {
        "f:metadata": {
            "f:annotations": {
                "f:core.kube-bind.io/consumer-cluster-uid": {},
                "f:core.kube-bind.io/consumer-object-uid": {},
            },
            "f:labels": {"f:core.kube-bind.io/managed": {}},
        },
        "f:spec": node(spec),
    }


def provider(
    *,
    annotations: dict[str, str] | None = None,
    spec: Any = SPEC,
    owned_spec: Any = None,
    status: Any = None,
    deleting: bool = False,
    managed_operation: str = "Apply",
    labels: dict[str, str] | None = None,
    ns: str = "team-a",
) -> dict[str, Any]:
    """The provider copy as the server holds it after our apply of `owned_spec` (default: the
    current `spec`), with the provider controller's status written through /status."""
    owned = spec if owned_spec is None else owned_spec
    meta: dict[str, Any] = {
        "name": "w1",
        "namespace": ns,
        "uid": PUID,
        "resourceVersion": "900",
        "generation": 1,
        "creationTimestamp": "2024-01-01T00:00:01Z",
        "labels": dict(MANAGED if labels is None else labels),
        "annotations": dict(MARKERS if annotations is None else annotations),
        "managedFields": [
            {
                "manager": "kube-bind-konnector",
                "operation": managed_operation,
                "apiVersion": "example.org/v1",
                "time": "2024-01-01T00:00:01Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_for(owned if isinstance(owned, dict) else {}),
            },
            {
                "manager": "widget-controller",
                "operation": "Update",
                "subresource": "status",
                "apiVersion": "example.org/v1",
                "time": "2024-01-01T00:00:02Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {".": {}, "f:phase": {}}},
            },
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-01-02T00:00:00Z"
        meta["finalizers"] = ["widgets.example.org/teardown"]
    return widget(meta, spec, status)


def view(
    c: dict[str, Any] | None,
    p: dict[str, Any] | None = None,
    *,
    fresh: bool = False,
    ns_exists: bool | None = None,
    coverage: Coverage = COVERED,
    gvr: GVR = GVR_W,
    namespaced: bool = True,
    mapper: Mapper = IDENTITY,
    local: str = LOCAL,
) -> InstanceView:
    """`p` as cached; `fresh`: also as a fresh read answered; `ns_exists`: whether the read of
    the provider namespace found it (None: not read)."""
    v = InstanceView(gvr, namespaced, c, coverage, p, local, mapper)
    read = fresh_read(v)
    observed: dict[Get, Any] = {}
    if fresh and read is not None:
        observed[read] = p
    if ns_exists is not None and read is not None and read.key.namespace:
        ns = {"metadata": {"name": read.key.namespace}} if ns_exists else None
        observed[namespace_read(read.key.namespace)] = ns
    return attrs.evolve(v, observed=observed)


def read_of(ref: ObjectRef) -> Get:
    return Get(ref.cluster, ref.gvr, ref.key)


def create_ns(ns: str = "team-a") -> act.CreateNamespace:
    """The provider namespace rule 5 creates: marked managed, with the consumer cluster's uid."""
    return act.CreateNamespace(
        "provider",
        ns,
        labels={
            "core.kube-bind.io/managed": "true",
            "core.kube-bind.io/consumer-cluster-uid": LOCAL,
        },
    )


def warning(reason: str, message: str) -> act.EmitEvent:
    """A Warning event on the consumer object."""
    return act.EmitEvent(CREF, "Widget", CUID, "Warning", reason, message)


def not_overwriting(reason: str, state: str, policy: str) -> act.EmitEvent:
    """Rule 6's event: the provider object is not ours, so it is left as it is."""
    return warning(
        reason,
        f"provider object team-a/w1 already exists and is {state}; "
        f"not overwriting (conflictPolicy: {policy})",
    )


def add_fin(existing: tuple[str, ...] = ()) -> act.AddFinalizer:
    return act.AddFinalizer(CREF, FIN, RV, (*existing, FIN))


def release(rest: tuple[str, ...] = ()) -> act.RemoveFinalizer:
    return act.RemoveFinalizer(CREF, FIN, RV, rest)


CONFLICT_PATCH = {
    "foreign": act.MergePatch(
        CREF, {"metadata": {"annotations": {"core.kube-bind.io/conflict": "ForeignObjectExists"}}}
    ),
    "another": act.MergePatch(
        CREF, {"metadata": {"annotations": {"core.kube-bind.io/conflict": "OwnedByAnother"}}}
    ),
}
CLEAR_CONFLICT = act.MergePatch(
    CREF, {"metadata": {"annotations": {"core.kube-bind.io/conflict": None}}}
)


# --- rule 1 -----------------------------------------------------------------------------------


def test_rule1_no_consumer_object_plans_nothing() -> None:
    plan = plan_instance(view(None, provider(), fresh=True))
    assert plan.actions == ()
    assert plan.needs == ()


# --- rule 2: deletion -------------------------------------------------------------------------


@pytest.mark.parametrize("coverage", [COVERED, NOT_COVERED], ids=["covered", "not-covered"])
def test_rule2a_deleting_without_our_finalizer_plans_nothing(coverage: Coverage) -> None:
    c = consumer(finalizers=("example.org/keep",), deleting=True)
    for p, fresh in [(provider(), True), (provider(), False), (None, True), (None, False)]:
        plan = plan_instance(view(c, p, fresh=fresh, coverage=coverage))
        assert (plan.actions, plan.needs) == ((), ())


@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize(
    "p", [provider(), None, provider(annotations={})], ids=["ours", "absent", "foreign"]
)
def test_rule2b_orphan_releases_immediately_and_keeps_the_copy(
    p: dict[str, Any] | None, fresh: bool
) -> None:
    c = consumer(
        finalizers=("example.org/keep", FIN),
        deleting=True,
        annotations={"core.kube-bind.io/deletion-policy": "Orphan"},
    )
    plan = plan_instance(view(c, p, fresh=fresh))
    assert plan.actions == (release(("example.org/keep",)),)
    assert plan.needs == ()


@pytest.mark.parametrize("p", [None, "ours"])
def test_rule2_unknown_identity_keeps_the_finalizer_even_on_fresh_absence(p: str | None) -> None:
    """Without the local cluster UID no copy can be recognised as ours: never release then."""
    c = consumer(finalizers=(FIN,), deleting=True)
    obj = provider() if p else None
    plan = plan_instance(view(c, obj, fresh=True, local=""))
    assert plan.writes == ()
    assert plan.needs == ()


@pytest.mark.parametrize("coverage", [COVERED, NOT_COVERED], ids=["covered", "not-covered"])
@pytest.mark.parametrize("fresh", [True, False])
def test_rule2c_deletes_our_copy_with_uid_precondition_and_keeps_finalizer(
    coverage: Coverage, fresh: bool
) -> None:
    c = consumer(deleting=True)
    plan = plan_instance(view(c, provider(), fresh=fresh, coverage=coverage))
    assert plan.actions == (act.Delete(PREF, PUID), act.RequeueAfter(2.0))
    assert plan.requeue_after == 2.0


def test_rule2c_a_policy_other_than_orphan_deletes() -> None:
    c = consumer(deleting=True, annotations={"core.kube-bind.io/deletion-policy": "orphan"})
    plan = plan_instance(view(c, provider()))
    assert plan.actions == (act.Delete(PREF, PUID), act.RequeueAfter(2.0))


def test_rule2c_delete_goes_to_the_mapped_key() -> None:
    c = consumer(deleting=True)
    mapper = NamespacePrefix("consumer-7-")
    plan = plan_instance(view(c, provider(ns="consumer-7-team-a"), mapper=mapper))
    target = ObjectRef(PROVIDER, GVR_W, ObjectKey("consumer-7-team-a", "w1"))
    assert plan.actions == (act.Delete(target, PUID), act.RequeueAfter(2.0))


@pytest.mark.parametrize("fresh", [True, False])
def test_rule2d_waits_while_our_copy_is_deleting(fresh: bool) -> None:
    c = consumer(deleting=True)
    plan = plan_instance(view(c, provider(deleting=True), fresh=fresh))
    assert plan.actions == (act.RequeueAfter(2.0),)
    assert plan.needs == ()


def test_rule2e_absence_in_a_cache_asks_for_a_fresh_read() -> None:
    c = consumer(deleting=True)
    plan = plan_instance(view(c, None, fresh=False))
    assert plan.actions == ()
    assert plan.needs == (read_of(PREF),)


def test_rule2e_releases_only_on_fresh_absence() -> None:
    c = consumer(finalizers=("a/b", FIN, "c/d"), deleting=True)
    plan = plan_instance(view(c, None, fresh=True))
    assert plan.actions == (release(("a/b", "c/d")),)
    assert plan.needs == ()


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {
            "core.kube-bind.io/consumer-cluster-uid": OTHER_CLUSTER,
            "core.kube-bind.io/consumer-object-uid": CUID,
        },
        {
            "core.kube-bind.io/consumer-cluster-uid": LOCAL,
            "core.kube-bind.io/consumer-object-uid": "stale",
        },
    ],
    ids=["foreign-unmanaged", "other-cluster", "stale-object-uid"],
)
def test_rule2e_a_copy_that_is_not_ours_is_never_deleted(annotations: dict[str, str]) -> None:
    c = consumer(deleting=True)
    p = provider(annotations=annotations)
    cached = plan_instance(view(c, p, fresh=False))
    assert cached.actions == ()
    assert cached.needs == (read_of(PREF),)
    fresh = plan_instance(view(c, p, fresh=True))
    assert fresh.actions == (release(),)


# --- rule 3 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "coverage",
    [NOT_COVERED, Coverage(False, "Fail", "ClusterBinding/widgets"), Coverage(False, "Adopt")],
    ids=["none", "not-ready", "not-ready-adopt"],
)
@pytest.mark.parametrize("fins", [(), (FIN,)], ids=["no-finalizer", "finalizer"])
def test_rule3_not_covered_writes_nothing(coverage: Coverage, fins: tuple[str, ...]) -> None:
    c = consumer(finalizers=fins, annotations={"core.kube-bind.io/conflict": "OwnedByAnother"})
    for p in (None, provider(), provider(spec={"size": 9}), provider(annotations={})):
        for fresh in (True, False):
            plan = plan_instance(view(c, p, fresh=fresh, ns_exists=False, coverage=coverage))
            assert (plan.actions, plan.needs) == ((), ())


@pytest.mark.parametrize(
    ("c", "local"),
    [(consumer(uid=""), LOCAL), (consumer(), "")],
    ids=["no-consumer-uid", "no-local-cluster-uid"],
)
def test_rule3_unknown_identity_writes_nothing(c: dict[str, Any], local: str) -> None:
    plan = plan_instance(view(c, None, fresh=True, ns_exists=True, local=local))
    assert (plan.actions, plan.needs) == ((), ())


@pytest.mark.parametrize("coverage", [COVERED, COVERED_ADOPT], ids=["fail", "adopt"])
def test_rule3_a_provider_that_is_this_cluster_is_never_written(coverage: Coverage) -> None:
    # Bound to itself, the "provider copy" is the consumer object: adopting it would make it
    # its own copy (and its deletion wait for itself forever).
    c = consumer(finalizers=())
    itself = {**c, "metadata": {**c["metadata"], "annotations": {}}}
    for p, fresh in ((itself, True), (None, True), (None, False)):
        v = attrs.evolve(
            view(c, p, fresh=fresh, ns_exists=True, coverage=coverage), provider_cluster_uid=LOCAL
        )
        plan = plan_instance(v)
        assert (plan.actions, plan.needs) == ((), ()), plan


def test_rule3_a_deleting_object_bound_to_its_own_cluster_only_has_our_finalizer_released() -> None:
    c = consumer(finalizers=("example.org/keep", FIN), deleting=True)
    v = attrs.evolve(view(c, c, fresh=True), provider_cluster_uid=LOCAL)
    assert plan_instance(v).actions == (release(("example.org/keep",)),)


# --- rule 4 -----------------------------------------------------------------------------------


def test_rule4_finalizer_is_added_before_the_first_provider_write() -> None:
    c = consumer(finalizers=("example.org/keep",))
    plan = plan_instance(view(c, None, fresh=True, ns_exists=False))
    assert plan.actions == (
        add_fin(("example.org/keep",)),
        create_ns(),
        create(),
    )


def test_rule4_finalizer_before_a_drift_repair() -> None:
    c = consumer(finalizers=())
    plan = plan_instance(view(c, provider(spec={"size": 1}, owned_spec={"size": 1})))
    assert plan.actions == (add_fin(), apply(uid=PUID))


def test_rule4_no_finalizer_is_added_while_a_read_is_pending() -> None:
    c = consumer(finalizers=())
    plan = plan_instance(view(c, None, fresh=False))
    assert plan.actions == ()
    assert plan.needs == (read_of(PREF),)


# --- rule 5: create ---------------------------------------------------------------------------


def test_rule5_absence_in_a_cache_never_creates() -> None:
    plan = plan_instance(view(consumer(), None, fresh=False, ns_exists=False))
    assert plan.actions == ()
    assert plan.needs == (read_of(PREF),)


def test_rule5_asks_whether_the_namespace_exists() -> None:
    plan = plan_instance(view(consumer(), None, fresh=True, ns_exists=None))
    assert plan.actions == ()
    assert plan.needs == (read_of(ObjectRef(PROVIDER, NAMESPACES, ObjectKey("", "team-a"))),)


def test_rule5_creates_a_missing_namespace_then_applies() -> None:
    plan = plan_instance(view(consumer(), None, fresh=True, ns_exists=False))
    assert plan.actions == (
        create_ns(),
        create(),
    )


def test_rule5_existing_namespace_is_left_alone() -> None:
    plan = plan_instance(view(consumer(), None, fresh=True, ns_exists=True))
    assert plan.actions == (create(),)


def test_rule5_the_mapped_namespace_is_created() -> None:
    mapper = NamespacePrefix("consumer-7-")
    plan = plan_instance(view(consumer(), None, fresh=True, ns_exists=None, mapper=mapper))
    ns_ref = ObjectRef(PROVIDER, NAMESPACES, ObjectKey("", "consumer-7-team-a"))
    assert plan.needs == (read_of(ns_ref),)
    plan = plan_instance(view(consumer(), None, fresh=True, ns_exists=False, mapper=mapper))
    assert plan.actions == (
        create_ns("consumer-7-team-a"),
        create(ns="consumer-7-team-a"),
    )


def test_rule5_cluster_scoped_needs_no_namespace() -> None:
    c = consumer()
    c["kind"] = "Gadget"
    del c["metadata"]["namespace"]
    cref = ObjectRef("consumer", GVR_G, ObjectKey("", "w1"))
    pref = ObjectRef(PROVIDER, GVR_G, ObjectKey("", "w1"))
    b = body(ns="")
    b["kind"] = "Gadget"
    plan = plan_instance(view(c, None, fresh=True, gvr=GVR_G, namespaced=False))
    assert plan.actions == (act.Create(pref, b, "kube-bind-konnector"),)
    del c["metadata"]["finalizers"]
    plan = plan_instance(view(c, None, fresh=True, gvr=GVR_G, namespaced=False))
    assert plan.actions == (
        act.AddFinalizer(cref, FIN, RV, (FIN,)),
        act.Create(pref, b, "kube-bind-konnector"),
    )


def test_rule5_after_the_create_one_apply_takes_ownership_then_nothing() -> None:
    # A POST records our manager with operation Update, so the kernel cannot tell which fields
    # an apply would own: it applies once, after which the server holds an Apply entry.
    after_create = provider(managed_operation="Update")
    plan = plan_instance(view(consumer(), after_create))
    assert plan.actions == (apply(uid=PUID),)
    plan = plan_instance(view(consumer(), provider()))
    assert plan.actions == ()


def test_rule5_consumer_without_spec_applies_only_markers() -> None:
    plan = plan_instance(view(consumer(spec=None), None, fresh=True, ns_exists=True))
    assert plan.actions == (create(spec=None),)


def test_rule5_create_clears_a_stale_conflict_annotation() -> None:
    c = consumer(annotations={"core.kube-bind.io/conflict": "ForeignObjectExists"})
    plan = plan_instance(view(c, None, fresh=True, ns_exists=True))
    assert plan.actions == (create(), CLEAR_CONFLICT)


# --- rule 6a: ours ----------------------------------------------------------------------------


@pytest.mark.parametrize("fresh", [True, False])
def test_rule6a_ours_in_sync_plans_no_writes(fresh: bool) -> None:
    status = {"phase": "Ready", "observedGeneration": 1}
    c = consumer(status=status)
    plan = plan_instance(view(c, provider(status=status), fresh=fresh))
    assert plan.actions == ()
    assert plan.needs == ()
    assert plan.writes == ()


def test_rule6a_in_sync_tolerates_fields_of_other_managers() -> None:
    p = provider()
    p["metadata"]["labels"]["tier"] = "gold"
    p["metadata"]["annotations"]["note"] = "hi"
    p["spec"]["defaulted"] = "by-a-webhook"
    plan = plan_instance(view(consumer(), p))
    assert plan.actions == ()


def test_rule6a_spec_drift_is_repaired_with_uid_precondition() -> None:
    p = provider(spec={**SPEC, "size": 99})
    plan = plan_instance(view(consumer(), p))
    assert plan.actions == (apply(uid=PUID),)


def test_rule6a_a_field_removed_from_the_consumer_spec_is_applied() -> None:
    # The copy still holds (and we still own) `color`; the consumer spec no longer sets it.
    old = dict(SPEC)
    new = {k: v for k, v in SPEC.items() if k != "color"}
    p = provider(spec=old, owned_spec=old)
    plan = plan_instance(view(consumer(spec=new), p))
    assert plan.actions == (apply(spec=new, uid=PUID),)


def test_rule6a_spec_removed_entirely_is_applied() -> None:
    plan = plan_instance(view(consumer(spec=None), provider()))
    assert plan.actions == (apply(spec=None, uid=PUID),)


def test_rule6a_missing_marker_label_is_repaired() -> None:
    plan = plan_instance(view(consumer(), provider(labels={})))
    assert plan.actions == (apply(uid=PUID),)


@pytest.mark.parametrize(
    ("spec", "owned"),
    [
        # x-kubernetes-list-type: set
        ({"ports": [80, 443]}, {"f:ports": {"v:80": {}, "v:443": {}}}),
        # x-kubernetes-list-type: map, x-kubernetes-list-map-keys: [name]
        (
            {"routes": [{"name": "a", "to": "x"}, {"name": "b", "to": "y"}]},
            {
                "f:routes": {
                    'k:{"name":"a"}': {".": {}, "f:name": {}, "f:to": {}},
                    'k:{"name":"b"}': {".": {}, "f:name": {}, "f:to": {}},
                }
            },
        ),
    ],
    ids=["list-set", "list-map"],
)
def test_rule6a_in_sync_with_associative_lists(spec: dict[str, Any], owned: dict[str, Any]) -> None:
    # The server records our elements of an associative list by key or value, although we always
    # send the whole list; the copy is still in sync and nothing is written.
    p = provider(spec=spec)
    p["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"] = owned
    plan = plan_instance(view(consumer(spec=spec), p))
    assert plan.actions == ()


def test_rule6a_an_apply_recorded_as_update_is_reapplied() -> None:
    # Without our Apply entry we cannot know which fields we own; apply once to find out.
    plan = plan_instance(view(consumer(), provider(managed_operation="Update")))
    assert plan.actions == (apply(uid=PUID),)


def test_rule6a_list_values_are_atomic() -> None:
    p = provider(spec={**SPEC, "ports": [80]})
    plan = plan_instance(view(consumer(), p))
    assert plan.actions == (apply(uid=PUID),)


def test_rule6a_bool_is_not_a_number() -> None:
    p = provider(spec={**SPEC, "tls": {"enabled": 1}})
    plan = plan_instance(view(consumer(), p))
    assert plan.actions == (apply(uid=PUID),)


def test_rule6a_bool_in_a_list_is_not_a_number() -> None:
    # Lists are atomic: [1, 0] on the copy is not the [true, false] the consumer asks for.
    c = consumer(spec={**SPEC, "flags": [True, False]})
    p = provider(spec={**SPEC, "flags": [1, 0]}, owned_spec={**SPEC, "flags": [True, False]})
    plan = plan_instance(view(c, p))
    assert plan.actions == (apply(spec={**SPEC, "flags": [True, False]}, uid=PUID),)


def test_rule6a_status_is_mirrored_exactly() -> None:
    c = consumer(status={"phase": "Pending", "mine": "x"})
    pstatus = {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}
    plan = plan_instance(view(c, provider(status=pstatus)))
    assert plan.actions == (act.UpdateStatus(CREF, consumer(status=pstatus)),)


def test_rule6a_status_is_cleared_when_the_copy_has_none() -> None:
    c = consumer(status={"phase": "Ready"})
    plan = plan_instance(view(c, provider(status=None)))
    assert plan.actions == (act.UpdateStatus(CREF, consumer(status=None)),)
    update = plan.actions[0]
    assert isinstance(update, act.UpdateStatus) and "status" not in update.body


def test_rule6a_status_bool_and_number_differ() -> None:
    c = consumer(status={"ready": 1})
    plan = plan_instance(view(c, provider(status={"ready": True})))
    assert plan.actions == (act.UpdateStatus(CREF, consumer(status={"ready": True})),)


def test_rule6a_status_waits_for_the_finalizer() -> None:
    c = consumer(finalizers=(), status={"phase": "Pending"})
    plan = plan_instance(view(c, provider(status={"phase": "Ready"})))
    assert plan.actions == (add_fin(),)


def test_rule6a_drift_and_status_together() -> None:
    c = consumer(status={"phase": "Pending"})
    p = provider(spec={"size": 1}, owned_spec={"size": 1}, status={"phase": "Ready"})
    plan = plan_instance(view(c, p))
    assert plan.actions == (
        apply(uid=PUID),
        act.UpdateStatus(CREF, consumer(status={"phase": "Ready"})),
    )


def test_rule6a_clears_a_stale_conflict_annotation() -> None:
    c = consumer(annotations={"core.kube-bind.io/conflict": "OwnedByAnother", "keep": "me"})
    plan = plan_instance(view(c, provider()))
    assert plan.actions == (CLEAR_CONFLICT,)


@pytest.mark.parametrize("fins", [(), (FIN,)], ids=["no-finalizer", "finalizer"])
def test_rule6a_waits_while_our_copy_is_deleted_out_of_band(fins: tuple[str, ...]) -> None:
    c = consumer(finalizers=fins, status={"phase": "Pending"})
    p = provider(spec={"size": 1}, deleting=True, status={"phase": "Gone"})
    plan = plan_instance(view(c, p))
    expected = (act.RequeueAfter(2.0),) if fins else (add_fin(), act.RequeueAfter(2.0))
    assert plan.actions == expected


def test_rule6a_recreates_once_the_deleted_copy_is_gone() -> None:
    cached = plan_instance(view(consumer(), None, fresh=False))
    assert cached.needs == (read_of(PREF),)
    fresh = plan_instance(view(consumer(), None, fresh=True, ns_exists=True))
    assert fresh.actions == (create(),)


# --- rule 6b: adopt ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {"core.kube-bind.io/consumer-cluster-uid": "", "core.kube-bind.io/consumer-object-uid": ""},
    ],
    ids=["no-markers", "empty-markers"],
)
def test_rule6b_adopt_takes_a_foreign_unmanaged_copy(annotations: dict[str, str]) -> None:
    p = provider(annotations=annotations, labels={"app": "x"}, status={"phase": "Ready"})
    plan = plan_instance(view(consumer(status={"phase": "Old"}), p, coverage=COVERED_ADOPT))
    # Status follows on the next pass, once the copy carries our markers.
    assert plan.actions == (apply(uid=PUID),)


def test_rule6b_adopt_clears_a_foreign_conflict_annotation() -> None:
    c = consumer(annotations={"core.kube-bind.io/conflict": "ForeignObjectExists"})
    p = provider(annotations={})
    plan = plan_instance(view(c, p, coverage=COVERED_ADOPT))
    assert plan.actions == (apply(uid=PUID), CLEAR_CONFLICT)


def test_rule6b_adopt_waits_for_a_deleting_foreign_copy() -> None:
    p = provider(annotations={}, deleting=True)
    plan = plan_instance(view(consumer(), p, coverage=COVERED_ADOPT))
    assert plan.actions == (act.RequeueAfter(2.0),)


OWNED_BY_ANOTHER = [
    {
        "core.kube-bind.io/consumer-cluster-uid": OTHER_CLUSTER,
        "core.kube-bind.io/consumer-object-uid": CUID,
    },
    {
        "core.kube-bind.io/consumer-cluster-uid": LOCAL,
        "core.kube-bind.io/consumer-object-uid": "old-uid",
    },
    {"core.kube-bind.io/consumer-cluster-uid": LOCAL},
    {"core.kube-bind.io/consumer-object-uid": CUID},
]
OWNED_IDS = ["other-cluster", "stale-object-uid", "cluster-marker-only", "object-marker-only"]


@pytest.mark.parametrize("annotations", OWNED_BY_ANOTHER, ids=OWNED_IDS)
def test_rule6b_adopt_never_takes_an_owned_by_another_copy(annotations: dict[str, str]) -> None:
    plan = plan_instance(
        view(consumer(), provider(annotations=annotations), coverage=COVERED_ADOPT)
    )
    assert plan.actions == (
        CONFLICT_PATCH["another"],
        not_overwriting("OwnedByAnother", "owned-by-another", "Adopt"),
    )


# --- rule 6c: conflict ------------------------------------------------------------------------


def test_rule6c_foreign_with_fail_annotates_and_warns_once() -> None:
    plan = plan_instance(view(consumer(), provider(annotations={}, spec={"other": 1})))
    assert plan.actions == (
        CONFLICT_PATCH["foreign"],
        not_overwriting("ForeignObjectExists", "foreign-unmanaged", "Fail"),
    )
    assert sum(isinstance(a, act.EmitEvent) for a in plan.actions) == 1


@pytest.mark.parametrize("annotations", OWNED_BY_ANOTHER, ids=OWNED_IDS)
def test_rule6c_owned_by_another_with_fail(annotations: dict[str, str]) -> None:
    plan = plan_instance(view(consumer(), provider(annotations=annotations)))
    assert plan.actions == (
        CONFLICT_PATCH["another"],
        not_overwriting("OwnedByAnother", "owned-by-another", "Fail"),
    )


@pytest.mark.parametrize(
    ("annotations", "reason", "coverage"),
    [
        ({}, "ForeignObjectExists", COVERED),
        (OWNED_BY_ANOTHER[0], "OwnedByAnother", COVERED),
        (OWNED_BY_ANOTHER[1], "OwnedByAnother", COVERED_ADOPT),
    ],
    ids=["foreign", "another", "another-adopt"],
)
def test_rule6c_a_standing_conflict_costs_nothing(
    annotations: dict[str, str], reason: str, coverage: Coverage
) -> None:
    c = consumer(annotations={"core.kube-bind.io/conflict": reason}, status={"phase": "Mine"})
    p = provider(annotations=annotations, status={"phase": "Theirs"}, spec={"x": 1})
    for fresh in (True, False):
        plan = plan_instance(view(c, p, fresh=fresh, coverage=coverage))
        assert plan.actions == ()
        assert plan.needs == ()


def test_rule6c_a_changed_reason_is_annotated_again() -> None:
    c = consumer(annotations={"core.kube-bind.io/conflict": "ForeignObjectExists"})
    plan = plan_instance(view(c, provider(annotations=OWNED_BY_ANOTHER[0])))
    assert [type(a) for a in plan.actions] == [act.MergePatch, act.EmitEvent]
    assert plan.actions[0] == CONFLICT_PATCH["another"]


def test_rule6c_conflict_holds_the_finalizer_but_touches_no_provider_object() -> None:
    # As upstream: the finalizer comes before the conflict check; deletion then releases it
    # without touching the foreign copy (rule 2e).
    c = consumer(finalizers=())
    plan = plan_instance(view(c, provider(annotations={})))
    assert plan.actions[0] == add_fin()
    assert plan.actions[1:] == (
        CONFLICT_PATCH["foreign"],
        not_overwriting("ForeignObjectExists", "foreign-unmanaged", "Fail"),
    )


# --- direction: only spec and markers travel up ------------------------------------------------


def test_consumer_metadata_and_status_never_travel_up() -> None:
    c = consumer(
        finalizers=("example.org/keep", FIN),
        labels={"app": "web", "core.kube-bind.io/managed": "false"},
        annotations={
            "note": "x",
            "core.kube-bind.io/deletion-policy": "Orphan",
            "core.kube-bind.io/consumer-cluster-uid": "spoofed",
        },
        status={"phase": "Ready"},
    )
    c["data"] = {"extra": "top-level"}
    c["metadata"]["ownerReferences"] = [{"kind": "Thing", "name": "t", "uid": "o"}]
    c["metadata"]["generateName"] = "w-"
    plan = plan_instance(view(c, None, fresh=True, ns_exists=True))
    assert plan.actions == (create(),)
    assert desired_provider_body(c, PREF.key, LOCAL) == body()


def test_bodies_do_not_alias_the_consumer_spec() -> None:
    c = consumer()
    created = plan_instance(view(c, None, fresh=True, ns_exists=True)).actions[0]
    applied = plan_instance(view(c, provider(spec={"size": 1}))).actions[0]
    assert isinstance(created, act.Create) and isinstance(applied, act.Apply)
    created.body["spec"]["tls"]["enabled"] = False
    applied.body["spec"]["tls"]["enabled"] = False
    assert c["spec"] == SPEC


# --- classify and provider events ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({}, Ownership.FOREIGN_UNMANAGED),
        ({"core.kube-bind.io/consumer-cluster-uid": ""}, Ownership.FOREIGN_UNMANAGED),
        (MARKERS, Ownership.OURS),
        *[(a, Ownership.OWNED_BY_ANOTHER) for a in OWNED_BY_ANOTHER],
    ],
)
def test_classify(annotations: dict[str, str], expected: Ownership) -> None:
    assert classify(provider(annotations=annotations), LOCAL, CUID) is expected


def test_classify_without_a_local_identity_is_never_ours() -> None:
    p = provider(annotations={"core.kube-bind.io/consumer-object-uid": CUID})
    assert classify(p, "", CUID) is Ownership.OWNED_BY_ANOTHER


def test_provider_events_map_back_only_for_our_cluster() -> None:
    mapper = NamespacePrefix("consumer-7-")
    p = provider(ns="consumer-7-team-a")
    assert consumer_key_for_provider(p, GVR_W, LOCAL, mapper) == ObjectKey("team-a", "w1")
    assert consumer_key_for_provider(p, GVR_W, OTHER_CLUSTER, mapper) is None
    assert consumer_key_for_provider(p, GVR_W, "", mapper) is None
    assert consumer_key_for_provider(provider(), GVR_W, LOCAL, mapper) is None
    assert consumer_key_for_provider(provider(annotations={}), GVR_W, LOCAL, IDENTITY) is None


def test_plan_why_names_the_rule() -> None:
    assert plan_instance(view(None)).why.startswith("rule 1")
    assert plan_instance(view(consumer(), coverage=NOT_COVERED)).why.startswith("rule 3")
    assert plan_instance(view(consumer(), provider())).why.startswith("rule 6a")
    assert isinstance(plan_instance(view(consumer(), provider())), act.Plan)


# --- rule 7: bodies an API server would refuse are never sent ----------------------------------

LIMIT_PATCH = {
    reason: act.MergePatch(
        CREF, {"metadata": {"annotations": {"core.kube-bind.io/sync-limit": reason}}}
    )
    for reason in ("StatusExceedsLimits", "SpecExceedsLimits")
}
CLEAR_LIMIT = act.MergePatch(
    CREF, {"metadata": {"annotations": {"core.kube-bind.io/sync-limit": None}}}
)


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"a": value}
    return value


def with_status(obj: dict[str, Any], status: Any) -> dict[str, Any]:
    obj["status"] = status  # set after building: the helpers copy recursively
    return obj


def test_rule7_a_status_as_deep_as_a_server_holds_is_mirrored_exactly() -> None:
    # The consumer object is then 10,000 levels deep: the most an API server decodes.
    status = deep(MAX_JSON_DEPTH - 1)
    plan = plan_instance(view(consumer(), with_status(provider(), status)))
    (update,) = plan.actions
    assert isinstance(update, act.UpdateStatus) and update.target == CREF
    assert o.json_equal(update.body["status"], status)
    assert o.json_equal({**update.body, "status": None}, {**consumer(), "status": None})


def test_rule7_a_status_too_deep_to_write_is_annotated_and_told_once() -> None:
    p = with_status(provider(), deep(MAX_JSON_DEPTH))
    plan = plan_instance(view(consumer(), p))
    assert plan.actions == (
        LIMIT_PATCH["StatusExceedsLimits"],
        warning(
            "StatusExceedsLimits",
            "status of provider object team-a/w1 not mirrored: it nests more than 10000 levels "
            "deep, the most an API server decodes",
        ),
    )
    assert plan.why == "rule 7: StatusExceedsLimits"
    # While it stands it costs nothing: no write, no event, no retry.
    annotated = consumer(annotations={"core.kube-bind.io/sync-limit": "StatusExceedsLimits"})
    assert plan_instance(view(annotated, p)).actions == ()


def test_rule7_a_status_too_large_to_write_names_its_size_and_the_limit() -> None:
    p = with_status(provider(), {"log": "x" * MAX_REQUEST_BODY_BYTES})
    (patch, event) = plan_instance(view(consumer(), p)).actions
    assert patch == LIMIT_PATCH["StatusExceedsLimits"]
    assert isinstance(event, act.EmitEvent) and event.type == "Warning"
    assert event.message.startswith("status of provider object team-a/w1 not mirrored: it is ")
    assert event.message.endswith(
        f"bytes as JSON, more than the {MAX_REQUEST_BODY_BYTES} bytes (3 MiB) an API server "
        "reads in one request"
    )


def test_rule7_a_spec_change_still_syncs_while_the_status_cannot() -> None:
    p = with_status(provider(spec={"size": 1}), deep(MAX_JSON_DEPTH))
    annotated = consumer(annotations={"core.kube-bind.io/sync-limit": "StatusExceedsLimits"})
    assert plan_instance(view(annotated, p)).actions == (apply(uid=PUID),)


def test_rule7_once_the_status_fits_it_is_mirrored_and_the_annotation_removed() -> None:
    annotated = consumer(annotations={"core.kube-bind.io/sync-limit": "StatusExceedsLimits"})
    plan = plan_instance(view(annotated, provider(status={"phase": "Ready"})))
    update, clear = plan.actions
    assert isinstance(update, act.UpdateStatus) and update.body["status"] == {"phase": "Ready"}
    assert clear == CLEAR_LIMIT


def test_rule7_a_spec_too_deep_is_never_created_on_the_provider() -> None:
    c = consumer()
    c["spec"] = deep(MAX_JSON_DEPTH)
    plan = plan_instance(view(c, None, fresh=True, ns_exists=True))
    assert [type(a) for a in plan.actions] == [act.MergePatch, act.EmitEvent]
    assert plan.actions[0] == LIMIT_PATCH["SpecExceedsLimits"]
    assert isinstance(plan.actions[1], act.EmitEvent)
    assert plan.actions[1].message.startswith("spec not synced to provider object team-a/w1")


def test_rule7_a_deep_spec_within_the_limit_is_created_and_later_a_noop() -> None:
    spec = {"tree": deep(MAX_JSON_DEPTH - 3)}  # the object: metadata, spec, tree: 10,000 levels
    c = consumer(spec=None)
    c["spec"] = spec
    (created,) = plan_instance(view(c, None, fresh=True, ns_exists=True)).actions
    assert isinstance(created, act.Create) and o.json_equal(created.body["spec"], spec)
    # The server holds it with our managedFields (as deep as the spec): nothing more to do.
    p = provider(spec=None)
    p["spec"] = spec
    fields = p["metadata"]["managedFields"][0]["fieldsV1"]
    tree: dict[str, Any] = {}
    fields["f:spec"] = {"f:tree": tree}
    node = spec["tree"]
    while isinstance(node, dict):
        tree["f:a"] = tree = {}
        node = node["a"]
    assert plan_instance(view(c, p)).actions == ()
