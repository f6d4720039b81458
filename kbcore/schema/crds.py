"""Reading CustomResourceDefinitions: which resource a CRD serves instances through.

As upstream's syncer does, a synced API is addressed by its storage version (else the first
served one), its plural and its scope. One function, so the konnector and every check of it agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.objects import GVR


@attrs.frozen
class ServedResource:
    gvr: GVR
    namespaced: bool


def served_resource(crd: Mapping[str, Any]) -> ServedResource | None:
    """The GVR instances are synced through, or None for a CRD being deleted or serving nothing."""
    if o.is_deleting(crd):
        return None
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return None
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("served")]
    if not versions:
        return None
    storage = next((v for v in versions if v.get("storage")), versions[0])
    raw_names = spec.get("names")
    names: Mapping[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    gvr = GVR(
        str(spec.get("group", "")), str(storage.get("name", "")), str(names.get("plural", ""))
    )
    return ServedResource(gvr, spec.get("scope") == "Namespaced")
