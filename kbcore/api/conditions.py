"""Condition types and reasons of `core.kube-bind.io` (upstream's strings, verbatim: docs/design.md,
"Upstream and compatibility"), and the pure condition helpers.

The helpers follow apimachinery's `meta.SetStatusCondition` exactly, with one change forced by
the kernel contract: the current time is an argument (`now`, an RFC 3339 string such as
`2026-01-02T03:04:05Z`), never read from a clock.
"""

from __future__ import annotations

from typing import Final

import attrs

from kbcore.api.types import Condition, ConditionStatus

# Condition types.
READY: Final = "Ready"
"""The summary condition on every kind."""
SECRET_VALID: Final = "SecretValid"
"""Connection: the kubeconfig Secret resolves to a usable kubeconfig."""
CONNECTED: Final = "Connected"
"""Connection: the provider is reachable and its pinned identity still matches."""
SCHEMA_IN_SYNC: Final = "SchemaInSync"
"""Connection: exported schemas are installed per the schema policy."""
SYNCED: Final = "Synced"
"""Bindings: every listed API is installed and its instances are syncing."""
CONFLICTS: Final = "Conflicts"
"""Bindings: at least one object was skipped because of foreign ownership."""
PERMISSION_DENIED: Final = "PermissionDenied"
"""Bindings and Connection: provider RBAC refused an operation."""
RELATED_RESOURCES: Final = "RelatedResources"
"""Bindings with `relatedResources`: every selected Secret/ConfigMap is copied, or which are not
and why (`kbcore.control.related` T7)."""

# Reasons.
AS_EXPECTED: Final = "AsExpected"
"""Success."""
PENDING: Final = "Pending"
"""A dependency that is expected but not there yet (Connection, Secret, CRD)."""
SECRET_NOT_FOUND: Final = "SecretNotFound"
"""The kubeconfig Secret is unusable, for any reason."""
CLUSTER_IDENTITY_CHANGED: Final = "ClusterIdentityChanged"
"""The kubeconfig now points at a different provider cluster than the pinned one."""
SELF_BINDING: Final = "SelfBinding"
"""The kubeconfig reaches the consumer cluster itself: a Connection never binds a cluster to
itself."""
INSECURE_TRANSPORT: Final = "InsecureTransport"
"""The kubeconfig is usable but its traffic can be read or forged on the network path (plain
http without credentials, or an unverified certificate without a bearer secret)."""
API_NOT_EXPORTED: Final = "APINotExported"
"""A binding lists an API the Connection does not export."""
FOREIGN_OBJECT_EXISTS: Final = "ForeignObjectExists"
"""Conflict with a provider object nobody owns."""
OWNED_BY_ANOTHER: Final = "OwnedByAnother"
"""Conflict with a provider object owned by another consumer or binding."""
SPEC_EXCEEDS_LIMITS: Final = "SpecExceedsLimits"
"""An object's spec is too large or deep for an API server: its provider copy is not written."""
INVALID_TENANT: Final = "InvalidTenant"
"""A Connection whose `spec.tenant` is malformed: nothing is done through it."""
NAMESPACE_NOT_GRANTED: Final = "NamespaceNotGranted"
"""A tenant's object whose provider namespace the provider cannot or did not grant
(`kbcore.sync.tenancy`): not synced."""
STATUS_EXCEEDS_LIMITS: Final = "StatusExceedsLimits"
"""A provider status is too large or deep to write on the consumer object: not mirrored."""
FORBIDDEN: Final = "Forbidden"
"""Provider RBAC denied an operation."""
DRAINING_BINDINGS: Final = "DrainingBindings"
"""Connection being deleted: waiting for its bindings to finish unbinding."""
DRAINING_OBJECTS: Final = "DrainingObjects"
"""Binding being deleted: waiting for the provider copies it owns to be gone."""

# Reasons of our own (docs/design.md, "Differences from upstream"): schema safety and binding
# scope, per API.
CONVERSION_WEBHOOK: Final = "ConversionWebhook"
"""The provider CRD converts through a webhook, which cannot run on the consumer: refused."""
PROTECTED_GROUP: Final = "ProtectedGroup"
"""The API is in a built-in or kube-bind group: never installed on the consumer."""
FOREIGN_CRD: Final = "ForeignCRD"
"""A consumer CRD of that name exists and the konnector did not install it: never overwritten."""
INVALID_SCHEMA: Final = "InvalidSchema"
"""The provider schema cannot be turned into a consumer CRD (no served version, bad shape)."""
CLUSTER_SCOPED_API: Final = "ClusterScopedAPI"
"""A namespaced Binding lists a cluster-scoped API, which only a ClusterBinding can bind."""
INCOMPATIBLE_SCHEMA_CHANGE: Final = "IncompatibleSchemaChange"
"""The provider changed a bound API's schema in a way the consumer CRD cannot follow (scope,
group, names, a stored version no longer served): the consumer CRD is kept, the API paused."""
BOUND_BY_CLUSTER_BINDING: Final = "BoundByClusterBinding"
"""A Binding lists an API a ClusterBinding already binds; the ClusterBinding wins."""
RELATED_REFUSED: Final = "RelatedRefused"
"""A selected related object is outside the trust boundary (`kbcore.control.related` T2-T4): not
copied."""
INVALID_RULE: Final = "InvalidRule"
"""A `relatedResources` entry cannot be followed (malformed, or FromConsumer without a selector)."""


def find_condition(conditions: tuple[Condition, ...], type_: str) -> Condition | None:
    """The condition of type `type_`, or None (`meta.FindStatusCondition`)."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: tuple[Condition, ...], type_: str) -> bool:
    """Whether condition `type_` is present with status True (`meta.IsStatusConditionTrue`)."""
    found = find_condition(conditions, type_)
    return found is not None and found.status == ConditionStatus.TRUE


def set_condition(
    conditions: tuple[Condition, ...], new: Condition, now: str
) -> tuple[Condition, ...]:
    """`conditions` with `new` set, by `meta.SetStatusCondition` rules.

    - A new type is appended; its lastTransitionTime is `new`'s if set, else `now`.
    - An existing type keeps its position. Status, reason, message and observedGeneration are
      taken from `new`; lastTransitionTime changes only when the status flips (to `new`'s if
      set, else `now`), so re-asserting a condition is not a transition.

    Returns the input tuple itself when nothing changed, so `result is conditions` (or `==`)
    tells a caller there is nothing to write.
    """
    old = find_condition(conditions, new.type)
    if old is None:
        return (*conditions, _stamped(new, now))
    transitioned = old.status != new.status
    updated = (
        _stamped(new, now)
        if transitioned
        else attrs.evolve(new, last_transition_time=old.last_transition_time)
    )
    if updated == old:
        return conditions
    return tuple(updated if c is old else c for c in conditions)


def _stamped(condition: Condition, now: str) -> Condition:
    """`condition` with lastTransitionTime set: its own if it has one, else `now`."""
    return attrs.evolve(condition, last_transition_time=condition.last_transition_time or now)
