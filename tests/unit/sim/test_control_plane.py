"""The control plane in kbsim, where a scenario cannot say it: identities, the heartbeat Lease."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kbcore import objects as o
from kbcore.connection import lease_name
from kbcore.objects import GVR, ObjectKey
from kbsim import scenario
from kbsim.world import World

CONNECTIONS = GVR("core.kube-bind.io", "v1alpha1", "connections")
LEASES = GVR("coordination.k8s.io", "v1", "leases")
NAMESPACES = GVR("", "v1", "namespaces")


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
    assert status["remoteClusterUID"] == o.uid(world.clusters["provider"].get(NAMESPACES, kube_system))
    assert status["localClusterUID"] == o.uid(world.clusters["consumer"].get(NAMESPACES, kube_system))


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
