"""Engagement, sync targets and event mapping (kbcore/control/engagement.py, kbcore/runtime/events.py;
docs/design.md, "Differences from upstream": a rotated Secret takes effect while the Connection
stays Ready), plus the same end to end in kbsim.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from kbcore import objects as o
from kbcore.actions import Plan, UpdateStatus
from kbcore.api import keys
from kbcore.api.resources import CLUSTERBINDINGS, CONNECTIONS, NAMESPACES, SECRETS
from kbcore.control.engagement import (
    Engagement,
    SyncTarget,
    engagement,
    sync_targets,
    syncs_api,
    verified_fingerprint,
)
from kbcore.control.kubeconfig import Credentials, SecretProblem
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.runtime.enqueue import current_fingerprints
from kbcore.runtime.events import binding_key, connection_key, keys_for_event
from kbcore.runtime.keys import ENGAGE
from kbcore.schema import crdgen
from kbcore.schema import policy as schema
from kbsim import scenario
from kbsim.apiserver import User
from kbsim.konnector import SimKonnector
from kbsim.world import World
from tests import crds

CREDS = Credentials(server="https://provider.example", token="old-token")
WIDGETS = GVR("example.org", "v1", "widgets")


def connection(
    name: str = "p",
    *,
    ready: bool = True,
    local: str = "cons-uid",
    deleting: bool = False,
    secret: tuple[str, str] = ("kube-bind", "kc"),
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"kubeconfigSecretRef": {"namespace": secret[0], "name": secret[1]}},
        "status": {
            "localClusterUID": local,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "AsExpected",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


# -- engagement ----------------------------------------------------------------------------------


def test_ready_connection_with_credentials_is_engaged() -> None:
    assert engagement(connection(), CREDS, CREDS.fingerprint) == Engagement("p", CREDS, "cons-uid")


def test_the_engagement_carries_the_pinned_provider_identity() -> None:
    conn = connection()
    conn["status"]["remoteClusterUID"] = "prov-uid"
    eng = engagement(conn, CREDS, CREDS.fingerprint)
    assert eng == Engagement("p", CREDS, "cons-uid", "prov-uid")


def test_a_connection_whose_provider_is_the_consumer_itself_is_never_engaged() -> None:
    # The Connection kernel refuses it (SelfBinding); a Ready status someone else wrote must
    # not make instances sync through it either.
    conn = connection()
    conn["status"]["remoteClusterUID"] = "cons-uid"
    assert engagement(conn, CREDS, CREDS.fingerprint) is None


def test_credentials_not_yet_verified_are_never_engaged() -> None:
    # The Secret changed and the Connection reconcile has not checked the new kubeconfig's
    # cluster identity yet: the old Ready condition must not vouch for it.
    rotated = attrs.evolve(CREDS, token="new-token")
    assert engagement(connection(), rotated, CREDS.fingerprint) is None
    assert engagement(connection(), CREDS, None) is None


def test_a_ready_plan_vouches_for_its_credentials() -> None:
    ready, unready = connection(), connection(ready=False)
    ref = ObjectRef(
        "consumer", GVR("core.kube-bind.io", "v1alpha1", "connections"), ObjectKey("", "p")
    )
    # No status write: the current status decides.
    assert verified_fingerprint(ready, CREDS, Plan()) == CREDS.fingerprint
    assert verified_fingerprint(unready, CREDS, Plan()) is None
    # A status write: the status the plan leaves decides.
    assert verified_fingerprint(unready, CREDS, Plan((UpdateStatus(ref, ready),))) == (
        CREDS.fingerprint
    )
    assert verified_fingerprint(ready, CREDS, Plan((UpdateStatus(ref, unready),))) is None
    assert verified_fingerprint(ready, SecretProblem("bad"), Plan()) is None


@pytest.mark.parametrize(
    ("conn", "creds"),
    [
        (connection(ready=False), CREDS),
        (connection(deleting=True), CREDS),
        (connection(local=""), CREDS),
        (connection(), SecretProblem("Secret kube-bind/kc not found")),
        (connection(), None),
        ({"metadata": {"name": "p"}}, CREDS),
    ],
    ids=["not-ready", "deleting", "no-local-uid", "secret-problem", "no-credentials", "no-status"],
)
def test_engagement_stops_unless_ready_live_pinned_and_credentialed(conn: Any, creds: Any) -> None:
    verified = creds.fingerprint if isinstance(creds, Credentials) else None
    assert engagement(conn, creds, verified) is None


def test_rotated_secret_gives_a_different_engagement() -> None:
    rotated = attrs.evolve(CREDS, token="new-token")
    before = engagement(connection(), CREDS, CREDS.fingerprint)
    after = engagement(connection(), rotated, rotated.fingerprint)
    assert before is not None and after is not None
    assert before != after
    same = attrs.evolve(CREDS)
    assert engagement(connection(), same, same.fingerprint) == before  # same Secret, same value


# -- sync targets --------------------------------------------------------------------------------


def crd(
    plural: str = "widgets",
    connection_name: str = "p",
    *,
    name: str | None = None,
    managed: bool = True,
    storage: str = "v1",
) -> dict[str, Any]:
    versions = [
        {"name": "v1alpha1", "served": True, "storage": storage == "v1alpha1"},
        {"name": "v1", "served": True, "storage": storage == "v1"},
    ]
    return {
        "metadata": {
            "name": name or f"{plural}.example.org",
            "labels": {keys.LABEL_MANAGED: "true"} if managed else {},
            "annotations": {keys.ANNOTATION_CONNECTION: connection_name},
        },
        "spec": {
            "group": "example.org",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": plural[:-1].title()},
            "versions": versions,
        },
    }


ENG_P = Engagement("p", CREDS, "cons-uid")
ENG_Q = Engagement("q", attrs.evolve(CREDS, token="q"), "cons-uid")


def test_managed_crd_of_an_engaged_connection_is_synced_at_its_storage_version() -> None:
    targets = sync_targets([crd(storage="v1")], {"p": ENG_P})
    assert targets == {WIDGETS: SyncTarget(WIDGETS, True, ENG_P)}


def test_crd_not_labelled_managed_is_not_synced() -> None:
    assert sync_targets([crd(managed=False)], {"p": ENG_P}) == {}


def test_crd_of_a_connection_not_engaged_is_not_synced() -> None:
    assert sync_targets([crd(connection_name="q")], {"p": ENG_P}) == {}
    assert sync_targets([crd()], {}) == {}


def test_first_crd_by_name_wins_a_gvr_whatever_the_order() -> None:
    first = crd(name="a-widgets.example.org", connection_name="q")
    second = crd(name="b-widgets.example.org", connection_name="p")
    engaged = {"p": ENG_P, "q": ENG_Q}
    for listed in ([first, second], [second, first]):
        assert sync_targets(listed, engaged)[WIDGETS].engagement == ENG_Q


def _refusing(reason: str, *, deleting: bool = False) -> dict[str, Any]:
    b = _binding_with(
        {"name": "widgets.example.org",
         "conditions": [{"type": "Ready", "status": "False", "reason": reason}]},
    )  # fmt: skip
    if deleting:
        b["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return b


def test_an_api_whose_schema_change_was_refused_has_no_syncer() -> None:
    # The provider no longer serves it where the consumer CRD addresses it: paused altogether.
    refused = _refusing("IncompatibleSchemaChange")
    assert sync_targets([crd()], {"p": ENG_P}, [refused]) == {}
    # Any other refusal keeps the syncer (deletions still finish); so does an unbinding one.
    for other in (_refusing("ConversionWebhook"), _refusing("APINotExported"),
                  _refusing("IncompatibleSchemaChange", deleting=True)):  # fmt: skip
        assert WIDGETS in sync_targets([crd()], {"p": ENG_P}, [other])


def test_crd_being_deleted_is_not_synced() -> None:
    deleting = crd()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert sync_targets([deleting], {"p": ENG_P}) == {}


# -- keys_for_event ------------------------------------------------------------------------------


def binding(kind: str, name: str, conn: str, apis: tuple[str, ...] = ()) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if kind == "Binding":
        meta["namespace"] = "team-a"
    return {
        "kind": kind,
        "metadata": meta,
        "spec": {"connectionRef": {"name": conn}, "apis": [{"name": a} for a in apis]},
    }


CB = binding("ClusterBinding", "cb", "p", ("widgets.example.org",))
B = binding("Binding", "b", "p", ("gadgets.example.org",))
OTHER = binding("ClusterBinding", "other", "q", ("widgets.example.org",))
BINDINGS = [CB, B, OTHER]


def test_connection_event_wakes_it_its_bindings_and_engagement() -> None:
    got = keys_for_event("Connection", connection(), connections=[], bindings=BINDINGS)
    assert got == [connection_key("p"), binding_key(CB), binding_key(B), ENGAGE]


def test_secret_event_wakes_the_connections_using_it() -> None:
    conns = [connection("p"), connection("q"), connection("r", secret=("team-a", "kc"))]
    secret = {"metadata": {"namespace": "kube-bind", "name": "kc"}}
    got = keys_for_event("Secret", secret, connections=conns, bindings=BINDINGS)
    assert connection_key("p") in got and connection_key("q") in got
    assert connection_key("r") not in got
    unrelated = {"metadata": {"namespace": "kube-bind", "name": "other"}}
    assert keys_for_event("Secret", unrelated, connections=conns, bindings=BINDINGS) == []


@pytest.mark.parametrize("kind", ["ClusterBinding", "Binding"])
def test_binding_event_wakes_it_its_connection_and_engagement(kind: str) -> None:
    obj = CB if kind == "ClusterBinding" else B
    bare = {k: v for k, v in obj.items() if k != "kind"}  # watch events may lack kind
    got = keys_for_event(kind, bare, connections=[], bindings=[])
    assert got == [binding_key(obj), connection_key("p"), ENGAGE]


def test_crd_event_wakes_engagement_and_every_binding_listing_it() -> None:
    got = keys_for_event(
        "CustomResourceDefinition",
        {"metadata": {"name": "widgets.example.org"}},
        connections=[],
        bindings=BINDINGS,
    )
    assert got == [ENGAGE, binding_key(CB), binding_key(OTHER)]


def test_other_kinds_wake_nothing() -> None:
    assert (
        keys_for_event("ConfigMap", {"metadata": {"name": "x"}}, connections=[], bindings=[]) == []
    )


# -- kbsim: a rotated Secret takes effect while the Connection stays Ready ------------------------

CLUSTERROLES = GVR("rbac.authorization.k8s.io", "v1", "clusterroles")
CLUSTERROLEBINDINGS = GVR("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
PROVIDER_WIDGETS_CRD: dict[str, Any] = crds.crd(
    labels={keys.LABEL_EXPORTED: "true"},
    singular="widget",
    versions=[crds.version(schema=crds.obj({"spec": crds.preserved()}))],
)
# What a least-privilege provider user needs: its API, reading exported CRDs, the cluster
# identity (LogicalCluster first, then kube-system), and the heartbeat Lease.
ROLE_RULES = [
    {"apiGroups": ["example.org"], "resources": ["widgets", "widgets/status"], "verbs": ["*"]},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch", "create"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
    {"apiGroups": ["core.kcp.io"], "resources": ["logicalclusters"], "verbs": ["get"]},
]


def widget(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": "default", "name": name},
        "spec": {"size": "large"},
    }


def provider_widget(world: World, name: str) -> dict[str, Any] | None:
    try:
        return world.clusters["provider"].get(WIDGETS, ObjectKey("default", name))
    except ApiError:
        return None


def ready(world: World) -> bool:
    conn = world.clusters["consumer"].get(CONNECTIONS, ObjectKey("", "p"))
    conds = (conn.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def bound_world(crd: dict[str, Any] = PROVIDER_WIDGETS_CRD) -> World:
    """Bundle applied, Connection Ready, one Widget synced as the provider admin."""
    world = World(["provider", "consumer"], seed=3)
    world.monitor.consumer_cluster = "consumer"
    consumer, provider = world.clusters["consumer"], world.clusters["provider"]
    for c in crdgen.all_crds():
        consumer.create(schema.CRDS, o.deepcopy(dict(c)))
    provider.create(schema.CRDS, o.deepcopy(crd))
    consumer.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bind"}}
    )
    provider.create(
        CLUSTERROLES,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "widget-sync"},
            "rules": ROLE_RULES,
        },
    )
    provider.create(
        CLUSTERROLEBINDINGS,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "widget-sync"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "widget-sync",
            },
            "subjects": [{"kind": "User", "name": "alice"}],
        },
    )
    world.settle(5)
    world.start_konnector(lambda: SimKonnector(world, "consumer", "kube-bind"))
    bundle = [
        (SECRETS, scenario.kubeconfig_secret("kube-bind", "kc", "provider")),
        (
            CONNECTIONS,
            {
                "apiVersion": keys.API_VERSION,
                "kind": "Connection",
                "metadata": {"name": "p"},
                "spec": {"kubeconfigSecretRef": {"namespace": "kube-bind", "name": "kc"}},
            },
        ),
        (
            CLUSTERBINDINGS,
            {
                "apiVersion": keys.API_VERSION,
                "kind": "ClusterBinding",
                "metadata": {"name": "w"},
                "spec": {"connectionRef": {"name": "p"}, "apis": [{"name": "widgets.example.org"}]},
            },
        ),
    ]
    for gvr, obj in bundle:
        world.user_call(lambda gvr=gvr, obj=obj: consumer.create(gvr, obj))
    assert world.settle(60)
    world.user_call(lambda: consumer.create(WIDGETS, widget("before")))
    assert world.settle(60)
    assert ready(world) and provider_widget(world, "before") is not None
    assert world.konnector.syncers[WIDGETS].provider_user.name == "admin"
    return world


def rotate_to_alice(world: World) -> None:
    consumer = world.clusters["consumer"]
    current = consumer.get(SECRETS, ObjectKey("kube-bind", "kc"))
    current["data"] = scenario.kubeconfig_secret("kube-bind", "kc", "provider", "alice")["data"]
    world.user_call(lambda: consumer.update(SECRETS, current))


def test_rotated_secret_moves_the_syncer_to_the_new_user_while_staying_ready() -> None:
    world = bound_world()
    rotate_to_alice(world)
    for _ in range(8):  # through a periodic resync (30 s), checking readiness along the way
        world.advance(5)
        assert world.settle(60)
        assert ready(world), "the Connection went not-Ready during a rotation"
    assert world.konnector.syncers[WIDGETS].provider_user == User("alice", ())
    writers: list[str] = []
    world.clusters["provider"].add_write_observer(
        lambda rec: writers.append(rec.user.name) if rec.gvr == WIDGETS else None
    )
    world.user_call(lambda: world.clusters["consumer"].create(WIDGETS, widget("after")))
    assert world.settle(60)
    copy = provider_widget(world, "after")
    assert copy is not None and copy["spec"] == {"size": "large"}
    assert writers and set(writers) == {"alice"}, writers


def test_rotated_secret_takes_effect_on_its_own_event_not_only_at_the_next_resync() -> None:
    # A rotation usually revokes the old token: waiting for the 30 s resync means up to 30 s
    # of failed syncs. The Secret's event should reach the engagement pass.
    world = bound_world()
    rotate_to_alice(world)
    assert world.settle(60)
    user = world.konnector.syncers[WIDGETS].provider_user
    assert user.name == "alice", (
        f"syncer still runs as {user.name!r} after the rotated Secret's event settled "
        "(it only switches at the next periodic control resync)"
    )


def test_after_a_rotation_only_the_new_credentials_are_current() -> None:
    # Shells close provider clients whose fingerprint is no longer current: the old token's
    # connection pool must not outlive the rotation, and the live one must never be closed.
    world = bound_world()
    before = current_fingerprints(world.konnector)
    assert len(before) == 1
    rotate_to_alice(world)
    assert world.settle(60)
    after = current_fingerprints(world.konnector)
    assert len(after) == 1 and after.isdisjoint(before)


def test_a_status_write_that_keeps_failing_backs_off_instead_of_spinning() -> None:
    # A bound CRD without the status subresource: the provider's status comes back as a
    # /status write the consumer answers 404 every time. Replanning at once forever was a hot
    # loop (30,000 writes in 30 s); a replan that keeps failing must back off.
    crd = o.deepcopy(PROVIDER_WIDGETS_CRD)
    version = crd["spec"]["versions"][0]
    del version["subresources"]
    version["schema"]["openAPIV3Schema"]["properties"]["status"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    world = bound_world(crd)
    provider = world.clusters["provider"]
    copy = provider_widget(world, "before")
    assert copy is not None
    copy["status"] = {"phase": "Running"}
    world.user_call(lambda: provider.update(WIDGETS, copy))
    requests: list[str] = []
    world.clusters["consumer"].add_request_hook(
        lambda verb, gvr, key, user: requests.append(verb) if gvr == WIDGETS else None
    )
    world.advance(30)
    assert 0 < len(requests) < 40, f"{len(requests)} consumer Widget requests in 30 s"


# -- syncs_api: which APIs of a binding are synced ----------------------------------------------


def _binding_with(*entries: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b"}, "status": {"boundAPIs": list(entries)}}


def _entry(name: str, status: str) -> dict[str, Any]:
    return {"name": name, "conditions": [{"type": "Ready", "status": status, "reason": "x"}]}


def test_syncs_api_follows_the_api_own_ready_not_the_binding() -> None:
    b = _binding_with(_entry("a.example.org", "True"), _entry("b.example.org", "False"))
    b["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "x"}]
    assert syncs_api(b, "a.example.org")
    assert not syncs_api(b, "b.example.org")
    assert not syncs_api(b, "c.example.org")  # no entry: never synced on a guess


@pytest.mark.parametrize(
    "status",
    [None, "junk", {"boundAPIs": "junk"}, {"boundAPIs": [{"name": "a.example.org"}]},
     {"boundAPIs": [{"name": "a.example.org", "conditions": "junk"}]}],
)  # fmt: skip
def test_syncs_api_is_false_on_anything_but_a_true_ready(status: Any) -> None:
    assert not syncs_api({"metadata": {"name": "b"}, "status": status}, "a.example.org")
