"""Which API groups the konnector must never take schemas from or install schemas into.

Two lists, because they answer two questions. `is_builtin_group` is upstream's filter for
OpenAPI synthesis: the groups a Kubernetes API server serves itself, and kcp's own (`*.kcp.io`:
a kcp provider serves `logicalclusters.core.kcp.io` and its tenancy APIs itself; upstream leaves
them unfiltered as an open question, which offers them as exported APIs and would install kcp's
schemas into the consumer). `is_protected_group` adds
our own group: a CRD in any of these is never installed on the consumer (docs/design.md,
"Differences from upstream"),
since it would shadow or replace an API the cluster, or the konnector itself, depends on.
"""

from __future__ import annotations

from kbcore.api import keys

BUILTIN_GROUPS = frozenset(
    {"", "apps", "batch", "extensions", "policy", "autoscaling", "networking.k8s.io"}
)


def is_builtin_group(group: str) -> bool:
    """A group the control plane serves itself (core, apps, ..., any `*.k8s.io`, `*.kcp.io`)."""
    apex = ("k8s.io", "kcp.io")
    return group in BUILTIN_GROUPS or group in apex or group.endswith(tuple("." + a for a in apex))


def is_protected_group(group: str) -> bool:
    """A group no CRD may be installed into: the built-ins and `core.kube-bind.io`."""
    return is_builtin_group(group) or group == keys.GROUP
