"""Status subresource, metadata.generation, finalizers and deletion."""

from __future__ import annotations

import pytest

from kbcore.api.resources import CONFIGMAPS, CRDS
from kbcore.errors import ApiError
from kbsim.apiserver import APIServer
from tests.unit.kbsim.conftest import GADGETS, WIDGETS, Clock, crd, establish, key, widget


def test_generation_starts_at_one_and_bumps_on_spec_change_only(widgets: APIServer) -> None:
    w = widgets.create(WIDGETS, widget(size=1))
    assert w["metadata"]["generation"] == 1
    w["spec"]["size"] = 2
    w = widgets.update(WIDGETS, w)
    assert w["metadata"]["generation"] == 2
    w["metadata"]["labels"] = {"a": "b"}
    w = widgets.update(WIDGETS, w)
    assert w["metadata"]["generation"] == 2  # metadata-only change
    w["status"] = {"ready": True}
    w = widgets.update(WIDGETS, w, subresource="status")
    assert w["metadata"]["generation"] == 2  # status change


def test_main_resource_writes_ignore_status(widgets: APIServer) -> None:
    created = widgets.create(WIDGETS, {**widget(size=1), "status": {"ready": True}})
    assert "status" not in created  # create cannot set status
    created["status"] = {"ready": True}
    out = widgets.update(WIDGETS, created)
    assert "status" not in out
    assert out["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]  # no-op


def test_status_writes_ignore_everything_but_status(widgets: APIServer) -> None:
    w = widgets.create(WIDGETS, widget(size=1))
    w["status"] = {"ready": True}
    w["spec"]["size"] = 99
    w["metadata"]["labels"] = {"sneaky": "yes"}
    out = widgets.update(WIDGETS, w, subresource="status")
    assert out["status"] == {"ready": True}
    assert out["spec"]["size"] == 1
    assert "labels" not in out["metadata"]


def test_status_patch(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1))
    out = widgets.patch(
        WIDGETS, key("w1"), {"status": {"observed": 1}}, "merge", subresource="status"
    )
    assert out["status"] == {"observed": 1}


def test_custom_resource_without_status_subresource(server: APIServer) -> None:
    establish(server, crd("gadgets", "Gadget", status=False))
    body = {
        "apiVersion": "example.org/v1",
        "kind": "Gadget",
        "metadata": {"name": "g", "namespace": "default"},
        "spec": {"size": 1},
        "status": {"ready": True},
    }
    g = server.create(GADGETS, body)
    assert g["status"] == {"ready": True}
    g["status"] = {"ready": False}
    g2 = server.update(GADGETS, g)
    assert g2["status"] == {"ready": False}
    assert g2["metadata"]["generation"] == 2  # any non-metadata change bumps it
    with pytest.raises(ApiError) as err:
        server.update(GADGETS, g2, subresource="status")
    assert err.value.code == 404


def test_delete_without_finalizers_removes(server: APIServer) -> None:
    server.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"}})
    assert server.delete(CONFIGMAPS, key("a")) is None
    with pytest.raises(ApiError):
        server.get(CONFIGMAPS, key("a"))


def test_delete_with_finalizers_marks_then_last_finalizer_removes(
    widgets: APIServer, clock: Clock
) -> None:
    body = widget(size=1)
    body["metadata"]["finalizers"] = ["example.org/a", "example.org/b"]
    widgets.create(WIDGETS, body)
    clock.now += 5
    marked = widgets.delete(WIDGETS, key("w1"))
    assert marked is not None
    assert marked["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:05Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
    assert marked["metadata"]["generation"] == 2  # marking bumps generation once
    rv = widgets.current_resource_version()
    again = widgets.delete(WIDGETS, key("w1"))  # repeated delete is fine and a no-op
    assert again is not None and again["metadata"]["resourceVersion"] == rv
    out = widgets.patch(
        WIDGETS, key("w1"), {"metadata": {"finalizers": ["example.org/b"]}}, "merge"
    )
    assert out["metadata"]["finalizers"] == ["example.org/b"]
    widgets.patch(WIDGETS, key("w1"), {"metadata": {"finalizers": None}}, "merge")
    with pytest.raises(ApiError) as err:
        widgets.get(WIDGETS, key("w1"))
    assert err.value.is_not_found


def test_no_new_finalizers_on_a_deleting_object(widgets: APIServer) -> None:
    body = widget()
    body["metadata"]["finalizers"] = ["example.org/a"]
    widgets.create(WIDGETS, body)
    widgets.delete(WIDGETS, key("w1"))
    with pytest.raises(ApiError) as err:
        widgets.patch(
            WIDGETS, key("w1"), {"metadata": {"finalizers": ["example.org/a", "x.io/b"]}}, "merge"
        )
    assert err.value.code == 422
    assert err.value.message == (
        'Widget.example.org "w1" is invalid: metadata.finalizers: Forbidden: no new finalizers '
        'can be added if the object is being deleted, found new finalizers []string{"x.io/b"}'
    )


def test_deletion_timestamp_cannot_be_removed_by_update(widgets: APIServer) -> None:
    body = widget()
    body["metadata"]["finalizers"] = ["example.org/a"]
    widgets.create(WIDGETS, body)
    marked = widgets.delete(WIDGETS, key("w1"))
    assert marked is not None
    del marked["metadata"]["deletionTimestamp"]
    marked["spec"] = {"size": 3}
    out = widgets.update(WIDGETS, marked)
    assert out["metadata"]["deletionTimestamp"]


def test_delete_preconditions(widgets: APIServer) -> None:
    w = widgets.create(WIDGETS, widget())
    with pytest.raises(ApiError) as err:
        widgets.delete(WIDGETS, key("w1"), uid="other")
    assert err.value.is_conflict
    assert err.value.message == (
        'Operation cannot be fulfilled on Widget.example.org "w1": the UID in the precondition '
        f"(other) does not match the UID in record ({w['metadata']['uid']}). The object might "
        "have been deleted and then recreated"
    )
    with pytest.raises(ApiError) as err:
        widgets.delete(WIDGETS, key("w1"), resource_version="1")
    assert "the ResourceVersion in the precondition (1) does not match" in err.value.message
    assert (
        widgets.delete(
            WIDGETS,
            key("w1"),
            uid=w["metadata"]["uid"],
            resource_version=w["metadata"]["resourceVersion"],
        )
        is None
    )


def test_delete_missing_is_404(widgets: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        widgets.delete(WIDGETS, key("ghost"))
    assert err.value.message == 'widgets.example.org "ghost" not found'


def test_crd_generation_tracks_spec(server: APIServer) -> None:
    created = establish(server)
    assert created["metadata"]["generation"] == 1
    current = server.get(CRDS, key("widgets.example.org", ""))
    assert current["metadata"]["generation"] == 1  # status writes by the controllers
    current["metadata"]["labels"] = {"x": "y"}
    assert server.update(CRDS, current)["metadata"]["generation"] == 1
