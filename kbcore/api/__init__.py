"""The `core.kube-bind.io/v1alpha1` API: types, keys, conditions."""
