"""Which API groups the konnector must never take schemas from or install schemas into.

Two lists, because they answer two questions. `is_builtin_group` is spec §3.5's filter for
OpenAPI synthesis: the groups a Kubernetes API server serves itself. `is_protected_group` adds
our own group: a CRD in any of these is never installed on the consumer (DESIGN.md, Decisions),
since it would shadow or replace an API the cluster, or the konnector itself, depends on.
"""

from __future__ import annotations

from kbcore.api import keys

BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "extensions", "policy", "autoscaling", "networking.k8s.io"}
)


def is_builtin_group(group: str) -> bool:
    """A group a Kubernetes API server serves itself (core, apps, ..., any `*.k8s.io`)."""
    return group in BUILTIN_GROUPS or group == "k8s.io" or group.endswith(".k8s.io")


def is_protected_group(group: str) -> bool:
    """A group no CRD may be installed into: the built-ins and `core.kube-bind.io`."""
    return is_builtin_group(group) or group == keys.GROUP
