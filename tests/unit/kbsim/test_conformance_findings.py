"""Behaviours the conformance suite (tests/conformance) found kbsim getting wrong, now pinned.

Each expectation here was observed on a real kube-apiserver 1.36 (see
docs/kbsim-known-differences.md for what is still different).
"""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.api.resources import LEASES, SECRETS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import APIServer, User
from tests.unit.kbsim.conftest import CONFIGMAPS, NAMESPACES, WIDGETS, key, widget

OTHER_UID = "00000000-0000-4000-8000-000000000000"
ROLES = GVR("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = GVR("rbac.authorization.k8s.io", "v1", "rolebindings")


def error(fn: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)
    return info.value


def applied(name: str = "w1", **spec: Any) -> dict[str, Any]:
    body = widget(name, **spec)
    del body["metadata"]["namespace"]
    return body


def test_uid_in_an_apply_body_is_validated_not_a_storage_precondition(widgets: APIServer) -> None:
    live = widgets.patch(WIDGETS, key("w1"), applied(size=1), "apply", field_manager="a")
    body = applied(size=1)
    body["metadata"]["uid"] = OTHER_UID
    for force in (False, True):
        err = error(widgets.patch, WIDGETS, key("w1"), body, "apply", "a", force)
        assert (err.code, err.reason) == (422, "Invalid")
        assert err.message == (
            f'Widget.example.org "w1" is invalid: metadata.uid: Invalid value: "{OTHER_UID}": '
            "field is immutable"
        )
    # A merge patch that changes it: the same.
    err = error(widgets.patch, WIDGETS, key("w1"), {"metadata": {"uid": OTHER_UID}}, "merge")
    assert err.code == 422
    # An absent object cannot match: 409, nothing created.
    body = applied("absent", size=1)
    body["metadata"]["uid"] = OTHER_UID
    err = error(widgets.patch, WIDGETS, key("absent"), body, "apply", "a")
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Operation cannot be fulfilled on widgets.example.org "absent": uid mismatch: the '
        f"provided object specified uid {OTHER_UID}, and no existing object was found"
    )
    # A PUT's uid is a storage precondition (409), quoting the etcd key.
    full = dict(live)
    full["metadata"] = {**live["metadata"], "uid": OTHER_UID}
    err = error(widgets.update, WIDGETS, full)
    assert err.message == (
        'Operation cannot be fulfilled on widgets.example.org "w1": StorageError: invalid object, '
        "Code: 4, Key: /registry/example.org/widgets/default/w1, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: UID in precondition: {OTHER_UID}, UID in "
        f"object meta: {live['metadata']['uid']}"
    )


def test_put_without_resource_version_where_the_strategy_forbids_it(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget("w1", size=1))
    err = error(widgets.update, WIDGETS, widget("w1", size=2))
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == (
        'widgets.example.org "w1" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    )
    assert error(widgets.update, WIDGETS, widget("w1", size=2), "status").code == 422
    lease = {"metadata": {"name": "l", "namespace": "default"}}
    widgets.create(LEASES, lease)
    assert error(widgets.update, LEASES, dict(lease, spec={"holderIdentity": "x"})).code == 422
    widgets.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "default"}})
    assert widgets.update(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "default"}})


def test_rbac_attributes_of_create_and_namespace_requests(server: APIServer) -> None:
    server.create(NAMESPACES, {"metadata": {"name": "team"}})
    rules = [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["create"],
            "resourceNames": ["c"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    ]
    server.create(ROLES, {"metadata": {"name": "r", "namespace": "team"}, "rules": rules})
    server.create(
        ROLEBINDINGS,
        {
            "metadata": {"name": "r", "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "u"}],
        },
    )
    user = User("u")
    # A POST names no object: resourceNames cannot grant it, and the message names none.
    err = error(
        server.create, CONFIGMAPS, {"metadata": {"name": "c", "namespace": "team"}}, user=user
    )
    assert err.message == (
        'configmaps is forbidden: User "u" cannot create resource "configmaps" in API group "" in '
        'the namespace "team"'
    )
    # /api/v1/namespaces/NAME is a request in the namespace NAME: a Role there can grant it.
    assert server.get(NAMESPACES, ObjectKey("", "team"), user=user)["metadata"]["name"] == "team"
    err = error(server.get, NAMESPACES, ObjectKey("", "default"), user=user)
    assert err.message.endswith('in API group "" in the namespace "default"')


def test_custom_resource_body_types(widgets: APIServer) -> None:
    body = widget("g", size=1)
    body["kind"] = "Gadget"
    err = error(widgets.create, WIDGETS, body)
    assert (err.code, err.message) == (
        422,
        'Gadget.example.org "g" is invalid: kind: Invalid value: "Gadget": must be Widget',
    )
    body = widget("g", size=1)
    del body["apiVersion"]
    err = error(widgets.create, WIDGETS, body)
    assert err.code == 400 and "the API version in the data () does not match" in err.message
    body = widget("g", size=1)
    del body["kind"]
    err = error(widgets.create, WIDGETS, body)
    assert err.code == 400 and "Object 'Kind' is missing" in err.message
    err = error(widgets.create, WIDGETS, widget("t", size="big"))
    assert [c["reason"] for c in err.details["causes"]] == ["FieldValueTypeInvalid"]


def test_requests_the_router_refuses(widgets: APIServer) -> None:
    err = error(widgets.get, NAMESPACES, ObjectKey("", "default"), subresource="finalize")
    assert (err.code, err.reason) == (405, "MethodNotAllowed")
    err = error(widgets.create, CONFIGMAPS, {"metadata": {"name": "c"}})
    assert (err.code, err.reason) == (405, "MethodNotAllowed")
    widgets.create(WIDGETS, widget("w1", size=1))
    err = error(widgets.get, WIDGETS, key("w1"), subresource="scale")
    assert (err.code, err.message) == (404, 'widgets.example.org "w1" not found')


def test_apply_type_check_and_create_with_a_resource_version(widgets: APIServer) -> None:
    body = applied(size=1)
    body["kind"] = "Gadget"
    err = error(widgets.patch, WIDGETS, key("w1"), body, "apply", "a")
    assert (err.code, err.message) == (400, "invalid object type: example.org/v1, Kind=Gadget")
    cm = {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "c"}}
    err = error(widgets.patch, CONFIGMAPS, key("c"), cm, "apply", "a")
    assert err.message == "invalid object type: /v2, Kind=ConfigMap"
    body = applied(size=1)
    body["metadata"]["resourceVersion"] = "1"
    created = widgets.patch(WIDGETS, key("w1"), body, "apply", field_manager="a")
    assert created["spec"]["size"] == 1


def test_secret_data_decoding(server: APIServer) -> None:
    def secret(**data: Any) -> dict[str, Any]:
        return {"metadata": {"name": "s", "namespace": "default"}, "data": data}

    for value, offset in (("!!!", 0), ("YQ!=", 2), ("abc", 0), ("abcde", 4), ("YQ==x", 4)):
        err = error(server.create, SECRETS, secret(k=value))
        assert err.message.endswith(f"illegal base64 data at input byte {offset}")
    made = server.create(SECRETS, secret(k="YW\nJj"))
    assert made["data"] == {"k": "YWJj"}
