"""The control plane in kbsim, where a scenario cannot say it: identities, the heartbeat Lease."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kbcore import objects as o
from kbcore.api.resources import LEASES, NAMESPACES, SECRETS
from kbcore.control.connection import lease_name
from kbcore.objects import GVR, ObjectKey
from kbsim import scenario
from kbsim.world import World

CONNECTIONS = GVR("core.kube-bind.io", "v1alpha1", "connections")
CLUSTERBINDINGS = GVR("core.kube-bind.io", "v1alpha1", "clusterbindings")


def _world(name: str) -> World:
    sc = scenario.load(Path(f"examples/scenarios/{name}/scenario.yaml"))
    world = scenario.build_world(sc, seed=1)
    assert world.settle(60)
    return world


def _connection(world: World, name: str = "demo-provider") -> dict[str, Any]:
    return world.clusters["consumer"].get(CONNECTIONS, ObjectKey("", name))


def test_identities_are_the_kube_system_uids_and_stay_pinned() -> None:
    world = _world("quickstart")
    status = _connection(world)["status"]
    kube_system = ObjectKey("", "kube-system")
    assert status["remoteClusterUID"] == o.uid(
        world.clusters["provider"].get(NAMESPACES, kube_system)
    )
    assert status["localClusterUID"] == o.uid(
        world.clusters["consumer"].get(NAMESPACES, kube_system)
    )


def test_a_kcp_like_provider_is_identified_by_its_logical_cluster() -> None:
    world = _world("kcp-like-provider")
    logical = world.clusters["provider"].get(
        GVR("core.kcp.io", "v1alpha1", "logicalclusters"), ObjectKey("", "cluster")
    )
    assert _connection(world)["status"]["remoteClusterUID"] == o.uid(logical)


def test_the_heartbeat_lease_is_per_connection_renewed_and_removed_with_it() -> None:
    world = _world("quickstart")
    local = _connection(world)["status"]["localClusterUID"]
    key = ObjectKey("kube-bind", lease_name(local, "demo-provider"))
    provider = world.clusters["provider"]
    lease = provider.get(LEASES, key)
    assert lease["spec"]["holderIdentity"] == local
    assert lease["spec"]["leaseDurationSeconds"] == 60
    assert o.labels_of(lease)["core.kube-bind.io/managed"] == "true"
    first = lease["spec"]["renewTime"]
    world.advance(65)
    renewed = provider.get(LEASES, key)["spec"]["renewTime"]
    assert renewed > first, "renewTime must advance while the Connection lives"
    consumer = world.clusters["consumer"]
    for gvr, k in (
        (GVR("core.kube-bind.io", "v1alpha1", "clusterbindings"), ObjectKey("", "widgets")),
        (CONNECTIONS, ObjectKey("", "demo-provider")),
    ):
        world.user_call(lambda gvr=gvr, k=k: consumer.delete(gvr, k))
    assert world.settle(60)
    assert provider.list(LEASES, "kube-bind")[0] == []


def test_a_secret_rotated_to_the_consumer_itself_stops_sync_and_unbind_waits_for_the_fix() -> None:
    """Bound and synced, then the kubeconfig is pointed back at the consumer: the Connection
    refuses it (SelfBinding), sync stops, and an unbind does nothing through those credentials
    (not even the namespace cleanup, which would find a namespace labelled as ours on the
    consumer): it holds the object whose copy is on the real provider, and says why. Once the
    kubeconfig points at the provider again, the unbind completes and the copy is deleted."""
    world = _world("quickstart")
    consumer, provider = world.clusters["consumer"], world.clusters["provider"]
    local = _connection(world)["status"]["localClusterUID"]
    widgets = GVR("example.org", "v1", "widgets")
    w1_key = ObjectKey("default", "w1")
    w1 = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": "default", "name": "w1"},
        "spec": {"size": "large"},
    }
    world.user_call(lambda: consumer.create(widgets, w1))
    # A consumer namespace carrying the labels of a namespace the konnector created.
    decoy = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "team-z",
            "labels": {
                "core.kube-bind.io/managed": "true",
                "core.kube-bind.io/consumer-cluster-uid": local,
            },
        },
    }
    world.user_call(lambda: consumer.create(NAMESPACES, decoy))
    assert world.settle(60)
    assert provider.get(widgets, w1_key)["spec"] == {"size": "large"}

    good = consumer.get(SECRETS, ObjectKey("kube-bind", "demo-provider-kubeconfig"))["data"]
    itself = scenario.kubeconfig_secret("kube-bind", "demo-provider-kubeconfig", "consumer")
    world.user_call(lambda: scenario.user_write(world, "apply", "consumer", itself))
    assert world.settle(60)
    conds = {c["type"]: c for c in _connection(world)["status"]["conditions"]}
    assert (conds["Connected"]["status"], conds["Connected"]["reason"]) == ("False", "SelfBinding")
    assert world.konnector.syncers == {}  # nothing engaged through the consumer itself

    world.user_call(lambda: consumer.delete(CLUSTERBINDINGS, ObjectKey("", "widgets")))
    world.advance(20)
    ready = next(
        c
        for c in consumer.get(CLUSTERBINDINGS, ObjectKey("", "widgets"))["status"]["conditions"]
        if c["type"] == "Ready"
    )
    assert (ready["status"], ready["reason"]) == ("False", "DrainingObjects")
    assert "Connection demo-provider does not reach its provider" in ready["message"]
    assert "point its kubeconfig back at the provider" in ready["message"]
    assert "core.kube-bind.io/syncer" in o.finalizers(consumer.get(widgets, w1_key))
    assert consumer.get(NAMESPACES, ObjectKey("", "team-z")) is not None
    assert provider.get(widgets, w1_key) is not None
    assert world.monitor.held() == {name: "held" for name in world.monitor.held()}

    fixed = {**itself, "data": good}
    world.user_call(lambda: scenario.user_write(world, "apply", "consumer", fixed))
    assert world.settle(60)
    assert consumer.list(CLUSTERBINDINGS)[0] == []
    assert provider.list(widgets)[0] == []  # the copy went with the unbind
    assert consumer.get(NAMESPACES, ObjectKey("", "team-z")) is not None
    assert world.monitor.held() == {name: "held" for name in world.monitor.held()}
