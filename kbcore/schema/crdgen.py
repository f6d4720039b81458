"""CustomResourceDefinitions generated from the attrs API types: `core.kube-bind.io`
(`all_crds`, the konnector's) and the provider-side service layer, `catalog.kube-bind.io` and
`iam.kube-bind.io` (`service_crds`).

No tool turns attrs classes into Kubernetes *structural* schemas (style guide D.2), so this
module walks `attrs.fields()` with resolved type hints, the way controller-gen walks Go structs:

- every node has a `type`; `str`/`bool`/`int` map to string/boolean/integer;
- `StrEnum` -> `enum:` of its values; `X | None` -> the schema of X, not required;
- `tuple[X, ...]` -> array with an explicit `x-kubernetes-list-type` (`atomic` unless the field
  says `set` or `map`); `Mapping[str, X]` -> `additionalProperties`;
- an attrs class -> object with `properties` and `required` (`convert.is_required`);
- field metadata supplies `description`, `default:` (`server_default`, the unstructured Python
  default; `{}` for an object so the server applies its sub-defaults, as upstream does) and
  extra keywords verbatim (`minLength`, CEL `x-kubernetes-validations`, ...);
- property names come from `convert.json_name`, the same function the converter uses.

Class-level facts (names, group, scope, printer columns, CEL rules on the whole object) come
from each kind's `KIND`. `metadata` is `{type: object}` only, as controller-gen emits: the API
server validates ObjectMeta itself.

Pure: returns dicts. Writing YAML files is `tools/gen_crds.py`'s job.
"""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from kbcore.api.convert import converter, is_required, json_name
from kbcore.api.service_kinds import SERVICE_KINDS, ServiceObject
from kbcore.api.types import KINDS, ApiObject

AnyObject = ApiObject | ServiceObject

# The standard TypeMeta descriptions, as every Kubernetes CRD carries them.
_TYPE_META: dict[str, Any] = {
    "apiVersion": {
        "description": "APIVersion defines the versioned schema of this representation of an "
        "object. Servers should convert recognized schemas to the latest internal value, and may "
        "reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
        "sig-architecture/api-conventions.md#resources",
        "type": "string",
    },
    "kind": {
        "description": "Kind is a string value representing the REST resource this object "
        "represents. Servers may infer this from the endpoint the client submits requests to. "
        "Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/"
        "devel/sig-architecture/api-conventions.md#types-kinds",
        "type": "string",
    },
}


def _doc(cls: type) -> str:
    return inspect.cleandoc(cls.__doc__) if cls.__doc__ else ""


def type_schema(tp: Any) -> dict[str, Any]:
    """The OpenAPI v3 schema of a type used in the API (without field-level extras)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if isinstance(tp, type) and issubclass(tp, enum.StrEnum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"only `X | None` unions are supported, not {tp}")
        return type_schema(present[0])
    if origin is tuple:
        return {"type": "array", "items": type_schema(args[0])}
    if origin in (Mapping, dict) and args[0] is str:
        return {"type": "object", "additionalProperties": type_schema(args[1])}
    if isinstance(tp, type) and attrs.has(tp):
        return object_schema(tp)
    raise TypeError(f"no schema for {tp!r}")


def object_schema(cls: type) -> dict[str, Any]:
    """The schema of an attrs class: its properties in declaration order."""
    hints = typing.get_type_hints(cls)
    fields = [a for a in attrs.fields(cls) if not a.metadata.get("extra")]
    schema: dict[str, Any] = {}
    if doc := _doc(cls):
        schema["description"] = doc
    schema["type"] = "object"
    schema["properties"] = {json_name(a): _field_schema(a, hints[a.name]) for a in fields}
    if required := [json_name(a) for a in fields if is_required(a)]:
        schema["required"] = required
    return schema


def _field_schema(a: attrs.Attribute[Any], tp: Any) -> dict[str, Any]:
    extras: dict[str, Any] = dict(a.metadata.get("schema", {}))
    if a.metadata.get("opaque"):
        return extras
    schema = type_schema(tp)
    if description := a.metadata.get("description"):
        # The field's own description replaces its type's, as in controller-gen.
        schema = {"description": description} | {
            k: v for k, v in schema.items() if k != "description"
        }
    if a.metadata.get("server_default"):
        schema["default"] = _default(a)
    if schema["type"] == "array":
        extras.setdefault("x-kubernetes-list-type", "atomic")
    return schema | extras


def _default(a: attrs.Attribute[Any]) -> Any:
    """The wire form of a field's Python default; `{}` for an object, whose own fields carry
    their defaults (the server applies them in turn)."""
    factory = getattr(a.default, "factory", None)
    value = factory() if callable(factory) else a.default
    return {} if attrs.has(type(value)) else converter.unstructure(value)


def openapi_schema(cls: type[AnyObject]) -> dict[str, Any]:
    """The `openAPIV3Schema` of a kind: TypeMeta, metadata, spec, status, and the kind's CEL
    rules on the whole object."""
    schema = object_schema(cls)
    schema["properties"] = _TYPE_META | schema["properties"]
    if rules := cls.KIND.validations:
        schema["x-kubernetes-validations"] = [{"rule": r.rule, "message": r.message} for r in rules]
    return schema


def crd(cls: type[AnyObject]) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    info = cls.KIND
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": {
            "group": info.group,
            "names": {
                "kind": info.kind,
                "listKind": info.list_kind,
                "plural": info.plural,
                "singular": info.singular,
                "categories": list(info.categories),
            },
            "scope": info.scope.value,
            "versions": [
                {
                    "name": info.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": c.name, "type": c.type, "jsonPath": c.json_path}
                        for c in info.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema(cls)},
                }
            ],
        },
    }


def all_crds() -> tuple[dict[str, Any], ...]:
    """The CRDs of every kind, in `kbcore.api.types.KINDS` order."""
    return tuple(crd(cls) for cls in KINDS)


def service_crds() -> tuple[dict[str, Any], ...]:
    """The CRDs of the service layer, in `kbcore.api.service_kinds.SERVICE_KINDS` order."""
    return tuple(crd(cls) for cls in SERVICE_KINDS)
