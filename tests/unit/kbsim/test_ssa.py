"""Server-side apply and managedFields, as kube-apiserver records them."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.errors import ApiError
from kbsim.apiserver import APIServer
from tests.unit.kbsim.conftest import SECRETS, WIDGETS, Clock, key, widget


def entry(obj: dict[str, Any], manager: str, operation: str | None = None) -> dict[str, Any]:
    found = [
        e
        for e in obj["metadata"].get("managedFields", [])
        if e["manager"] == manager and (operation is None or e["operation"] == operation)
    ]
    assert len(found) == 1, obj["metadata"].get("managedFields")
    return found[0]


def applied(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.org/v1", "kind": "Widget", "spec": spec}


def test_create_records_an_update_entry(widgets: APIServer) -> None:
    body = widget(size=1)
    body["metadata"]["labels"] = {"app": "x"}
    w = widgets.create(WIDGETS, body, field_manager="kubectl")
    e = entry(w, "kubectl")
    assert e == {
        "manager": "kubectl",
        "operation": "Update",
        "apiVersion": "example.org/v1",
        "time": "2026-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            # `mode` was defaulted while decoding, before the field manager ran.
            "f:spec": {".": {}, "f:mode": {}, "f:size": {}},
        },
    }


def test_apply_creates_an_absent_object(widgets: APIServer) -> None:
    w = widgets.patch(WIDGETS, key("w1"), applied(size=3), "apply", field_manager="me")
    assert w["spec"] == {"size": 3, "mode": "auto"}
    assert w["metadata"]["uid"] and w["metadata"]["generation"] == 1
    e = entry(w, "me")
    assert e["operation"] == "Apply"
    assert e["fieldsV1"] == {"f:spec": {"f:size": {}}}


def test_apply_conflict_with_real_message_and_causes(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1), field_manager="other-manager")
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), applied(size=2), "apply", field_manager="me")
    assert err.value.is_conflict
    assert err.value.message == (
        'Apply failed with 1 conflict: conflict with "other-manager" using example.org/v1: '
        ".spec.size"
    )
    assert err.value.details["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "other-manager" using example.org/v1',
            "field": ".spec.size",
        }
    ]
    assert widgets.get(WIDGETS, key("w1"))["spec"]["size"] == 1


def test_apply_of_an_equal_value_shares_ownership(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1), field_manager="other")
    w = widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    assert entry(w, "me")["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert "f:size" in entry(w, "other")["fieldsV1"]["f:spec"]


def test_multiple_conflicts_message(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1, color="red"), field_manager="a")
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), applied(size=2, color="blue"), "apply", field_manager="b")
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "a" using example.org/v1:\n'
        "- .spec.color\n- .spec.size"
    )


def test_force_takes_ownership(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1, color="red"), field_manager="other")
    w = widgets.patch(WIDGETS, key("w1"), applied(size=2), "apply", field_manager="me", force=True)
    assert w["spec"]["size"] == 2
    assert entry(w, "me")["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert "f:size" not in entry(w, "other")["fieldsV1"]["f:spec"]
    assert "f:color" in entry(w, "other")["fieldsV1"]["f:spec"]


def test_dropped_field_owned_alone_is_removed(widgets: APIServer) -> None:
    widgets.patch(WIDGETS, key("w1"), applied(size=1, color="red"), "apply", field_manager="me")
    w = widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    assert "color" not in w["spec"]


def test_dropped_field_co_owned_is_kept(widgets: APIServer) -> None:
    widgets.patch(WIDGETS, key("w1"), applied(color="red"), "apply", field_manager="me")
    widgets.patch(WIDGETS, key("w1"), applied(color="red"), "apply", field_manager="you")
    w = widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    assert w["spec"]["color"] == "red"


def test_update_operations_take_ownership(widgets: APIServer) -> None:
    widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    w = widgets.patch(WIDGETS, key("w1"), {"spec": {"size": 5}}, "merge", field_manager="editor")
    assert entry(w, "editor")["fieldsV1"] == {"f:spec": {"f:size": {}}}
    assert all(e["manager"] != "me" for e in w["metadata"]["managedFields"])
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    assert 'conflict with "editor" using example.org/v1: .spec.size' in err.value.message


def test_reapplying_the_same_config_is_a_noop(widgets: APIServer, clock: Clock) -> None:
    w1 = widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    clock.now += 30
    w2 = widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="me")
    assert w2["metadata"]["resourceVersion"] == w1["metadata"]["resourceVersion"]
    assert entry(w2, "me")["time"] == "2026-01-01T00:00:00Z"


def test_apply_to_status_records_the_subresource(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1))
    w = widgets.patch(
        WIDGETS,
        key("w1"),
        {"apiVersion": "example.org/v1", "kind": "Widget", "status": {"ready": True}},
        "apply",
        field_manager="ctrl",
        subresource="status",
    )
    assert w["status"] == {"ready": True}
    e = entry(w, "ctrl")
    assert e["subresource"] == "status"
    assert e["fieldsV1"] == {"f:status": {"f:ready": {}}}


def test_apply_to_main_resource_ignores_status(widgets: APIServer) -> None:
    w = widgets.patch(
        WIDGETS,
        key("w1"),
        {
            "apiVersion": "example.org/v1",
            "kind": "Widget",
            "spec": {"size": 1},
            "status": {"ready": True},
        },
        "apply",
        field_manager="me",
    )
    assert "status" not in w
    assert "f:status" not in entry(w, "me")["fieldsV1"]


def test_apply_list_map_merges_by_key(widgets: APIServer) -> None:
    widgets.patch(
        WIDGETS,
        key("w1"),
        applied(ports=[{"name": "http", "port": 80}]),
        "apply",
        field_manager="a",
    )
    w = widgets.patch(
        WIDGETS,
        key("w1"),
        applied(ports=[{"name": "grpc", "port": 9090}]),
        "apply",
        field_manager="b",
    )
    assert w["spec"]["ports"] == [{"name": "http", "port": 80}, {"name": "grpc", "port": 9090}]
    assert entry(w, "b")["fieldsV1"] == {
        "f:spec": {"f:ports": {'k:{"name":"grpc"}': {".": {}, "f:name": {}, "f:port": {}}}}
    }


def test_apply_requires_a_field_manager_and_matching_version(widgets: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="")
    assert err.value.code == 422
    body = applied(size=1)
    body["apiVersion"] = "example.org/v2"
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), body, "apply", field_manager="me")
    # The field manager's version check comes first (as on kube-apiserver 1.36).
    assert err.value.code == 400
    assert err.value.message == "invalid object type: example.org/v2, Kind=Widget"
    body = applied(size=1)
    body["metadata"] = {"managedFields": [{}]}
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), body, "apply", field_manager="me")
    assert err.value.message == "metadata.managedFields must be nil"


def test_force_is_only_for_apply(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget())
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), {"spec": {}}, "merge", force=True)
    assert err.value.code == 422


def test_managed_fields_can_be_reset_with_an_empty_entry(widgets: APIServer) -> None:
    w = widgets.create(WIDGETS, widget(size=1))
    w["metadata"]["managedFields"] = [{}]
    out = widgets.update(WIDGETS, w)
    assert "managedFields" not in out["metadata"]
    # A client that omits managedFields does not erase them.
    w2 = widgets.patch(WIDGETS, key("w1"), {"spec": {"size": 2}}, "merge", field_manager="x")
    w2["metadata"].pop("managedFields")
    w2["spec"]["size"] = 3
    out = widgets.update(WIDGETS, w2, field_manager="y")
    assert {e["manager"] for e in out["metadata"]["managedFields"]} == {"y"}


def test_apply_on_object_without_managed_fields_attributes_to_before_first_apply(
    widgets: APIServer,
) -> None:
    w = widgets.create(WIDGETS, widget(size=1))
    w["metadata"]["managedFields"] = [{}]
    widgets.update(WIDGETS, w)
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), applied(size=2), "apply", field_manager="me")
    assert 'conflict with "before-first-apply"' in err.value.message


def test_secret_string_data_becomes_data(server: APIServer) -> None:
    s = server.create(
        SECRETS,
        {"metadata": {"name": "s", "namespace": "default"}, "stringData": {"token": "abc"}},
        field_manager="kubectl",
    )
    assert s["data"] == {"token": "YWJj"} and "stringData" not in s
    assert s["type"] == "Opaque"
    assert entry(s, "kubectl")["fieldsV1"] == {"f:data": {".": {}, "f:token": {}}, "f:type": {}}
