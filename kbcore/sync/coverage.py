"""Which binding covers a consumer object (upstream's "ResolveConnection").

ClusterBindings are consulted first (in name order, so the answer never depends on list order),
then Bindings in the object's own namespace. A binding being deleted covers nothing, so unbind
never re-adds finalizers or re-creates provider copies. The first binding listing the API wins;
its readiness and conflict policy decide how the object is synced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.api.types import ConflictPolicy


@attrs.frozen
class Coverage:
    """Which binding covers an object: whether it is ready, and its conflict policy."""

    bound: bool
    conflict_policy: str = ConflictPolicy.FAIL
    binding: str = ""


NOT_COVERED = Coverage(bound=False)


def lists_api(binding: Mapping[str, Any], group_resource: str) -> bool:
    spec = binding.get("spec")
    apis = spec.get("apis") if isinstance(spec, Mapping) else None
    if not isinstance(apis, list):
        return False
    return any(isinstance(a, Mapping) and a.get("name") == group_resource for a in apis)


def api_names(binding: Mapping[str, Any]) -> list[str]:
    """The API names a binding lists, in order, duplicates dropped."""
    spec = binding.get("spec")
    apis = spec.get("apis") if isinstance(spec, Mapping) else None
    out: list[str] = []
    for a in apis if isinstance(apis, list) else []:
        n = a.get("name") if isinstance(a, Mapping) else None
        if isinstance(n, str) and n and n not in out:
            out.append(n)
    return out


def connection_name(binding: Mapping[str, Any]) -> str:
    """The Connection a binding names (`spec.connectionRef.name`), or ""."""
    spec = binding.get("spec")
    ref = spec.get("connectionRef") if isinstance(spec, Mapping) else None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) else ""


def conflict_policy(binding: Mapping[str, Any]) -> str:
    spec = binding.get("spec")
    policy = spec.get("conflictPolicy") if isinstance(spec, Mapping) else None
    return policy if isinstance(policy, str) and policy else ConflictPolicy.FAIL


def resolve_coverage(
    group_resource: str,
    namespace: str,
    cluster_bindings: Iterable[Mapping[str, Any]],
    bindings: Iterable[Mapping[str, Any]],
    ready: Callable[[Mapping[str, Any]], bool],
) -> Coverage:
    """The Coverage of an object of API `group_resource` in `namespace` ("" if cluster-scoped)."""
    for cb in sorted(cluster_bindings, key=o.name):
        if not o.is_deleting(cb) and lists_api(cb, group_resource):
            return Coverage(ready(cb), conflict_policy(cb), f"ClusterBinding/{o.name(cb)}")
    if namespace:
        in_namespace = (b for b in bindings if o.namespace(b) == namespace)
        for b in sorted(in_namespace, key=o.name):
            if not o.is_deleting(b) and lists_api(b, group_resource):
                return Coverage(ready(b), conflict_policy(b), f"Binding/{namespace}/{o.name(b)}")
    return NOT_COVERED
