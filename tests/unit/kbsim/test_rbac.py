"""RBAC: users outside system:masters are authorized by the RBAC objects in the cluster."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import APIServer, User
from tests.unit.kbsim.conftest import CONFIGMAPS, NAMESPACES, WIDGETS, key, widget

RBAC = "rbac.authorization.k8s.io"
ROLES = GVR(RBAC, "v1", "roles")
ROLEBINDINGS = GVR(RBAC, "v1", "rolebindings")
CLUSTERROLES = GVR(RBAC, "v1", "clusterroles")
CLUSTERROLEBINDINGS = GVR(RBAC, "v1", "clusterrolebindings")
BOB = User("bob", ("devs",))


def role(name: str, rules: list[dict[str, Any]], namespace: str = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "rules": rules}


def binding(
    name: str, kind: str, role_name: str, subjects: list[dict[str, Any]], namespace: str = "default"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role_name},
        "subjects": subjects,
    }


def test_denied_with_the_real_message(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget())
    with pytest.raises(ApiError) as err:
        widgets.get(WIDGETS, key("w1"), user=BOB)
    assert err.value.code == 403 and err.value.reason == "Forbidden"
    assert err.value.message == (
        'widgets.example.org "w1" is forbidden: User "bob" cannot get resource "widgets" in API '
        'group "example.org" in the namespace "default"'
    )
    with pytest.raises(ApiError) as err:
        widgets.list(NAMESPACES, user=BOB)
    assert err.value.message == (
        'namespaces is forbidden: User "bob" cannot list resource "namespaces" in API group "" '
        "at the cluster scope"
    )


def test_role_binding_grants_in_its_namespace_only(widgets: APIServer) -> None:
    widgets.create(NAMESPACES, {"metadata": {"name": "other"}})
    widgets.create(
        ROLES,
        role(
            "r",
            [{"apiGroups": ["example.org"], "resources": ["widgets"], "verbs": ["get", "list"]}],
        ),
    )
    widgets.create(
        ROLEBINDINGS, binding("b", "Role", "r", [{"kind": "User", "name": "bob", "apiGroup": RBAC}])
    )
    widgets.create(WIDGETS, widget())
    widgets.create(WIDGETS, widget(namespace="other"))
    assert widgets.get(WIDGETS, key("w1"), user=BOB)["metadata"]["name"] == "w1"
    assert len(widgets.list(WIDGETS, "default", user=BOB)[0]) == 1
    with pytest.raises(ApiError):
        widgets.get(WIDGETS, key("w1", "other"), user=BOB)
    with pytest.raises(ApiError):
        widgets.list(WIDGETS, user=BOB)  # all namespaces is cluster scope
    with pytest.raises(ApiError) as err:
        widgets.delete(WIDGETS, key("w1"), user=BOB)
    assert "cannot delete resource" in err.value.message


def test_cluster_role_binding_group_subject_and_wildcards(widgets: APIServer) -> None:
    widgets.create(
        CLUSTERROLES, role("all", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}], "")
    )
    widgets.create(
        CLUSTERROLEBINDINGS,
        binding("b", "ClusterRole", "all", [{"kind": "Group", "name": "devs"}], ""),
    )
    widgets.create(WIDGETS, widget(), user=BOB)
    assert widgets.list(WIDGETS, user=BOB)[0]


def test_subresources_and_resource_names(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget("w1"))
    widgets.create(WIDGETS, widget("w2"))
    widgets.create(
        ROLES,
        role(
            "r",
            [
                {
                    "apiGroups": ["example.org"],
                    "resources": ["widgets/status"],
                    "verbs": ["update", "patch"],
                },
                {
                    "apiGroups": ["example.org"],
                    "resources": ["widgets"],
                    "verbs": ["get"],
                    "resourceNames": ["w1"],
                },
            ],
        ),
    )
    widgets.create(ROLEBINDINGS, binding("b", "Role", "r", [{"kind": "User", "name": "bob"}]))
    widgets.get(WIDGETS, key("w1"), user=BOB)
    with pytest.raises(ApiError):
        widgets.get(WIDGETS, key("w2"), user=BOB)
    widgets.patch(
        WIDGETS, key("w2"), {"status": {"ready": True}}, "merge", subresource="status", user=BOB
    )
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w2"), {"spec": {"size": 1}}, "merge", user=BOB)
    assert 'cannot patch resource "widgets"' in err.value.message
    with pytest.raises(ApiError) as err:
        widgets.get(WIDGETS, key("w2"), user=BOB, subresource="status")
    assert 'cannot get resource "widgets/status"' in err.value.message


def test_role_binding_to_cluster_role_and_service_accounts(server: APIServer) -> None:
    server.create(
        CLUSTERROLES,
        role("cm-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}], ""),
    )
    server.create(
        ROLEBINDINGS,
        binding("b", "ClusterRole", "cm-reader", [{"kind": "ServiceAccount", "name": "konnector"}]),
    )
    server.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "default"}})
    sa = User("system:serviceaccount:default:konnector", ("system:serviceaccounts",))
    assert server.get(CONFIGMAPS, key("c"), user=sa)


def test_missing_role_adds_a_reason(server: APIServer) -> None:
    server.create(ROLEBINDINGS, binding("b", "Role", "ghost", [{"kind": "User", "name": "bob"}]))
    with pytest.raises(ApiError) as err:
        server.get(CONFIGMAPS, key("c"), user=BOB)
    assert err.value.message.endswith(': RBAC: role.rbac.authorization.k8s.io "ghost" not found')


def test_cluster_admin_bootstrap_binding(server: APIServer) -> None:
    admin_like = User("alice", ("system:masters",))
    assert server.get(NAMESPACES, ObjectKey("", "default"), user=admin_like)
    names = [r["metadata"]["name"] for r in server.list(CLUSTERROLEBINDINGS)[0]]
    assert "cluster-admin" in names


def test_apply_that_creates_also_needs_create(widgets: APIServer) -> None:
    widgets.create(
        ROLES,
        role("r", [{"apiGroups": ["example.org"], "resources": ["widgets"], "verbs": ["patch"]}]),
    )
    widgets.create(ROLEBINDINGS, binding("b", "Role", "r", [{"kind": "User", "name": "bob"}]))
    body = {"apiVersion": "example.org/v1", "kind": "Widget", "spec": {"size": 1}}
    with pytest.raises(ApiError) as err:
        widgets.patch(WIDGETS, key("w1"), body, "apply", field_manager="bob", user=BOB)
    assert err.value.code == 403
    assert err.value.message == 'widgets.example.org "w1" is forbidden: '


def test_binding_validation(server: APIServer) -> None:
    bad = binding("b", "Secret", "x", [{"kind": "Robot", "name": "r"}])
    with pytest.raises(ApiError) as err:
        server.create(ROLEBINDINGS, bad)
    assert 'roleRef.kind: Unsupported value: "Secret"' in err.value.message
    assert 'subjects[0].kind: Unsupported value: "Robot"' in err.value.message
    ok = server.create(ROLEBINDINGS, binding("b", "Role", "x", []))
    ok["roleRef"]["name"] = "y"
    with pytest.raises(ApiError) as err:
        server.update(ROLEBINDINGS, ok)
    assert "cannot change roleRef" in err.value.message
