"""Condition types and reasons of the service layer (`catalog.kube-bind.io`, `iam.kube-bind.io`).

StrEnums: a member compares equal to its wire string, so it can be put in a `Condition` and
compared with one read back. docs/service-layer.md lists which kind carries which condition and
who writes it (the issuer writes every service-layer status).
"""

from __future__ import annotations

import enum


class ServiceConditionType(enum.StrEnum):
    READY = "Ready"
    """Every kind: the object is in effect (Export and Collection: shown in the catalog; Grant:
    credentials issued; BoundNamespace: the provider namespace exists)."""
    STALE = "Stale"
    """Grant: the Connection's heartbeat Lease in the home namespace is older than its TTL."""
    REVOKED = "Revoked"
    """Grant: access was withdrawn; the credentials no longer work."""


class ServiceReason(enum.StrEnum):
    AS_EXPECTED = "AsExpected"
    """Success (Export, Collection, BoundNamespace)."""
    PENDING = "Pending"
    """Not done yet: the issuer has not acted on the object."""
    API_NOT_EXPORTED = "APINotExported"
    """Export: a listed API has no CRD on the provider; the message names the missing APIs."""
    EXPORT_NOT_FOUND = "ExportNotFound"
    """Collection: a listed Export does not exist; the message names the missing ones."""
    CLUSTER_SCOPED_API = "ClusterScopedAPI"
    """Export: a listed API's CRD is cluster-scoped; a tenant cannot share it (a tenant's
    konnector refuses cluster-scoped APIs), so the Export is not Ready."""
    ISSUED = "Issued"
    """Grant: the home namespace, ServiceAccount and token Secret exist."""
    HEARTBEAT_EXPIRED = "HeartbeatExpired"
    """Grant, Stale: no heartbeat within the TTL."""
