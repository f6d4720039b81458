"""RBAC denials as a restricted user, and the cluster identity (kube-system UID)."""

from __future__ import annotations

from tests.conformance.client import (
    CONFIGMAPS,
    NAMESPACES,
    ROLEBINDINGS,
    ROLES,
    Api,
    configmap,
    raises_api_error,
    unique,
)


def test_restricted_user_is_forbidden_until_rbac_allows(api: Api) -> None:
    ns = api.namespace
    api.create(CONFIGMAPS, configmap("secret-ish", ns, a="1"))
    user = unique("conf-user")
    restricted = api.as_user(user, ["conformance:restricted"])

    in_ns = f'in API group "" in the namespace "{ns}"'
    with raises_api_error(
        403,
        "Forbidden",
        f'configmaps is forbidden: User "{user}" cannot list resource "configmaps" {in_ns}',
    ) as info:
        restricted.list(CONFIGMAPS, ns)
    assert info.value.details == {"kind": "configmaps"}
    with raises_api_error(
        403,
        "Forbidden",
        f'configmaps "secret-ish" is forbidden: User "{user}" cannot get resource "configmaps" '
        f"{in_ns}",
    ) as info:
        restricted.get(CONFIGMAPS, "secret-ish", ns)
    assert info.value.details == {"name": "secret-ish", "kind": "configmaps"}
    with raises_api_error(
        403,
        "Forbidden",
        f'configmaps is forbidden: User "{user}" cannot create resource "configmaps" {in_ns}',
    ):
        restricted.create(CONFIGMAPS, configmap("mine", ns))
    with raises_api_error(
        403,
        "Forbidden",
        f'configmaps is forbidden: User "{user}" cannot watch resource "configmaps" {in_ns}',
    ):
        restricted.watch(CONFIGMAPS, ns, timeout_seconds=2)
    with raises_api_error(
        403,
        "Forbidden",
        f'namespaces is forbidden: User "{user}" cannot list resource "namespaces" in API group '
        '"" at the cluster scope',
    ):
        restricted.list(NAMESPACES)
    # A namespace is requested "in the namespace" it names (RequestInfo sets the namespace
    # from /api/v1/namespaces/NAME), and a subresource is named as resource/subresource.
    with raises_api_error(
        403,
        "Forbidden",
        f'namespaces "{ns}" is forbidden: User "{user}" cannot get resource "namespaces" {in_ns}',
    ):
        restricted.get(NAMESPACES, ns)
    with raises_api_error(
        403,
        "Forbidden",
        f'namespaces "{ns}" is forbidden: User "{user}" cannot get resource "namespaces/status" '
        f"{in_ns}",
    ):
        restricted.get(NAMESPACES, ns, subresource="status")

    # A Role bound to the user's group grants listing (only) in this namespace.
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
        # resourceNames cannot grant create: a POST names no object.
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "verbs": ["create"],
            "resourceNames": ["mine"],
        },
        # A Role can grant access to the namespace object it lives in.
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    ]
    api.create(ROLES, {"metadata": {"name": "cm-list", "namespace": ns}, "rules": rules})
    binding = {
        "metadata": {"name": "cm-list", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-list"},
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Group",
                "name": "conformance:restricted",
            }
        ],
    }
    api.create(ROLEBINDINGS, binding)
    # The real authorizer reads RBAC objects from an informer: the grant lands shortly after.
    items = api.eventually(lambda: restricted.list(CONFIGMAPS, ns)[0], what="grant takes effect")
    assert [i["metadata"]["name"] for i in items] == ["secret-ish"]
    with raises_api_error(403, "Forbidden"):
        restricted.get(CONFIGMAPS, "secret-ish", ns)
    with raises_api_error(403, "Forbidden"):
        restricted.create(CONFIGMAPS, configmap("mine", ns))
    assert restricted.get(NAMESPACES, ns)["metadata"]["name"] == ns
    with raises_api_error(
        403,
        "Forbidden",
        f'namespaces "kube-system" is forbidden: User "{user}" cannot get resource "namespaces" '
        'in API group "" in the namespace "kube-system"',
    ):
        restricted.get(NAMESPACES, "kube-system")
    # A binding to a missing role adds a reason to the denial message.
    dangling = {
        "metadata": {"name": "dangling", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "absent"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    api.create(ROLEBINDINGS, dangling)

    def denial_names_missing_role() -> str | None:
        try:
            restricted.get(CONFIGMAPS, "secret-ish", ns)
        except Exception as exc:
            message = getattr(exc, "message", "")
            return message if "not found" in message else None
        return None

    message = api.eventually(denial_names_missing_role, what="dangling binding noticed")
    assert message == (
        f'configmaps "secret-ish" is forbidden: User "{user}" cannot get resource "configmaps" '
        f'{in_ns}: RBAC: role.rbac.authorization.k8s.io "absent" not found'
    )


def test_kube_system_uid_is_stable_across_an_apiserver_restart(api: Api) -> None:
    before = api.get(NAMESPACES, "kube-system")
    assert before["metadata"]["uid"]
    assert api.get(NAMESPACES, "kube-system")["metadata"]["uid"] == before["metadata"]["uid"]
    api.restart()
    after = api.get(NAMESPACES, "kube-system")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["creationTimestamp"] == before["metadata"]["creationTimestamp"]
    # Objects written before the restart are still there, unchanged.
    assert api.get(NAMESPACES, api.namespace)["status"]["phase"] == "Active"
    with raises_api_error(
        403, "Forbidden", 'namespaces "kube-system" is forbidden: this namespace may not be deleted'
    ):
        api.delete(NAMESPACES, "kube-system")
