"""The `iam.kube-bind.io/v1alpha1` API: who was given access to which Export, and where.

A tenant boundary is one (OIDC identity, consumer cluster, Export): its home namespace on the
provider is derived from that key, and the Grant recording it is named after the home
namespace, so issuing the same key twice finds the same Grant. The issuer creates Grants and
writes their status; the konnector claims a provider namespace for a consumer namespace by
creating a BoundNamespace in its home namespace, and the issuer creates that namespace and
writes the claim's status. docs/service-layer.md describes the whole service layer.

Same conventions and field metadata vocabulary as `kbcore.api.types` (see its docstring): class
docstrings and field descriptions are API documentation that ends up in the CRDs in
`crds/service/`.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from kbcore.api.keys import IAM_GROUP
from kbcore.api.types import (
    AGE_COLUMN,
    CONDITIONS_SCHEMA,
    METADATA_FIELD,
    READY_COLUMN,
    CelRule,
    Condition,
    KindInfo,
    ObjectMeta,
    PrinterColumn,
    Scope,
    field_meta,
    immutable,
)

# A cluster's identity (kbcore.identity) is an object UID: a UUID in its canonical, lowercase
# form. One spelling per cluster, so the boundary key cannot be forked by changing case.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# `kb-` and 10 base36 characters of a hash of the boundary key (kbcore.service.tenancy).
HOME_NAMESPACE_PATTERN = r"^kb-[0-9a-z]{10}$"
HOME_NAMESPACE_LENGTH = 13
# Consumer namespace X maps to `<home>-X`, which must still be a namespace name (63 chars).
CONSUMER_NAMESPACE_MAX_LENGTH = 63 - HOME_NAMESPACE_LENGTH - 1
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


# ---------------------------------------------------------------------------------------------
# Grant.


@attrs.frozen(kw_only=True)
class OIDCIdentity:
    """OIDCIdentity is the OIDC identity a Grant was issued to."""

    issuer: str = attrs.field(
        metadata=field_meta(
            "issuer is the OIDC issuer URL (the iss claim).", schema={"minLength": 1}
        )
    )
    subject: str = attrs.field(
        metadata=field_meta(
            "subject is the identity's subject at that issuer (the sub claim).",
            schema={"minLength": 1},
        )
    )
    email: str = attrs.field(
        default="",
        metadata=field_meta(
            "email is the identity's email address when the token carried one. Informational "
            "only: access is decided by issuer and subject."
        ),
    )


@attrs.frozen(kw_only=True)
class GrantSpec:
    """GrantSpec is the tenant boundary's key: identity, consumer cluster and Export. Every
    field is immutable; a different key is a different Grant."""

    identity: OIDCIdentity = attrs.field(
        metadata=field_meta(
            "identity is who was given access. Immutable.", schema=immutable("identity")
        )
    )
    export: str = attrs.field(
        metadata=field_meta(
            "export is the name of the Export access was given to. Immutable.",
            schema={"minLength": 1, **immutable("export")},
        )
    )
    consumer_cluster_uid: str = attrs.field(
        metadata=field_meta(
            "consumerClusterUID is the consumer cluster's identity, its Connection's "
            "status.localClusterUID (the UID of its kube-system namespace, or of a kcp "
            "workspace's LogicalCluster): a lowercase UUID. Immutable.",
            json="consumerClusterUID",
            schema={"pattern": UUID_PATTERN, **immutable("consumerClusterUID")},
        )
    )


@attrs.frozen(kw_only=True)
class GrantStatus:
    """GrantStatus is what the issuer created for the Grant; written by the issuer only."""

    namespace: str = attrs.field(
        default="",
        metadata=field_meta(
            "namespace is the tenant's home namespace on the provider; the Grant's name."
        ),
    )
    service_account_name: str = attrs.field(
        default="",
        metadata=field_meta(
            "serviceAccountName is the ServiceAccount in the home namespace the konnector acts as."
        ),
    )
    # A Secret's name, never its contents: the token itself stays in that Secret.
    token_secret_name: str = attrs.field(
        default="",
        metadata=field_meta(
            "tokenSecretName names the Secret in the home namespace holding the ServiceAccount's "
            "token. The Grant never holds the token itself."
        ),
    )
    apis: tuple[str, ...] = attrs.field(
        default=(),
        metadata=field_meta(
            'apis are the CRD names ("<resource>.<group>") access was granted to: the '
            "Export's APIs when the Grant was last issued.",
            schema={"x-kubernetes-list-type": "set"},
        ),
    )
    issued_at: str = attrs.field(
        default="",
        metadata=field_meta(
            "issuedAt is when the credentials were last issued (RFC 3339).",
            schema={"format": "date-time"},
        ),
    )
    conditions: tuple[Condition, ...] = attrs.field(
        default=(),
        metadata=field_meta(
            "conditions: Ready (reason Issued once the credentials exist), Stale (the "
            "Connection's heartbeat is older than its TTL) and Revoked (access was withdrawn).",
            schema=CONDITIONS_SCHEMA,
        ),
    )


@attrs.frozen(kw_only=True)
class Grant:
    """Grant records that one OIDC identity may bind one Export into one consumer cluster, and
    what the issuer created for it: a home namespace, a ServiceAccount and its token. Named after
    the home namespace; created by the issuer; cluster-scoped."""

    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Grant",
        plural="grants",
        singular="grant",
        scope=Scope.CLUSTER,
        group=IAM_GROUP,
        printer_columns=(
            PrinterColumn(name="Export", type="string", json_path=".spec.export"),
            PrinterColumn(name="Subject", type="string", json_path=".spec.identity.subject"),
            READY_COLUMN,
            AGE_COLUMN,
        ),
        validations=(
            CelRule(
                rule=f"self.metadata.name.matches('{HOME_NAMESPACE_PATTERN}')",
                message="a Grant is named after its home namespace: kb- and 10 characters "
                "of [0-9a-z]",
            ),
        ),
    )

    metadata: ObjectMeta = attrs.field(factory=ObjectMeta, metadata=METADATA_FIELD)
    spec: GrantSpec
    status: GrantStatus = attrs.field(factory=GrantStatus)


# ---------------------------------------------------------------------------------------------
# BoundNamespace.


@attrs.frozen(kw_only=True)
class BoundNamespaceSpec:
    """BoundNamespaceSpec is empty: the object's name is the consumer namespace and its
    namespace the tenant's home namespace, which is all the issuer needs."""


@attrs.frozen(kw_only=True)
class BoundNamespaceStatus:
    """BoundNamespaceStatus is the provider namespace made for the claim; written by the issuer."""

    namespace: str = attrs.field(
        default="",
        metadata=field_meta(
            'namespace is the provider namespace the consumer namespace maps to, "<home>-<name>"; '
            "set once it exists with the tenant's RoleBinding in it."
        ),
    )
    conditions: tuple[Condition, ...] = attrs.field(
        default=(),
        metadata=field_meta(
            "conditions: Ready, True once the namespace and its RoleBinding exist.",
            schema=CONDITIONS_SCHEMA,
        ),
    )


@attrs.frozen(kw_only=True)
class BoundNamespace:
    """BoundNamespace claims a provider namespace for one consumer namespace. Named after the
    consumer namespace, it lives in the tenant's home namespace; created by the konnector, which
    waits for Ready before syncing objects of that namespace. Namespaced."""

    KIND: ClassVar[KindInfo] = KindInfo(
        kind="BoundNamespace",
        plural="boundnamespaces",
        singular="boundnamespace",
        scope=Scope.NAMESPACED,
        group=IAM_GROUP,
        printer_columns=(
            PrinterColumn(name="Namespace", type="string", json_path=".status.namespace"),
            READY_COLUMN,
            AGE_COLUMN,
        ),
        validations=(
            CelRule(
                rule=f"self.metadata.name.matches('{DNS_LABEL_PATTERN}')",
                message="a BoundNamespace is named after a consumer namespace: a DNS label",
            ),
            CelRule(
                rule=f"size(self.metadata.name) <= {CONSUMER_NAMESPACE_MAX_LENGTH}",
                message=f"a consumer namespace longer than {CONSUMER_NAMESPACE_MAX_LENGTH} "
                "characters has no provider namespace: <home>-<name> would exceed 63",
            ),
        ),
    )

    metadata: ObjectMeta = attrs.field(factory=ObjectMeta, metadata=METADATA_FIELD)
    # Defaulted server-side (`spec: {}`), so an object read back always has one and round trips
    # exactly; no description of its own, so the CRD shows BoundNamespaceSpec's.
    spec: BoundNamespaceSpec = attrs.field(
        factory=BoundNamespaceSpec, metadata={"server_default": True}
    )
    status: BoundNamespaceStatus = attrs.field(factory=BoundNamespaceStatus)


IamObject = Grant | BoundNamespace
"""Any object of the `iam.kube-bind.io` API."""

KINDS: tuple[type[Grant] | type[BoundNamespace], ...] = (Grant, BoundNamespace)
"""Every iam kind, in the order their CRDs are generated."""
