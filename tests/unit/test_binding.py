"""The binding kernel (kbcore/control/binding.py; docs/design.md, "Differences from upstream").

Each test drives `plan_binding` through the read protocol with a small answer function and checks
the conditions and writes a user would see, for ClusterBindings and namespaced Bindings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore.actions import (
    CONSUMER,
    PROVIDER,
    AddFinalizer,
    Create,
    Delete,
    Plan,
    RemoveFinalizer,
    RequeueAfter,
    Update,
    UpdateStatus,
)
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, NAMESPACES, SECRETS
from kbcore.control.binding import BindingView, plan_binding
from kbcore.control.engagement import syncs_api
from kbcore.control.kubeconfig import Credentials, SecretProblem
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List, Read
from kbcore.schema import policy as schema
from tests import crds
from tests.unit.reading import answered

NOW = 1_767_225_600.0
CONN = "p"
CONS_UID = "cons-uid"
CLEANUP, SYNCER = keys.FINALIZER_CLEANUP, keys.FINALIZER_SYNCER
CRDS = schema.CRDS
CREDS = Credentials(server="https://provider.example", token="t")
WIDGETS = GVR("example.org", "v1", "widgets")
W = "widgets.example.org"
THINGS = "things.example.org"
FORBIDDEN = ApiError(403, "Forbidden", "denied")
UNAVAILABLE = ApiError(503, "ServiceUnavailable", "down")
CB_LIST, B_LIST = List(CONSUMER, CLUSTERBINDINGS), List(CONSUMER, BINDINGS)
KONNECTOR_NS = "kube-bind"


def provider_crd(
    plural: str, *, scope: str = "Namespaced", webhook: bool = False
) -> dict[str, Any]:
    kind = plural[:-1].title()
    versions = [crds.version(status=False)]
    crd = crds.crd(plural, kind, scope=scope, singular=plural[:-1], versions=versions)
    crd["metadata"]["uid"] = f"prov-{plural}"
    if webhook:
        crd["spec"]["conversion"] = {"strategy": "Webhook"}
    return crd


def consumer_crd(plural: str = "widgets", **meta: Any) -> dict[str, Any]:
    """The consumer CRD as the konnector installed it through Connection p, Established."""
    crd = schema.for_consumer(provider_crd(plural), CONN)
    crd["metadata"].update({"uid": f"cons-{plural}", "resourceVersion": "5", **meta})
    crd["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
    return crd


def exported(plural: str, scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "name": f"{plural}.example.org",
        "group": "example.org",
        "resource": plural,
        "scope": scope,
        "versions": ["v1"],
    }


def connection(*, ready: bool = True, source: str = "CRD", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": keys.API_VERSION,
        "kind": "Connection",
        "metadata": {"name": CONN, "uid": "conn-uid"},
        "spec": {"kubeconfigSecretRef": {"namespace": "kube-bind", "name": "kc"}, **spec},
        "status": {
            "localClusterUID": CONS_UID,
            "remoteClusterUID": "prov-uid",
            "activeSchemaSource": source,
            "exportedAPIs": [exported("widgets"), exported("things", "Cluster")],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "AsExpected" if ready else "Pending",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


def binding(
    kind: str = "ClusterBinding",
    *,
    apis: tuple[str, ...] = (W,),
    name: str = "b",
    namespace: str = "team-a",
    deleting: bool = False,
    finalizers: tuple[str, ...] = (CLEANUP,),
    conn: str = CONN,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "uid": f"{kind}-{name}-uid",
        "resourceVersion": "9",
        "generation": 1,
        "finalizers": list(finalizers),
    }
    if kind == "Binding":
        meta["namespace"] = namespace
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "apiVersion": keys.API_VERSION,
        "kind": kind,
        "metadata": meta,
        "spec": {"connectionRef": {"name": conn}, "apis": [{"name": a} for a in apis]},
    }


def default_answer(read: Read) -> Any:
    """Provider CRDs exist for every name asked; nothing else exists on the consumer."""
    if isinstance(read, Get) and read.cluster == PROVIDER and read.gvr == CRDS:
        plural = read.key.name.split(".", 1)[0]
        return provider_crd(plural, scope="Cluster" if plural == "things" else "Namespaced")
    if isinstance(read, Get):
        return None
    if isinstance(read, List):
        return []
    raise AssertionError(f"unexpected read {read!r}")


def drive(
    b: dict[str, Any],
    answers: Mapping[Read, Any] | None = None,
    *,
    conn: dict[str, Any] | str | None = "default",
    credentials: Credentials | SecretProblem | None = CREDS,
) -> tuple[Plan, dict[Read, Any]]:
    answers = answers or {}
    view = BindingView(
        binding=b,
        connection=connection() if conn == "default" else conn,  # type: ignore[arg-type]
        credentials=credentials,
        observed={},
        now=NOW,
        konnector_namespace=KONNECTOR_NS,
    )
    return answered(plan_binding, view, lambda r: answers[r] if r in answers else default_answer(r))


def status_of(plan: Plan) -> dict[str, Any]:
    updates = [a for a in plan.actions if isinstance(a, UpdateStatus)]
    assert len(updates) == 1, f"expected one status write, got {plan.actions}"
    return updates[0].body["status"]


def cond(plan: Plan, type_: str) -> tuple[str, str, str] | None:
    for c in status_of(plan).get("conditions") or []:
        if c["type"] == type_:
            return c["status"], c["reason"], c["message"]
    return None


def api_cond(plan: Plan, name: str) -> tuple[str, str, str]:
    (entry,) = [e for e in status_of(plan)["boundAPIs"] if e["name"] == name]
    (c,) = [c for c in entry["conditions"] if c["type"] == "Ready"]
    return c["status"], c["reason"], c["message"]


def crd_writes(plan: Plan) -> list[Any]:
    return [a for a in plan.writes if getattr(a, "target", None) and a.target.gvr == CRDS]


def consumer_crd_get(name: str = W) -> Get:
    return Get(CONSUMER, CRDS, ObjectKey("", name))


def provider_crd_get(name: str = W) -> Get:
    return Get(PROVIDER, CRDS, ObjectKey("", name))


# -- rules 2-3: finalizer, Connection ----------------------------------------------------------


def test_cleanup_finalizer_is_added_before_anything_else() -> None:
    plan, observed = drive(binding(finalizers=()))
    ref = ObjectRef(CONSUMER, CLUSTERBINDINGS, ObjectKey("", "b"))
    assert plan.actions == (AddFinalizer(ref, CLEANUP, "9", (CLEANUP,)),)
    assert observed == {}


def test_missing_connection_is_pending_with_its_name() -> None:
    plan, _ = drive(binding(), conn=None, credentials=None)
    assert cond(plan, "Ready") == ("False", "Pending", 'Connection "p" not found yet')
    assert crd_writes(plan) == []


@pytest.mark.parametrize(
    ("conn", "creds"),
    [
        (connection(ready=False), CREDS),
        (connection(), SecretProblem("Secret kube-bind/kc not found")),
        ({**connection(), "metadata": {"name": CONN, "deletionTimestamp": "2026"}}, CREDS),
    ],
    ids=["not-ready", "secret-unusable", "deleting"],
)
def test_connection_not_ready_is_pending(conn: dict[str, Any], creds: Any) -> None:
    plan, observed = drive(binding(), conn=conn, credentials=creds)
    assert cond(plan, "Ready") == ("False", "Pending", 'Connection "p" not ready yet')
    assert observed == {} and crd_writes(plan) == []


# -- rule 4: per API ---------------------------------------------------------------------------


def test_apis_not_exported_are_listed_in_order() -> None:
    plan, _ = drive(binding(apis=("b.example.org", W, "a.example.org")))
    status, reason, message = cond(plan, "Ready") or ("", "", "")
    assert (status, reason) == ("False", "APINotExported")
    assert message == (
        "APIs not exported by the provider yet: b.example.org, a.example.org; "
        f'waiting for CRD "{W}" to be established'
    )
    assert api_cond(plan, "a.example.org")[:2] == ("False", "APINotExported")


def test_absent_consumer_crd_is_pulled_and_waited_for() -> None:
    plan, _ = drive(binding())
    (create,) = crd_writes(plan)
    assert isinstance(create, Create)
    assert create.target == ObjectRef(CONSUMER, CRDS, ObjectKey("", W))
    meta = create.body["metadata"]
    assert meta["labels"][keys.LABEL_MANAGED] == "true"
    assert meta["annotations"][keys.ANNOTATION_CONNECTION] == CONN
    assert (cond(plan, "Ready") or ())[:2] == ("False", "Pending")
    # The CRD is not live yet: no hash is claimed for it (rule 4f).
    (entry,) = status_of(plan)["boundAPIs"]
    assert "crdHash" not in entry


def test_installed_crd_makes_the_binding_ready() -> None:
    plan, _ = drive(binding(), {consumer_crd_get(): consumer_crd()})
    assert crd_writes(plan) == []
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")
    assert cond(plan, "Synced") == ("True", "AsExpected", "all APIs installed")
    assert cond(plan, "Conflicts") == ("False", "AsExpected", "no conflicts")
    assert cond(plan, "PermissionDenied") == ("False", "AsExpected", "no RBAC denials")
    (entry,) = status_of(plan)["boundAPIs"]
    assert entry["crdHash"].startswith("sha256:") and entry["conflictCount"] == 0
    assert api_cond(plan, W)[:2] == ("True", "AsExpected")


def test_a_related_rule_that_cannot_be_followed_is_said_by_related_resources() -> None:
    # It parses, but names a non-core group: the rule is frozen, and the binding must say so
    # rather than report that related resources are fine; instance sync is unaffected.
    b = binding()
    b["spec"]["relatedResources"] = [
        {"group": "apps", "resource": "secrets", "direction": "FromProvider"}
    ]
    plan, _ = drive(b, {consumer_crd_get(): consumer_crd()})
    status, reason, message = cond(plan, "RelatedResources") or ("", "", "")
    assert (status, reason) == ("False", "InvalidRule")
    assert "relatedResources[0]: group must be empty (core), got 'apps'" in message
    assert cond(plan, "Synced") == ("True", "AsExpected", "all APIs installed")
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")


APP = {"app": "widget"}


def with_related(b: dict[str, Any], *rules: dict[str, Any]) -> dict[str, Any]:
    b["spec"]["relatedResources"] = list(rules)
    return b


def secret(key: str, **fields: Any) -> dict[str, Any]:
    ns, name = key.split("/")
    meta = {"namespace": ns, "name": name, "uid": f"s-{ns}-{name}", "labels": APP}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"t": "eA=="}, **fields}


def namespace_get(name: str) -> Get:
    return Get(CONSUMER, NAMESPACES, ObjectKey("", name))


def live_namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": name}}


SECRETS_DOWN = {
    "resource": "secrets",
    "direction": "FromProvider",
    "selector": {"labelSelector": {"matchLabels": APP}},
}
SECRETS_UP = {
    "resource": "secrets",
    "direction": "FromConsumer",
    "selector": {"labelSelector": {"matchLabels": APP}},
}


def secret_creates(plan: Plan) -> list[ObjectRef]:
    return [a.target for a in plan.actions if isinstance(a, Create) and a.target.gvr == SECRETS]


def test_related_copies_go_only_where_the_conflict_lists_show_live_objects() -> None:
    # T1 from the reads rule 4f already makes: team-a holds a Widget, team-b only a deleting
    # one, default none. No second list of Widgets is asked for (drive fails on a repeat).
    gone = instance("old", "team-b")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    answers: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(CONSUMER, WIDGETS, ""): [instance("w", "team-a"), gone],
        List(PROVIDER, SECRETS, ""): [
            secret("team-a/creds"),
            secret("team-b/creds"),
            secret("default/creds"),
        ],
        namespace_get("team-a"): live_namespace("team-a"),
    }
    plan, observed = drive(with_related(binding(), SECRETS_DOWN), answers)
    assert secret_creates(plan) == [ObjectRef(CONSUMER, SECRETS, ObjectKey("team-a", "creds"))]
    assert [r for r in observed if isinstance(r, List) and r.gvr == WIDGETS] == [
        List(CONSUMER, WIDGETS, "")
    ]
    status, reason, message = cond(plan, "RelatedResources") or ("", "", "")
    assert (status, reason) == ("False", "Pending")
    assert message.startswith("2 selected object(s) not copied: Secret default/creds on the")
    assert "rule T1): waits for an object of a bound API in namespace team-b" in message
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")
    assert not [a for a in plan.actions if type(a).__name__ == "CreateNamespace"]


def test_a_bindings_related_copies_stay_in_its_namespace_even_without_objects() -> None:
    answers: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(PROVIDER, SECRETS, "team-a"): [secret("team-a/creds")],
        namespace_get("team-a"): live_namespace("team-a"),
    }
    plan, _ = drive(with_related(binding("Binding"), SECRETS_DOWN), answers)
    assert secret_creates(plan) == [ObjectRef(CONSUMER, SECRETS, ObjectKey("team-a", "creds"))]
    assert cond(plan, "RelatedResources") == ("True", "AsExpected", "1 related copy in sync")


def test_credentials_and_kube_namespaces_are_refused_without_making_the_binding_unready() -> None:
    answers: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(CONSUMER, WIDGETS, ""): [instance("w", "team-a"), instance("w", "kube-system")],
        List(PROVIDER, SECRETS, ""): [
            secret("team-a/sa", type="kubernetes.io/service-account-token"),
            secret("kube-system/bootstrap-token-abcdef", type="bootstrap.kubernetes.io/token"),
        ],
    }
    plan, _ = drive(with_related(binding(), SECRETS_DOWN), answers)
    assert secret_creates(plan) == []
    status, reason, message = cond(plan, "RelatedResources") or ("", "", "")
    assert (status, reason) == ("False", "RelatedRefused")
    assert "Secret kube-system/bootstrap-token-abcdef on the provider (relatedResources[0], " in (
        message
    )
    assert "Secret team-a/sa on the provider (relatedResources[0], rule T4)" in message
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")
    assert cond(plan, "Synced") == ("True", "AsExpected", "all APIs installed")


def test_uploads_never_read_the_konnectors_namespace_even_with_objects_there() -> None:
    answers: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(CONSUMER, WIDGETS, ""): [instance("w", KONNECTOR_NS), instance("w", "team-a")],
    }
    plan, observed = drive(with_related(binding(), SECRETS_UP), answers)
    consumer_secret_lists = [
        r for r in observed if isinstance(r, List) and r.gvr == SECRETS and r.cluster == CONSUMER
    ]
    assert consumer_secret_lists == [List(CONSUMER, SECRETS, "team-a")]
    status, reason, message = cond(plan, "RelatedResources") or ("", "", "")
    assert (status, reason) == ("False", "RelatedRefused")
    assert message == (
        f"1 selected object(s) not copied: Secrets of namespace {KONNECTOR_NS} on the consumer "
        f"(relatedResources[0], rule T2): namespace {KONNECTOR_NS} is the konnector's own; "
        "related resources never go there"
    )


def test_an_upload_without_selector_is_an_invalid_rule() -> None:
    everything = {"resource": "secrets", "direction": "FromConsumer"}
    answers: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(CONSUMER, WIDGETS, ""): [instance("w", "team-a")],
    }
    plan, observed = drive(with_related(binding(), everything), answers)
    assert not [r for r in observed if isinstance(r, List) and r.gvr == SECRETS]
    status, reason, message = cond(plan, "RelatedResources") or ("", "", "")
    assert (status, reason) == ("False", "InvalidRule")
    assert message.startswith("relatedResources[0]: FromConsumer needs an explicit selector")
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")


def test_a_failed_object_list_never_reads_as_no_namespaces() -> None:
    # "No namespace holds objects" would collect every copy: an unknown answer waits instead.
    answers: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(CONSUMER, WIDGETS, ""): Failed(UNAVAILABLE),
    }
    plan, observed = drive(with_related(binding(), SECRETS_DOWN), answers)
    assert not [r for r in observed if getattr(r, "gvr", None) == SECRETS]
    assert not [a for a in plan.writes if getattr(a, "target", None) and a.target.gvr == SECRETS]
    assert cond(plan, "RelatedResources") == (
        "False",
        "Pending",
        "waiting to learn which namespaces hold objects (rule T1): listing "
        "widgets.example.org failed: down",
    )
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")


def test_related_resources_condition_only_with_rules() -> None:
    plan, _ = drive(binding(), {consumer_crd_get(): consumer_crd()})
    assert cond(plan, "RelatedResources") is None
    # Rules removed: the condition about them goes too.
    had = binding()
    stale = {
        "type": "RelatedResources",
        "status": "False",
        "reason": "RelatedRefused",
        "message": "old",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    had["status"] = {"conditions": [stale]}
    plan, _ = drive(had, {consumer_crd_get(): consumer_crd()})
    assert cond(plan, "RelatedResources") is None


def test_pull_policy_none_never_creates_the_crd() -> None:
    conn = connection(schema={"pullPolicy": "None"})
    plan, _ = drive(binding(), conn=conn)
    assert crd_writes(plan) == []
    assert (cond(plan, "Ready") or ())[:2] == ("False", "Pending")


def test_conversion_webhook_crd_is_refused_per_api_and_nothing_is_written() -> None:
    plan, _ = drive(binding(), {provider_crd_get(): provider_crd("widgets", webhook=True)})
    assert plan.writes == tuple(a for a in plan.actions if isinstance(a, UpdateStatus))
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "ConversionWebhook") and W in message
    assert (cond(plan, "Ready") or ())[:2] == ("False", "ConversionWebhook")
    assert (cond(plan, "Synced") or ())[:2] == ("False", "ConversionWebhook")


def test_foreign_consumer_crd_is_refused_and_never_overwritten() -> None:
    foreign = consumer_crd(labels={}, annotations={})
    plan, _ = drive(binding(), {consumer_crd_get(): foreign})
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "ForeignCRD") and "not overwriting" in message
    assert (cond(plan, "Ready") or ())[:2] == ("False", "ForeignCRD")


def test_binding_listing_a_cluster_scoped_api_is_refused() -> None:
    plan, _ = drive(binding("Binding", apis=(THINGS,)))
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, THINGS)
    assert (status, reason) == ("False", "ClusterScopedAPI") and "ClusterBinding" in message
    assert (cond(plan, "Ready") or ())[:2] == ("False", "ClusterScopedAPI")


def test_clusterbinding_may_bind_a_cluster_scoped_api() -> None:
    plan, _ = drive(binding(apis=(THINGS,)))
    assert [a.target.key.name for a in crd_writes(plan)] == [THINGS]


def test_binding_overlapped_by_a_clusterbinding_defers_and_does_not_pull() -> None:
    cb = binding(name="all-widgets")
    plan, _ = drive(binding("Binding"), {CB_LIST: [cb]})
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "BoundByClusterBinding") and "all-widgets" in message


def test_binding_overlapped_only_by_a_deleting_clusterbinding_binds_itself() -> None:
    cb = binding(name="all-widgets", deleting=True)
    plan, _ = drive(binding("Binding"), {CB_LIST: [cb]})
    assert [type(a) for a in crd_writes(plan)] == [Create]


def test_overlap_message_names_the_live_clusterbinding_not_a_deleting_one() -> None:
    # "a-old" is being deleted and covers nothing; "z-new" is the one that binds the API.
    cbs = [binding(name="a-old", deleting=True), binding(name="z-new")]
    plan, _ = drive(binding("Binding"), {CB_LIST: cbs})
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "BoundByClusterBinding")
    assert "z-new" in message and "a-old" not in message, message


def conflicted(name: str, namespace: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {keys.ANNOTATION_CONFLICT: "ForeignObjectExists"},
        }
    }


def test_conflict_count_covers_every_namespace_for_a_clusterbinding() -> None:
    items = [conflicted("a", "team-a"), conflicted("b", "team-b"), {"metadata": {"name": "c"}}]
    plan, _ = drive(
        binding(), {consumer_crd_get(): consumer_crd(), List(CONSUMER, WIDGETS, ""): items}
    )
    (entry,) = status_of(plan)["boundAPIs"]
    assert entry["conflictCount"] == 2
    assert cond(plan, "Conflicts") == (
        "True",
        "ForeignObjectExists",
        "2 object(s) skipped due to foreign ownership; see object Events",
    )
    assert cond(plan, "Ready") == ("True", "AsExpected", "binding ready")


def test_conflict_count_of_a_binding_lists_only_its_namespace() -> None:
    plan, observed = drive(
        binding("Binding"),
        {
            consumer_crd_get(): consumer_crd(),
            List(CONSUMER, WIDGETS, "team-a"): [conflicted("a", "team-a")],
            List(CONSUMER, WIDGETS, ""): [conflicted("a", "team-a"), conflicted("b", "team-b")],
        },
    )
    assert List(CONSUMER, WIDGETS, "") not in observed
    assert status_of(plan)["boundAPIs"][0]["conflictCount"] == 1


def test_forbidden_provider_crd_read_is_permission_denied() -> None:
    plan, _ = drive(binding(), {provider_crd_get(): Failed(FORBIDDEN)})
    assert cond(plan, "PermissionDenied") == (
        "True",
        "Forbidden",
        f'pulling CRD "{W}" is forbidden by provider RBAC',
    )
    assert cond(plan, "Ready") == (
        "False",
        "Forbidden",
        f'pulling CRD "{W}" is forbidden by provider RBAC',
    )
    assert crd_writes(plan) == []


def test_openapi_source_waits_for_the_connection_to_install_the_crd() -> None:
    plan, observed = drive(binding(), conn=connection(source="OpenAPI"))
    assert provider_crd_get() not in observed  # nothing is pulled from the provider
    assert crd_writes(plan) == []
    assert (cond(plan, "Ready") or ())[:2] == ("False", "Pending")


def test_all_crd_reads_come_in_one_round() -> None:
    view = BindingView(
        binding(apis=(W, THINGS)), connection(), CREDS, {}, NOW, konnector_namespace=KONNECTOR_NS
    )
    first = plan_binding(view).needs
    assert set(first) == {CB_LIST, B_LIST}
    second = plan_binding(attrs.evolve(view, observed={CB_LIST: [], B_LIST: []})).needs
    assert set(second) == {
        consumer_crd_get(),
        provider_crd_get(),
        consumer_crd_get(THINGS),
        provider_crd_get(THINGS),
    }


# -- rule 4: schema changes by the provider (kbcore.schema.policy rule 8), and per-API decisions ------


def live_crd(provider: dict[str, Any]) -> dict[str, Any]:
    """The consumer CRD the konnector installed from `provider`, Established, as read back."""
    crd = schema.for_consumer(provider, CONN)
    crd["metadata"].update({"uid": "cons-uid", "resourceVersion": "5"})
    crd["status"] = {
        "conditions": [{"type": "Established", "status": "True"}],
        "storedVersions": ["v1"],
    }
    return crd


def test_a_scope_change_is_refused_per_api_and_the_consumer_crd_is_left_alone() -> None:
    live = consumer_crd()
    plan, _ = drive(
        binding(),
        {consumer_crd_get(): live, provider_crd_get(): provider_crd("widgets", scope="Cluster")},
    )
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "IncompatibleSchemaChange")
    assert f'spec.scope of CRD "{W}"' in message and "not synced" in message
    (entry,) = status_of(plan)["boundAPIs"]
    assert entry["crdHash"] == live["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]
    for type_ in ("Ready", "Synced"):
        status, reason, message = cond(plan, type_) or ("", "", "")
        assert (status, reason) == ("False", "IncompatibleSchemaChange") and W in message
    # And it is not synced: the per-API Ready is what instance sync asks.
    written = dict(binding(), status=status_of(plan))
    assert not syncs_api(written, W)


def test_an_additive_change_is_applied_and_the_hash_moves_only_once_it_is_live() -> None:
    live = consumer_crd()
    old_hash = live["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]
    changed = provider_crd("widgets")
    changed["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Size", "type": "string", "jsonPath": ".spec.size"}
    ]
    plan, _ = drive(binding(), {consumer_crd_get(): live, provider_crd_get(): changed})
    (update,) = crd_writes(plan)
    assert isinstance(update, Update)
    new_hash = update.body["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]
    assert new_hash != old_hash
    # The status is written first and claims only what is live: the old CRD, still synced.
    kinds = [type(a) for a in plan.writes]
    assert kinds.index(UpdateStatus) < kinds.index(Update)
    (entry,) = status_of(plan)["boundAPIs"]
    assert entry["crdHash"] == old_hash
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("True", "AsExpected") and new_hash in message
    # The next pass reads the written CRD: now the hash moves, and nothing more is written.
    after = dict(update.body, metadata={**update.body["metadata"], "resourceVersion": "6"})
    again, _ = drive(
        dict(binding(), status=status_of(plan)),
        {consumer_crd_get(): after, provider_crd_get(): changed},
    )
    assert crd_writes(again) == []
    (entry,) = status_of(again)["boundAPIs"]
    assert entry["crdHash"] == new_hash
    assert api_cond(again, W) == ("True", "AsExpected", f"{W} is bound")


def test_a_stored_version_the_provider_dropped_is_refused() -> None:
    moved = provider_crd("widgets")
    moved["spec"]["versions"][0]["name"] = "v2"
    plan, _ = drive(binding(), {consumer_crd_get(): live_crd(provider_crd("widgets")),
                                provider_crd_get(): moved})  # fmt: skip
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "IncompatibleSchemaChange")
    assert 'no longer serves version "v1"' in message


def things_crd() -> dict[str, Any]:
    return live_crd(provider_crd("things", scope="Cluster"))


def test_one_refused_api_does_not_stop_the_others() -> None:
    b = binding(apis=(W, THINGS))
    b["spec"]["relatedResources"] = [
        {"resource": "secrets", "direction": "FromProvider", "selector": {"names": ["creds"]}}
    ]
    plan, observed = drive(
        b,
        {
            consumer_crd_get(): consumer_crd(),
            provider_crd_get(): provider_crd("widgets", webhook=True),
            consumer_crd_get(THINGS): things_crd(),
        },
    )
    assert crd_writes(plan) == []
    assert api_cond(plan, THINGS) == ("True", "AsExpected", f"{THINGS} is bound")
    assert api_cond(plan, W)[:2] == ("False", "ConversionWebhook")
    status, reason, message = cond(plan, "Ready") or ("", "", "")
    assert (status, reason) == ("False", "ConversionWebhook")
    assert W in message and message.endswith(f"bound and syncing: {THINGS}")
    assert (cond(plan, "Synced") or ())[:2] == ("False", "ConversionWebhook")
    # What syncs is what the conditions say.
    written = dict(b, status=status_of(plan))
    assert syncs_api(written, THINGS) and not syncs_api(written, W)
    # Related resources follow for the API that syncs (rule 5).
    assert any(isinstance(r, (Get, List)) and r.gvr.resource == "secrets" for r in observed)


def test_no_api_bound_is_not_ready_and_follows_no_related_rule() -> None:
    b = binding()
    b["spec"]["relatedResources"] = [
        {"resource": "secrets", "direction": "FromProvider", "selector": {"names": ["creds"]}}
    ]
    plan, observed = drive(b, {provider_crd_get(): provider_crd("widgets", webhook=True)})
    assert (cond(plan, "Ready") or ())[:2] == ("False", "ConversionWebhook")
    assert "bound and syncing" not in (cond(plan, "Ready") or ("", "", ""))[2]
    assert not any(isinstance(r, (Get, List)) and r.gvr.resource == "secrets" for r in observed)


@pytest.mark.parametrize(
    ("conn", "creds", "reason"),
    [
        (connection(ready=False), CREDS, "Pending"),
        (None, None, "Pending"),
    ],
    ids=["connection-not-ready", "no-connection"],
)
def test_every_api_says_it_is_not_synced_while_the_connection_is_not_ready(
    conn: Any, creds: Any, reason: str
) -> None:
    bound, _ = drive(binding(), {consumer_crd_get(): consumer_crd()})
    b = dict(binding(), status=status_of(bound))
    assert syncs_api(b, W)
    plan, _ = drive(b, conn=conn, credentials=creds)
    status, why, message = api_cond(plan, W)
    assert (status, why) == ("False", reason) and "not synced" in message
    assert not syncs_api(dict(b, status=status_of(plan)), W)


def test_every_api_says_it_is_not_synced_while_unbinding() -> None:
    bound, _ = drive(binding(), {consumer_crd_get(): consumer_crd()})
    b = dict(binding(deleting=True), status=status_of(bound))
    items = [{"metadata": {"name": "w", "namespace": "ns", "uid": "u", "finalizers": [SYNCER]}}]
    plan, _ = drive(b, {consumer_crd_get(): consumer_crd(), List(CONSUMER, WIDGETS, ""): items})
    assert api_cond(plan, W)[:2] == ("False", "DrainingObjects")


def test_openapi_source_refuses_an_exported_scope_change() -> None:
    conn = connection(source="OpenAPI")
    conn["status"]["exportedAPIs"] = [exported("widgets", "Cluster")]
    live = consumer_crd()
    plan, _ = drive(binding(), {consumer_crd_get(): live}, conn=conn)
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, W)
    assert (status, reason) == ("False", "IncompatibleSchemaChange") and "spec.scope" in message
    (entry,) = status_of(plan)["boundAPIs"]
    assert entry["crdHash"] == live["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(["ClusterBinding", "Binding"]),
    apis=st.lists(st.sampled_from([W, THINGS, "x.example.org"]), min_size=1, max_size=3),
    consumer=st.sampled_from(["absent", "ours", "foreign"]),
    provider=st.sampled_from(["ok", "webhook", "forbidden", "absent"]),
)
def test_law_determinism_and_no_op_stability(
    kind: str, apis: list[str], consumer: str, provider: str
) -> None:
    answers: dict[Read, Any] = {
        consumer_crd_get(): {
            "absent": None,
            "ours": consumer_crd(),
            "foreign": consumer_crd(labels={}, annotations={}),
        }[consumer],
        provider_crd_get(): {
            "ok": provider_crd("widgets"),
            "webhook": provider_crd("widgets", webhook=True),
            "forbidden": Failed(FORBIDDEN),
            "absent": None,
        }[provider],
    }
    b = binding(kind, apis=tuple(apis))
    plan, _ = drive(b, answers)
    assert drive(b, answers)[0] == plan
    updates = [a for a in plan.actions if isinstance(a, UpdateStatus)]
    if updates:
        again, _ = drive(dict(b, status=updates[0].body["status"]), answers)
        assert not [a for a in again.actions if isinstance(a, UpdateStatus)]


# -- rule 1: unbind ----------------------------------------------------------------------------


def instance(
    name: str,
    namespace: str = "team-a",
    *,
    orphan: bool = False,
    finalizers: tuple[str, ...] = (SYNCER,),
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"c-{namespace}-{name}",
        "resourceVersion": "11",
        "finalizers": list(finalizers),
    }
    if orphan:
        meta["annotations"] = {keys.ANNOTATION_DELETION_POLICY: "Orphan"}
    return {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": meta}


def provider_copy(
    inst: dict[str, Any], *, cluster_uid: str = CONS_UID, object_uid: str | None = None
) -> dict[str, Any]:
    m = inst["metadata"]
    ann = {}
    if cluster_uid:
        ann[keys.ANNOTATION_CONSUMER_CLUSTER_UID] = cluster_uid
        ann[keys.ANNOTATION_CONSUMER_OBJECT_UID] = object_uid or m["uid"]
    return {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {
            "name": m["name"],
            "namespace": m["namespace"],
            "uid": f"p-{m['name']}",
            "annotations": ann,
        },
    }


def copy_get(inst: dict[str, Any]) -> Get:
    m = inst["metadata"]
    return Get(PROVIDER, WIDGETS, ObjectKey(m["namespace"], m["name"]))


def iref(inst: dict[str, Any]) -> ObjectRef:
    m = inst["metadata"]
    return ObjectRef(CONSUMER, WIDGETS, ObjectKey(m["namespace"], m["name"]))


def released(plan: Plan) -> set[ObjectRef]:
    return {
        a.target for a in plan.actions if isinstance(a, RemoveFinalizer) and a.finalizer == SYNCER
    }


def unbind(
    kind: str = "ClusterBinding",
    items: list[dict[str, Any]] | None = None,
    answers: Mapping[Read, Any] | None = None,
    **kw: Any,
) -> tuple[Plan, dict[Read, Any]]:
    scope = "team-a" if kind == "Binding" else ""
    base: dict[Read, Any] = {
        consumer_crd_get(): consumer_crd(),
        List(CONSUMER, WIDGETS, scope): items or [],
    }
    base.update(answers or {})
    return drive(binding(kind, deleting=True), base, **kw)


def test_unbind_deletes_our_provider_copy_with_uid_and_keeps_waiting() -> None:
    w = instance("w")
    plan, _ = unbind(items=[w], answers={copy_get(w): provider_copy(w)})
    assert Delete(ObjectRef(PROVIDER, WIDGETS, ObjectKey("team-a", "w")), "p-w") in plan.actions
    assert released(plan) == set()
    assert not [a for a in plan.actions if isinstance(a, RemoveFinalizer)]
    assert (cond(plan, "Ready") or ())[:2] == ("False", "DrainingObjects")
    assert RequeueAfter(2.0) in plan.actions
    assert crd_writes(plan) == []  # the CRD stays while an object holds our finalizer


def test_unbind_waits_for_a_copy_already_deleting_without_deleting_twice() -> None:
    w = instance("w")
    copy = provider_copy(w)
    copy["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    plan, _ = unbind(items=[w], answers={copy_get(w): copy})
    assert not [a for a in plan.actions if isinstance(a, Delete)]
    assert released(plan) == set()


def test_unbind_releases_orphan_absent_and_foreign_copies_without_deleting_them() -> None:
    orphan, absent = instance("o", orphan=True), instance("a")
    unmanaged, other_cluster, recreated = instance("u"), instance("x"), instance("r")
    answers = {
        copy_get(orphan): provider_copy(orphan),
        copy_get(absent): None,
        copy_get(unmanaged): provider_copy(unmanaged, cluster_uid=""),
        copy_get(other_cluster): provider_copy(other_cluster, cluster_uid="someone-else"),
        copy_get(recreated): provider_copy(recreated, object_uid="older-uid"),
    }
    items = [orphan, absent, unmanaged, other_cluster, recreated]
    plan, _ = unbind(items=items, answers=answers)
    assert not [a for a in plan.actions if isinstance(a, Delete) and a.target.cluster == PROVIDER]
    assert released(plan) == {iref(i) for i in items}


def test_unbind_leaves_objects_without_our_finalizer_alone() -> None:
    plain = instance("plain", finalizers=("someone/else",))
    plan, observed = unbind(items=[plain])
    assert released(plan) == set()
    assert copy_get(plain) not in observed


def test_unbind_leaves_instances_covered_by_another_live_binding_alone() -> None:
    covered, uncovered = instance("c", "team-a"), instance("u", "team-b")
    other = binding("Binding", name="team-a-widgets", namespace="team-a")
    plan, observed = unbind(
        items=[covered, uncovered],
        answers={B_LIST: [other], copy_get(uncovered): provider_copy(uncovered)},
    )
    assert copy_get(covered) not in observed
    assert iref(covered) not in released(plan)
    assert Delete(ObjectRef(PROVIDER, WIDGETS, ObjectKey("team-b", "u")), "p-u") in plan.actions


def test_clusterbinding_deletes_the_consumer_crd_once_nothing_holds_our_finalizer() -> None:
    plan, _ = unbind()
    assert crd_writes(plan) == [Delete(ObjectRef(CONSUMER, CRDS, ObjectKey("", W)), "cons-widgets")]
    assert (cond(plan, "Ready") or ())[:2] == ("False", "DrainingObjects")


def test_clusterbinding_keeps_the_crd_while_another_live_binding_lists_the_api() -> None:
    for answers in (
        {B_LIST: [binding("Binding", name="other")]},
        {CB_LIST: [binding(name="other")]},
    ):
        plan, _ = unbind(answers=answers)
        assert crd_writes(plan) == []
        assert [a.target for a in plan.actions if isinstance(a, RemoveFinalizer)] == [
            ObjectRef(CONSUMER, CLUSTERBINDINGS, ObjectKey("", "b"))
        ]


def test_clusterbinding_deletes_the_crd_when_the_other_binding_is_deleting_too() -> None:
    plan, _ = unbind(answers={CB_LIST: [binding(name="other", deleting=True)]})
    assert [type(a) for a in crd_writes(plan)] == [Delete]


def test_clusterbinding_never_deletes_a_crd_it_did_not_create() -> None:
    foreign = consumer_crd(labels={}, annotations={})
    adopted = consumer_crd()
    del adopted["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH]  # pullPolicy None
    for crd in (foreign, adopted):
        plan, _ = unbind(answers={consumer_crd_get(): crd})
        assert crd_writes(plan) == []


def test_binding_never_deletes_the_crd() -> None:
    plan, _ = unbind("Binding")
    assert crd_writes(plan) == []
    ref = ObjectRef(CONSUMER, BINDINGS, ObjectKey("team-a", "b"))
    assert [a.target for a in plan.actions if isinstance(a, RemoveFinalizer)] == [ref]


def test_binding_unbind_lists_only_its_namespace() -> None:
    _, observed = unbind("Binding")
    assert List(CONSUMER, WIDGETS, "team-a") in observed
    assert List(CONSUMER, WIDGETS, "") not in observed


def test_unbind_releases_the_binding_when_the_crd_is_gone() -> None:
    plan, _ = unbind(answers={consumer_crd_get(): None})
    ref = ObjectRef(CONSUMER, CLUSTERBINDINGS, ObjectKey("", "b"))
    assert plan.actions == (RemoveFinalizer(ref, CLEANUP, "9", ()),)


def test_unbind_without_provider_access_only_releases_finalizers() -> None:
    w = instance("w")

    plan, observed = unbind(items=[w], credentials=SecretProblem("gone"))
    assert copy_get(w) not in observed
    assert released(plan) == {iref(w)}


@pytest.mark.parametrize(
    "failing",
    ["consumer-crd", "instances", "provider-copy", "bindings"],
)
def test_failed_read_during_unbind_holds_the_drain_and_says_why(failing: str) -> None:
    w = instance("w")
    read: Read = {
        "consumer-crd": consumer_crd_get(),
        "instances": List(CONSUMER, WIDGETS, ""),
        "provider-copy": copy_get(w),
        "bindings": CB_LIST,
    }[failing]
    plan, _ = unbind(items=[w], answers={read: Failed(UNAVAILABLE)})
    # Never taken as absence: nothing is released, the status says why, and it retries.
    assert not [a for a in plan.actions if isinstance(a, RemoveFinalizer | Delete)]
    assert plan.requeue_after is not None
    (update,) = [a for a in plan.actions if isinstance(a, UpdateStatus)]
    ready = next(c for c in update.body["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "DrainingObjects")
    assert UNAVAILABLE.message in ready["message"]


def test_a_tenants_cluster_binding_refuses_a_cluster_scoped_api() -> None:
    """Defence in depth behind the catalog's ClusterScopedAPI (kbcore/service/catalog.py rule
    1a): should a tenant's Connection list a cluster-scoped API anyway, its binding refuses it
    and installs nothing (tests/unit/test_tenancy.py shows the issuer never offers one)."""
    tenant = {"namespace": "kb-0123456789", "apis": [THINGS]}
    plan, _ = drive(binding(apis=(THINGS,)), conn=connection(tenant=tenant))
    assert crd_writes(plan) == []
    status, reason, message = api_cond(plan, THINGS)
    assert (status, reason) == ("False", "ClusterScopedAPI"), message
    assert "shared by several consumers" in message
    assert (cond(plan, "Ready") or ())[:2] == ("False", "ClusterScopedAPI")
