"""The `core.kube-bind.io/v1alpha1` API: types, keys, conditions; and the provider-side service
layer's `catalog.kube-bind.io` and `iam.kube-bind.io` (catalog, iam, service_kinds,
service_conditions; docs/service-layer.md)."""
