"""CustomResourceDefinition bodies for the tests (and tools/capture_openapi.py).

One builder, so that a fixture states only how its CRD differs (names, scope, versions,
schema, labels) rather than writing the whole body again. Every call returns a fresh copy:
a test may edit what it gets.
"""

from __future__ import annotations

import copy
from typing import Any


def obj(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object schema with these properties (and `extra` keywords such as `required`)."""
    return {"type": "object", "properties": properties, **extra}


def preserved() -> dict[str, Any]:
    """An object schema that keeps whatever fields it is given."""
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def widget_schema(size: str = "string") -> dict[str, Any]:
    """The smallest Widget schema the kernels' tests use: `spec.size` and a free-form status."""
    return obj({"spec": obj({"size": {"type": size}}), "status": preserved()})


def list_map(key: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An array schema merged by `key` (x-kubernetes-list-type: map) of `obj(properties,
    **extra)` items."""
    return {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": [key],
        "items": obj(properties, **extra),
    }


def version(
    name: str = "v1",
    schema: dict[str, Any] | None = None,
    *,
    served: bool = True,
    storage: bool = True,
    status: bool = True,
    columns: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One entry of `spec.versions`; `status` adds the /status subresource. `extra` (e.g.
    `deprecated`, or `subresources` in full) comes right after `storage`."""
    out: dict[str, Any] = {"name": name, "served": served, "storage": storage, **extra}
    if status:
        out["subresources"] = {"status": {}}
    if columns is not None:
        out["additionalPrinterColumns"] = columns
    out["schema"] = {"openAPIV3Schema": schema if schema is not None else {"type": "object"}}
    return copy.deepcopy(out)


def crd(
    plural: str = "widgets",
    kind: str = "Widget",
    *,
    group: str = "example.org",
    scope: str = "Namespaced",
    versions: list[dict[str, Any]] | None = None,
    labels: dict[str, Any] | None = None,
    singular: str | None = None,
    list_kind: str | None = None,
    **names: Any,
) -> dict[str, Any]:
    """A CRD serving `plural`.`group` (by default one `version()`); `singular`, `list_kind`
    and `names` (e.g. `shortNames`) go into `spec.names` when given."""
    metadata: dict[str, Any] = {"name": f"{plural}.{group}"}
    if labels is not None:
        metadata["labels"] = labels
    all_names: dict[str, Any] = {"plural": plural}
    if singular is not None:
        all_names["singular"] = singular
    all_names["kind"] = kind
    if list_kind is not None:
        all_names["listKind"] = list_kind
    all_names.update(names)
    return copy.deepcopy(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": metadata,
            "spec": {
                "group": group,
                "scope": scope,
                "names": all_names,
                "versions": versions if versions is not None else [version()],
            },
        }
    )
