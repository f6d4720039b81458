"""Unit tests of `kbcore.control.related.plan_related`, one group per numbered rule of its docstring,
upstream's related-resource e2e steps (23 and 29-32: docs/design.md, "Upstream's end-to-end
steps") at the kernel level,
and hypothesis properties (safety, determinism, stability, unbind convergence).

The planner is driven against `World`: two clusters of plain objects in one dict, which answers
the planner's reads and carries out its actions with the API-server behaviour the kernel relies on
(POST fails on an existing object, deletes and applies check the UID, an immutable object or a
Secret's type cannot change, a delete of an object with finalizers only marks it deleting). Its
apply is pessimistic: map keys the body does not set are kept, as when another field manager owns
them, so a plan that relied on an apply to remove a key would not converge.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore import selectors
from kbcore.actions import (
    CONSUMER,
    PROVIDER,
    Action,
    Apply,
    Create,
    CreateNamespace,
    Delete,
    RequeueAfter,
    is_write,
)
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES, CONFIGMAPS, NAMESPACES, SECRETS
from kbcore.api.types import (
    LabelSelector,
    LabelSelectorRequirement,
    RelatedResource,
    RelatedResourceKind,
    RelatedResourceSelector,
    SyncDirection,
)
from kbcore.control.related import (
    DATA_SECRET_TYPES,
    MANAGED_SELECTOR,
    RelatedConflict,
    RelatedPlan,
    data_secret_type,
    desired_copy,
    may_create_namespace,
    plan_related,
    reserved_name,
    reserved_namespace,
    summary,
    synced_namespace,
)
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List, Missing, Read
from kbcore.sync.tenancy import Tenant

UID = "b-uid-1"
OTHER_BINDING = "b-uid-2"
LOCAL = "cluster-uid-1"
MANAGED = keys.LABEL_MANAGED
RB = keys.ANNOTATION_RELATED_BINDING
CCU = keys.ANNOTATION_CONSUMER_CLUSTER_UID
KIND = {SECRETS: "Secret", CONFIGMAPS: "ConfigMap"}
FROM_PROVIDER = SyncDirection.FROM_PROVIDER
FROM_CONSUMER = SyncDirection.FROM_CONSUMER
KONNECTOR_NS = "konnector"
ALL_DATA_TYPES = (
    "Opaque",
    "kubernetes.io/basic-auth",
    "kubernetes.io/ssh-auth",
    "kubernetes.io/tls",
    "kubernetes.io/dockercfg",
    "kubernetes.io/dockerconfigjson",
)
"""T4's allow-list, restated here so the tests do not take the kernel's word for it."""

Slot = tuple[str, GVR, ObjectKey]


# --- the test world ---------------------------------------------------------------------------


class World:
    """Both clusters' objects keyed by (cluster, gvr, key); namespaces under NAMESPACES."""

    def __init__(self) -> None:
        self.objs: dict[Slot, o.Obj] = {}
        self.uids = 0
        for cluster in (CONSUMER, PROVIDER):
            self.ns(cluster, "default")

    def _uid(self) -> str:
        self.uids += 1
        return f"uid-{self.uids}"

    def ns(self, cluster: str, name: str, **meta: Any) -> o.Obj:
        metadata: dict[str, Any] = {"name": name, **meta, "uid": self._uid()}
        obj: o.Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}
        self.objs[(cluster, NAMESPACES, ObjectKey("", name))] = obj
        return obj

    def put(
        self,
        cluster: str,
        gvr: GVR,
        key: str,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        **fields: Any,
    ) -> o.Obj:
        ns, name = key.split("/")
        meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": self._uid()}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        obj = {"apiVersion": "v1", "kind": KIND[gvr], "metadata": meta, **fields}
        if gvr == SECRETS:
            obj.setdefault("type", "Opaque")
        self.objs[(cluster, gvr, ObjectKey(ns, name))] = obj
        return obj

    def copy_of(self, cluster: str, gvr: GVR, key: str, binding: str = UID, **fields: Any) -> o.Obj:
        """A related copy as a binding leaves it."""
        ann = {CCU: LOCAL, RB: binding}
        return self.put(cluster, gvr, key, labels={MANAGED: "true"}, annotations=ann, **fields)

    def get(self, cluster: str, gvr: GVR, key: str) -> o.Obj | None:
        ns, _, name = key.rpartition("/")
        return self.objs.get((cluster, gvr, ObjectKey(ns, name)))

    def read(self, r: Read) -> Any:
        if isinstance(r, Get):
            obj = self.objs.get((r.cluster, r.gvr, r.key))
            return copy.deepcopy(obj) if obj is not None else None
        assert isinstance(r, List)
        sel = selectors.parse(r.label_selector)
        return [
            copy.deepcopy(obj)
            for (cluster, gvr, key), obj in sorted(self.objs.items(), key=lambda kv: kv[0])
            if cluster == r.cluster
            and gvr == r.gvr
            and (not r.namespace or key.namespace == r.namespace)
            and sel.matches(o.labels_of(obj))
        ]

    def do(self, action: Action) -> None:
        if isinstance(action, RequeueAfter):
            return
        if isinstance(action, CreateNamespace):
            slot = (action.cluster, NAMESPACES, ObjectKey("", action.name))
            if slot not in self.objs:
                meta = {"labels": dict(action.labels), "annotations": dict(action.annotations)}
                self.ns(action.cluster, action.name, **meta)
            return
        assert isinstance(action, Create | Apply | Delete), action
        ref = action.target
        slot = (ref.cluster, ref.gvr, ref.key)
        live = self.objs.get(slot)
        if isinstance(action, Create):
            if (ref.cluster, NAMESPACES, ObjectKey("", ref.key.namespace)) not in self.objs:
                raise ApiError(404, "NotFound", f"namespace {ref.key.namespace} not found")
            if live is not None:
                raise ApiError(409, "AlreadyExists", f"{ref} already exists")
            obj = copy.deepcopy(action.body)
            obj["metadata"]["uid"] = self._uid()
            if ref.gvr == SECRETS:
                obj.setdefault("type", "Opaque")
            self.objs[slot] = obj
        elif isinstance(action, Delete):
            if live is None or o.uid(live) != action.uid:
                raise ApiError(409, "Conflict", f"{ref}: uid precondition failed")
            if o.finalizers(live):
                live["metadata"].setdefault("deletionTimestamp", "2024-01-01T00:00:00Z")
            else:
                del self.objs[slot]
        else:
            self._apply(slot, live, action)

    def _apply(self, slot: Slot, live: o.Obj | None, action: Apply) -> None:
        body = action.body
        if live is None or body["metadata"].get("uid", o.uid(live)) != o.uid(live):
            raise ApiError(409, "Conflict", f"{action.target}: uid precondition failed")
        merged = copy.deepcopy(live)
        for part in ("labels", "annotations"):
            merged["metadata"].setdefault(part, {}).update(body["metadata"].get(part, {}))
        for field in ("data", "binaryData"):
            if field in body:
                merged.setdefault(field, {}).update(body[field])
        for field in ("type", "immutable"):
            if field in body:
                merged[field] = body[field]
        payload = ("data", "binaryData", "immutable")
        if live.get("immutable") is True and any(live.get(f) != merged.get(f) for f in payload):
            raise ApiError(422, "Invalid", f"{action.target}: field is immutable")
        if live.get("type") != merged.get("type"):
            raise ApiError(422, "Invalid", f"{action.target}: type is immutable")
        self.objs[slot] = merged

    def live_namespaces(self, cluster: str) -> set[str]:
        return {
            key.name
            for (c, gvr, key), obj in self.objs.items()
            if c == cluster and gvr == NAMESPACES and not o.is_deleting(obj)
        }

    def settle(self) -> None:
        """Other actors finish: objects marked deleting go away."""
        for slot in [s for s, obj in self.objs.items() if o.is_deleting(obj)]:
            del self.objs[slot]


def plan(
    world: World,
    rules: tuple[RelatedResource, ...],
    *,
    scope: str = "",
    unbinding: bool = False,
    binding_uid: str = UID,
    local: str = LOCAL,
    rounds: list[tuple[Read, ...]] | None = None,
    overrides: dict[Read, Any] | None = None,
    synced: Collection[str] | None = None,
    konnector: str = KONNECTOR_NS,
    tenant: Tenant | None = None,
) -> RelatedPlan:
    """Run the read protocol against `world`; `rounds` collects each round's reads.

    `synced` are the namespaces the binding syncs objects in (T1); by default every namespace
    the consumer has and is not deleting, as if each held a bound object."""
    observed: dict[Read, Any] = dict(overrides or {})
    if synced is None:
        synced = world.live_namespaces(CONSUMER)
    for _ in range(5):
        try:
            return plan_related(
                rules,
                binding_uid=binding_uid,
                scope_namespace=scope,
                local_cluster_uid=local,
                observed=observed,
                unbinding=unbinding,
                synced_namespaces=frozenset(synced),
                konnector_namespace=konnector,
                tenant=tenant,
            )
        except Missing as missing:
            assert missing.reads, "Missing with nothing to read"
            assert len(set(missing.reads)) == len(missing.reads)
            if rounds is not None:
                rounds.append(missing.reads)
            for r in missing.reads:
                assert r not in observed
                observed[r] = world.read(r)
    raise AssertionError("the planner kept asking for reads")


def run(world: World, p: RelatedPlan) -> None:
    for action in p.actions:
        world.do(action)


def rule(
    resource: RelatedResourceKind,
    direction: SyncDirection,
    match: dict[str, str] | None = None,
    names: tuple[str, ...] = (),
    *,
    no_selector: bool = False,
) -> RelatedResource:
    if no_selector:
        return RelatedResource(resource=resource, direction=direction)
    ls = LabelSelector(match_labels=match) if match is not None else None
    sel = RelatedResourceSelector(label_selector=ls, names=names)
    return RelatedResource(resource=resource, direction=direction, selector=sel)


SECRETS_UP = rule(RelatedResourceKind.SECRETS, FROM_CONSUMER, {"app": "widget"})
SECRETS_DOWN = rule(RelatedResourceKind.SECRETS, FROM_PROVIDER, {"app": "widget"})
CMS_DOWN = rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, {"app": "widget"})
APP = {"app": "widget"}


def writes(p: RelatedPlan) -> list[Action]:
    return [a for a in p.actions if is_write(a)]


def ref(cluster: str, gvr: GVR, key: str) -> ObjectRef:
    ns, name = key.split("/")
    return ObjectRef(cluster, gvr, ObjectKey(ns, name))


def want(
    source: o.Obj, gvr: GVR, *, uid: str = "", binding: str = UID, local: str = LOCAL
) -> o.Obj:
    body = desired_copy(source, KIND[gvr], binding_uid=binding, local_cluster_uid=local)
    if uid:
        body["metadata"]["uid"] = uid
    return body


# --- rule 0: identity ---------------------------------------------------------------------------


def test_rule0_without_binding_uid_nothing_is_read_or_written() -> None:
    for unbinding in (False, True):
        p = plan_related(
            (SECRETS_DOWN,),
            binding_uid="",
            scope_namespace="",
            local_cluster_uid=LOCAL,
            observed={},
            unbinding=unbinding,
            konnector_namespace=KONNECTOR_NS,
        )
        assert p == RelatedPlan((), (), 0, False)


def test_rule0_without_local_cluster_uid_nothing_is_read_or_written() -> None:
    p = plan_related(
        (SECRETS_DOWN,),
        binding_uid=UID,
        scope_namespace="",
        local_cluster_uid="",
        observed={},
        konnector_namespace=KONNECTOR_NS,
    )
    assert p == RelatedPlan((), (), 0, False)


# --- rule 1: the copy ---------------------------------------------------------------------------


def test_rule1_copy_is_markers_and_payload_only() -> None:
    src = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "creds",
            "namespace": "default",
            "uid": "src-uid",
            "resourceVersion": "7",
            "labels": {"app": "widget"},
            "annotations": {"note": "x"},
            "finalizers": ["f"],
        },
        "data": {"token": "czNjcjN0"},
        "binaryData": {"bin": "AAE="},
        "type": "kubernetes.io/basic-auth",
        "immutable": False,
        "extra": "dropped",
    }
    assert desired_copy(src, "Secret", binding_uid=UID, local_cluster_uid=LOCAL) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "creds",
            "namespace": "default",
            "labels": {MANAGED: "true"},
            "annotations": {CCU: LOCAL, RB: UID},
        },
        "data": {"token": "czNjcjN0"},
        "binaryData": {"bin": "AAE="},
        "type": "kubernetes.io/basic-auth",
        "immutable": False,
    }


def test_rule1_secret_type_defaults_to_opaque_and_configmaps_have_none() -> None:
    src = {"metadata": {"name": "n", "namespace": "default"}, "data": {"k": "v"}}
    assert desired_copy(src, "Secret", binding_uid=UID, local_cluster_uid=LOCAL)["type"] == "Opaque"
    assert "type" not in desired_copy(src, "ConfigMap", binding_uid=UID, local_cluster_uid=LOCAL)


def test_rule1_selection_is_label_selector_and_names() -> None:
    w = World()
    for name, labels in (("a", APP), ("b", APP), ("c", {"app": "other"}), ("d", {})):
        w.put(PROVIDER, CONFIGMAPS, f"default/{name}", labels=labels, data={"n": name})
    r = rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, APP, names=("a", "c", "d"))
    p = plan(w, (r,))
    assert [a.target.key.name for a in p.actions if isinstance(a, Create)] == ["a"]
    # No selector at all: everything; a selector with only names: those names.
    p = plan(w, (rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, no_selector=True),))
    assert [a.target.key.name for a in p.actions if isinstance(a, Create)] == ["a", "b", "c", "d"]
    p = plan(w, (rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, names=("d",)),))
    assert [a.target.key.name for a in p.actions if isinstance(a, Create)] == ["d"]
    # Rules of one channel are OR-ed.
    r2 = rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, {"app": "other"})
    p = plan(w, (CMS_DOWN, r2))
    assert [a.target.key.name for a in p.actions if isinstance(a, Create)] == ["a", "b", "c"]


def test_rule1_match_expressions() -> None:
    w = World()
    w.put(CONSUMER, SECRETS, "default/a", labels={"tier": "db"}, data={"k": "MQ=="})
    w.put(CONSUMER, SECRETS, "default/b", labels={"tier": "web"}, data={"k": "Mg=="})
    expr = LabelSelectorRequirement(key="tier", operator="NotIn", values=("web",))
    sel = RelatedResourceSelector(label_selector=LabelSelector(match_expressions=(expr,)))
    r = RelatedResource(resource=RelatedResourceKind.SECRETS, direction=FROM_CONSUMER, selector=sel)
    p = plan(w, (r,))
    assert [a.target for a in p.actions if isinstance(a, Create)] == [
        ref(PROVIDER, SECRETS, "default/a")
    ]


def test_rule1_own_copies_are_never_sources() -> None:
    # Rules in both directions for Secrets: the copy made downwards is not pushed back up.
    w = World()
    src = w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="})
    w.copy_of(CONSUMER, SECRETS, "default/creds", data={"t": "eA=="})
    by_name = rule(RelatedResourceKind.SECRETS, FROM_CONSUMER, names=("creds",))
    p = plan(w, (SECRETS_UP, SECRETS_DOWN, by_name))
    assert p.actions == () and p.conflicts == () and p.copies == 1
    assert src == w.get(PROVIDER, SECRETS, "default/creds")


# --- rule 2: create -------------------------------------------------------------------------------


def test_rule2_create_reads_in_three_rounds_and_posts() -> None:
    w = World()
    w.ns(CONSUMER, "team")
    src = w.put(PROVIDER, SECRETS, "team/creds", labels=APP, data={"token": "czNjcjN0"})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_DOWN,), rounds=rounds)
    assert rounds == [
        (
            List(PROVIDER, SECRETS, ""),
            List(CONSUMER, SECRETS, "", MANAGED_SELECTOR),
        ),
        (Get(CONSUMER, SECRETS, ObjectKey("team", "creds")),),
        (Get(CONSUMER, NAMESPACES, ObjectKey("", "team")),),
    ]
    assert p == RelatedPlan(
        (
            Create(
                ref(CONSUMER, SECRETS, "team/creds"), want(src, SECRETS), keys.FIELD_MANAGER_RELATED
            ),
        ),
        (),
        1,
        False,
    )
    run(w, p)
    copy_ = w.get(CONSUMER, SECRETS, "team/creds")
    assert copy_ is not None and copy_["data"] == {"token": "czNjcjN0"}


def test_rule2_existing_namespace_is_not_created() -> None:
    w = World()
    src = w.put(CONSUMER, CONFIGMAPS, "default/cfg", labels=APP, data={"a": "1"})
    r = rule(RelatedResourceKind.CONFIGMAPS, FROM_CONSUMER, APP)
    p = plan(w, (r,))
    assert p.actions == (
        Create(
            ref(PROVIDER, CONFIGMAPS, "default/cfg"),
            want(src, CONFIGMAPS),
            keys.FIELD_MANAGER_RELATED,
        ),
    )


def test_rule2_nothing_is_created_into_a_terminating_namespace() -> None:
    w = World()
    w.ns(CONSUMER, "gone", deletionTimestamp="2024-01-01T00:00:00Z")
    w.put(PROVIDER, SECRETS, "gone/creds", labels=APP, data={})
    p = plan(w, (SECRETS_DOWN,), synced={"gone"})
    assert p.actions == () and p.copies == 0


def test_rule2_an_uploads_missing_provider_namespace_is_created_once() -> None:
    # T5 allows it on the provider: one namespace creation for several copies, before them.
    w = World()
    w.ns(CONSUMER, "team")
    for name in ("a", "b"):
        w.put(CONSUMER, SECRETS, f"team/{name}", labels=APP)
        w.put(CONSUMER, CONFIGMAPS, f"team/{name}", labels=APP)
    cms_up = rule(RelatedResourceKind.CONFIGMAPS, FROM_CONSUMER, APP)
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_UP, cms_up), rounds=rounds)
    # FromConsumer sources are listed per synced namespace (T1), never cluster-wide.
    assert set(rounds[0]) == {
        List(CONSUMER, CONFIGMAPS, "default"),
        List(CONSUMER, CONFIGMAPS, "team"),
        List(PROVIDER, CONFIGMAPS, "", MANAGED_SELECTOR),
        List(CONSUMER, SECRETS, "default"),
        List(CONSUMER, SECRETS, "team"),
        List(PROVIDER, SECRETS, "", MANAGED_SELECTOR),
    }
    assert p.actions[0] == CreateNamespace(PROVIDER, "team", labels={MANAGED: "true", CCU: LOCAL})
    assert [type(a).__name__ for a in p.actions] == ["CreateNamespace"] + ["Create"] * 4
    assert [a.target for a in p.actions if isinstance(a, Create)] == [
        ref(PROVIDER, CONFIGMAPS, "team/a"),
        ref(PROVIDER, CONFIGMAPS, "team/b"),
        ref(PROVIDER, SECRETS, "team/a"),
        ref(PROVIDER, SECRETS, "team/b"),
    ]


# --- rule 3: our copy present -------------------------------------------------------------------


def test_rule3_equal_copy_is_not_written() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="})
    w.copy_of(CONSUMER, SECRETS, "default/creds", data={"t": "eA=="})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_DOWN,), rounds=rounds)
    assert p == RelatedPlan((), (), 1, False)
    assert len(rounds) == 1  # steady state: two lists, nothing else


def test_rule3_changed_data_is_applied_with_the_target_uid() -> None:
    w = World()
    src = w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "bmV3", "u": "MQ=="})
    live = w.copy_of(CONSUMER, SECRETS, "default/creds", data={"t": "b2xk"})
    p = plan(w, (SECRETS_DOWN,))
    assert p.actions == (
        Apply(
            ref(CONSUMER, SECRETS, "default/creds"),
            want(src, SECRETS, uid=o.uid(live)),
            keys.FIELD_MANAGER_RELATED,
            force=True,
        ),
    )
    assert p.copies == 1
    run(w, p)
    assert plan(w, (SECRETS_DOWN,)).actions == ()


def test_rule3_missing_markers_are_restored_by_apply() -> None:
    # Someone stripped the managed label: the copy is found by the Get and re-marked.
    w = World()
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="})
    live = w.copy_of(CONSUMER, SECRETS, "default/creds", data={"t": "eA=="})
    del live["metadata"]["labels"]
    p = plan(w, (SECRETS_DOWN,))
    assert [type(a) for a in p.actions] == [Apply]
    run(w, p)
    assert o.labels_of(w.get(CONSUMER, SECRETS, "default/creds") or {}) == {MANAGED: "true"}
    assert plan(w, (SECRETS_DOWN,)).actions == ()


@pytest.mark.parametrize(
    ("live_fields", "why"),
    [
        ({"data": {"t": "b2xk"}, "immutable": True}, "immutable target"),
        ({"data": {"t": "eA=="}, "type": "kubernetes.io/tls"}, "type changed"),
        ({"data": {"t": "eA==", "gone": "MQ=="}}, "key removed from the source"),
    ],
)
def test_rule3_unappliable_difference_deletes_then_recreates(
    live_fields: dict[str, Any], why: str
) -> None:
    w = World()
    src = w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="})
    live = w.copy_of(CONSUMER, SECRETS, "default/creds", **live_fields)
    p = plan(w, (SECRETS_DOWN,))
    assert p.actions == (
        Delete(ref(CONSUMER, SECRETS, "default/creds"), o.uid(live)),
        RequeueAfter(2.0),
    ), why
    assert p.copies == 0
    run(w, p)
    p = plan(w, (SECRETS_DOWN,))
    assert [type(a) for a in p.actions] == [Create]
    run(w, p)
    copy_ = w.get(CONSUMER, SECRETS, "default/creds")
    assert copy_ is not None
    assert {k: copy_.get(k) for k in ("data", "type")} == {"data": src["data"], "type": "Opaque"}
    assert plan(w, (SECRETS_DOWN,)).actions == ()


# --- rule 4: foreign targets ----------------------------------------------------------------------


def test_rule4_foreign_unmanaged_target_is_a_conflict_never_written() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/widget-creds", labels=APP, data={"t": "eA=="})
    foreign = w.put(CONSUMER, SECRETS, "default/widget-creds", data={"mine": "eQ=="})
    before = copy.deepcopy(foreign)
    p = plan(w, (SECRETS_DOWN,))
    assert p == RelatedPlan(
        (),
        (
            RelatedConflict(
                CONSUMER,
                "Secret",
                ObjectKey("default", "widget-creds"),
                "Secret default/widget-creds on the consumer already exists and was not created "
                "by this binding; not overwriting it",
            ),
        ),
        0,
        False,
    )
    assert w.get(CONSUMER, SECRETS, "default/widget-creds") == before


def test_rule4_another_bindings_copy_is_a_conflict() -> None:
    w = World()
    w.put(CONSUMER, CONFIGMAPS, "default/cfg", labels=APP, data={"a": "1"})
    w.copy_of(PROVIDER, CONFIGMAPS, "default/cfg", binding=OTHER_BINDING, data={"a": "2"})
    w.put(PROVIDER, CONFIGMAPS, "default/unmarked", labels={MANAGED: "true"})
    w.put(CONSUMER, CONFIGMAPS, "default/unmarked", labels=APP)
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (rule(RelatedResourceKind.CONFIGMAPS, FROM_CONSUMER, APP),), rounds=rounds)
    assert p.actions == ()
    assert [(c.cluster, c.kind, str(c.key)) for c in p.conflicts] == [
        (PROVIDER, "ConfigMap", "default/cfg"),
        (PROVIDER, "ConfigMap", "default/unmarked"),
    ]
    assert len(rounds) == 1  # both were in the managed list: no Get needed


# --- rule 5: GC -----------------------------------------------------------------------------------


def test_rule5_copies_no_longer_selected_are_deleted_others_untouched() -> None:
    w = World()
    w.put(PROVIDER, CONFIGMAPS, "default/kept", labels=APP, data={"a": "1"})
    w.copy_of(CONSUMER, CONFIGMAPS, "default/kept", data={"a": "1"})
    w.put(PROVIDER, CONFIGMAPS, "default/unlabelled", data={"a": "1"})
    stale = w.copy_of(CONSUMER, CONFIGMAPS, "default/unlabelled", data={"a": "1"})
    orphan = w.copy_of(CONSUMER, CONFIGMAPS, "default/source-gone")
    w.copy_of(CONSUMER, CONFIGMAPS, "default/theirs", binding=OTHER_BINDING)
    w.copy_of(CONSUMER, SECRETS, "default/other-kind")  # no Secret rule: not looked at
    p = plan(w, (CMS_DOWN,))
    assert p == RelatedPlan(
        (
            Delete(ref(CONSUMER, CONFIGMAPS, "default/source-gone"), o.uid(orphan)),
            Delete(ref(CONSUMER, CONFIGMAPS, "default/unlabelled"), o.uid(stale)),
        ),
        (),
        1,
        False,
    )


def test_rule5_gc_is_per_direction() -> None:
    # A provider Secret selected FromProvider does not keep a FromConsumer copy on the provider.
    w = World()
    w.put(PROVIDER, SECRETS, "default/x", labels=APP)
    up = w.copy_of(PROVIDER, SECRETS, "default/y")
    p = plan(w, (SECRETS_UP, SECRETS_DOWN))
    assert Delete(ref(PROVIDER, SECRETS, "default/y"), o.uid(up)) in p.actions


# --- rule 6: unbind -----------------------------------------------------------------------------


def test_rule6_unbind_deletes_every_copy_of_this_binding_and_drains() -> None:
    w = World()
    a = w.copy_of(CONSUMER, SECRETS, "default/a")
    b = w.copy_of(PROVIDER, CONFIGMAPS, "team/b")
    c = w.copy_of(CONSUMER, CONFIGMAPS, "default/c")
    c["metadata"]["finalizers"] = ["example.org/hold"]
    w.copy_of(CONSUMER, SECRETS, "default/theirs", binding=OTHER_BINDING)
    w.put(CONSUMER, SECRETS, "default/user", data={})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_DOWN,), unbinding=True, rounds=rounds)
    assert rounds == [
        tuple(
            List(cluster, gvr, "", MANAGED_SELECTOR)
            for cluster in (CONSUMER, PROVIDER)
            for gvr in (CONFIGMAPS, SECRETS)
        )
    ]
    assert p == RelatedPlan(
        (
            Delete(ref(CONSUMER, CONFIGMAPS, "default/c"), o.uid(c)),
            Delete(ref(CONSUMER, SECRETS, "default/a"), o.uid(a)),
            Delete(ref(PROVIDER, CONFIGMAPS, "team/b"), o.uid(b)),
            RequeueAfter(2.0),
        ),
        (),
        0,
        True,
    )
    run(w, p)
    # `c` is held by a finalizer: still draining, and not deleted twice.
    p = plan(w, (SECRETS_DOWN,), unbinding=True)
    assert p == RelatedPlan((RequeueAfter(2.0),), (), 0, True)
    w.settle()
    assert plan(w, (SECRETS_DOWN,), unbinding=True) == RelatedPlan((), (), 0, False)
    assert w.get(CONSUMER, SECRETS, "default/theirs") is not None
    assert w.get(CONSUMER, SECRETS, "default/user") is not None


def test_rule6_unbind_of_a_binding_stays_in_its_namespace() -> None:
    w = World()
    mine = w.copy_of(CONSUMER, SECRETS, "default/a")
    w.copy_of(CONSUMER, SECRETS, "other/a")  # out of scope (cannot be this Binding's anyway)
    p = plan(w, (), scope="default", unbinding=True)
    assert p.actions == (
        Delete(ref(CONSUMER, SECRETS, "default/a"), o.uid(mine)),
        RequeueAfter(2.0),
    )


def test_rule6_unreadable_kind_no_rule_names_is_skipped_but_named_one_fails() -> None:
    w = World()
    mine = w.copy_of(CONSUMER, SECRETS, "default/a")
    denied = Failed(ApiError(403, "Forbidden", "configmaps is forbidden"))
    overrides: dict[Read, Any] = {List(PROVIDER, CONFIGMAPS, "", MANAGED_SELECTOR): denied}
    p = plan(w, (SECRETS_DOWN,), unbinding=True, overrides=overrides)
    assert p.actions == (
        Delete(ref(CONSUMER, SECRETS, "default/a"), o.uid(mine)),
        RequeueAfter(2.0),
    )
    named = rule(RelatedResourceKind.CONFIGMAPS, FROM_CONSUMER)
    with pytest.raises(ApiError) as err:
        plan(w, (named,), unbinding=True, overrides=overrides)
    assert err.value.code == 403


# --- rule 7: deletionTimestamp ------------------------------------------------------------------


def test_rule7_deleting_source_is_not_selected() -> None:
    w = World()
    gone = w.put(PROVIDER, SECRETS, "default/creds", labels=APP)
    gone["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    live = w.copy_of(CONSUMER, SECRETS, "default/creds")
    new = w.put(PROVIDER, SECRETS, "default/new", labels=APP)
    new["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    p = plan(w, (SECRETS_DOWN,))
    assert p.actions == (Delete(ref(CONSUMER, SECRETS, "default/creds"), o.uid(live)),)


def test_rule7_deleting_own_target_is_waited_for() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "bmV3"})
    live = w.copy_of(CONSUMER, SECRETS, "default/creds", data={"t": "b2xk"})
    live["metadata"]["deletionTimestamp"] = "t"
    w.copy_of(CONSUMER, SECRETS, "default/gc", data={})["metadata"]["deletionTimestamp"] = "t"
    p = plan(w, (SECRETS_DOWN,))
    assert p == RelatedPlan((RequeueAfter(2.0),), (), 0, False)
    w.settle()
    assert [type(a) for a in plan(w, (SECRETS_DOWN,)).actions] == [Create]


# --- rule 8: invalid rules ----------------------------------------------------------------------


def test_rule8_invalid_rule_freezes_its_channel() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP)
    w.copy_of(CONSUMER, SECRETS, "default/old")
    bad = rule(RelatedResourceKind.SECRETS, FROM_PROVIDER, {"app": "not a valid value!"})
    w.put(PROVIDER, CONFIGMAPS, "default/cfg", labels=APP)
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_DOWN, bad, CMS_DOWN), rounds=rounds)
    assert [a.target for a in p.actions if isinstance(a, Create)] == [
        ref(CONSUMER, CONFIGMAPS, "default/cfg")
    ]
    assert len(p.actions) == 1
    assert len(p.errors) == 1 and p.errors[0].startswith(
        "relatedResources[1]: invalid labelSelector"
    )
    assert all(r.gvr != SECRETS for rs in rounds for r in rs if isinstance(r, Get | List))
    grouped = RelatedResource(
        group="apps", resource=RelatedResourceKind.SECRETS, direction=FROM_PROVIDER
    )
    p = plan(w, (grouped,))
    assert p.actions == () and p.errors == (
        "relatedResources[0]: group must be empty (core), got 'apps'",
    )


# --- the trust boundary: T1-T7 -------------------------------------------------------------------


def refusals(p: RelatedPlan) -> list[tuple[str, str, str, str]]:
    """(kind, key, relatedResources entry, trust rule) of every refused or waiting source."""
    return [(r.kind, str(r.key), r.rule, r.trust_rule) for r in p.refused]


def test_t1_a_provider_source_waits_for_an_object_in_its_namespace() -> None:
    w = World()
    w.ns(CONSUMER, "team")  # the consumer has it, but no bound object lives there
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="})
    w.put(PROVIDER, SECRETS, "team/creds", labels=APP, data={"t": "eA=="})
    p = plan(w, (SECRETS_DOWN,), synced={"default"})
    assert [a.target for a in writes(p)] == [ref(CONSUMER, SECRETS, "default/creds")]
    assert refusals(p) == [("Secret", "team/creds", "relatedResources[0]", "T1")]
    (waiting,) = p.refused
    assert waiting.waiting and waiting.cluster == PROVIDER
    assert waiting.message == (
        "Secret team/creds on the provider (relatedResources[0], rule T1): waits for an object "
        "of a bound API in namespace team"
    )


def test_t1_copies_are_collected_when_the_last_object_of_their_namespace_goes() -> None:
    w = World()
    w.ns(CONSUMER, "team")
    w.put(PROVIDER, SECRETS, "team/creds", labels=APP, data={"t": "eA=="})
    converge(w, (SECRETS_DOWN,), synced={"team"})
    live = w.get(CONSUMER, SECRETS, "team/creds")
    assert live is not None
    p = plan(w, (SECRETS_DOWN,), synced=set())  # the last Widget in team was deleted
    assert p.actions == (Delete(ref(CONSUMER, SECRETS, "team/creds"), o.uid(live)),)
    assert refusals(p) == [("Secret", "team/creds", "relatedResources[0]", "T1")]


def test_t1_consumer_sources_are_read_only_in_synced_namespaces() -> None:
    w = World()
    w.ns(CONSUMER, "team")
    w.put(CONSUMER, SECRETS, "default/up", labels=APP, data={"t": "eA=="})
    w.put(CONSUMER, SECRETS, "team/up", labels=APP, data={"t": "eA=="})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_UP,), synced={"team"}, rounds=rounds)
    assert rounds[0] == (
        List(CONSUMER, SECRETS, "team"),
        List(PROVIDER, SECRETS, "", MANAGED_SELECTOR),
    )
    assert [a.target for a in writes(p) if isinstance(a, Create)] == [
        ref(PROVIDER, SECRETS, "team/up")
    ]
    # Nothing outside was read, so nothing there is named.
    assert p.refused == ()


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("kube-system/bootstrap-token-abcdef", SECRETS),
        ("kube-public/cluster-info", CONFIGMAPS),
        ("kube-node-lease/lease-creds", SECRETS),
        (f"{KONNECTOR_NS}/other-provider-kubeconfig", SECRETS),
    ],
)
def test_t2_never_into_kube_namespaces_or_the_konnectors_even_with_objects_there(
    key: str, kind: GVR
) -> None:
    w = World()
    ns = key.split("/")[0]
    w.ns(CONSUMER, ns)
    w.put(PROVIDER, kind, key, labels=APP, data={"t": "eA=="})
    rules = (SECRETS_DOWN, CMS_DOWN)
    p = plan(w, rules, synced={ns, "default"})  # instances live there too
    assert writes(p) == [] and p.copies == 0
    entry = "relatedResources[0]" if kind == SECRETS else "relatedResources[1]"
    assert refusals(p) == [(KIND[kind], key, entry, "T2")]
    assert p.refused[0].message.startswith(f"{KIND[kind]} {key} on the provider ({entry}, rule T2)")
    assert w.get(CONSUMER, kind, key) is None


def test_t2_an_upload_never_reads_kube_namespaces_or_the_konnectors() -> None:
    w = World()
    w.ns(CONSUMER, KONNECTOR_NS)
    w.put(CONSUMER, SECRETS, "kube-system/admin", labels=APP, data={"t": "eA=="})
    w.put(CONSUMER, SECRETS, f"{KONNECTOR_NS}/other-kubeconfig", labels=APP, data={"k": "eA=="})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_UP,), synced={"kube-system", KONNECTOR_NS, "default"}, rounds=rounds)
    assert rounds == [
        (List(CONSUMER, SECRETS, "default"), List(PROVIDER, SECRETS, "", MANAGED_SELECTOR))
    ]
    assert writes(p) == []
    # The namespaces are named as a whole: their objects were never read.
    assert refusals(p) == [
        ("Secret", f"{KONNECTOR_NS}/", "relatedResources[0]", "T2"),
        ("Secret", "kube-system/", "relatedResources[0]", "T2"),
    ]
    assert p.refused[0].message == (
        f"Secrets of namespace {KONNECTOR_NS} on the consumer (relatedResources[0], rule T2): "
        f"namespace {KONNECTOR_NS} is the konnector's own; related resources never go there"
    )


def test_t2_copies_an_older_konnector_made_in_kube_system_are_collected() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "kube-system/creds", labels=APP, data={"t": "eA=="})
    old = w.copy_of(CONSUMER, SECRETS, "kube-system/creds", data={"t": "eA=="})
    p = plan(w, (SECRETS_DOWN,), synced={"kube-system"})
    assert p.actions == (Delete(ref(CONSUMER, SECRETS, "kube-system/creds"), o.uid(old)),)


def test_t3_kube_root_ca_is_never_replaced_nor_any_kube_name_copied() -> None:
    w = World()
    ours = w.put(CONSUMER, CONFIGMAPS, "default/kube-root-ca.crt", data={"ca.crt": "mine"})
    before = copy.deepcopy(ours)
    w.put(PROVIDER, CONFIGMAPS, "default/kube-root-ca.crt", labels=APP, data={"ca.crt": "evil"})
    w.put(PROVIDER, SECRETS, "default/kube-proxy", labels=APP, data={"t": "eA=="})
    p = plan(w, (SECRETS_DOWN, CMS_DOWN))
    assert writes(p) == [] and p.conflicts == ()  # refused by name, before any conflict
    assert refusals(p) == [
        ("ConfigMap", "default/kube-root-ca.crt", "relatedResources[1]", "T3"),
        ("Secret", "default/kube-proxy", "relatedResources[0]", "T3"),
    ]
    assert w.get(CONSUMER, CONFIGMAPS, "default/kube-root-ca.crt") == before
    # Uploads too: the consumer's own CA is not the provider's business either.
    cms_up = rule(RelatedResourceKind.CONFIGMAPS, FROM_CONSUMER, names=("kube-root-ca.crt",))
    p = plan(w, (cms_up,))
    assert writes(p) == []
    assert refusals(p) == [("ConfigMap", "default/kube-root-ca.crt", "relatedResources[0]", "T3")]


@pytest.mark.parametrize("secret_type", [None, *ALL_DATA_TYPES])
def test_t4_data_types_are_copied_with_their_type(secret_type: str | None) -> None:
    w = World()
    fields = {"type": secret_type} if secret_type else {}
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="}, **fields)
    p = converge(w, (SECRETS_DOWN,))
    copy_ = w.get(CONSUMER, SECRETS, "default/creds")
    assert copy_ is not None and copy_["type"] == (secret_type or "Opaque")
    assert p.refused == ()


@pytest.mark.parametrize(
    "secret_type",
    [
        "kubernetes.io/service-account-token",
        "bootstrap.kubernetes.io/token",
        "example.com/whatever-a-controller-acts-on",
        "opaque",  # not "Opaque": types are exact
    ],
)
def test_t4_other_types_are_refused_not_retyped_in_both_directions(secret_type: str) -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/down", labels=APP, data={"t": "eA=="}, type=secret_type)
    w.put(CONSUMER, SECRETS, "default/up", labels=APP, data={"t": "eA=="}, type=secret_type)
    p = plan(w, (SECRETS_DOWN, SECRETS_UP))
    assert writes(p) == []
    assert refusals(p) == [
        ("Secret", "default/up", "relatedResources[1]", "T4"),
        ("Secret", "default/down", "relatedResources[0]", "T4"),
    ]
    assert f"Secret type {secret_type!r} may be acted on by the consumer cluster" in (
        p.refused[1].message
    )


def test_t4_a_source_whose_type_changes_to_a_credential_loses_its_copy() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, data={"t": "eA=="})
    converge(w, (SECRETS_DOWN,))
    live = w.get(CONSUMER, SECRETS, "default/creds")
    assert live is not None
    # A Secret's type is immutable, so the provider deletes and re-creates it.
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP, type="bootstrap.kubernetes.io/token")
    p = plan(w, (SECRETS_DOWN,))
    assert p.actions == (Delete(ref(CONSUMER, SECRETS, "default/creds"), o.uid(live)),)


def test_t5_never_creates_a_consumer_namespace() -> None:
    # The namespace T1 saw objects in is gone by the time of the write: nothing to do there.
    w = World()
    w.put(PROVIDER, SECRETS, "team/creds", labels=APP, data={"t": "eA=="})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_DOWN,), synced={"team"}, rounds=rounds)
    assert rounds[-1] == (Get(CONSUMER, NAMESPACES, ObjectKey("", "team")),)
    assert p.actions == () and p.copies == 0
    assert (CONSUMER, NAMESPACES, ObjectKey("", "team")) not in w.objs


@pytest.mark.parametrize(
    "selector",
    [
        None,
        RelatedResourceSelector(),
        RelatedResourceSelector(label_selector=LabelSelector()),
    ],
    ids=["no-selector", "empty-selector", "empty-labelSelector"],
)
def test_t6_an_upload_without_an_explicit_selector_is_invalid_and_frozen(
    selector: RelatedResourceSelector | None,
) -> None:
    w = World()
    w.put(CONSUMER, SECRETS, "default/mine", data={"t": "eA=="})
    old = w.copy_of(PROVIDER, SECRETS, "default/earlier")  # made under an earlier rule
    everything = RelatedResource(
        resource=RelatedResourceKind.SECRETS, direction=FROM_CONSUMER, selector=selector
    )
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_UP, everything), rounds=rounds)
    assert rounds == [] and p.actions == ()  # the channel is frozen: no reads, no writes, no GC
    assert p.errors == (
        "relatedResources[1]: FromConsumer needs an explicit selector (a labelSelector with at "
        "least one requirement, or names); without one it would upload every Secret of the "
        "namespaces the binding syncs to the provider (rule T6)",
    )
    assert w.get(PROVIDER, SECRETS, "default/earlier") == old


def test_t6_names_or_expressions_are_explicit_and_from_provider_needs_none() -> None:
    w = World()
    w.put(CONSUMER, SECRETS, "default/mine", data={"t": "eA=="})
    w.put(PROVIDER, CONFIGMAPS, "default/cfg", data={"a": "1"})
    expr = LabelSelectorRequirement(key="tier", operator="DoesNotExist")
    by_expr = RelatedResource(
        resource=RelatedResourceKind.CONFIGMAPS,
        direction=FROM_CONSUMER,
        selector=RelatedResourceSelector(label_selector=LabelSelector(match_expressions=(expr,))),
    )
    by_name = rule(RelatedResourceKind.SECRETS, FROM_CONSUMER, names=("mine",))
    everything_down = rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, no_selector=True)
    p = plan(w, (by_name, by_expr, everything_down))
    assert p.errors == ()
    assert [a.target for a in writes(p)] == [
        ref(CONSUMER, CONFIGMAPS, "default/cfg"),
        ref(PROVIDER, SECRETS, "default/mine"),
    ]


def test_t7_summary_lists_the_first_refusals_with_their_rule_and_counts_the_rest() -> None:
    w = World()
    for i in range(7):
        w.put(PROVIDER, SECRETS, f"kube-system/s{i}", labels=APP)
    w.put(PROVIDER, SECRETS, "team/waits", labels=APP)
    p = plan(w, (SECRETS_DOWN,), synced={"default"})
    assert [r.trust_rule for r in p.refused] == ["T2"] * 7 + ["T1"]  # refusals, then waits
    status, reason, message = summary(p)
    assert (status, reason) == (False, "RelatedRefused")
    assert message.startswith(
        "8 selected object(s) not copied: Secret kube-system/s0 on the provider "
        "(relatedResources[0], rule T2): namespace kube-system belongs to the cluster's own "
        "components (kube-*); never used; Secret kube-system/s1"
    )
    assert message.endswith("; and 3 more")
    assert "kube-system/s5" not in message


def test_t7_summary_reasons() -> None:
    ok = RelatedPlan((), (), 2, False)
    assert summary(ok) == (True, "AsExpected", "2 related copies in sync")
    assert summary(RelatedPlan((), (), 1, False))[2] == "1 related copy in sync"
    conflict = RelatedConflict(CONSUMER, "Secret", ObjectKey("default", "x"), "taken")
    assert summary(RelatedPlan((), (conflict,), 0, False)) == (
        True,
        "AsExpected",
        "0 related copies in sync; 1 target(s) in conflict (see Conflicts)",
    )
    w = World()
    w.put(PROVIDER, SECRETS, "team/waits", labels=APP)
    waiting = plan(w, (SECRETS_DOWN,), synced={"default"})
    assert summary(waiting) == (
        False,
        "Pending",
        "1 selected object(s) not copied: Secret team/waits on the provider "
        "(relatedResources[0], rule T1): waits for an object of a bound API in namespace team",
    )
    invalid = RelatedPlan((), (), 0, False, errors=("relatedResources[3]: bad",))
    assert summary(invalid) == (False, "InvalidRule", "relatedResources[3]: bad")


def test_rule_predicates() -> None:
    assert reserved_namespace("kube-system", "kb") and reserved_namespace("kb", "kb")
    assert reserved_namespace("kube-bind", "elsewhere")
    assert not reserved_namespace("kubernetes-dashboard", "kb")
    assert not reserved_namespace("default", "")
    assert reserved_name("kube-root-ca.crt") and not reserved_name("kubeconfig")
    assert data_secret_type(None) and data_secret_type("") and data_secret_type("Opaque")
    assert not data_secret_type(["Opaque"]) and not data_secret_type("kubernetes.io/token")
    assert frozenset(ALL_DATA_TYPES) == DATA_SECRET_TYPES
    assert may_create_namespace(PROVIDER) and not may_create_namespace(CONSUMER)
    assert synced_namespace("a", {"a"}) and not synced_namespace("b", {"a"})


# --- the read protocol --------------------------------------------------------------------------


def test_failed_reads_raise_their_api_error() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/creds", labels=APP)
    boom = ApiError(500, "InternalError", "etcd is sad")
    for read in (
        List(PROVIDER, SECRETS, ""),
        Get(CONSUMER, SECRETS, ObjectKey("default", "creds")),
        Get(CONSUMER, NAMESPACES, ObjectKey("", "default")),
    ):
        with pytest.raises(ApiError) as err:
            plan(w, (SECRETS_DOWN,), overrides={read: Failed(boom)})
        assert err.value == boom


def test_no_rules_means_no_reads() -> None:
    p = plan_related(
        (),
        binding_uid=UID,
        scope_namespace="",
        local_cluster_uid=LOCAL,
        observed={},
        konnector_namespace=KONNECTOR_NS,
    )
    assert p == RelatedPlan((), (), 0, False)


def test_binding_scope_restricts_reads_and_selection() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/a", labels=APP)
    w.put(PROVIDER, SECRETS, "other/a", labels=APP)
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_DOWN,), scope="default", rounds=rounds)
    assert rounds[0] == (
        List(PROVIDER, SECRETS, "default"),
        List(CONSUMER, SECRETS, "default", MANAGED_SELECTOR),
    )
    assert [a.target for a in p.actions if isinstance(a, Create)] == [
        ref(CONSUMER, SECRETS, "default/a")
    ]
    assert len(p.actions) == 1


def test_output_order_consumer_then_provider_namespaces_first() -> None:
    w = World()
    spots = (("zz", "b"), ("aa", "a"), ("default", "c"))
    for ns in ("zz", "aa"):
        w.ns(CONSUMER, ns)  # the consumer has them (T1); the provider does not
    for cluster in (CONSUMER, PROVIDER):
        for ns, name in spots:
            # Names differ per side, so the two directions do not conflict.
            w.put(cluster, SECRETS, f"{ns}/{cluster}-{name}", labels=APP)
            w.put(cluster, CONFIGMAPS, f"{ns}/{cluster}-{name}", labels=APP)
    cms_up = rule(RelatedResourceKind.CONFIGMAPS, FROM_CONSUMER, APP)
    p = plan(w, (SECRETS_UP, CMS_DOWN, cms_up, SECRETS_DOWN))
    names = [
        (a.cluster, "ns", a.name)
        if isinstance(a, CreateNamespace)
        else (a.target.cluster, a.target.gvr.resource, str(a.target.key))
        for a in p.actions
        if isinstance(a, CreateNamespace | Create)
    ]
    assert len(names) == len(p.actions)
    expected = []
    for cluster in (CONSUMER, PROVIDER):
        source = PROVIDER if cluster == CONSUMER else CONSUMER
        if cluster == PROVIDER:  # T5: namespaces are created on the provider only
            expected += [(cluster, "ns", "aa"), (cluster, "ns", "zz")]
        for res in ("configmaps", "secrets"):
            expected += [(cluster, res, f"{ns}/{source}-{n}") for ns, n in sorted(spots)]
    assert names == expected
    assert p.copies == 12


# --- upstream's e2e steps 23 and 29-32 at the kernel level ---------------------------------------


def converge(world: World, rules: tuple[RelatedResource, ...], **kw: Any) -> RelatedPlan:
    """Plan and carry out until a pass writes nothing."""
    for _ in range(4):
        p = plan(world, rules, **kw)
        if not writes(p):
            return p
        run(world, p)
        world.settle()
    raise AssertionError("did not converge")


def test_item23_from_provider_secret_by_label_then_gc_on_label_removal() -> None:
    w = World()
    src = w.put(PROVIDER, SECRETS, "default/widget-creds", labels=APP, data={"token": "czNjcjN0"})
    p = converge(w, (SECRETS_DOWN,))
    copy_ = w.get(CONSUMER, SECRETS, "default/widget-creds")
    assert copy_ is not None
    assert copy_["data"] == {"token": "czNjcjN0"}
    assert o.labels_of(copy_) == {MANAGED: "true"}
    assert o.annotations_of(copy_)[RB] == UID
    assert p.copies == 1
    del src["metadata"]["labels"]
    p = converge(w, (SECRETS_DOWN,))
    assert w.get(CONSUMER, SECRETS, "default/widget-creds") is None
    assert p.copies == 0


def test_item29_configmaps_from_provider_sync_gc_and_foreign_not_touched() -> None:
    w = World()
    src = w.put(PROVIDER, CONFIGMAPS, "default/widget-config", labels=APP, data={"a": "1"})
    w.put(PROVIDER, CONFIGMAPS, "default/preexisting", labels=APP, data={"from": "provider"})
    foreign = w.put(CONSUMER, CONFIGMAPS, "default/preexisting", data={"from": "consumer"})
    before = copy.deepcopy(foreign)
    p = converge(w, (CMS_DOWN,))
    assert (w.get(CONSUMER, CONFIGMAPS, "default/widget-config") or {})["data"] == {"a": "1"}
    assert w.get(CONSUMER, CONFIGMAPS, "default/preexisting") == before
    assert MANAGED not in o.labels_of(before)
    assert [(c.cluster, c.kind, c.key) for c in p.conflicts] == [
        (CONSUMER, "ConfigMap", ObjectKey("default", "preexisting"))
    ]
    src["data"] = {"a": "2"}
    converge(w, (CMS_DOWN,))
    assert (w.get(CONSUMER, CONFIGMAPS, "default/widget-config") or {})["data"] == {"a": "2"}
    src["metadata"]["labels"] = {}
    converge(w, (CMS_DOWN,))
    assert w.get(CONSUMER, CONFIGMAPS, "default/widget-config") is None
    assert w.get(CONSUMER, CONFIGMAPS, "default/preexisting") == before


def test_item30_secrets_from_consumer_sync_up_and_gc() -> None:
    w = World()
    src = w.put(CONSUMER, SECRETS, "default/up", labels=APP, data={"pw": "aHVudGVyMg=="})
    converge(w, (SECRETS_UP,))
    copy_ = w.get(PROVIDER, SECRETS, "default/up")
    assert copy_ is not None and copy_["data"] == {"pw": "aHVudGVyMg=="}
    assert o.labels_of(copy_)[MANAGED] == "true"
    assert o.annotations_of(copy_) == {CCU: LOCAL, RB: UID}
    src["metadata"]["labels"] = {"app": "gone"}
    converge(w, (SECRETS_UP,))
    assert w.get(PROVIDER, SECRETS, "default/up") is None
    assert w.get(CONSUMER, SECRETS, "default/up") is not None


def test_item31_names_selector() -> None:
    w = World()
    w.put(PROVIDER, CONFIGMAPS, "default/wanted", data={"w": "1"})
    w.put(PROVIDER, CONFIGMAPS, "default/unwanted", data={"u": "1"})
    names = rule(RelatedResourceKind.CONFIGMAPS, FROM_PROVIDER, names=("wanted",))
    converge(w, (names,))
    assert w.get(CONSUMER, CONFIGMAPS, "default/wanted") is not None
    assert w.get(CONSUMER, CONFIGMAPS, "default/unwanted") is None


def test_item32_unbind_removes_the_consumer_copy() -> None:
    w = World()
    w.put(PROVIDER, SECRETS, "default/widget-creds", labels=APP, data={"t": "eA=="})
    converge(w, (SECRETS_DOWN,))
    assert w.get(CONSUMER, SECRETS, "default/widget-creds") is not None
    p = plan(w, (SECRETS_DOWN,), unbinding=True)
    assert p.draining
    run(w, p)
    p = plan(w, (SECRETS_DOWN,), unbinding=True)
    assert p == RelatedPlan((), (), 0, False)
    assert w.get(CONSUMER, SECRETS, "default/widget-creds") is None
    assert w.get(PROVIDER, SECRETS, "default/widget-creds") is not None


# --- properties -----------------------------------------------------------------------------------

NAMES = ("a", "kube-b")
NSS = ("default", "other", "kube-system", KONNECTOR_NS)
GVRS = (CONFIGMAPS, SECRETS)
CLUSTERS = (CONSUMER, PROVIDER)
SLOTS = [(c, g, ObjectKey(ns, n)) for c in CLUSTERS for g in GVRS for ns in NSS for n in NAMES]
DATA_TYPES = ("Opaque", "kubernetes.io/tls", "kubernetes.io/dockerconfigjson")
CREDENTIAL_TYPES = (
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
    "example.com/unknown",
)

labels_st: st.SearchStrategy[dict[str, str]] = st.sampled_from([{}, APP, {"app": "other"}])
data_st: st.SearchStrategy[dict[str, str] | None] = st.sampled_from(
    [None, {}, {"k": "MQ=="}, {"k": "Mg=="}, {"k": "MQ==", "j": "Mw=="}]
)
type_st = st.sampled_from([None, *DATA_TYPES, *CREDENTIAL_TYPES])


@st.composite
def objects(draw: st.DrawFn, gvr: GVR) -> dict[str, Any] | None:
    who = draw(st.sampled_from(["none", "none", "user", "user", "ours", "theirs", "unmarked"]))
    if who == "none":
        return None
    labels = dict(draw(labels_st))
    annotations: dict[str, str] = {}
    if who == "ours":
        labels[MANAGED] = "true"
        annotations = {CCU: draw(st.sampled_from([LOCAL, "stale-cluster"])), RB: UID}
    elif who == "theirs":
        labels[MANAGED] = "true"
        annotations = {CCU: LOCAL, RB: OTHER_BINDING}
    elif who == "unmarked":
        labels[MANAGED] = draw(st.sampled_from(["true", "false"]))
    fields: dict[str, Any] = {"labels": labels, "annotations": annotations}
    data = draw(data_st)
    if data is not None:
        fields["data"] = data
    if gvr == SECRETS:
        t = draw(type_st)
        if t is not None:
            fields["type"] = t
    if draw(st.booleans()):
        fields["immutable"] = draw(st.booleans())
    fields["deleting"] = draw(st.sampled_from([False, False, False, True]))
    fields["finalizers"] = draw(st.sampled_from([False, False, True]))
    return fields


@st.composite
def worlds(draw: st.DrawFn) -> World:
    w = World()
    for cluster, gvr, key in SLOTS:
        spec = draw(objects(gvr))
        if spec is None:
            continue
        deleting, finalizers = spec.pop("deleting"), spec.pop("finalizers")
        obj = w.put(cluster, gvr, f"{key.namespace}/{key.name}", **spec)
        if deleting:
            obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        if finalizers:
            obj["metadata"]["finalizers"] = ["example.org/hold"]
    for cluster in CLUSTERS:
        for ns in NSS[1:]:
            used = any(s[0] == cluster and s[2].namespace == ns for s in w.objs)
            if used or draw(st.booleans()):
                w.ns(cluster, ns)
    return w


@st.composite
def rules_st(draw: st.DrawFn) -> tuple[RelatedResource, ...]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        match = draw(st.sampled_from([None, APP, {"app": "other"}]))
        names = tuple(draw(st.sets(st.sampled_from(NAMES), max_size=2)))
        r = rule(
            draw(st.sampled_from(list(RelatedResourceKind))),
            draw(st.sampled_from(list(SyncDirection))),
            match,
            tuple(sorted(names)),
            no_selector=draw(st.booleans()),
        )
        out.append(r)
    return tuple(out)


def gvr_of(r: RelatedResource) -> GVR:
    return GVR("", "v1", str(r.resource))


def target_of(r: RelatedResource) -> str:
    return PROVIDER if r.direction == FROM_CONSUMER else CONSUMER


def explicit(r: RelatedResource) -> bool:
    """T6, restated: a labelSelector with a requirement, or names."""
    sel = r.selector
    if sel is None:
        return False
    ls = sel.label_selector
    return bool(sel.names) or (ls is not None and bool(ls.match_labels or ls.match_expressions))


def frozen_sides(rules: tuple[RelatedResource, ...]) -> set[tuple[str, GVR]]:
    """Channels with an invalid rule (T6): nothing there is read or written."""
    return {
        (target_of(r), gvr_of(r)) for r in rules if r.direction == FROM_CONSUMER and not explicit(r)
    }


def _target_sides(rules: tuple[RelatedResource, ...]) -> set[tuple[str, GVR]]:
    return {(target_of(r), gvr_of(r)) for r in rules} - frozen_sides(rules)


def allowed_namespaces(synced: Collection[str]) -> set[str]:
    """T1 minus T2, restated."""
    return {ns for ns in synced if not ns.startswith("kube-") and ns != KONNECTOR_NS}


def admitted(obj: o.Obj, gvr: GVR, synced: Collection[str]) -> bool:
    """T1-T4, restated independently of the kernel."""
    return (
        o.namespace(obj) in allowed_namespaces(synced)
        and not o.name(obj).startswith("kube-")
        and (gvr != SECRETS or obj.get("type") in (None, "", *ALL_DATA_TYPES))
    )


def check_safety(
    world: World,
    p: RelatedPlan,
    rules: tuple[RelatedResource, ...],
    unbinding: bool,
    synced: Collection[str] = (),
    rounds: list[tuple[Read, ...]] | None = None,
) -> None:
    """No write touches an object this binding did not make, nor a kind no rule targets; no
    copy is written outside the trust boundary (T1-T5), and no consumer Secret or ConfigMap is
    read outside the namespaces the binding syncs."""
    sides = _target_sides(rules)
    for r in (x for rs in rounds or [] for x in rs):
        if isinstance(r, List) and r.cluster == CONSUMER and not r.label_selector:
            assert r.namespace in allowed_namespaces(synced), f"listed the consumer's {r}"
    for a in p.actions:
        if isinstance(a, RequeueAfter):
            continue
        if isinstance(a, CreateNamespace):
            assert not unbinding
            assert a.cluster == PROVIDER, f"T5: created a consumer namespace {a}"
            assert (a.cluster, NAMESPACES, ObjectKey("", a.name)) not in world.objs
            continue
        assert isinstance(a, Create | Apply | Delete), a
        t = a.target
        live = world.objs.get((t.cluster, t.gvr, t.key))
        assert t.gvr in GVRS
        if not unbinding:
            assert (t.cluster, t.gvr) in sides, f"write to a side no rule targets: {a}"
        if isinstance(a, Create | Apply):
            assert admitted(a.body, t.gvr, synced), f"a copy outside the trust boundary: {a}"
        if isinstance(a, Create):
            assert not unbinding and live is None
            assert o.annotations_of(a.body)[RB] == UID
            continue
        assert live is not None, a
        assert o.annotations_of(live).get(RB) == UID, f"touched an object not ours: {a}"
        if isinstance(a, Delete):
            assert a.uid == o.uid(live) and not o.is_deleting(live)
        else:
            assert not unbinding and a.body["metadata"]["uid"] == o.uid(live)
            assert a.force and a.field_manager == keys.FIELD_MANAGER_RELATED


def own_copies(world: World, scope: str) -> dict[Slot, o.Obj]:
    return {
        s: obj
        for s, obj in world.objs.items()
        if s[1] in GVRS
        and (not scope or s[2].namespace == scope)
        and o.labels_of(obj).get(MANAGED) == "true"
        and o.annotations_of(obj).get(RB) == UID
    }


def converge_and_check(
    world: World, rules: tuple[RelatedResource, ...], scope: str, synced: Collection[str]
) -> None:
    """Plans are safe and deterministic, the world settles within two writing passes, stays
    settled, and is then the desired one; every source not admitted is reported (T7)."""
    untouched = {
        s: copy.deepcopy(obj)
        for s, obj in world.objs.items()
        if s[1] in GVRS and o.annotations_of(obj).get(RB) != UID and not o.is_deleting(obj)
    }
    frozen = frozen_sides(rules)
    passes_with_writes = 0
    for _ in range(6):
        settled = not any(o.is_deleting(obj) for obj in world.objs.values())
        rounds: list[tuple[Read, ...]] = []
        p = plan(world, rules, scope=scope, rounds=rounds, synced=synced)
        assert len(rounds) <= 3
        assert p == plan(world, rules, scope=scope, synced=synced)  # determinism
        assert not p.draining and bool(p.errors) == bool(frozen)
        check_safety(world, p, rules, False, synced, rounds)
        if not writes(p) and settled:
            break
        passes_with_writes += bool(writes(p))
        run(world, p)
        world.settle()
    else:
        raise AssertionError("no quiet pass on a settled world")
    # Delete-and-recreate is the longest path: one pass deletes, the next creates.
    assert passes_with_writes <= 2
    # Stability: nothing to do, and nothing to do again.
    run(world, p)
    assert writes(plan(world, rules, scope=scope, synced=synced)) == []
    # Objects this binding did not make are never written.
    for s, before in untouched.items():
        assert world.objs.get(s) == before
    # The settled world is the desired one.
    final = plan(world, rules, scope=scope, synced=synced)
    copies = own_copies(world, scope)
    sides = _target_sides(rules)
    assert final.copies == sum(1 for s in copies if (s[0], s[1]) in sides)
    conflicts = {(c.cluster, c.key) for c in final.conflicts}
    refused = {(r.cluster, r.kind, r.key) for r in final.refused}
    for r in rules:
        target, gvr = target_of(r), gvr_of(r)
        if (target, gvr) in frozen:
            continue
        source = CONSUMER if target == PROVIDER else PROVIDER
        for (c, g, key), src in list(world.objs.items()):
            if (c, g) != (source, gvr) or (scope and key.namespace != scope):
                continue
            if o.annotations_of(src).get(RB) == UID or not selected_by(r, src):
                continue
            if o.is_deleting(src):
                continue
            if not admitted(src, gvr, synced):
                if source == PROVIDER or key.namespace in allowed_namespaces(synced):
                    assert (source, KIND[gvr], key) in refused, f"T7: {key} not reported"
                continue
            live = world.objs.get((target, gvr, key))
            assert live is not None
            if o.annotations_of(live).get(RB) == UID:
                body = want(src, gvr)
                for f in ("data", "binaryData"):
                    assert (live.get(f) or {}) == (body.get(f) or {})
            else:
                assert (target, key) in conflicts
    # A synced namespace T2 excludes is reported as a whole for each FromConsumer channel.
    for r in rules:
        if r.direction == FROM_CONSUMER and (target_of(r), gvr_of(r)) not in frozen:
            for ns in set(synced) - allowed_namespaces(synced):
                assert (CONSUMER, KIND[gvr_of(r)], ObjectKey(ns, "")) in refused
    # Every copy of ours on a side a rule targets has a source some rule of its channel
    # selects and the trust boundary admits.
    for c, g, key in copies:
        if (c, g) not in sides:
            continue
        source = CONSUMER if c == PROVIDER else PROVIDER
        direction = FROM_CONSUMER if c == PROVIDER else FROM_PROVIDER
        origin = world.objs.get((source, g, key))
        assert origin is not None and o.annotations_of(origin).get(RB) != UID
        assert admitted(origin, g, synced), f"a copy outside the trust boundary stayed: {key}"
        assert any(
            r.direction == direction and str(r.resource) == g.resource and selected_by(r, origin)
            for r in rules
        )


def synced_of(world: World, data: st.DataObject, scope: str) -> set[str]:
    """Namespaces the binding syncs objects in: some of those the consumer has (a Binding:
    its own)."""
    if scope:
        return {scope}
    have = sorted(world.live_namespaces(CONSUMER))
    return set(data.draw(st.sets(st.sampled_from(have)), label="synced"))


@settings(max_examples=200, deadline=None)
@given(worlds(), rules_st(), st.sampled_from(["", "default"]), st.data())
def test_property_safety_determinism_and_stability(
    world: World, rules: tuple[RelatedResource, ...], scope: str, data: st.DataObject
) -> None:
    synced = synced_of(world, data, scope)
    converge_and_check(world, rules, scope, synced)
    # Users edit, relabel or delete sources; the copies follow.
    for slot, obj in sorted(world.objs.items(), key=lambda kv: kv[0]):
        if slot[1] not in GVRS or o.annotations_of(obj).get(RB) == UID:
            continue
        edit = data.draw(st.sampled_from(["keep", "data", "labels", "delete"]), label=str(slot))
        if edit == "data":
            drawn = data.draw(data_st)
            obj["data"] = dict(drawn) if drawn else {}
        elif edit == "labels":
            obj["metadata"]["labels"] = dict(data.draw(labels_st))
        elif edit == "delete":
            del world.objs[slot]
    # ... and objects of bound APIs come and go: T1's namespaces change, copies follow.
    synced = synced_of(world, data, scope)
    converge_and_check(world, rules, scope, synced)


@settings(max_examples=200, deadline=None)
@given(worlds(), rules_st(), st.data())
def test_law_no_provider_choice_reaches_outside_the_trust_boundary(
    world: World, rules: tuple[RelatedResource, ...], data: st.DataObject
) -> None:
    """For any provider-chosen set of sources (any namespace, name, type, labels), no planned
    consumer write lands outside the synced namespaces, in kube-* or the konnector's namespace,
    on a kube-* name or with a non-data Secret type, and no consumer namespace is created."""
    synced = synced_of(world, data, "")
    rounds: list[tuple[Read, ...]] = []
    p = plan(world, rules, rounds=rounds, synced=synced)
    check_safety(world, p, rules, False, synced, rounds)
    for a in p.actions:
        if isinstance(a, Create | Apply) and a.target.cluster == CONSUMER:
            ns, name = a.target.key.namespace, a.target.key.name
            assert ns in synced and not ns.startswith("kube-") and ns != KONNECTOR_NS
            assert not name.startswith("kube-")
            assert a.body.get("type") in (None, *DATA_TYPES), a.body.get("type")


def selected_by(r: RelatedResource, obj: o.Obj) -> bool:
    sel = r.selector
    if sel is None:
        return True
    if sel.names and o.name(obj) not in sel.names:
        return False
    if sel.label_selector is None:
        return True
    return all(o.labels_of(obj).get(k) == v for k, v in sel.label_selector.match_labels.items())


@settings(max_examples=200, deadline=None)
@given(worlds(), rules_st(), st.sampled_from(["", "default"]))
def test_property_unbind_converges(
    world: World, rules: tuple[RelatedResource, ...], scope: str
) -> None:
    others = {
        s: copy.deepcopy(obj)
        for s, obj in world.objs.items()
        if o.annotations_of(obj).get(RB) != UID and not o.is_deleting(obj)
    }
    p = None
    for _ in range(3):
        rounds: list[tuple[Read, ...]] = []
        p = plan(world, rules, scope=scope, unbinding=True, rounds=rounds)
        assert len(rounds) == 1
        check_safety(world, p, rules, unbinding=True)
        assert p.draining == bool(own_copies(world, scope))
        assert p.copies == 0 and p.conflicts == ()
        run(world, p)
        world.settle()
    assert p is not None and not p.draining and p.actions == ()
    assert own_copies(world, scope) == {}
    for s, before in others.items():
        assert world.objs.get(s) == before


# --- rule 10: a tenant's provider side, through its mapper ---------------------------------------

TENANT = Tenant("kb-0123456789", ("widgets.example.org",))
HOME = TENANT.namespace


def granted_claim(w: World, consumer_ns: str, *, ready: bool = True) -> None:
    status = {"namespace": TENANT.provider_namespace(consumer_ns), "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "reason": "AsExpected",
         "message": "" if ready else "no"}]}  # fmt: skip
    meta = {"name": consumer_ns, "namespace": HOME, "uid": w._uid()}
    w.objs[(PROVIDER, BOUND_NAMESPACES, ObjectKey(HOME, consumer_ns))] = {
        "apiVersion": "iam.kube-bind.io/v1alpha1", "kind": "BoundNamespace", "metadata": meta,
        "status": status}  # fmt: skip


def test_rule10_a_tenants_upload_goes_to_its_mapped_namespace_read_per_claim() -> None:
    w = World()
    w.ns(CONSUMER, "team")
    w.ns(PROVIDER, f"{HOME}-team")
    granted_claim(w, "team")
    src = w.put(CONSUMER, SECRETS, "team/creds", labels=APP, data={"k": "dg=="})
    w.put(PROVIDER, SECRETS, "team/creds", labels=APP, data={"k": "other tenant"})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_UP,), tenant=TENANT, rounds=rounds, synced={"team"})
    assert rounds == [
        (List(PROVIDER, BOUND_NAMESPACES, HOME),),
        (List(CONSUMER, SECRETS, "team"),
         List(PROVIDER, SECRETS, f"{HOME}-team", MANAGED_SELECTOR)),
        (Get(PROVIDER, SECRETS, ObjectKey(f"{HOME}-team", "creds")),),
    ]  # fmt: skip
    body = want(src, SECRETS)
    body["metadata"]["namespace"] = f"{HOME}-team"
    target = ref(PROVIDER, SECRETS, f"{HOME}-team/creds")
    assert p.actions == (Create(target, body, keys.FIELD_MANAGER_RELATED),)
    run(w, p)
    assert plan(w, (SECRETS_UP,), tenant=TENANT, synced={"team"}).actions == ()  # ours, in sync
    assert w.get(PROVIDER, SECRETS, "team/creds")["data"] == {"k": "other tenant"}  # type: ignore[index]


def test_rule10_an_upload_waits_for_its_namespaces_claim() -> None:
    w = World()
    w.ns(CONSUMER, "team")
    granted_claim(w, "team", ready=False)
    w.put(CONSUMER, SECRETS, "team/creds", labels=APP, data={"k": "dg=="})
    rounds: list[tuple[Read, ...]] = []
    p = plan(w, (SECRETS_UP,), tenant=TENANT, synced={"team"}, rounds=rounds)
    assert p.actions == ()  # no namespace is read or created for a tenant
    assert [r.message for r in p.refused] == [
        "Secret team/creds on the consumer (relatedResources[0], rule T1): waits for namespace "
        "team's claim on the provider to be granted"
    ]
    assert refusals(p)[0][3] == "T1" and p.refused[0].waiting
    provider_reads = [r for rs in rounds for r in rs if r.cluster == PROVIDER]
    assert provider_reads == [List(PROVIDER, BOUND_NAMESPACES, HOME)]  # nothing in <home>-team


def test_rule10_a_tenants_download_comes_from_its_mapped_namespace() -> None:
    w = World()
    w.ns(CONSUMER, "team")
    granted_claim(w, "team")
    w.put(PROVIDER, SECRETS, f"{HOME}-team/creds", labels=APP, data={"k": "dg=="})
    w.put(PROVIDER, SECRETS, "team/creds", labels=APP, data={"k": "not mine"})
    p = plan(w, (SECRETS_DOWN,), tenant=TENANT)
    run(w, p)
    got = w.get(CONSUMER, SECRETS, "team/creds")
    assert got is not None and got["data"] == {"k": "dg=="}
    assert got["metadata"]["namespace"] == "team"


def test_rule10_unbinding_deletes_the_tenants_copies_in_its_namespaces() -> None:
    w = World()
    granted_claim(w, "team")
    w.copy_of(PROVIDER, SECRETS, f"{HOME}-team/creds", data={"k": "dg=="})
    w.copy_of(PROVIDER, SECRETS, "elsewhere/creds", data={"k": "dg=="})
    p = plan(w, (SECRETS_UP,), tenant=TENANT, unbinding=True)
    deleted = [a.target for a in p.actions if isinstance(a, Delete)]
    assert deleted == [ref(PROVIDER, SECRETS, f"{HOME}-team/creds")]
