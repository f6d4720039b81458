"""Garbage collection, merge/JSON patch, built-in kinds and discovery."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.api.resources import LEASES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import APIServer
from tests.unit.kbsim.conftest import CONFIGMAPS, CRDS, SECRETS, WIDGETS, key, widget

EVENTS_V1 = GVR("", "v1", "events")
EVENTS = GVR("events.k8s.io", "v1", "events")


def cm(name: str, owners: list[dict[str, Any]] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owners:
        meta["ownerReferences"] = owners
    return {"metadata": meta, "data": data}


def ref(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
    }


def names(server: APIServer) -> list[str]:
    return [i["metadata"]["name"] for i in server.list(CONFIGMAPS, "default")[0]]


def settle(server: APIServer) -> None:
    for _ in range(10):
        if not server.pending_work():
            return
        server.tick()
    raise AssertionError("controllers did not settle")


def test_background_gc_deletes_dependents_of_gone_owners(widgets: APIServer) -> None:
    owner = widgets.create(WIDGETS, widget("owner"))
    other = widgets.create(CONFIGMAPS, cm("other"))
    widgets.create(CONFIGMAPS, cm("dep", [ref(owner)]))
    widgets.create(CONFIGMAPS, cm("two-owners", [ref(owner), ref(other)]))
    assert not widgets.pending_work()
    widgets.delete(WIDGETS, key("owner"))
    settle(widgets)
    assert names(widgets) == ["other", "two-owners"]  # one owner is still there


def test_gc_treats_a_recreated_owner_as_absent(server: APIServer) -> None:
    owner = server.create(CONFIGMAPS, cm("owner"))
    server.create(CONFIGMAPS, cm("dep", [ref(owner)]))
    server.delete(CONFIGMAPS, key("owner"))
    server.create(CONFIGMAPS, cm("owner"))  # same name, new uid
    settle(server)
    assert names(server) == ["owner"]


def test_gc_leaves_unresolvable_owners_alone(server: APIServer) -> None:
    server.create(
        CONFIGMAPS,
        cm("dep", [{"apiVersion": "nowhere.io/v1", "kind": "Ghost", "name": "g", "uid": "1"}]),
    )
    assert not server.pending_work()


def test_orphan_propagation_keeps_dependents(server: APIServer) -> None:
    owner = server.create(CONFIGMAPS, cm("owner"))
    server.create(CONFIGMAPS, cm("dep", [ref(owner)]))
    marked = server.delete(CONFIGMAPS, key("owner"), propagation_policy="Orphan")
    assert marked is not None and marked["metadata"]["finalizers"] == ["orphan"]
    settle(server)
    assert names(server) == ["dep"]
    assert "ownerReferences" not in server.get(CONFIGMAPS, key("dep"))["metadata"]


def test_foreground_propagation_deletes_dependents_first(server: APIServer) -> None:
    owner = server.create(CONFIGMAPS, cm("owner"))
    dep = cm("dep", [ref(owner)])
    dep["metadata"]["finalizers"] = ["example.org/hold"]
    server.create(CONFIGMAPS, dep)
    server.delete(CONFIGMAPS, key("owner"), propagation_policy="Foreground")
    settle(server)
    assert names(server) == ["dep", "owner"]  # owner waits for its dependent
    server.patch(CONFIGMAPS, key("dep"), {"metadata": {"finalizers": None}}, "merge")
    settle(server)
    assert names(server) == []


def test_merge_patch_semantics(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a", x="1", y="2"))
    out = server.patch(CONFIGMAPS, key("a"), {"data": {"x": None, "z": "3"}}, "merge")
    assert out["data"] == {"y": "2", "z": "3"}
    with pytest.raises(ApiError) as err:
        server.patch(CONFIGMAPS, key("ghost"), {"data": {}}, "merge")
    assert err.value.is_not_found


def test_merge_patch_with_stale_resource_version_conflicts(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    with pytest.raises(ApiError) as err:
        server.patch(
            CONFIGMAPS,
            key("a"),
            {"metadata": {"resourceVersion": "1"}, "data": {"k": "v"}},
            "merge",
        )
    assert err.value.is_conflict


def test_json_patch_with_test_op(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a", x="1"))
    out = server.patch(
        CONFIGMAPS,
        key("a"),
        [
            {"op": "test", "path": "/data/x", "value": "1"},
            {"op": "replace", "path": "/data/x", "value": "2"},
        ],
        "json",
    )
    assert out["data"] == {"x": "2"}
    with pytest.raises(ApiError) as err:
        server.patch(
            CONFIGMAPS, key("a"), [{"op": "test", "path": "/data/x", "value": "1"}], "json"
        )
    assert err.value.code == 422
    # As kube-apiserver answers: the generic text, not json-patch's own error.
    assert err.value.message == "the server rejected our request due to an error in our request"
    assert err.value.reason == "Invalid"
    with pytest.raises(ApiError) as err:
        server.patch(CONFIGMAPS, key("a"), [{"op": "remove", "path": "/data/nope"}], "json")
    assert err.value.code == 422
    # json-patch v4 (as used by kube-apiserver): replace of a missing member adds it.
    out = server.patch(
        CONFIGMAPS, key("a"), [{"op": "replace", "path": "/data/new", "value": "n"}], "json"
    )
    assert out["data"] == {"x": "2", "new": "n"}


def test_unsupported_patch_type_is_415(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    with pytest.raises(ApiError) as err:
        server.patch(CONFIGMAPS, key("a"), {}, "strategic")
    assert err.value.code == 415


def test_secret_validation_and_immutability(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.create(
            SECRETS,
            {"metadata": {"name": "s", "namespace": "default"}, "data": {"k": "not base64!"}},
        )
    assert err.value.code == 400
    with pytest.raises(ApiError) as err:
        server.create(
            SECRETS,
            {"metadata": {"name": "s", "namespace": "default"}, "data": {"bad key": "eA=="}},
        )
    assert "a valid config key must consist of alphanumeric characters" in err.value.message
    s = server.create(
        SECRETS,
        {
            "metadata": {"name": "s", "namespace": "default"},
            "data": {"k": "eA=="},
            "immutable": True,
        },
    )
    s["data"] = {"k": "eQ=="}
    with pytest.raises(ApiError) as err:
        server.update(SECRETS, s)
    assert "data: Forbidden: field is immutable when `immutable` is set" in err.value.message


def test_configmap_immutability(server: APIServer) -> None:
    c = server.create(CONFIGMAPS, {**cm("a", k="v"), "immutable": True})
    c["data"] = {"k": "w"}
    with pytest.raises(ApiError) as err:
        server.update(CONFIGMAPS, c)
    assert err.value.code == 422


def test_events_are_one_storage_in_two_spellings(server: APIServer) -> None:
    event = {
        "metadata": {"name": "e1", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "kube-bind.io/konnector",
        "reportingInstance": "konnector-1",
        "action": "Sync",
        "reason": "Synced",
        "type": "Normal",
        "note": "all good",
        "regarding": {"kind": "Widget", "name": "w1", "namespace": "default"},
    }
    created = server.create(EVENTS, event)
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "all good"
    core = server.get(EVENTS_V1, key("e1"))
    assert core["message"] == "all good" and core["involvedObject"]["name"] == "w1"
    assert core["reportingComponent"] == "kube-bind.io/konnector"
    with pytest.raises(ApiError) as err:
        server.create(
            EVENTS, {"metadata": {"name": "e2", "namespace": "default"}, "type": "Normal"}
        )
    assert "eventTime: Required value" in err.value.message
    assert "reportingController: Required value" in err.value.message
    # The legacy API is lenient.
    server.create(EVENTS_V1, {"metadata": {"name": "e3", "namespace": "default"}, "message": "m"})


def test_lease_validation(server: APIServer) -> None:
    lease = {
        "metadata": {"name": "l", "namespace": "default"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 0},
    }
    with pytest.raises(ApiError) as err:
        server.create(LEASES, lease)
    assert (
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0" in err.value.message
    )
    lease["spec"]["leaseDurationSeconds"] = 15
    out = server.create(LEASES, lease)
    assert "generation" not in out["metadata"]


def test_discovery(widgets: APIServer) -> None:
    found = {d.gvr: d for d in widgets.discover()}
    assert found[WIDGETS].kind == "Widget" and found[WIDGETS].namespaced
    assert found[WIDGETS].subresources == ("status",)
    assert "watch" in found[WIDGETS].verbs
    assert found[CRDS].namespaced is False
    assert found[GVR("", "v1", "namespaces")].subresources == ("status", "finalize")
    assert widgets.kind_to_gvr("example.org/v1", "Widget") == WIDGETS
    assert widgets.kind_to_gvr("v1", "Secret") == SECRETS
    with pytest.raises(ApiError):
        widgets.kind_to_gvr("example.org/v2", "Widget")
    info = widgets.resource_for(LEASES)
    assert info.kind == "Lease" and info.namespaced and not info.status
    with pytest.raises(ApiError):
        widgets.resource_for(GVR("nope.io", "v1", "things"))


def test_cluster_scoped_custom_resources(server: APIServer) -> None:
    from tests.unit.kbsim.conftest import crd, establish

    establish(server, crd("clusterthings", "ClusterThing", scope="Cluster"))
    things = GVR("example.org", "v1", "clusterthings")
    out = server.create(
        things, {"apiVersion": "example.org/v1", "kind": "ClusterThing", "metadata": {"name": "t"}}
    )
    assert "namespace" not in out["metadata"]
    assert server.get(things, ObjectKey("", "t"))["metadata"]["name"] == "t"
