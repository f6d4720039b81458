"""The Connection kernel (kbcore/control/connection.py; docs/design.md, "Differences from upstream").

Each test drives `plan_connection` through the read protocol with a small answer function and
checks the conditions and writes a user would see. One test (or a few) per numbered rule.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import actions as act
from kbcore.actions import CONSUMER, PROVIDER
from kbcore.api import keys
from kbcore.api.resources import (
    BINDINGS,
    BOUND_NAMESPACES,
    CLUSTERBINDINGS,
    CONNECTIONS,
    LEASES,
    NAMESPACES,
    SECRETS,
)
from kbcore.control.connection import ConnectionView, lease_name, misdirected, plan_connection
from kbcore.control.kubeconfig import Credentials, SecretProblem
from kbcore.errors import UNREACHABLE, UNREACHABLE_CODE, ApiError
from kbcore.identity import identity_reads
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.reads import Discovery, Failed, Get, List, Read
from kbcore.schema import policy as schema
from kbcore.timestamps import rfc3339
from tests import crds
from tests.unit.reading import answered

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NS = "kube-bind"
NAME = "p"
CLEANUP = keys.FINALIZER_CLEANUP
CRDS = schema.CRDS
CREDS = Credentials(server="https://provider.example", token="t")
PROV_UID, CONS_UID = "prov-uid", "cons-uid"
PINNED_IDS = {"remoteClusterUID": PROV_UID, "localClusterUID": CONS_UID}
FORBIDDEN = ApiError(403, "Forbidden", "denied")
UNAVAILABLE = ApiError(503, "ServiceUnavailable", "down")
EXPORTED_LIST = List(PROVIDER, CRDS, label_selector=f"{keys.LABEL_EXPORTED}=true")
P_LOGICAL, P_KUBE_SYSTEM = identity_reads(PROVIDER)
C_LOGICAL, C_KUBE_SYSTEM = identity_reads(CONSUMER)
CB_GET = Get(CONSUMER, CLUSTERBINDINGS, ObjectKey("", NAME))
LEASE_KEY = ObjectKey("kube-bind", lease_name(CONS_UID, NAME))
LEASE_GET = Get(PROVIDER, LEASES, LEASE_KEY)
LEASE_NS_GET = Get(PROVIDER, NAMESPACES, ObjectKey("", "kube-bind"))
DISCOVERY = Discovery(PROVIDER, "/apis")


def provider_crd(plural: str, *, webhook: bool = False, served: bool = True) -> dict[str, Any]:
    versions = [
        crds.version(served=served, status=False),
        crds.version("v0", served=False, storage=False, status=False),
    ]
    crd = crds.crd(
        plural,
        plural[:-1].title(),
        labels={keys.LABEL_EXPORTED: "true"},
        singular=plural[:-1],
        versions=versions,
    )
    crd["metadata"]["uid"] = f"{plural}-uid"
    if webhook:
        crd["spec"]["conversion"] = {
            "strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"]},
        }
    return crd


WIDGETS, GADGETS = provider_crd("widgets"), provider_crd("gadgets")


def exported(plural: str) -> dict[str, Any]:
    return {
        "name": f"{plural}.example.org",
        "group": "example.org",
        "resource": plural,
        "scope": "Namespaced",
        "versions": ["v1"],
    }


def connection(
    *,
    spec: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
    finalizers: tuple[str, ...] = (CLEANUP,),
    deleting: bool = False,
    secret_ns: str = NS,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": NAME,
        "uid": "conn-uid",
        "resourceVersion": "10",
        "generation": 1,
        "finalizers": list(finalizers),
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj: dict[str, Any] = {
        "apiVersion": keys.API_VERSION,
        "kind": "Connection",
        "metadata": meta,
        "spec": {"kubeconfigSecretRef": {"namespace": secret_ns, "name": "kc"}, **(spec or {})},
    }
    if status is not None:
        obj["status"] = dict(status)
    return obj


def secret(finalizers: tuple[str, ...] = (CLEANUP,)) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "namespace": NS,
            "name": "kc",
            "uid": "secret-uid",
            "resourceVersion": "3",
            "finalizers": list(finalizers),
        },
        "data": {"kubeconfig": "eA=="},
    }


def named(name: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid}}


def default_answer(read: Read) -> Any:
    """A plain provider cluster exporting widgets; nothing else exists."""
    if read == P_KUBE_SYSTEM:
        return named("kube-system", PROV_UID)
    if read == C_KUBE_SYSTEM:
        return named("kube-system", CONS_UID)
    if read == EXPORTED_LIST:
        return [WIDGETS]
    if read == DISCOVERY:
        return {"kind": "APIGroupList", "groups": []}
    if isinstance(read, Get):
        return None
    if isinstance(read, List):
        return []
    raise AssertionError(f"unexpected read {read!r}")


Answers = Mapping[Read, Any]


def drive(
    conn: dict[str, Any],
    answers: Answers | None = None,
    *,
    credentials: Credentials | SecretProblem = CREDS,
    sec: dict[str, Any] | None = None,
    now: float = NOW,
    fallback: Callable[[Read], Any] = default_answer,
) -> tuple[act.Plan, dict[Read, Any]]:
    """Call plan_connection, answering every read it asks for, until it needs none."""
    answers = answers or {}
    view = ConnectionView(
        connection=conn,
        konnector_namespace=NS,
        secret=secret() if sec is None else sec,
        credentials=credentials,
        observed={},
        now=now,
    )

    def answer(r: Read) -> Any:
        if r in answers:
            return answers[r]
        if isinstance(r, Get) and r.gvr.resource == "secrets":
            return view.secret  # the server holds what the cache holds
        return fallback(r)

    return answered(plan_connection, view, answer)


def status_of(plan: act.Plan) -> dict[str, Any]:
    updates = [a for a in plan.actions if isinstance(a, act.UpdateStatus)]
    assert len(updates) == 1, f"expected one status write, got {plan.actions}"
    return updates[0].body["status"]


def cond(plan: act.Plan, type_: str) -> tuple[str, str, str] | None:
    for c in status_of(plan).get("conditions") or []:
        if c["type"] == type_:
            return c["status"], c["reason"], c["message"]
    return None


def writes_of(plan: act.Plan, kind: type) -> list[Any]:
    return [a for a in plan.actions if isinstance(a, kind)]


def targets(plan: act.Plan) -> set[str]:
    """`cluster:resource` of every write target except the Connection's own status."""
    out = set()
    for a in plan.writes:
        if isinstance(a, act.UpdateStatus):
            continue
        if isinstance(a, act.CreateNamespace):
            out.add(f"{a.cluster}:namespaces")
        else:
            out.add(f"{a.target.cluster}:{a.target.gvr.resource}")
    return out


CONN_REF = ObjectRef(CONSUMER, CONNECTIONS, ObjectKey("", NAME))
SECRET_REF = ObjectRef(CONSUMER, SECRETS, ObjectKey(NS, "kc"))
CB_REF = ObjectRef(CONSUMER, CLUSTERBINDINGS, ObjectKey("", NAME))


# -- rule 2: finalizers first ------------------------------------------------------------------


def test_finalizers_are_added_first_to_secret_and_connection_without_reads() -> None:
    plan, observed = drive(connection(finalizers=("other",)), sec=secret(finalizers=("x",)))
    assert observed == {}
    assert plan.actions == (
        act.AddFinalizer(SECRET_REF, CLEANUP, "3", ("x", CLEANUP)),
        act.AddFinalizer(CONN_REF, CLEANUP, "10", ("other", CLEANUP)),
    )


def test_secret_with_finalizer_is_left_alone() -> None:
    plan, _ = drive(connection(finalizers=()))
    assert plan.actions == (act.AddFinalizer(CONN_REF, CLEANUP, "10", (CLEANUP,)),)


def test_secret_outside_konnector_namespace_never_gets_our_finalizer() -> None:
    foreign = secret(finalizers=())
    foreign["metadata"]["namespace"] = "team-a"
    plan, _ = drive(connection(finalizers=(), secret_ns="team-a"), sec=foreign)
    assert [a.target for a in plan.actions] == [CONN_REF]


# -- rule 3: Secret unusable ---------------------------------------------------------------------


def test_unusable_secret_sets_secret_valid_false_and_reads_nothing() -> None:
    problem = SecretProblem("Secret kube-bind/kc not found")

    def no_reads(r: Read) -> Any:
        raise AssertionError(f"read {r} with unusable credentials")

    plan, _ = drive(connection(), credentials=problem, fallback=no_reads)
    assert cond(plan, "SecretValid") == ("False", "SecretNotFound", problem.message)
    status, reason, message = cond(plan, "Ready") or ("", "", "")
    assert (status, reason) == ("False", "SecretNotFound")
    assert message.startswith("kubeconfig secret not usable yet")
    assert targets(plan) == set()


def test_usable_secret_sets_secret_valid_true() -> None:
    plan, _ = drive(connection())
    assert cond(plan, "SecretValid") == ("True", "AsExpected", "kubeconfig secret resolved")


# -- rule 4: provider identity -------------------------------------------------------------------


def test_forbidden_provider_identity_is_permission_denied() -> None:
    plan, observed = drive(connection(), {P_LOGICAL: Failed(FORBIDDEN)})
    assert (cond(plan, "PermissionDenied") or ())[:2] == ("True", "Forbidden")
    assert (cond(plan, "Ready") or ())[:2] == ("False", "Forbidden")
    assert EXPORTED_LIST not in observed
    assert targets(plan) == set()


def test_unreachable_provider_is_connected_false_pending_and_retried() -> None:
    plan, _ = drive(
        connection(), {P_LOGICAL: Failed(UNAVAILABLE), P_KUBE_SYSTEM: Failed(UNAVAILABLE)}
    )
    status, reason, message = cond(plan, "Connected") or ("", "", "")
    assert (status, reason) == ("False", "Pending") and "down" in message
    assert cond(plan, "Ready") == ("False", "Pending", "cannot reach provider cluster")
    assert plan.requeue_after is not None
    assert targets(plan) == set()


def test_provider_without_identity_is_connected_false_pending() -> None:
    plan, _ = drive(connection(), {P_KUBE_SYSTEM: None})
    status, reason, message = cond(plan, "Connected") or ("", "", "")
    assert (status, reason) == ("False", "Pending")
    assert "cannot determine cluster identity" in message


def test_identity_reads_of_both_clusters_come_in_one_round() -> None:
    view = ConnectionView(connection(), NS, secret(), CREDS, {}, NOW)
    assert set(plan_connection(view).needs) == {P_LOGICAL, P_KUBE_SYSTEM, C_LOGICAL, C_KUBE_SYSTEM}


# -- rule 5: consumer identity -------------------------------------------------------------------


def test_unknown_consumer_identity_is_not_ready_and_pins_nothing() -> None:
    plan, _ = drive(connection(), {C_KUBE_SYSTEM: Failed(FORBIDDEN)})
    status, reason, message = cond(plan, "Ready") or ("", "", "")
    assert (status, reason) == ("False", "Pending") and "consumer" in message
    assert "localClusterUID" not in status_of(plan)
    assert targets(plan) == set()


# -- rule 6: identity pinning --------------------------------------------------------------------


def test_first_success_pins_both_identities() -> None:
    plan, _ = drive(connection())
    st_ = status_of(plan)
    assert (st_["remoteClusterUID"], st_["localClusterUID"]) == (PROV_UID, CONS_UID)
    assert cond(plan, "Connected") == ("True", "AsExpected", "connected to provider")


def test_changed_provider_identity_is_refused_and_nothing_is_rehomed() -> None:
    pinned = {"remoteClusterUID": "old-prov", "localClusterUID": CONS_UID}
    plan, _ = drive(
        connection(spec={"autoBind": True, "schema": {"pullPolicy": "All"}}, status=pinned)
    )
    msg = f"kubeconfig now points at cluster {PROV_UID}, but old-prov was pinned"
    assert cond(plan, "Connected") == ("False", "ClusterIdentityChanged", msg)
    assert cond(plan, "Ready") == ("False", "ClusterIdentityChanged", msg)
    assert status_of(plan)["remoteClusterUID"] == "old-prov"
    assert targets(plan) == set()  # no CRD, no autoBind ClusterBinding, no Lease


def test_local_identity_never_changes_once_pinned() -> None:
    pinned = {"remoteClusterUID": PROV_UID, "localClusterUID": "old-local"}
    plan, _ = drive(connection(status=pinned))
    assert status_of(plan)["localClusterUID"] == "old-local"
    lease = writes_of(plan, act.Create)[0]
    assert lease.target.key.name == lease_name("old-local", NAME)


# -- rule 6a: self-binding -----------------------------------------------------------------------

SELF = {P_KUBE_SYSTEM: named("kube-system", CONS_UID)}
"""The kubeconfig reaches the consumer: the provider's kube-system is the consumer's own."""
EVERYTHING = {"autoBind": True, "schema": {"pullPolicy": "All"}}


def test_a_kubeconfig_pointing_at_the_consumer_itself_is_refused() -> None:
    plan, observed = drive(connection(spec=EVERYTHING), SELF)
    msg = (
        f"the kubeconfig in Secret kube-bind/kc points at this cluster itself (cluster "
        f"{CONS_UID}), not at a provider: a cluster is never bound to itself; put the "
        "provider's kubeconfig in the Secret"
    )
    assert cond(plan, "Connected") == ("False", "SelfBinding", msg)
    assert cond(plan, "Ready") == ("False", "SelfBinding", msg)
    assert cond(plan, "SecretValid") == ("True", "AsExpected", "kubeconfig secret resolved")
    # Nothing discovered, installed, auto-bound or heartbeated, and no identity pinned (so the
    # Secret can later be pointed at the real provider).
    assert targets(plan) == set()
    assert EXPORTED_LIST not in observed and CB_GET not in observed
    assert LEASE_GET not in observed
    assert "remoteClusterUID" not in status_of(plan) and "localClusterUID" not in status_of(plan)


def test_a_kcp_workspace_bound_to_itself_is_refused_by_its_logical_cluster() -> None:
    logical = named("cluster", "ws-uid")
    plan, _ = drive(connection(), {P_LOGICAL: logical, C_LOGICAL: logical})
    assert (cond(plan, "Ready") or ())[:2] == ("False", "SelfBinding")
    assert targets(plan) == set()


def test_two_kcp_workspaces_with_one_kube_system_are_not_a_self_binding() -> None:
    # kcp identifies a workspace by its LogicalCluster, whatever kube-system says.
    plan, _ = drive(
        connection(),
        {
            P_LOGICAL: named("cluster", "ws-a"),
            C_LOGICAL: named("cluster", "ws-b"),
            P_KUBE_SYSTEM: named("kube-system", "same"),
            C_KUBE_SYSTEM: named("kube-system", "same"),
        },
    )
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")


def test_a_secret_rotated_to_point_at_the_consumer_is_refused_as_self_binding() -> None:
    plan, _ = drive(connection(spec=EVERYTHING, status=PINNED_IDS), SELF)
    assert (cond(plan, "Connected") or ())[:2] == ("False", "SelfBinding")
    assert status_of(plan)["remoteClusterUID"] == PROV_UID  # the pin is kept
    assert targets(plan) == set()


def test_self_binding_is_refused_against_the_pinned_local_identity_too() -> None:
    pinned = {"remoteClusterUID": PROV_UID, "localClusterUID": "pinned-local"}
    plan, _ = drive(
        connection(status=pinned), {P_KUBE_SYSTEM: named("kube-system", "pinned-local")}
    )
    assert (cond(plan, "Ready") or ())[:2] == ("False", "SelfBinding")


def test_pointing_a_self_bound_secret_at_the_provider_makes_it_ready() -> None:
    refused, _ = drive(connection(), SELF)
    plan, _ = drive(connection(status=status_of(refused)))
    assert cond(plan, "Connected") == ("True", "AsExpected", "connected to provider")
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")
    st_ = status_of(plan)
    assert (st_["remoteClusterUID"], st_["localClusterUID"]) == (PROV_UID, CONS_UID)


@pytest.mark.parametrize(
    ("answers", "status", "wrong"),
    [
        (SELF, None, True),
        ({P_KUBE_SYSTEM: named("kube-system", "elsewhere")}, PINNED_IDS, True),
        ({}, None, False),
        ({P_KUBE_SYSTEM: Failed(UNAVAILABLE)}, None, False),  # unreachable is not misdirected
    ],
    ids=["self", "identity-changed", "ready", "unreachable"],
)
def test_misdirected_says_when_bindings_must_not_use_the_credentials(
    answers: Answers, status: Any, wrong: bool
) -> None:
    plan, _ = drive(connection(status=status), answers)
    reconciled = connection(status=status_of(plan))
    why = misdirected(reconciled)
    assert bool(why) is wrong
    if wrong:
        assert why.startswith(f"Connection {NAME} does not reach its provider: ")


def test_insecure_but_usable_transport_is_a_warning_on_secret_valid() -> None:
    plain = Credentials(server="http://provider.example:8080")
    plan, _ = drive(connection(), credentials=plain)
    status, reason, message = cond(plan, "SecretValid") or ("", "", "")
    assert (status, reason) == ("True", "InsecureTransport") and "plain http://" in message
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")


# -- rule 7: discovery ---------------------------------------------------------------------------


def test_crd_source_exports_labelled_crds_sorted_with_served_versions() -> None:
    unserved = provider_crd("zombies", served=False)
    plan, observed = drive(
        connection(spec={"schema": {"source": "CRD"}}),
        {EXPORTED_LIST: [WIDGETS, unserved, GADGETS]},
    )
    st_ = status_of(plan)
    assert st_["activeSchemaSource"] == "CRD"
    assert st_["exportedAPIs"] == [exported("gadgets"), exported("widgets")]
    assert cond(plan, "PermissionDenied") == ("False", "AsExpected", "no RBAC denials")
    assert DISCOVERY not in observed


def test_crd_source_with_nothing_labelled_exports_nothing_and_stays_crd() -> None:
    plan, observed = drive(connection(spec={"schema": {"source": "CRD"}}), {EXPORTED_LIST: []})
    assert status_of(plan)["activeSchemaSource"] == "CRD"
    assert status_of(plan)["exportedAPIs"] == []
    assert DISCOVERY not in observed


def test_auto_uses_crds_when_a_labelled_crd_exists() -> None:
    plan, observed = drive(connection())
    assert status_of(plan)["activeSchemaSource"] == "CRD"
    assert DISCOVERY not in observed


def test_auto_falls_through_to_openapi_only_when_no_labelled_crd_exists() -> None:
    plan, observed = drive(connection(), {EXPORTED_LIST: []})
    assert DISCOVERY in observed
    assert status_of(plan)["activeSchemaSource"] == "OpenAPI"
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")


@pytest.mark.parametrize("source", ["Auto", "CRD"])
def test_forbidden_crd_list_never_falls_through_to_openapi(source: str) -> None:
    plan, observed = drive(
        connection(spec={"schema": {"source": source}}), {EXPORTED_LIST: Failed(FORBIDDEN)}
    )
    assert DISCOVERY not in observed
    assert (cond(plan, "PermissionDenied") or ())[:2] == ("True", "Forbidden")
    assert (cond(plan, "Ready") or ())[:2] == ("False", "Forbidden")
    assert targets(plan) == set()


# -- rule 8: schemas the Connection installs -----------------------------------------------------


def test_pull_policy_all_installs_every_exported_api() -> None:
    plan, _ = drive(
        connection(spec={"schema": {"pullPolicy": "All"}}), {EXPORTED_LIST: [WIDGETS, GADGETS]}
    )
    created = {
        a.target.key.name: a.body for a in writes_of(plan, act.Create) if a.target.gvr == CRDS
    }
    assert set(created) == {"widgets.example.org", "gadgets.example.org"}
    for body in created.values():
        assert body["metadata"]["labels"][keys.LABEL_MANAGED] == "true"
        assert body["metadata"]["annotations"][keys.ANNOTATION_CONNECTION] == NAME
        assert body["metadata"]["annotations"][keys.ANNOTATION_SCHEMA_HASH].startswith("sha256:")
        assert all(
            a.target.cluster == CONSUMER
            for a in writes_of(plan, act.Create)
            if a.target.gvr == CRDS
        )
    assert (cond(plan, "SchemaInSync") or ())[:2] == ("True", "AsExpected")


def test_pull_policy_bound_with_crd_source_leaves_pulling_to_bindings() -> None:
    plan, observed = drive(connection())
    assert not [r for r in observed if isinstance(r, Get) and r.gvr == CRDS]
    assert not [a for a in writes_of(plan, act.Create) if a.target.gvr == CRDS]


def test_pull_policy_all_refuses_a_conversion_webhook_crd_and_installs_the_rest() -> None:
    hooked = provider_crd("gadgets", webhook=True)
    plan, _ = drive(
        connection(spec={"schema": {"pullPolicy": "All"}}), {EXPORTED_LIST: [WIDGETS, hooked]}
    )
    created = [a.target.key.name for a in writes_of(plan, act.Create) if a.target.gvr == CRDS]
    assert created == ["widgets.example.org"]
    status, reason, message = cond(plan, "SchemaInSync") or ("", "", "")
    assert (status, reason) == ("False", "ConversionWebhook")
    assert "gadgets.example.org" in message and "webhook" in message


def test_pull_policy_all_never_overwrites_a_foreign_consumer_crd() -> None:
    foreign = {
        "metadata": {"name": "widgets.example.org", "uid": "mine", "resourceVersion": "1"},
        "spec": WIDGETS["spec"],
    }
    plan, _ = drive(
        connection(spec={"schema": {"pullPolicy": "All"}}),
        {Get(CONSUMER, CRDS, ObjectKey("", "widgets.example.org")): foreign},
    )
    assert not [a for a in plan.writes if getattr(a, "target", None) and a.target.gvr == CRDS]
    assert (cond(plan, "SchemaInSync") or ())[:2] == ("False", "ForeignCRD")


def test_pull_policy_all_refuses_a_scope_change_and_leaves_the_consumer_crd_alone() -> None:
    # The Connection's installs go through the same gate as a binding's (kbcore.schema.policy rule 8).
    live = schema.for_consumer(WIDGETS, NAME)
    live["metadata"].update(uid="cons", resourceVersion="3")
    live["status"] = {"conditions": [{"type": "Established", "status": "True"}],
                      "storedVersions": ["v1"]}  # fmt: skip
    flipped = copy.deepcopy(WIDGETS)
    flipped["spec"]["scope"] = "Cluster"
    plan, _ = drive(
        connection(spec={"schema": {"pullPolicy": "All"}}),
        {EXPORTED_LIST: [flipped], Get(CONSUMER, CRDS, ObjectKey("", "widgets.example.org")): live},
    )
    assert not [a for a in plan.writes if getattr(a, "target", None) and a.target.gvr == CRDS]
    status, reason, message = cond(plan, "SchemaInSync") or ("", "", "")
    assert (status, reason) == ("False", "IncompatibleSchemaChange")
    assert "spec.scope" in message and "widgets.example.org" in message
    assert (cond(plan, "Ready") or ())[:2] == ("True", "AsExpected")  # the Connection stays up


# -- rule 9: autoBind ----------------------------------------------------------------------------


def ours_cb(apis: list[str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": keys.API_VERSION,
        "kind": "ClusterBinding",
        "metadata": {
            "name": NAME,
            "uid": "cb-uid",
            "resourceVersion": "7",
            "labels": {keys.LABEL_MANAGED: "true"},
            "ownerReferences": [
                {
                    "apiVersion": keys.API_VERSION,
                    "kind": "Connection",
                    "name": NAME,
                    "uid": "conn-uid",
                    "controller": True,
                }
            ],
            **meta,
        },
        "spec": {"connectionRef": {"name": NAME}, "apis": [{"name": a} for a in apis]},
    }


AUTO = {"autoBind": True}


def test_autobind_creates_an_owned_managed_clusterbinding_listing_every_api() -> None:
    plan, _ = drive(connection(spec=AUTO), {EXPORTED_LIST: [WIDGETS, GADGETS]})
    (create,) = [a for a in writes_of(plan, act.Create) if a.target == CB_REF]
    body = create.body
    assert body["kind"] == "ClusterBinding" and body["metadata"]["name"] == NAME
    assert body["metadata"]["labels"] == {keys.LABEL_MANAGED: "true"}
    (owner,) = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Connection", "conn-uid", True)
    assert body["spec"] == {
        "connectionRef": {"name": NAME},
        "apis": [{"name": "gadgets.example.org"}, {"name": "widgets.example.org"}],
    }
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")


def test_autobind_updates_the_apis_of_its_clusterbinding() -> None:
    plan, _ = drive(
        connection(spec=AUTO),
        {EXPORTED_LIST: [WIDGETS, GADGETS], CB_GET: ours_cb(["widgets.example.org"])},
    )
    assert writes_of(plan, act.MergePatch) == [
        act.MergePatch(
            CB_REF,
            {"spec": {"apis": [{"name": "gadgets.example.org"}, {"name": "widgets.example.org"}]}},
            "7",
        )
    ]


def test_autobind_writes_nothing_when_the_clusterbinding_is_current() -> None:
    plan, _ = drive(connection(spec=AUTO), {CB_GET: ours_cb(["widgets.example.org"])})
    assert CB_REF not in {getattr(a, "target", None) for a in plan.actions}


def test_autobind_deletes_its_clusterbinding_when_nothing_is_exported() -> None:
    plan, _ = drive(
        connection(spec={**AUTO, "schema": {"source": "CRD"}}),
        {EXPORTED_LIST: [], CB_GET: ours_cb(["widgets.example.org"])},
    )
    assert writes_of(plan, act.Delete) == [act.Delete(CB_REF, "cb-uid")]


def test_autobind_never_touches_a_foreign_same_named_clusterbinding() -> None:
    foreign = ours_cb(["other.example.org"], labels={}, ownerReferences=[])
    for exported_crds in ([WIDGETS], []):
        plan, _ = drive(
            connection(spec={**AUTO, "schema": {"source": "CRD"}}),
            {EXPORTED_LIST: exported_crds, CB_GET: foreign},
        )
        assert CB_REF not in {getattr(a, "target", None) for a in plan.actions}
        status, reason, message = cond(plan, "Ready") or ("", "", "")
        assert (status, reason) == ("False", "ForeignObjectExists")
        assert f"ClusterBinding {NAME}" in message


def test_no_autobind_never_reads_the_clusterbinding() -> None:
    _, observed = drive(connection())
    assert CB_GET not in observed


# -- rule 10: heartbeat Lease --------------------------------------------------------------------


def lease(renewed: str, owner: str = CONS_UID) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": LEASE_KEY.name,
            "namespace": "kube-bind",
            "uid": "lease-uid",
            "resourceVersion": "4",
            "labels": {keys.LABEL_MANAGED: "true"},
            "annotations": {keys.ANNOTATION_CONSUMER_CLUSTER_UID: owner},
        },
        "spec": {
            "holderIdentity": owner,
            "leaseDurationSeconds": 60,
            "acquireTime": "2025-12-31T00:00:00.000000Z",
            "renewTime": renewed,
        },
    }


def micro(t: float) -> str:
    return rfc3339(t)[:-1] + ".000000Z"


def test_heartbeat_creates_its_namespace_and_lease_after_the_status() -> None:
    plan, _ = drive(connection())
    kinds = [type(a) for a in plan.actions]
    assert kinds == [act.UpdateStatus, act.CreateNamespace, act.Create]
    ns = plan.actions[1]
    assert isinstance(ns, act.CreateNamespace)
    # Labelled as every namespace the konnector creates, so teardown can recognise it.
    assert (ns.cluster, ns.name, ns.labels) == (
        PROVIDER,
        "kube-bind",
        {keys.LABEL_MANAGED: "true", keys.ANNOTATION_CONSUMER_CLUSTER_UID: CONS_UID},
    )
    create = plan.actions[2]
    assert isinstance(create, act.Create)
    assert create.target == ObjectRef(PROVIDER, LEASES, LEASE_KEY)
    meta, spec = create.body["metadata"], create.body["spec"]
    assert (meta["namespace"], meta["name"]) == ("kube-bind", f"consumer-{CONS_UID}-{NAME}")
    assert meta["labels"] == {keys.LABEL_MANAGED: "true"}
    assert meta["annotations"][keys.ANNOTATION_CONSUMER_CLUSTER_UID] == CONS_UID
    assert spec == {
        "holderIdentity": CONS_UID,
        "leaseDurationSeconds": 60,
        "renewTime": micro(NOW),
        "acquireTime": micro(NOW),
    }


def test_heartbeat_does_not_recreate_an_existing_namespace() -> None:
    plan, _ = drive(connection(), {LEASE_NS_GET: named("kube-bind", "ns-uid")})
    assert not writes_of(plan, act.CreateNamespace)
    assert [a.target for a in writes_of(plan, act.Create)] == [
        ObjectRef(PROVIDER, LEASES, LEASE_KEY)
    ]


def test_heartbeat_renews_only_when_older_than_20_seconds() -> None:
    ns = {LEASE_NS_GET: named("kube-bind", "ns-uid")}
    fresh, _ = drive(connection(), {**ns, LEASE_GET: lease(micro(NOW - 19))})
    assert not writes_of(fresh, act.Update) and not writes_of(fresh, act.Create)
    stale, _ = drive(connection(), {**ns, LEASE_GET: lease(micro(NOW - 21))})
    (update,) = writes_of(stale, act.Update)
    assert update.target == ObjectRef(PROVIDER, LEASES, LEASE_KEY)
    assert update.body["spec"]["renewTime"] == micro(NOW)
    assert update.body["spec"]["acquireTime"] == "2025-12-31T00:00:00.000000Z"
    assert update.body["metadata"]["resourceVersion"] == "4"


def test_heartbeat_never_touches_a_lease_that_is_not_ours() -> None:
    plan, _ = drive(connection(), {LEASE_GET: lease(micro(NOW - 3600), owner="someone-else")})
    assert "provider:leases" not in targets(plan)


def test_heartbeat_failure_never_affects_readiness() -> None:
    plan, _ = drive(connection(), {LEASE_GET: Failed(FORBIDDEN)})
    assert targets(plan) == set()
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")


# -- rule 11: status ---------------------------------------------------------------------------


def test_ready_connection_reports_every_condition_of_spec_2_3() -> None:
    plan, _ = drive(connection())
    assert cond(plan, "SecretValid") == ("True", "AsExpected", "kubeconfig secret resolved")
    assert cond(plan, "Connected") == ("True", "AsExpected", "connected to provider")
    assert cond(plan, "PermissionDenied") == ("False", "AsExpected", "no RBAC denials")
    assert (cond(plan, "SchemaInSync") or ())[:2] == ("True", "AsExpected")
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")
    for c in status_of(plan)["conditions"]:
        assert c["observedGeneration"] == 1 and c["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_unchanged_status_is_not_written_again() -> None:
    plan, _ = drive(connection())
    again, _ = drive(connection(status=status_of(plan)), {LEASE_GET: lease(micro(NOW))})
    assert again.actions == ()


# -- rule 1: deletion ----------------------------------------------------------------------------


def binding(kind: str, name: str, conn: str = NAME, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"{name}-uid"}
    if kind == "Binding":
        meta["namespace"] = "team-a"
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "kind": kind,
        "metadata": meta,
        "spec": {"connectionRef": {"name": conn}, "apis": [{"name": "widgets.example.org"}]},
    }


PINNED = PINNED_IDS
CB_LIST, B_LIST = List(CONSUMER, CLUSTERBINDINGS), List(CONSUMER, BINDINGS)
CONN_LIST = List(CONSUMER, CONNECTIONS)


def test_deleting_waits_while_bindings_name_it() -> None:
    bindings = {
        CB_LIST: [
            binding("ClusterBinding", "a", deleting=True),
            binding("ClusterBinding", "x", "q"),
        ],
        B_LIST: [binding("Binding", "b")],
    }
    plan, _ = drive(connection(deleting=True, status=PINNED), bindings)
    assert cond(plan, "Ready") == (
        "False",
        "DrainingBindings",
        "waiting for 2 binding(s) to finish unbinding",
    )
    assert act.RequeueAfter(2.0) in plan.actions
    assert not writes_of(plan, act.RemoveFinalizer)
    assert "provider:leases" not in targets(plan)


def test_deleting_autobind_connection_deletes_its_clusterbinding_first() -> None:
    ours = ours_cb(["widgets.example.org"])
    plan, _ = drive(
        connection(spec=AUTO, deleting=True, status=PINNED), {CB_GET: ours, CB_LIST: [ours]}
    )
    assert writes_of(plan, act.Delete) == [act.Delete(CB_REF, "cb-uid")]
    assert (cond(plan, "Ready") or ())[1] == "DrainingBindings"


def test_deleting_autobind_connection_never_deletes_a_foreign_clusterbinding() -> None:
    foreign = ours_cb(["widgets.example.org"], labels={}, ownerReferences=[])
    plan, _ = drive(
        connection(spec=AUTO, deleting=True, status=PINNED), {CB_GET: foreign, CB_LIST: [foreign]}
    )
    assert not writes_of(plan, act.Delete)


def test_deleting_without_bindings_deletes_lease_and_releases_secret_then_itself() -> None:
    plan, _ = drive(
        connection(deleting=True, status=PINNED),
        {LEASE_GET: lease(micro(NOW)), CONN_LIST: [connection(deleting=True)]},
    )
    assert plan.actions == (
        act.Delete(ObjectRef(PROVIDER, LEASES, LEASE_KEY), "lease-uid", best_effort=True),
        act.RemoveFinalizer(SECRET_REF, CLEANUP, "3", ()),
        act.RemoveFinalizer(CONN_REF, CLEANUP, "10", ()),
    )


def test_deleting_reads_the_secret_afresh_before_releasing_itself() -> None:
    # The konnector restarted and its Secret cache is still empty: were that taken for "the
    # Secret is gone", the Connection would vanish and the Secret keep our finalizer forever.
    held = secret()
    plan, observed = drive(
        connection(deleting=True, status=PINNED),
        {CONN_LIST: [connection(deleting=True)], Get(CONSUMER, SECRETS, SECRET_REF.key): held},
        sec={},
    )
    plan2 = plan_connection(
        ConnectionView(
            connection=connection(deleting=True, status=PINNED),
            konnector_namespace=NS,
            secret=None,
            credentials=CREDS,
            observed=observed,
            now=NOW,
        )
    )
    for p in (plan, plan2):
        assert [a.target for a in writes_of(p, act.RemoveFinalizer)] == [SECRET_REF, CONN_REF]


def other_connection(deleting: bool = False) -> dict[str, Any]:
    other = connection(deleting=deleting)
    other["metadata"]["name"] = "q"
    return other


def test_secret_finalizer_is_kept_while_another_live_connection_uses_the_secret() -> None:
    plan, _ = drive(
        connection(deleting=True, status=PINNED),
        {CONN_LIST: [connection(deleting=True), other_connection()]},
    )
    assert writes_of(plan, act.RemoveFinalizer) == [
        act.RemoveFinalizer(CONN_REF, CLEANUP, "10", ())
    ]


def test_secret_finalizer_is_released_when_the_other_user_is_deleting_too() -> None:
    plan, _ = drive(
        connection(deleting=True, status=PINNED),
        {CONN_LIST: [connection(deleting=True), other_connection(deleting=True)]},
    )
    assert [a.target for a in writes_of(plan, act.RemoveFinalizer)] == [SECRET_REF, CONN_REF]


def test_deleting_never_deletes_a_lease_that_is_not_ours() -> None:
    plan, _ = drive(
        connection(deleting=True, status=PINNED),
        {LEASE_GET: lease(micro(NOW), owner="someone-else")},
    )
    assert not writes_of(plan, act.Delete)
    assert [a.target for a in writes_of(plan, act.RemoveFinalizer)] == [SECRET_REF, CONN_REF]


def test_deleting_is_not_blocked_by_a_provider_that_refuses_the_lease_read() -> None:
    plan, _ = drive(connection(deleting=True, status=PINNED), {LEASE_GET: Failed(FORBIDDEN)})
    assert [a.target for a in writes_of(plan, act.RemoveFinalizer)] == [SECRET_REF, CONN_REF]


def test_deleting_is_not_blocked_by_an_unreachable_provider() -> None:
    gone = ApiError(UNREACHABLE_CODE, UNREACHABLE, "no such host")
    plan, _ = drive(connection(deleting=True, status=PINNED), {LEASE_GET: Failed(gone)})
    assert [a.target for a in writes_of(plan, act.RemoveFinalizer)] == [SECRET_REF, CONN_REF]


def test_deleting_retries_when_a_live_provider_fails_rather_than_leave_the_lease() -> None:
    failing = ApiError(503, "ServiceUnavailable", "try again")
    with pytest.raises(ApiError):
        drive(connection(deleting=True, status=PINNED), {LEASE_GET: Failed(failing)})


@pytest.mark.parametrize(
    "reaches",
    [
        named("kube-system", CONS_UID),  # the Secret now points at the consumer itself
        named("kube-system", "another-cluster"),  # ... or at another cluster
        Failed(FORBIDDEN),  # ... or at a cluster that will not say who it is
    ],
)
def test_teardown_leaves_a_cluster_that_is_not_the_pinned_provider_alone(reaches: Any) -> None:
    ours = lease(micro(NOW))
    plan, _ = drive(
        connection(deleting=True, status=PINNED),
        {P_KUBE_SYSTEM: reaches, LEASE_GET: ours, LEASE_NS_GET: named("kube-bind", "ns-uid")},
    )
    assert not [
        a for a in plan.writes if getattr(a, "target", None) and a.target.cluster == PROVIDER
    ]
    assert [a.target for a in writes_of(plan, act.RemoveFinalizer)] == [SECRET_REF, CONN_REF]


def test_deleting_with_a_failed_binding_list_never_releases() -> None:
    with pytest.raises(ApiError):
        drive(connection(deleting=True, status=PINNED), {B_LIST: Failed(UNAVAILABLE)})


def test_deleted_connection_without_our_finalizer_needs_nothing() -> None:
    plan, observed = drive(connection(deleting=True, finalizers=("other",)))
    assert plan.actions == () and observed == {}


# -- laws ----------------------------------------------------------------------------------------

scenarios = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["Auto", "CRD", "OpenAPI", None]),
        "pull": st.sampled_from(["Bound", "All", "None", None]),
        "update": st.sampled_from(["Always", "Once", None]),
        "auto_bind": st.booleans(),
        "pinned": st.sampled_from([None, PROV_UID, "old-prov"]),
        "local": st.sampled_from([None, CONS_UID, "old-local"]),
        "crds": st.sampled_from(["none", "widgets", "both", "webhook", "forbidden"]),
        "consumer_crd": st.sampled_from(["absent", "foreign"]),
        "cb": st.sampled_from(["absent", "ours", "foreign"]),
        "lease": st.sampled_from(["absent", "fresh", "old", "foreign", "forbidden"]),
        "provider": st.sampled_from(["ok", "forbidden", "down"]),
        "secret_ok": st.booleans(),
        "deleting": st.booleans(),
        "bindings": st.sampled_from([0, 1]),
    }
)


def scenario(s: dict[str, Any]) -> tuple[dict[str, Any], dict[Read, Any], Any]:
    schema_spec = {
        k: v
        for k, v in (
            ("source", s["source"]),
            ("pullPolicy", s["pull"]),
            ("updatePolicy", s["update"]),
        )
        if v is not None
    }
    status = {
        k: v
        for k, v in (("remoteClusterUID", s["pinned"]), ("localClusterUID", s["local"]))
        if v is not None
    }
    conn = connection(
        spec={"schema": schema_spec, "autoBind": s["auto_bind"]},
        status=status,
        deleting=s["deleting"],
    )
    crds = {
        "none": [],
        "widgets": [WIDGETS],
        "both": [WIDGETS, GADGETS],
        "webhook": [WIDGETS, provider_crd("gadgets", webhook=True)],
        "forbidden": Failed(FORBIDDEN),
    }[s["crds"]]
    answers: dict[Read, Any] = {EXPORTED_LIST: crds}
    if s["consumer_crd"] == "foreign":
        answers[Get(CONSUMER, CRDS, ObjectKey("", "widgets.example.org"))] = {
            "metadata": {"name": "widgets.example.org", "uid": "u", "resourceVersion": "1"},
            "spec": WIDGETS["spec"],
        }
    answers[CB_GET] = {
        "absent": None,
        "ours": ours_cb(["gadgets.example.org"]),
        "foreign": ours_cb([], labels={}, ownerReferences=[]),
    }[s["cb"]]
    local = s["local"] or CONS_UID
    lease_get = Get(PROVIDER, LEASES, ObjectKey("kube-bind", lease_name(local, NAME)))
    answers[lease_get] = {
        "absent": None,
        "fresh": lease(micro(NOW - 1), local),
        "old": lease(micro(NOW - 100), local),
        "foreign": lease(micro(NOW), "x"),
        "forbidden": Failed(FORBIDDEN),
    }[s["lease"]]
    if s["provider"] != "ok":
        answers[P_LOGICAL] = Failed(FORBIDDEN if s["provider"] == "forbidden" else UNAVAILABLE)
    answers[CB_LIST] = [binding("ClusterBinding", "a")] * s["bindings"]
    creds = CREDS if s["secret_ok"] else SecretProblem("Secret kube-bind/kc not found")
    return conn, answers, creds


def drive_or_failure(
    conn: dict[str, Any], answers: Answers, creds: Credentials | SecretProblem
) -> tuple[act.Plan, dict[Read, Any]] | int:
    """The plan, or the code of the failed read the planner gave up on (teardown retries a
    provider that answers 5xx rather than leave its Lease behind)."""
    try:
        return drive(conn, answers, credentials=creds)
    except ApiError as err:
        return err.code


@settings(max_examples=200, deadline=None)
@given(s=scenarios)
def test_law_determinism(s: dict[str, Any]) -> None:
    conn, answers, creds = scenario(s)
    assert drive_or_failure(conn, answers, creds) == drive_or_failure(conn, answers, creds)


@settings(max_examples=200, deadline=None)
@given(s=scenarios)
def test_law_no_op_stability(s: dict[str, Any]) -> None:
    conn, answers, creds = scenario(s)
    result = drive_or_failure(conn, answers, creds)
    if isinstance(result, int):
        assert s["deleting"] and s["provider"] == "down", result
        return
    plan, _ = result
    updates = writes_of(plan, act.UpdateStatus)
    if not updates:
        return
    written = dict(conn, status=updates[0].body["status"])
    again, _ = drive(written, answers, credentials=creds)
    assert not writes_of(again, act.UpdateStatus), (
        f"status written again: {writes_of(again, act.UpdateStatus)[0].body['status']}"
    )


@pytest.mark.parametrize(
    ("tenant", "problem"),
    [
        ({"namespace": "Bad_Name", "apis": ["a.b"]}, "must be a namespace name"),
        ({"namespace": "kb-x", "apis": []}, "at least one CRD"),
        ({"namespace": "kb-x"}, "at least one CRD"),
        ("x", "must be an object"),
    ],
)
def test_a_malformed_tenant_is_refused_before_any_provider_request(
    tenant: Any, problem: str
) -> None:
    """kbcore.sync.tenancy rule 1: never a fall back to the untenanted, cluster-wide behaviour."""

    def no_provider_reads(r: Read) -> Any:
        assert r.cluster != PROVIDER, f"read {r} for a malformed tenant"
        return default_answer(r)

    plan, _ = drive(connection(spec={"tenant": tenant}), fallback=no_provider_reads)
    status, reason, message = cond(plan, "Ready") or ("", "", "")
    assert (status, reason) == ("False", "InvalidTenant")
    assert problem in message


def test_a_tenant_discovers_its_granted_crds_by_name_and_heartbeats_at_home() -> None:
    """Rule 12: no list of the provider's CRDs, the Lease in the home namespace, the granted
    claims recorded; a pending claim is looked at again shortly."""
    tenant = {"namespace": "kb-home", "apis": ["widgets.example.org", "gone.example.org"]}
    ready_true = {"type": "Ready", "status": "True", "reason": "AsExpected", "message": "",
                  "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip
    claims = List(PROVIDER, BOUND_NAMESPACES, "kb-home")
    granted = {"metadata": {"name": "team-x", "namespace": "kb-home"},
               "status": {"namespace": "kb-home-team-x",
                          "conditions": [ready_true]}}  # fmt: skip
    pending = {"metadata": {"name": "team-y", "namespace": "kb-home"}}
    lying = {"metadata": {"name": "team-z", "namespace": "kb-home"},
             "status": {"namespace": "kube-system",
                        "conditions": [ready_true]}}  # fmt: skip
    answers = {
        Get(PROVIDER, CRDS, ObjectKey("", "widgets.example.org")): WIDGETS,
        claims: [granted, pending, lying],
    }
    plan, asked = drive(connection(spec={"tenant": tenant}), answers)
    assert EXPORTED_LIST not in asked
    assert not [r for r in asked if isinstance(r, List) and r.cluster == PROVIDER and r != claims]
    status = status_of(plan)
    assert [a["name"] for a in status["exportedAPIs"]] == ["widgets.example.org"]
    assert status["tenantNamespaces"] == ["kb-home-team-x"]
    assert cond(plan, "Ready") == ("True", "AsExpected", "connection ready")
    leases = [a for a in plan.actions if isinstance(a, act.Create) and a.target.gvr == LEASES]
    assert [a.target.key.namespace for a in leases] == ["kb-home"]
    assert not [a for a in plan.actions if isinstance(a, act.CreateNamespace)]
    assert plan.requeue_after == 1.0
