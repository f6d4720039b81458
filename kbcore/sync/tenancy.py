"""Tenancy: one consumer among several on a shared provider, confined to its boundary.

A provider that serves many consumers cannot let consumer namespace `default` be provider
namespace `default` for all of them. Its issuer gives each consumer a boundary and writes it into
the Connection of the bundle (`spec.tenant`); the kernel honours it per Connection:

 1. A Connection with `spec.tenant` is a tenant (`tenant_of`): a home namespace and the CRD names
    granted to it. A malformed `tenant` is a problem (the Connection is refused), never a fall
    back to the untenanted behaviour, which would reach outside the boundary.
 2. Consumer namespace X is provider namespace `<home>-X` (`Tenant.mapper`, a NamespacePrefix):
    a Mapper changes keys only, so names are kept and a spec naming a Secret of its own namespace
    still means the same Secret on the provider. A name whose mapping exceeds the 63 characters
    of a namespace is refused (`namespace_problem`), never shortened into a collision.
 3. Cluster-scoped APIs cannot be shared: a tenant's binding refuses them
    (`kbcore.control.binding`).
 4. The konnector never creates a provider namespace for a tenant. It claims one: a
    `BoundNamespace` named X in the home namespace (`claim_body`); the provider's issuer creates
    `<home>-X` with the tenant's RBAC in it and marks the claim Ready with that namespace. A
    copy is created only in a namespace whose claim is granted (`claim_state`), and a claim
    granting any other namespace than rule 2's is refused: the provider cannot steer a consumer's
    objects elsewhere.
 5. Every provider list or watch of a tenant is per granted namespace (the Connection records
    them in `status.tenantNamespaces`, from the claims); nothing is listed cluster-wide.
 6. The heartbeat Lease lives in the home namespace, and discovery reads exactly the granted
    CRDs by name (`kbcore.control.connection`).
 7. Home namespaces are named from the boundary key (`home_namespace`): issuer, subject, consumer
    cluster and Export, hashed, so re-binding the same key finds the same boundary and no two
    keys share one (to the hash's strength).

Laws (tests/property/test_mapper_laws.py, tests/unit/test_tenancy.py): the mapper round-trips and
never maps into another tenant's namespaces (`<home>-` prefixes of two homes of equal length
never overlap); `claim_state` grants only rule 2's namespace.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import PROVIDER
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.selectors import dns1123_label_errors
from kbcore.status import condition_is_true
from kbcore.sync.mapper import NamespacePrefix

MAX_NAMESPACE = 63
"""A namespace name is a DNS label."""
HOME_PREFIX = "kb-"
HOME_HASH_CHARS = 10
CLAIM_WAIT_SECONDS = 1.0
"""How soon the konnector looks again at a claim the provider's issuer has not answered."""


@attrs.frozen
class Tenant:
    """A Connection's boundary on a shared provider (rule 1)."""

    namespace: str
    apis: tuple[str, ...]

    @property
    def prefix(self) -> str:
        return f"{self.namespace}-"

    @property
    def mapper(self) -> NamespacePrefix:
        return NamespacePrefix(self.prefix)

    def provider_namespace(self, consumer_namespace: str) -> str:
        return self.prefix + consumer_namespace


def tenant_of(connection: Mapping[str, Any]) -> Tenant | str | None:
    """The Connection's Tenant, None when it is not one, or a problem (rule 1)."""
    spec = connection.get("spec")
    raw = spec.get("tenant") if isinstance(spec, Mapping) else None
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        return "spec.tenant must be an object"
    namespace, apis = raw.get("namespace"), raw.get("apis")
    if not isinstance(namespace, str) or dns1123_label_errors(namespace):
        return "spec.tenant.namespace must be a namespace name"
    if len(namespace) > MAX_NAMESPACE - 2:
        return "spec.tenant.namespace leaves no room for a consumer namespace"
    if not isinstance(apis, list) or not apis or not all(isinstance(a, str) and a for a in apis):
        return "spec.tenant.apis must list at least one CRD name"
    return Tenant(namespace, tuple(sorted(set(apis))))


def namespace_problem(tenant: Tenant, consumer_namespace: str) -> str:
    """Why consumer namespace X cannot be synced for this tenant ("" if it can; rule 2)."""
    mapped = tenant.provider_namespace(consumer_namespace)
    if len(mapped) > MAX_NAMESPACE:
        room = MAX_NAMESPACE - len(tenant.prefix)
        return (
            f"namespace {consumer_namespace!r} is too long for this provider: it is synced to "
            f"{mapped!r}, longer than {MAX_NAMESPACE} characters (at most {room} fit)"
        )
    return ""


def claim_ref(tenant: Tenant, consumer_namespace: str) -> ObjectRef:
    """The BoundNamespace claiming consumer namespace X's provider namespace (rule 4)."""
    return ObjectRef(PROVIDER, BOUND_NAMESPACES, ObjectKey(tenant.namespace, consumer_namespace))


def claim_body(tenant: Tenant, consumer_namespace: str, local_cluster_uid: str) -> o.Obj:
    return {
        "apiVersion": BOUND_NAMESPACES.api_version,
        "kind": "BoundNamespace",
        "metadata": {
            "name": consumer_namespace,
            "namespace": tenant.namespace,
            "labels": {keys.LABEL_MANAGED: "true"},
            "annotations": {keys.ANNOTATION_CONSUMER_CLUSTER_UID: local_cluster_uid},
        },
        "spec": {},
    }


class Claim(enum.Enum):
    ABSENT = "absent"
    PENDING = "pending"
    GRANTED = "granted"
    REFUSED = "refused"


def claim_state(tenant: Tenant, consumer_namespace: str, claim: Mapping[str, Any] | None) -> Claim:
    """Where a claim stands (rule 4): granted only when Ready names rule 2's namespace."""
    if claim is None:
        return Claim.ABSENT
    if o.is_deleting(claim):
        return Claim.PENDING
    if not condition_is_true(claim, "Ready"):
        # Unanswered (no Ready condition yet) is pending; Ready=False is the issuer's no.
        return Claim.REFUSED if claim_message(claim, answered=True) else Claim.PENDING
    status = claim.get("status")
    granted = status.get("namespace") if isinstance(status, Mapping) else None
    if granted != tenant.provider_namespace(consumer_namespace):
        return Claim.REFUSED
    return Claim.GRANTED


def claim_message(claim: Mapping[str, Any] | None, *, answered: bool = False) -> str:
    """The issuer's word on a claim not granted (its Ready condition's message), if any; with
    `answered`, "" unless the issuer has said no (Ready=False)."""
    status = claim.get("status") if claim is not None else None
    for cond in o.list_at(status, "conditions") if isinstance(status, Mapping) else []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            if answered and cond.get("status") != "False":
                return ""
            return str(cond.get("message", "")) or "refused"
    return ""


def home_namespace(issuer: str, subject: str, consumer_cluster_uid: str, export: str) -> str:
    """The home namespace of a boundary key (rule 7): `kb-` and ten base-36 characters."""
    digest = hashlib.sha224("\n".join((issuer, subject, consumer_cluster_uid, export)).encode())
    n = int.from_bytes(digest.digest(), "big")
    chars = []
    for _ in range(HOME_HASH_CHARS):
        n, r = divmod(n, 36)
        chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[r])
    return HOME_PREFIX + "".join(chars)
