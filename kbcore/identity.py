"""Cluster identity (docs/design.md, "Decisions"): which cluster a set of credentials reaches.

A kcp workspace has no `kube-system`, so the kcp `LogicalCluster` named `cluster` is asked
first; only a kcp-shaped server serves it, so when both exist it wins. A plain cluster answers
the LogicalCluster GET with NotFound (the resource is not served) and is identified by the UID
of its `kube-system` namespace. Both reads are asked for at once to save a round trip. A
Forbidden answer is returned as is, never skipped over: falling through to the other object
would identify the same cluster differently depending on RBAC.
"""

from __future__ import annotations

from kbcore import objects as o
from kbcore.api.resources import LOGICAL_CLUSTERS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.reads import Failed, Get, Observed, need_all


class IdentityUnknown(Exception):  # noqa: N818 - reads as the condition it reports
    """Neither identity object could be read; the message says why."""


def identity_reads(cluster: str) -> tuple[Get, Get]:
    return (
        Get(cluster, LOGICAL_CLUSTERS, ObjectKey("", "cluster")),
        Get(cluster, NAMESPACES, ObjectKey("", "kube-system")),
    )


def resolve_identity(observed: Observed, cluster: str) -> str:
    """The UID identifying `cluster`; raises Missing, ApiError (Forbidden, unreachable) or
    IdentityUnknown."""
    reads = identity_reads(cluster)
    logical, kube_system = need_all(observed, reads)
    problems: list[str] = []
    for result, what in ((logical, "LogicalCluster cluster"), (kube_system, "kube-system")):
        if isinstance(result, Failed):
            if result.error.code == 404:
                problems.append(f"{what}: not found")
                continue
            raise result.error
        if isinstance(result, dict) and o.uid(result):
            return o.uid(result)
        problems.append(f"{what}: {'not found' if result is None else 'has no uid'}")
    raise IdentityUnknown(f"cannot determine cluster identity ({'; '.join(problems)})")


def reaches_itself(provider_uid: str, consumer_uid: str) -> bool:
    """Do credentials that identify `provider_uid` reach the consumer `consumer_uid` itself?

    Two clusters restored from one etcd backup share a kube-system UID and cannot be told
    apart either; they are treated as one, which is the safe answer."""
    return bool(provider_uid) and provider_uid == consumer_uid


def is_forbidden(err: ApiError) -> bool:
    return err.code == 403
