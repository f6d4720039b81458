"""The RBAC authorizer, evaluated over the Role/Binding objects stored in one simulated cluster.

It follows `plugin/pkg/auth/authorizer/rbac` (`RBACAuthorizer.Authorize` and `rbac.RuleAllows`):
ClusterRoleBindings grant everywhere, RoleBindings only in their namespace (and may reference a
ClusterRole); rules match on verb, API group, resource (`widgets/status` for a subresource,
`*/status`, `*`) and resourceNames. Missing roles do not deny, they only add a reason
(`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`). Members of `system:masters` are
allowed everything, as the real server's privileged-group authorizer does.

Not modelled: aggregated ClusterRoles (`aggregationRule`), non-resource URLs, the escalation
check on writes of Roles/Bindings, impersonation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

Obj = dict[str, Any]


@attrs.frozen
class User:
    """An authenticated identity: a name and its groups."""

    name: str
    groups: tuple[str, ...] = ()


ADMIN = User("admin", ("system:masters",))


@attrs.frozen
class Attributes:
    """What is being asked (`authorizer.Attributes` for a resource request)."""

    user: User
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def forbidden_reason(attrs_: Attributes, reason: str) -> str:
    """The `forbiddenMessage` text (without the `... is forbidden:` prefix)."""
    resource = attrs_.resource
    if attrs_.subresource:
        resource += "/" + attrs_.subresource
    user = attrs_.user.name
    if attrs_.namespace:
        msg = (
            f'User "{user}" cannot {attrs_.verb} resource "{resource}" in API group '
            f'"{attrs_.group}" in the namespace "{attrs_.namespace}"'
        )
    else:
        msg = (
            f'User "{user}" cannot {attrs_.verb} resource "{resource}" in API group '
            f'"{attrs_.group}" at the cluster scope'
        )
    return f"{msg}: {reason}" if reason else msg


def _has(values: Any, wanted: str) -> bool:
    return isinstance(values, list) and ("*" in values or wanted in values)


def rule_allows(rule: Mapping[str, Any], a: Attributes) -> bool:
    if not _has(rule.get("verbs"), a.verb):
        return False
    if not _has(rule.get("apiGroups"), a.group):
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    resources = rule.get("resources")
    if not isinstance(resources, list):
        return False
    matched = False
    for r in resources:
        if r in ("*", combined) or (a.subresource and r == f"*/{a.subresource}"):
            matched = True
            break
    if not matched:
        return False
    names = rule.get("resourceNames")
    return not names or (isinstance(names, list) and a.name in names)


def _applies(subject: Mapping[str, Any], user: User, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in (*user.groups, "system:authenticated")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


class Authorizer:
    """Authorizes requests against RBAC objects read through `lookup(kind, namespace)`."""

    def __init__(self, lookup: Callable[[str, str], Iterable[Obj]]) -> None:
        # lookup(kind, namespace) -> objects of that RBAC kind ("" namespace = cluster-scoped)
        self._lookup = lookup

    def _role(self, kind: str, namespace: str, name: str) -> Obj | None:
        for obj in self._lookup(kind, namespace):
            if (obj.get("metadata") or {}).get("name") == name:
                return obj
        return None

    def authorize(self, a: Attributes) -> tuple[bool, str]:
        """(allowed, reason); reason explains a denial the way the RBAC authorizer does."""
        if "system:masters" in a.user.groups:
            return True, ""
        errors: list[str] = []
        bindings: list[tuple[Obj, str]] = [(b, "") for b in self._lookup("ClusterRoleBinding", "")]
        if a.namespace:
            bindings += [(b, a.namespace) for b in self._lookup("RoleBinding", a.namespace)]
        for binding, namespace in bindings:
            subjects = binding.get("subjects") or []
            if not any(isinstance(s, Mapping) and _applies(s, a.user, namespace) for s in subjects):
                continue
            ref = binding.get("roleRef") or {}
            kind, name = ref.get("kind"), ref.get("name") or ""
            if kind == "ClusterRole":
                role = self._role("ClusterRole", "", name)
                missing = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
            elif kind == "Role" and namespace:
                role = self._role("Role", namespace, name)
                missing = f'role.rbac.authorization.k8s.io "{name}" not found'
            else:
                continue
            if role is None:
                errors.append(missing)
                continue
            for rule in role.get("rules") or []:
                if isinstance(rule, Mapping) and rule_allows(rule, a):
                    return True, ""
        if not errors:
            return False, ""
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        return False, f"RBAC: {joined}"
