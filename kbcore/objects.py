"""Addressing and reading unstructured Kubernetes objects.

Objects cross the kernel boundary as plain JSON-shaped dicts, exactly as the API server returns
them, so the kernel never depends on a client library's model classes. This module owns the
small vocabulary used to address them (`GVR`, `ObjectKey`, `ObjectRef`) and read-only accessors.
Accessors never mutate their argument and tolerate missing or mistyped fields (returning the empty
value), because objects come from clusters we do not control.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import attrs

Obj = dict[str, Any]
"""A JSON-shaped Kubernetes object as the API server returns it."""

OBJECT_META_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
"""The fields of metav1.ObjectMeta, in the order the API server writes them."""


@attrs.frozen(order=True)
class GVR:
    """A group/version/resource triple; `group == ""` is the core group."""

    group: str
    version: str
    resource: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`<resource>.<group>`, the CRD-name form (`widgets.example.org`); `secrets` for core."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def __str__(self) -> str:
        return f"{self.group_resource}/{self.version}"


@attrs.frozen(order=True)
class ObjectKey:
    """namespace/name of an object; `namespace == ""` for cluster-scoped objects."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@attrs.frozen(order=True)
class ObjectRef:
    """One object in one cluster: which cluster (by role or name), which resource, which key."""

    cluster: str
    gvr: GVR
    key: ObjectKey

    def __str__(self) -> str:
        return f"{self.cluster}:{self.gvr.group_resource}:{self.key}"


def split_api_version(api_version: str) -> tuple[str, str]:
    """`example.org/v1` -> (`example.org`, `v1`); `v1` -> (``, `v1`)."""
    if "/" in api_version:
        group, _, version = api_version.partition("/")
        return group, version
    return "", api_version


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def list_at(obj: Mapping[str, Any], field: str) -> list[Any]:
    """`obj[field]` when it is a list, else [] (fields written by others may hold anything)."""
    v = obj.get(field)
    return v if isinstance(v, list) else []


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj.get("metadata"))


def name(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("name")
    return v if isinstance(v, str) else ""


def namespace(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("namespace")
    return v if isinstance(v, str) else ""


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    return ObjectKey(namespace(obj), name(obj))


def uid(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("uid")
    return v if isinstance(v, str) else ""


def resource_version(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("resourceVersion")
    return v if isinstance(v, str) else ""


def generation(obj: Mapping[str, Any]) -> int:
    v = metadata(obj).get("generation")
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return {k: v for k, v in _mapping(metadata(obj).get("labels")).items() if isinstance(v, str)}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    raw = _mapping(metadata(obj).get("annotations"))
    return {k: v for k, v in raw.items() if isinstance(v, str)}


def finalizers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    v = metadata(obj).get("finalizers")
    return tuple(f for f in v if isinstance(f, str)) if isinstance(v, list) else ()


def deletion_timestamp(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("deletionTimestamp")
    return v if isinstance(v, str) else ""


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return deletion_timestamp(obj) != ""


def deepcopy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: `1 == 1.0` but `True != 1`, dict order ignored."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def contains(haystack: Any, needle: Any) -> bool:
    """Subset match: every map key of `needle` is in `haystack` with a matching value; lists and
    scalars must be equal as JSON values. `contains(x, x)` holds for every JSON value."""
    if isinstance(needle, dict):
        if not isinstance(haystack, dict):
            return False
        return all(k in haystack and contains(haystack[k], v) for k, v in needle.items())
    return json_equal(haystack, needle)
