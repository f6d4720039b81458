"""What kbsim serves: the built-in resources, and resources derived from established CRDs.

A `ResourceInfo` is everything the server needs to know about one resource: scope, kinds,
served versions, whether it has a `/status` subresource, whether it tracks
`metadata.generation`, its storage identity (two API groups can share one storage, as the core
and `events.k8s.io` Events do) and, for custom resources, the schema of each version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kbcore.objects import GVR
from kbsim import fieldsets

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@attrs.frozen
class ResourceInfo:
    """One served resource (all its versions)."""

    group: str
    resource: str
    kind: str
    namespaced: bool
    versions: tuple[str, ...]
    storage_version: str
    status: bool = False
    singular: str = ""
    list_kind: str = ""
    short_names: tuple[str, ...] = ()
    builtin: bool = True
    tracks_generation: bool = False
    storage: tuple[str, str] = ("", "")
    schemas: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    extra_subresources: tuple[str, ...] = ()
    crd_name: str = ""

    @property
    def group_resource(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def subresources(self) -> tuple[str, ...]:
        return (("status",) if self.status else ()) + self.extra_subresources

    def gvr(self, version: str = "") -> GVR:
        return GVR(self.group, version or self.storage_version, self.resource)

    def api_version(self, version: str = "") -> str:
        v = version or self.storage_version
        return f"{self.group}/{v}" if self.group else v

    def schema(self, version: str) -> Mapping[str, Any]:
        return self.schemas.get(version) or self.schemas.get(self.storage_version) or {}

    def smd_type(self, version: str) -> fieldsets.Type:
        """The structured-merge-diff type used for managedFields of this resource."""
        if self.builtin:
            return fieldsets.builtin_type(self.group, self.kind)
        return fieldsets.crd_object_type(self.schema(version))


def _builtin(
    group: str,
    resource: str,
    kind: str,
    namespaced: bool,
    *,
    version: str = "v1",
    status: bool = False,
    short_names: tuple[str, ...] = (),
    storage: tuple[str, str] | None = None,
    tracks_generation: bool = False,
    extra: tuple[str, ...] = (),
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        resource=resource,
        kind=kind,
        namespaced=namespaced,
        versions=(version,),
        storage_version=version,
        status=status,
        singular=kind.lower(),
        list_kind=kind + "List",
        short_names=short_names,
        builtin=True,
        tracks_generation=tracks_generation,
        storage=storage or (group, resource),
        extra_subresources=extra,
    )


RBAC = "rbac.authorization.k8s.io"
APIEXTENSIONS = "apiextensions.k8s.io"

BUILTINS: tuple[ResourceInfo, ...] = (
    _builtin(
        "", "namespaces", "Namespace", False, status=True, short_names=("ns",), extra=("finalize",)
    ),
    _builtin("", "secrets", "Secret", True),
    _builtin("", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _builtin("", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    _builtin("", "events", "Event", True, short_names=("ev",)),
    _builtin("events.k8s.io", "events", "Event", True, short_names=("ev",), storage=("", "events")),
    _builtin("coordination.k8s.io", "leases", "Lease", True),
    _builtin(RBAC, "clusterroles", "ClusterRole", False),
    _builtin(RBAC, "clusterrolebindings", "ClusterRoleBinding", False),
    _builtin(RBAC, "roles", "Role", True),
    _builtin(RBAC, "rolebindings", "RoleBinding", True),
    _builtin(
        APIEXTENSIONS,
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        status=True,
        short_names=("crd", "crds"),
        tracks_generation=True,
    ),
)


def from_crd(crd: Mapping[str, Any]) -> ResourceInfo | None:
    """The resource an (established) CRD defines, or None if the CRD is unusable."""
    spec = crd.get("spec") or {}
    names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
    versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping)]
    served = tuple(str(v["name"]) for v in versions if v.get("served"))
    storage = next((str(v["name"]) for v in versions if v.get("storage")), "")
    if not served or not storage or not names.get("plural") or not names.get("kind"):
        return None
    subresources = next(
        (v.get("subresources") or {} for v in versions if v.get("name") == storage), {}
    )
    schemas = {
        str(v["name"]): (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in versions
    }
    return ResourceInfo(
        group=str(spec.get("group") or ""),
        resource=str(names["plural"]),
        kind=str(names["kind"]),
        namespaced=spec.get("scope") == "Namespaced",
        versions=served,
        storage_version=storage,
        status="status" in subresources,
        singular=str(names.get("singular") or str(names["kind"]).lower()),
        list_kind=str(names.get("listKind") or f"{names['kind']}List"),
        short_names=tuple(names.get("shortNames") or ()),
        builtin=False,
        tracks_generation=True,
        storage=(str(spec.get("group") or ""), str(names["plural"])),
        schemas=schemas,
        crd_name=str((crd.get("metadata") or {}).get("name") or ""),
    )


# --- Event conversion between core/v1 (storage form) and events.k8s.io/v1 ------------------------

_EVENTS_V1_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)


def event_to_core(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event in core/v1 spelling."""
    return _rename(obj, {new: old for new, old in _EVENTS_V1_RENAMES}, "v1")


def event_from_core(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 Event in events.k8s.io/v1 spelling."""
    return _rename(obj, {old: new for new, old in _EVENTS_V1_RENAMES}, "events.k8s.io/v1")


def _rename(obj: Mapping[str, Any], names: Mapping[str, str], api_version: str) -> dict[str, Any]:
    out = dict(obj)
    for name, to in names.items():
        if name in out:
            out[to] = out.pop(name)
    out["apiVersion"] = api_version
    return out
