"""Every label, annotation, finalizer and field-manager key of `core.kube-bind.io`, and the
groups of the provider-side service layer.

One module owns the wire names so a rename (upstream later moved to `core.kbind.io`) is one edit.
Values are quoted verbatim from the upstream v2 code (docs/design.md, "Upstream and
compatibility").
"""

from __future__ import annotations

GROUP = "core.kube-bind.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# The provider-side service layer (kbcore.api.catalog, kbcore.api.iam); same version.
CATALOG_GROUP = "catalog.kube-bind.io"
"""What a provider offers: Exports and Collections."""
IAM_GROUP = "iam.kube-bind.io"
"""Who was given access: Grants and BoundNamespaces."""

# Labels.
LABEL_EXPORTED = f"{GROUP}/exported"
"""On a provider CRD: `"true"` exports it (schema source CRD)."""
LABEL_MANAGED = f"{GROUP}/managed"
"""On everything the konnector writes: `"true"`."""

# Annotations.
ANNOTATION_CONNECTION = f"{GROUP}/connection"
ANNOTATION_SCHEMA_HASH = f"{GROUP}/schema-hash"
ANNOTATION_CONSUMER_CLUSTER_UID = f"{GROUP}/consumer-cluster-uid"
"""Ownership marker part 1: the Connection's `status.localClusterUID`."""
ANNOTATION_CONSUMER_OBJECT_UID = f"{GROUP}/consumer-object-uid"
"""Ownership marker part 2: the UID of the consumer object a provider copy mirrors."""
ANNOTATION_RELATED_BINDING = f"{GROUP}/related-binding"
ANNOTATION_CONFLICT = f"{GROUP}/conflict"
"""On a consumer object the konnector refuses to sync: the conflict reason."""
ANNOTATION_SYNC_LIMIT = f"{GROUP}/sync-limit"
"""On a consumer object whose spec or status is too large or deep to write: what is not synced."""
ANNOTATION_DELETION_POLICY = f"{GROUP}/deletion-policy"
"""Set by the user on a consumer object; `Orphan` keeps the provider copy on delete."""
DELETION_POLICY_ORPHAN = "Orphan"

# Finalizers.
FINALIZER_SYNCER = f"{GROUP}/syncer"
"""On consumer instances: held until the provider copy is gone (or Orphan)."""
FINALIZER_CLEANUP = f"{GROUP}/cleanup"
"""On Connection, ClusterBinding, Binding and the Connection's kubeconfig Secret."""

# Field managers and the event reporting component.
FIELD_MANAGER = "kube-bind-konnector"
FIELD_MANAGER_RELATED = "kube-bind-konnector-related"
EVENT_COMPONENT = "kube-bind-konnector"

# Provider namespaces.
LEASE_NAMESPACE = "kube-bind"
"""On the provider: the namespace of the Connection heartbeat Leases."""
