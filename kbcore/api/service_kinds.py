"""Every kind of the provider-side service layer: `catalog.kube-bind.io` (kbcore.api.catalog)
and `iam.kube-bind.io` (kbcore.api.iam).

Kept apart from `kbcore.api.types.KINDS`: the konnector's API and the provider's service layer
are installed in different clusters (`crds/` and `crds/service/`), and the konnector never
structures a service-layer object as one of its own.
"""

from __future__ import annotations

from kbcore.api import catalog, iam

ServiceObject = catalog.Export | catalog.Collection | iam.Grant | iam.BoundNamespace
"""Any object of the service layer."""

SERVICE_KINDS: tuple[
    type[catalog.Export] | type[catalog.Collection] | type[iam.Grant] | type[iam.BoundNamespace],
    ...,
] = (*catalog.KINDS, *iam.KINDS)
"""Every service-layer kind, in the order their CRDs are generated."""
