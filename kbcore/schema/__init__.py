"""Schemas: CustomResourceDefinitions taken from a provider, and our own.

Decided here: whether and how a provider's CRD is put on the consumer (`policy`), the CRDs
synthesized from a provider's OpenAPI (`openapi`), which resource a CRD serves (`crds`), which API
groups are never touched (`groups`), and the CRDs of `core.kube-bind.io` generated from the API
types (`crdgen`).
"""
