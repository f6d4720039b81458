"""Create/get/list/update basics: what every controller relies on."""

from __future__ import annotations

import re

import pytest

from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import APIServer
from tests.unit.kbsim.conftest import (
    CONFIGMAPS,
    NAMESPACES,
    SECRETS,
    WIDGETS,
    Clock,
    key,
    widget,
)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def cm(name: str, namespace: str = "default", **data: str) -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "data": data}


def test_create_sets_uid_rv_and_creation_timestamp(server: APIServer, clock: Clock) -> None:
    clock.now += 61
    obj = server.create(CONFIGMAPS, cm("a", k="v"))
    meta = obj["metadata"]
    assert UUID4.match(meta["uid"])
    assert meta["creationTimestamp"] == "2026-01-01T00:01:01Z"
    assert meta["resourceVersion"] == server.current_resource_version()
    assert obj["apiVersion"] == "v1" and obj["kind"] == "ConfigMap"
    assert "generation" not in meta  # built-ins like ConfigMap do not track generation


def test_resource_version_is_cluster_wide_and_monotonic(server: APIServer) -> None:
    rvs = [
        int(server.create(CONFIGMAPS, cm("a"))["metadata"]["resourceVersion"]),
        int(
            server.create(SECRETS, {"metadata": {"name": "s", "namespace": "default"}})["metadata"][
                "resourceVersion"
            ]
        ),
        int(
            server.create(NAMESPACES, {"metadata": {"name": "other"}})["metadata"][
                "resourceVersion"
            ]
        ),
    ]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert rvs[1] == rvs[0] + 1


def test_uids_are_deterministic_per_seed(clock: Clock) -> None:
    a = APIServer("a", clock=clock, seed=3)
    b = APIServer("b", clock=clock, seed=3)
    c = APIServer("c", clock=clock, seed=4)
    ua = a.create(CONFIGMAPS, cm("x"))["metadata"]["uid"]
    assert ua == b.create(CONFIGMAPS, cm("x"))["metadata"]["uid"]
    assert ua != c.create(CONFIGMAPS, cm("x"))["metadata"]["uid"]


def test_returned_objects_are_copies(server: APIServer) -> None:
    obj = server.create(CONFIGMAPS, cm("a", k="v"))
    obj["data"]["k"] = "mutated"
    got = server.get(CONFIGMAPS, key("a"))
    assert got["data"]["k"] == "v"
    got["data"]["k"] = "again"
    assert server.get(CONFIGMAPS, key("a"))["data"]["k"] == "v"


def test_get_missing_is_404_with_real_message(widgets: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        widgets.get(WIDGETS, key("nope"))
    assert err.value.code == 404 and err.value.reason == "NotFound"
    assert err.value.message == 'widgets.example.org "nope" not found'
    with pytest.raises(ApiError) as err:
        widgets.get(CONFIGMAPS, key("nope"))
    assert err.value.message == 'configmaps "nope" not found'


def test_unknown_resource_is_404(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.list(GVR("example.org", "v1", "widgets"))
    assert err.value.code == 404
    assert err.value.message == "the server could not find the requested resource"


def test_duplicate_create_is_409_already_exists(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, cm("a"))
    assert err.value.is_already_exists
    assert err.value.message == 'configmaps "a" already exists'


def test_create_with_resource_version_is_rejected(server: APIServer) -> None:
    body = cm("a")
    body["metadata"]["resourceVersion"] = "5"
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, body)
    # As kube-apiserver answers: etcd3's plain error, a 500 without a reason.
    assert (err.value.code, err.value.reason) == (500, "")
    assert err.value.message == "resourceVersion should not be set on objects to be created"


def test_stale_update_is_409_conflict(server: APIServer) -> None:
    first = server.create(CONFIGMAPS, cm("a", k="1"))
    second = dict(first, data={"k": "2"})
    server.update(CONFIGMAPS, second)
    stale = dict(first, data={"k": "3"})
    with pytest.raises(ApiError) as err:
        server.update(CONFIGMAPS, stale)
    assert err.value.is_conflict
    assert err.value.message == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_update_without_resource_version_is_unconditional(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a", k="1"))
    out = server.update(CONFIGMAPS, cm("a", k="2"))
    assert out["data"] == {"k": "2"}


def test_update_of_missing_object_is_404(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.update(CONFIGMAPS, cm("ghost"))
    assert err.value.message == 'configmaps "ghost" not found'


def test_update_with_other_uid_is_409(server: APIServer) -> None:
    obj = server.create(CONFIGMAPS, cm("a"))
    obj["metadata"]["uid"] = "0000"
    with pytest.raises(ApiError) as err:
        server.update(CONFIGMAPS, obj)
    assert err.value.is_conflict
    assert "Precondition failed: UID in precondition: 0000" in err.value.message


def test_noop_update_does_not_bump_resource_version(server: APIServer) -> None:
    obj = server.create(CONFIGMAPS, cm("a", k="1"))
    rv = server.current_resource_version()
    again = server.update(CONFIGMAPS, obj)
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert server.current_resource_version() == rv
    patched = server.patch(CONFIGMAPS, key("a"), {"data": {"k": "1"}}, "merge")
    assert patched["metadata"]["resourceVersion"] == rv


def test_creation_timestamp_and_uid_cannot_be_changed_by_update(
    server: APIServer, clock: Clock
) -> None:
    obj = server.create(CONFIGMAPS, cm("a"))
    clock.now += 100
    obj["metadata"]["creationTimestamp"] = "2030-01-01T00:00:00Z"
    obj["data"] = {"x": "y"}
    out = server.update(CONFIGMAPS, obj)
    assert out["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"


def test_list_is_sorted_filtered_and_has_a_resource_version(server: APIServer) -> None:
    server.create(NAMESPACES, {"metadata": {"name": "b-ns"}})
    server.create(CONFIGMAPS, cm("z", labels_ignored="x"))
    server.create(CONFIGMAPS, cm("a", namespace="b-ns"))
    labelled = cm("m")
    labelled["metadata"]["labels"] = {"app": "web"}
    server.create(CONFIGMAPS, labelled)
    items, rv = server.list(CONFIGMAPS)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items] == [
        ("b-ns", "a"),
        ("default", "m"),
        ("default", "z"),
    ]
    assert rv == server.current_resource_version()
    assert [i["metadata"]["name"] for i in server.list(CONFIGMAPS, "default")[0]] == ["m", "z"]
    assert [
        i["metadata"]["name"] for i in server.list(CONFIGMAPS, label_selector="app=web")[0]
    ] == ["m"]
    assert [
        i["metadata"]["name"] for i in server.list(CONFIGMAPS, field_selector="metadata.name=z")[0]
    ] == ["z"]
    # Like the wire format, items of built-in lists carry no apiVersion/kind.
    assert "kind" not in items[0]


def test_list_items_of_custom_resources_carry_kind(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget("w1"))
    (item,), _ = widgets.list(WIDGETS)
    assert item["kind"] == "Widget" and item["apiVersion"] == "example.org/v1"


def test_invalid_label_selector_is_400(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.list(CONFIGMAPS, label_selector="a in (")
    assert err.value.code == 400


def test_generate_name(server: APIServer) -> None:
    body = {"metadata": {"generateName": "cfg-", "namespace": "default"}}
    a = server.create(CONFIGMAPS, body)
    b = server.create(CONFIGMAPS, body)
    assert a["metadata"]["name"].startswith("cfg-") and len(a["metadata"]["name"]) == 9
    assert a["metadata"]["name"] != b["metadata"]["name"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "metadata.name: Required value: name or generateName is required"),
        ("Upper", 'metadata.name: Invalid value: "Upper": a lowercase RFC 1123 subdomain'),
    ],
)
def test_name_validation_is_422(server: APIServer, name: str, fragment: str) -> None:
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, cm(name))
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert fragment in err.value.message
    assert err.value.message.startswith(f'ConfigMap "{name}" is invalid: ')


def test_namespace_names_are_dns_labels(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.create(NAMESPACES, {"metadata": {"name": "a.b"}})
    assert (
        err.value.message
        == 'Namespace "a.b" is invalid: metadata.name: Invalid value: "a.b": must not contain dots'
    )


def test_label_validation(server: APIServer) -> None:
    body = cm("a")
    body["metadata"]["labels"] = {"bad key!": "ok", "good": "bad value!"}
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, body)
    message = err.value.message
    assert (
        'metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric'
        in message
    )
    assert (
        'metadata.labels: Invalid value: "bad value!": a valid label must be an empty string'
        in message
    )
    causes = err.value.details["causes"]
    assert {c["field"] for c in causes} == {"metadata.labels"}


def test_namespaced_object_requires_existing_namespace(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, cm("a", namespace="missing"))
    assert err.value.code == 404
    assert err.value.message == 'namespaces "missing" not found'


def test_cluster_scoped_objects_drop_a_namespace(server: APIServer) -> None:
    ns = server.create(NAMESPACES, {"metadata": {"name": "x", "namespace": "default"}})
    assert "namespace" not in ns["metadata"]


def test_body_must_match_the_resource(server: APIServer) -> None:
    body = cm("a")
    body["apiVersion"] = "v2"
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, body)
    assert err.value.code == 400


def test_get_object_key_scope_mismatch_is_404(server: APIServer) -> None:
    with pytest.raises(ApiError):
        server.get(NAMESPACES, ObjectKey("default", "default"))
