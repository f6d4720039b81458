"""The well-known resources the konnector reads and writes, each declared once.

Every module that addresses one of these imports it from here, so a resource's group, version
and plural are spelled in one place.
"""

from __future__ import annotations

from kbcore.api import keys
from kbcore.objects import GVR

# core.kube-bind.io, on the consumer.
CONNECTIONS = GVR(keys.GROUP, keys.VERSION, "connections")
CLUSTERBINDINGS = GVR(keys.GROUP, keys.VERSION, "clusterbindings")
BINDINGS = GVR(keys.GROUP, keys.VERSION, "bindings")

# The service layer, on the provider.
EXPORTS = GVR(keys.CATALOG_GROUP, keys.VERSION, "exports")
COLLECTIONS = GVR(keys.CATALOG_GROUP, keys.VERSION, "collections")
GRANTS = GVR(keys.IAM_GROUP, keys.VERSION, "grants")
BOUND_NAMESPACES = GVR(keys.IAM_GROUP, keys.VERSION, "boundnamespaces")

# Built-in resources.
NAMESPACES = GVR("", "v1", "namespaces")
SECRETS = GVR("", "v1", "secrets")
CONFIGMAPS = GVR("", "v1", "configmaps")
EVENTS = GVR("", "v1", "events")
LEASES = GVR("coordination.k8s.io", "v1", "leases")
CRDS = GVR("apiextensions.k8s.io", "v1", "customresourcedefinitions")
ROLES = GVR("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = GVR("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTER_ROLES = GVR("rbac.authorization.k8s.io", "v1", "clusterroles")
CLUSTER_ROLE_BINDINGS = GVR("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
SERVICE_ACCOUNTS = GVR("", "v1", "serviceaccounts")

# kcp's cluster identity object (`kbcore.identity`).
LOGICAL_CLUSTERS = GVR("core.kcp.io", "v1alpha1", "logicalclusters")
