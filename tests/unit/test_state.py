"""kbcore.runtime.state: the worker's reads from a shell's caches, and what an event wakes."""

from __future__ import annotations

import attrs

from kbcore.api.resources import CLUSTERBINDINGS, CONNECTIONS, SECRETS
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.runtime import state
from kbcore.runtime.keys import ENGAGE, BindingKey, ConnectionKey, WorkKey
from kbcore.runtime.observe import Syncer
from kbcore.sync.instance import plan_instance


@attrs.define
class Cache:
    objects: dict[ObjectKey, Obj]
    synced: bool = True

    def get(self, key: ObjectKey) -> Obj | None:
        return self.objects.get(key)

    def items(self) -> list[Obj]:
        return list(self.objects.values())

    def has_synced(self) -> bool:
        return self.synced


@attrs.define
class Queue:
    keys: list[WorkKey] = attrs.Factory(list)

    def add(self, key: WorkKey) -> None:
        self.keys.append(key)


class Konnector(state.Konnector[Syncer]):
    def __init__(self, control: dict[GVR, Cache]) -> None:
        self.namespace = "kube-bind"
        self.planner = plan_instance
        self.control = control
        self.syncers = {}
        self.verified_credentials = {"c1": "fp"}
        self.queue: Queue = Queue()


CONNECTION = {"kind": "Connection", "metadata": {"name": "c1"}}
BINDING = {
    "kind": "ClusterBinding",
    "metadata": {"name": "b1"},
    "spec": {"connectionRef": {"name": "c1"}},
}


def konnector(*, secrets_synced: bool = True) -> Konnector:
    return Konnector(
        {
            CONNECTIONS: Cache({ObjectKey("", "c1"): CONNECTION}),
            CLUSTERBINDINGS: Cache({ObjectKey("", "b1"): BINDING}),
            SECRETS: Cache({}, synced=secrets_synced),
        }
    )


def test_reads_come_from_the_caches_and_an_unwatched_resource_is_empty() -> None:
    k = konnector()
    assert k.cached(CONNECTIONS) == [CONNECTION]
    assert k.cached_get(CLUSTERBINDINGS, ObjectKey("", "b1")) == BINDING
    assert k.cached_get(CLUSTERBINDINGS, ObjectKey("", "b2")) is None
    assert k.cached(GVR("example.org", "v1", "widgets")) == []
    assert k.syncer(GVR("example.org", "v1", "widgets")) is None
    assert (k.verified("c1"), k.verified("c2")) == ("fp", None)


def test_the_control_plane_is_synced_only_once_every_cache_is() -> None:
    assert konnector().control_synced()
    assert not konnector(secrets_synced=False).control_synced()


def test_a_connection_event_wakes_it_the_bindings_naming_it_and_the_engagement_pass() -> None:
    k = konnector()
    handler = k.control_handler("Connection")
    handler("MODIFIED", CONNECTION, CONNECTION)
    assert k.queue.keys == [ConnectionKey("c1"), BindingKey("ClusterBinding", "", "b1"), ENGAGE]
    k.enqueue(None)
    assert len(k.queue.keys) == 3
