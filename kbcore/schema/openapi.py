"""OpenAPI -> CRD synthesis: consumer CRDs from a provider's discovery and OpenAPI v3.

`synthesize` follows the sans-I/O read protocol of `kbcore.reads`: it asks for `/apis`; then,
in one round, for the discovery document of every group-version of a non-built-in group and
for the `/openapi/v3` index; then, in one round, for the OpenAPI document of every such
group-version the index lists. With all of them observed it returns the CRDs.

Rules (upstream's, with all versions of a resource in one CRD: docs/design.md, "Differences
from upstream"):

* Built-in groups (`kbcore.schema.groups.is_builtin_group`) are never synthesized.
* A resource is every discovery entry without "/" in its name; it has the status subresource
  iff discovery lists `<resource>/status`. `<resource>/scale` and other subresources are not
  synthesized and are reported as losses.
* Its schema is the component whose `x-kubernetes-group-version-kind` lists exactly its
  group, version and kind; without one that version is skipped.
* All served versions of one group-resource form ONE CRD, versions sorted by
  `version_priority_key`; the storage version is the group's preferred version from `/apis`
  when it is among them, else the first. Names and scope come from the storage version.
* Schemas are cleaned by `clean_schema` until the apiextensions structural-schema rules
  accept them; every validation given up on the way is reported in `SynthesizedAPI.losses`.

A failed per-group-version discovery or OpenAPI document skips that group-version (like
upstream's partial discovery), unless every per-group-version discovery failed; a failed
`/apis` or `/openapi/v3` index makes synthesis impossible and its ApiError is raised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kbcore.limits import MAX_SCHEMA_DEPTH
from kbcore.objects import Obj
from kbcore.reads import Discovery, Failed, Observed, OpenAPIDoc, Read, need, need_all
from kbcore.schema.groups import is_builtin_group

PRINTER_COLUMNS_LOSS = "printer columns are not published in OpenAPI"
CONVERSION_LOSS = (
    "versions are converted by rewriting apiVersion only (conversion strategy None); "
    "the provider's conversion between versions is not reproduced"
)
SCALE_LOSS = (
    "scale subresource not synthesized: its replica paths are not published "
    "(discovery lists {name})"
)
SUBRESOURCE_LOSS = "subresource {name} is not synthesized (CRDs serve only status and scale)"


@attrs.frozen
class SynthesizedAPI:
    """One consumer CRD and the fidelity it lost against the provider's API."""

    crd: Obj
    losses: tuple[str, ...]


@attrs.frozen
class Synthesis:
    """The CRDs synthesized (sorted by name) and what was left out, as (what, why) pairs."""

    apis: tuple[SynthesizedAPI, ...]
    skipped: tuple[tuple[str, str], ...]


# --- version priority ---------------------------------------------------------------------------

_KUBE_VERSION = re.compile(r"^v([0-9]+)(?:(alpha|beta)([0-9]+))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}


def version_priority_key(version: str) -> tuple[int, int, int, str]:
    """Sort key putting the highest Kubernetes version priority first.

    Kube-like versions (`v<N>`, `v<N>beta<M>`, `v<N>alpha<M>`) come first: GA before beta
    before alpha, then higher N first, then higher M first (`v2 > v1 > v2beta1 > v1beta2 >
    v1beta1 > v1alpha1`). Anything else comes last, alphabetically.
    """
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], -int(major), -int(minor or 0), version)


# --- schema cleaning ----------------------------------------------------------------------------

_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_SCALARS = frozenset({"string", "number", "integer", "boolean"})
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_NUMBER_BOUNDS = ("maximum", "minimum", "multipleOf")
_COUNT_BOUNDS = (
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
)
# Keywords that constrain values; dropping one is a loss worth reporting. Annotations
# (x-kubernetes-patch-*, readOnly, example, ...) are dropped silently.
_VALIDATING = frozenset(
    {
        "not",
        "patternProperties",
        "dependencies",
        "additionalItems",
        "uniqueItems",
        "const",
        "if",
        "then",
        "else",
        "contains",
        "prefixItems",
        "dependentRequired",
        "dependentSchemas",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
_ROOT_DROPPED_META = ("apiVersion", "kind", "metadata")
_PRESERVE = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_EMBEDDED = "x-kubernetes-embedded-resource"
_LIST_TYPE = "x-kubernetes-list-type"
_LIST_KEYS = "x-kubernetes-list-map-keys"
_MAP_TYPE = "x-kubernetes-map-type"
_CEL = "x-kubernetes-validations"
_MAX_REF_HOPS = 16


def _unvalidated_object() -> Obj:
    return {"type": "object", _PRESERVE: True}


def clean_schema(
    schema: Any, components: Mapping[str, Any] | None = None
) -> tuple[Obj, tuple[str, ...]]:
    """A CRD `openAPIV3Schema` the apiextensions structural-schema rules accept, and the losses.

    Top level: `type: object` is forced; `$ref`, the `apiVersion`/`kind`/`metadata`
    properties, and everything the status subresource forbids at the root are dropped; with
    no properties left it preserves unknown fields. Below it:

    * a `$ref` (also a single `$ref` in `allOf`/`anyOf`/`oneOf`) becomes an unvalidated value:
      `{type: object, x-kubernetes-preserve-unknown-fields: true}`, or, when the target in
      `components` (the document's `components.schemas`) is a scalar, int-or-string or
      neither object nor scalar, `{type: <scalar>}`, `{x-kubernetes-int-or-string: true}` or
      `{x-kubernetes-preserve-unknown-fields: true}`, so that valid provider values stay valid;
    * a schema without type and without preserve flag becomes an object that preserves
      unknown fields (an array when it has `items`), or int-or-string / the single scalar
      type its `anyOf`/`oneOf` branches name;
    * `allOf`/`anyOf`/`oneOf`/`not`, `uniqueItems: true`, CEL rules, `patternProperties` and
      similar are dropped; `additionalProperties` next to `properties` is dropped;
      `additionalProperties: true` becomes the preserve flag;
    * list and map types the CRD rules would reject (map keys that are not required scalar
      item properties, set items that are not atomic) fall back to atomic lists;
    * a `default` that is not valid for the cleaned schema is dropped;
    * unknown keywords and annotations are dropped; properties are emitted sorted;
    * a schema nested `kbcore.limits.MAX_SCHEMA_DEPTH` levels deep in the result becomes an
      unvalidated value (`kbcore.limits` rule 2), so cleaning walks no deeper and the CRD is
      one kube-bind installs.

    Cleaning is idempotent: `clean_schema(clean_schema(s)[0])[0] == clean_schema(s)[0]`.
    """
    cleaner = _Cleaner(components if isinstance(components, Mapping) else {})
    return cleaner.root(schema), tuple(dict.fromkeys(cleaner.losses))


class _Cleaner:
    def __init__(self, components: Mapping[str, Any]) -> None:
        self.components = components
        self.losses: list[str] = []

    def lose(self, what: str, path: str) -> None:
        self.losses.append(f"{what} at {path or '.'} dropped")

    def root(self, schema: Any) -> Obj:
        s: Mapping[str, Any] = schema if isinstance(schema, Mapping) else {}
        node = self.node(s, "", is_root=True)
        # Only what the status subresource allows at the root survives (validation.go
        # allowedFieldsAtRootSchema), and never nullable, a default or additionalProperties.
        out: Obj = {"type": "object"}
        for key in ("description", "title"):
            if key in node:
                out[key] = node[key]
        for key in (*_NUMBER_BOUNDS, "maxLength", "minLength", "maxItems", "minItems"):
            node.pop(key, None)  # meaningless on an object
        for key in ("maxProperties", "minProperties", "enum", "default"):
            if key in node:
                self.lose(key, "")
        if "additionalProperties" in node:
            self.lose("additionalProperties", "")
        props = node.get("properties")
        if props:
            out["properties"] = props
        required = [r for r in node.get("required", []) if r not in _ROOT_DROPPED_META]
        if required:
            out["required"] = required
        if not props or node.get(_PRESERVE) is True:
            out[_PRESERVE] = True
        return dict(sorted(out.items()))

    def node(self, s: Any, path: str, *, is_root: bool = False, depth: int = 1) -> Obj:
        """The cleaned schema `s`, which sits `depth` levels deep in the output (the root is 1)."""
        if not isinstance(s, Mapping):
            return {_PRESERVE: True}
        if depth > MAX_SCHEMA_DEPTH - 3:
            # kbcore.limits rule 2: nothing deeper is walked or installed. A schema here has
            # its lists one level down and its properties two, which would not fit: the value
            # is kept unvalidated instead.
            self.losses.append(
                f"schema at {path} nests deeper than {MAX_SCHEMA_DEPTH} levels: replaced by "
                "an unvalidated value"
            )
            return {_PRESERVE: True}
        ref = _single_ref(s)
        if ref is not None:
            return self.replace_ref(s, ref, path)
        out: Obj = {}
        for key in ("description", "title"):
            if isinstance(s.get(key), str):
                out[key] = s[key]
        kind = _type_of(s)
        if kind is not None:
            out["type"] = kind
        self.copy_value_validations(s, out, path)
        if s.get("nullable") is True and not is_root:
            out["nullable"] = True
        if s.get(_PRESERVE) is True:
            out[_PRESERVE] = True
        if s.get(_CEL):
            self.losses.append(
                f"CEL validation rules (x-kubernetes-validations) at {path or '.'} dropped"
            )
        for key in sorted(k for k in s if k in _VALIDATING):
            if key == "uniqueItems" and s[key] is not True:
                continue
            self.lose(key, path)
        int_or_string = s.get(_INT_OR_STRING) is True or _is_int_or_string(s)
        branches = [b for c in _COMBINATORS for b in _as_list(s.get(c))]
        if branches and not (int_or_string and _branch_types(branches) <= {"integer", "string"}):
            for c in _COMBINATORS:
                if c in s:
                    self.lose(c, path)
        if int_or_string and not is_root:
            return self.finish_int_or_string(s, out, path)
        if "type" not in out and _PRESERVE not in out:
            inferred = _infer_type(s, branches)
            if inferred == "any":
                out[_PRESERVE] = True
            elif inferred == "int-or-string":
                return self.finish_int_or_string(s, out, path)
            else:
                out["type"] = inferred
                if inferred == "object":
                    out[_PRESERVE] = True
        embedded = (
            s.get(_EMBEDDED) is True and out.get("type", "object") == "object" and not is_root
        )
        if embedded:
            out["type"] = "object"
        self.children(s, out, path, strip_meta=embedded or is_root, depth=depth)
        if embedded:
            out[_EMBEDDED] = True
            if "additionalProperties" in out:
                del out["additionalProperties"]
                self.lose("additionalProperties", path)
            if "properties" not in out:
                out[_PRESERVE] = True
        self.fix_collection_types(s, out, path)
        self.keep_default(s, out, path)
        return dict(sorted(out.items()))

    def finish_int_or_string(self, s: Mapping[str, Any], out: Obj, path: str) -> Obj:
        # int-or-string admits no type, preserve flag or combinators (beyond its own anyOf).
        out.pop("type", None)
        out.pop(_PRESERVE, None)
        for key in ("maxItems", "minItems", "maxProperties", "minProperties"):
            out.pop(key, None)
        out[_INT_OR_STRING] = True
        self.keep_default(s, out, path)
        return dict(sorted(out.items()))

    def copy_value_validations(self, s: Mapping[str, Any], out: Obj, path: str) -> None:
        if isinstance(s.get("format"), str):
            out["format"] = s["format"]
        for key in _NUMBER_BOUNDS:
            value = s.get(key)
            if isinstance(value, (int, float)) and _is_number(value):
                if key == "multipleOf" and value <= 0:
                    continue
                out[key] = value
        for key in ("exclusiveMaximum", "exclusiveMinimum"):
            # OpenAPI 3.0 booleans only; 3.1's numeric form has no CRD equivalent.
            if s.get(key) is True and _is_number(out.get(key.replace("exclusiveM", "m"))):
                out[key] = True
        for key in _COUNT_BOUNDS:
            value = s.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[key] = value
        if isinstance(s.get("pattern"), str):
            out["pattern"] = s["pattern"]
        enum = s.get("enum")
        if isinstance(enum, list) and enum:
            out["enum"] = list(enum)
        required = s.get("required")
        if isinstance(required, list):
            names = sorted({r for r in required if isinstance(r, str)})
            if names:
                out["required"] = names

    def children(
        self, s: Mapping[str, Any], out: Obj, path: str, *, strip_meta: bool, depth: int
    ) -> None:
        props = s.get("properties")
        if isinstance(props, Mapping):
            cleaned = {
                name: self.node(props[name], f"{path}.{name}", depth=depth + 2)
                for name in sorted(k for k in props if isinstance(k, str))
                if not (strip_meta and name in _ROOT_DROPPED_META)
            }
            if cleaned:
                out["properties"] = cleaned
        if strip_meta and "required" in out:
            out["required"] = [r for r in out["required"] if r not in _ROOT_DROPPED_META]
            if not out["required"]:
                del out["required"]
        additional = s.get("additionalProperties")
        if isinstance(additional, Mapping):
            if "properties" in out:
                self.lose("additionalProperties", path)
            else:
                out["additionalProperties"] = self.node(additional, f"{path}.*", depth=depth + 1)
        elif additional is True and out.get("type") in (None, "object"):
            out[_PRESERVE] = True
        items = s.get("items")
        if isinstance(items, Mapping):
            out["items"] = self.node(items, f"{path}[*]", depth=depth + 1)
        elif isinstance(items, list):
            self.lose("items as a list of schemas", path)
            out["items"] = {_PRESERVE: True}
        if out.get("type") == "array" and "items" not in out:
            out["items"] = {_PRESERVE: True}
        if out.get("type") not in (None, "object"):
            out.pop("properties", None)
            out.pop("additionalProperties", None)
        if out.get("type") not in (None, "array"):
            out.pop("items", None)

    def fix_collection_types(self, s: Mapping[str, Any], out: Obj, path: str) -> None:
        map_type = s.get(_MAP_TYPE)
        if map_type in ("atomic", "granular") and out.get("type") == "object":
            out[_MAP_TYPE] = map_type
        list_type = s.get(_LIST_TYPE)
        if out.get("type") != "array" or list_type not in ("atomic", "set", "map"):
            return
        items = out["items"]
        keys = s.get(_LIST_KEYS)
        ok = True
        if list_type in ("set", "map") and items.get("nullable") is True:
            ok = False
        if list_type == "set":
            if items.get("type") == "object" and items.get(_MAP_TYPE) != "atomic":
                ok = False
            if items.get("type") == "array" and items.get(_LIST_TYPE, "atomic") != "atomic":
                ok = False
        if list_type == "map":
            ok = ok and _valid_map_keys(keys, items)
        if not ok:
            self.losses.append(
                f"x-kubernetes-list-type {list_type} at {path or '.'} replaced by atomic"
            )
            return
        out[_LIST_TYPE] = list_type
        if list_type == "map":
            assert isinstance(keys, list)
            out[_LIST_KEYS] = list(keys)

    def keep_default(self, s: Mapping[str, Any], out: Obj, path: str) -> None:
        if "default" not in s:
            return
        if _valid_default(s["default"], out):
            out["default"] = s["default"]
        else:
            self.losses.append(f"default at {path or '.'} dropped: not valid for the schema")

    def replace_ref(self, s: Mapping[str, Any], ref: str, path: str) -> Obj:
        shape = _shape(self.components, ref)
        out: Obj
        if shape in _SCALARS:
            out, what = {"type": shape}, f"unvalidated {shape}"
        elif shape == "int-or-string":
            out, what = {_INT_OR_STRING: True}, "unvalidated int-or-string"
        elif shape == "any":
            out, what = {_PRESERVE: True}, "unvalidated value"
        else:
            out, what = _unvalidated_object(), "unvalidated object"
        self.losses.append(f"$ref at {path or '.'} replaced by an {what}")
        for key in ("description", "title"):
            if isinstance(s.get(key), str):
                out[key] = s[key]
        if s.get("nullable") is True:
            out["nullable"] = True
        self.keep_default(s, out, path)
        return dict(sorted(out.items()))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _type_of(s: Mapping[str, Any]) -> str | None:
    """The schema's type if it is one CRDs accept (values are untrusted, maybe unhashable)."""
    kind = s.get("type")
    return kind if isinstance(kind, str) and kind in _TYPES else None


def _single_ref(s: Mapping[str, Any]) -> str | None:
    """The target of a `$ref` schema, or of `allOf`/`anyOf`/`oneOf` holding one `$ref` only."""
    if isinstance(s.get("$ref"), str):
        return str(s["$ref"])
    if "$ref" in s:
        return ""
    for key in _COMBINATORS:
        branches = s.get(key)
        others = [c for c in _COMBINATORS if c != key and s.get(c)]
        if (
            isinstance(branches, list)
            and len(branches) == 1
            and isinstance(branches[0], Mapping)
            and "$ref" in branches[0]
            and not others
        ):
            target = branches[0]["$ref"]
            return target if isinstance(target, str) else ""
    return None


def _branch_types(branches: list[Any]) -> set[str]:
    return {(_type_of(b) if isinstance(b, Mapping) else None) or "?" for b in branches}


def _is_int_or_string(s: Mapping[str, Any]) -> bool:
    """Untyped with `anyOf`/`oneOf` of exactly integer and string, or format int-or-string."""
    if _type_of(s) is not None:
        return False
    if s.get("format") == "int-or-string":
        return True
    return any(
        isinstance(s.get(c), list)
        and len(s[c]) == 2
        and _branch_types(s[c]) == {"integer", "string"}
        for c in ("anyOf", "oneOf")
    )


def _infer_type(s: Mapping[str, Any], branches: list[Any]) -> str:
    """What an untyped schema is: object (the spec's default), array, a scalar its branches
    all name, int-or-string, or "any" when branches disagree."""
    if "items" in s or _LIST_TYPE in s:
        return "array"
    if branches and not _has_object_structure(s):
        types = _branch_types(branches)
        if types == {"integer", "string"}:
            return "int-or-string"
        if len(types) == 1 and types <= _TYPES:
            return next(iter(types))
        return "any"
    return "object"


def _has_object_structure(s: Mapping[str, Any]) -> bool:
    props = s.get("properties")
    has_props = isinstance(props, Mapping) and bool(props)
    return has_props or isinstance(s.get("additionalProperties"), Mapping)


def _shape(components: Mapping[str, Any], ref: str) -> str:
    """What a `#/components/schemas/<name>` target holds: a scalar type, "int-or-string",
    "object" (also for targets we cannot resolve, the spec's default) or "any"."""
    prefix = "#/components/schemas/"
    for _ in range(_MAX_REF_HOPS):
        if not ref.startswith(prefix):
            return "object"
        target = components.get(ref[len(prefix) :])
        if not isinstance(target, Mapping):
            return "object"
        nested = _single_ref(target)
        if nested is None:
            break
        ref = nested
    else:
        return "object"
    kind = _type_of(target)
    if kind in _SCALARS:
        return str(kind)
    if kind in ("object", "array"):
        return "object" if kind == "object" else "any"
    if target.get(_INT_OR_STRING) is True or _is_int_or_string(target):
        return "int-or-string"
    branches = [b for c in _COMBINATORS for b in _as_list(target.get(c))]
    if branches and not _has_object_structure(target):
        types = _branch_types(branches)
        return next(iter(types)) if len(types) == 1 and types <= _SCALARS else "any"
    return "object"


def _valid_map_keys(keys: Any, items: Mapping[str, Any]) -> bool:
    """CRD rules for `x-kubernetes-list-type: map`: object items whose key properties exist,
    are scalar, unique, required or defaulted, and not nullable."""
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        return False
    if len(set(keys)) != len(keys) or items.get("type") != "object":
        return False
    props = items.get("properties") or {}
    required = set(items.get("required") or [])
    for key in keys:
        prop = props.get(key)
        if not isinstance(prop, Mapping) or prop.get("type") in ("array", "object"):
            return False
        if prop.get("nullable") is True or (key not in required and "default" not in prop):
            return False
    return True


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: _is_number(v),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _valid_default(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether `value` is valid and already pruned for a cleaned schema (apiextensions
    validates defaults and requires them pruned). Conservative: a check we cannot make
    exactly (patterns, formats) rejects the default."""
    if value is None:
        return schema.get("nullable") is True
    int_or_string = isinstance(value, str) or _TYPE_CHECKS["integer"](value)
    if schema.get(_INT_OR_STRING) is True and not int_or_string:
        return False
    kind = schema.get("type")
    if isinstance(kind, str) and not _TYPE_CHECKS[kind](value):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, str) and not _matches(value, schema):
        return False
    if _is_number(value) and not _valid_number(value, schema):
        return False
    if isinstance(value, (str, list, dict)) and not _valid_size(value, schema):
        return False
    if isinstance(value, list):
        items = schema.get("items")
        return (
            isinstance(items, Mapping)
            and all(_valid_default(v, items) for v in value)
            and (schema.get(_LIST_TYPE) not in ("set", "map"))
        )
    if isinstance(value, dict):
        return _valid_object_default(value, schema)
    return True


def _matches(value: str, schema: Mapping[str, Any]) -> bool:
    # Go's RE2 and Python agree on the patterns CRDs use; a pattern Python cannot compile
    # rejects the default. An empty string satisfies no string format the server checks.
    if value == "" and "format" in schema:
        return False
    pattern = schema.get("pattern")
    if not isinstance(pattern, str):
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def _valid_number(value: float, schema: Mapping[str, Any]) -> bool:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
        return False
    if high is not None and (value > high or (schema.get("exclusiveMaximum") and value == high)):
        return False
    step = schema.get("multipleOf")
    return step is None or (value / step).is_integer()


def _valid_size(value: str | list[Any] | dict[str, Any], schema: Mapping[str, Any]) -> bool:
    prefix = {str: "Length", list: "Items", dict: "Properties"}[type(value)]
    low, high = schema.get(f"min{prefix}"), schema.get(f"max{prefix}")
    size = len(value)
    return (low is None or size >= low) and (high is None or size <= high)


def _valid_object_default(value: dict[str, Any], schema: Mapping[str, Any]) -> bool:
    if schema.get(_EMBEDDED) is True:
        return False  # embedded metadata rules; not worth modelling for a default
    props = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    if any(name not in value for name in schema.get("required") or []):
        return False
    for key, child in value.items():
        if key in props:
            if not _valid_default(child, props[key]):
                return False
        elif isinstance(additional, Mapping):
            if not _valid_default(child, additional):
                return False
        elif schema.get(_PRESERVE) is not True:
            return False  # would be pruned
    return True


# --- synthesis ----------------------------------------------------------------------------------


@attrs.frozen
class _Version:
    """One served version of a resource, as discovery and OpenAPI describe it."""

    version: str
    entry: Mapping[str, Any]
    subresources: tuple[str, ...]
    schema: Obj
    losses: tuple[str, ...]


def synthesize(observed: Observed, cluster: str) -> Synthesis:
    """The consumer CRDs for every non-built-in API `cluster` serves.

    Raises `kbcore.reads.Missing` listing the reads still needed (each round asks for
    everything it can at once), or an ApiError when a needed document failed in a way that
    makes synthesis impossible: `/apis`, the `/openapi/v3` index, or every per-group-version
    discovery document.
    """
    groups = _groups(_document(need(observed, Discovery(cluster, "/apis"))))
    preferred = {name: pref for name, _, pref in groups}
    gvs = sorted({(name, v) for name, versions, _ in groups for v in versions})
    if not gvs:
        return Synthesis((), ())
    discovery_reads = tuple(Discovery(cluster, f"/apis/{g}/{v}") for g, v in gvs)
    index_read = OpenAPIDoc(cluster, "/openapi/v3")
    results = need_all(observed, (*discovery_reads, index_read))
    index = _document(results[-1])
    skipped: list[tuple[str, str]] = []
    lists: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    failures = []
    for (group, version), result in zip(gvs, results[:-1], strict=True):
        if isinstance(result, Failed):
            failures.append(result)
            skipped.append((f"{group}/{version}", f"discovery failed: {result.error}"))
            continue
        resources = result.get("resources") if isinstance(result, Mapping) else None
        lists[(group, version)] = [r for r in _as_list(resources) if isinstance(r, Mapping)]
    if failures and len(failures) == len(gvs):
        raise failures[0].error
    paths = index.get("paths")
    paths = paths if isinstance(paths, Mapping) else {}
    doc_reads: dict[tuple[str, str], Read] = {}
    for (group, version), resources in sorted(lists.items()):
        if not any("/" not in str(r.get("name", "")) for r in resources):
            continue
        entry = paths.get(f"apis/{group}/{version}")
        if not isinstance(entry, Mapping):
            skipped.append((f"{group}/{version}", "not in the OpenAPI v3 index"))
            continue
        url = entry.get("serverRelativeURL")
        path = url.split("?", 1)[0] if isinstance(url, str) and url else ""
        doc_reads[(group, version)] = OpenAPIDoc(
            cluster, path or f"/openapi/v3/apis/{group}/{version}"
        )
    docs = dict(zip(doc_reads, need_all(observed, tuple(doc_reads.values())), strict=True))
    by_resource: dict[tuple[str, str], list[_Version]] = {}
    for (group, version), doc in sorted(docs.items()):
        if isinstance(doc, Failed):
            skipped.append((f"{group}/{version}", f"OpenAPI document failed: {doc.error}"))
            continue
        found, missing = _versions(group, version, lists[(group, version)], _document(doc))
        skipped.extend(missing)
        for resource, v in found:
            by_resource.setdefault((group, resource), []).append(v)
    apis = [
        _crd(group, resource, versions, preferred.get(group, ""))
        for (group, resource), versions in sorted(by_resource.items())
    ]
    return Synthesis(
        tuple(sorted(apis, key=lambda a: str(a.crd["metadata"]["name"]))),
        tuple(sorted(set(skipped))),
    )


def _document(result: Any) -> Mapping[str, Any]:
    """A document result; a failure is raised as its ApiError, anything else reads as empty."""
    if isinstance(result, Failed):
        raise result.error
    return result if isinstance(result, Mapping) else {}


def _groups(apis: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], str]]:
    """(group, versions, preferred version) for every non-built-in group in an APIGroupList."""
    out = []
    for group in _as_list(apis.get("groups")):
        if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
            continue
        name = group["name"]
        if is_builtin_group(name):
            continue
        versions = tuple(
            sorted(
                {
                    v["version"]
                    for v in _as_list(group.get("versions"))
                    if isinstance(v, Mapping) and isinstance(v.get("version"), str)
                }
            )
        )
        pref = group.get("preferredVersion")
        pref_version = pref.get("version") if isinstance(pref, Mapping) else None
        out.append((name, versions, pref_version if isinstance(pref_version, str) else ""))
    return out


def _versions(
    group: str, version: str, resources: list[Mapping[str, Any]], doc: Mapping[str, Any]
) -> tuple[list[tuple[str, _Version]], list[tuple[str, str]]]:
    """The resources of one group-version with their cleaned schemas, and what was skipped."""
    components = doc.get("components")
    schemas = components.get("schemas") if isinstance(components, Mapping) else None
    schemas = schemas if isinstance(schemas, Mapping) else {}
    subresources: dict[str, set[str]] = {}
    for r in resources:
        name = str(r.get("name", ""))
        if "/" in name:
            parent, sub = name.split("/", 1)
            subresources.setdefault(parent, set()).add(sub)
    found: list[tuple[str, _Version]] = []
    skipped: list[tuple[str, str]] = []
    for r in sorted(resources, key=lambda r: str(r.get("name", ""))):
        name, kind = str(r.get("name", "")), r.get("kind")
        if not name or "/" in name:
            continue
        what = f"{name}.{group}/{version}"
        if "." not in group:
            skipped.append((what, "a CRD group needs at least one dot"))
            continue
        if not isinstance(kind, str) or not kind:
            skipped.append((what, "discovery lists no kind"))
            continue
        schema = _find_schema(schemas, group, version, kind)
        if schema is None:
            skipped.append(
                (
                    what,
                    f"no schema with x-kubernetes-group-version-kind {group}/{version}, "
                    f"Kind={kind}",
                )
            )
            continue
        cleaned, losses = clean_schema(schema, schemas)
        subs = tuple(sorted(subresources.get(name, ())))
        found.append((name, _Version(version, r, subs, cleaned, losses)))
    return found, skipped


def _find_schema(
    schemas: Mapping[str, Any], group: str, version: str, kind: str
) -> Mapping[str, Any] | None:
    want = {"group": group, "version": version, "kind": kind}
    for name in sorted(k for k in schemas if isinstance(k, str)):
        schema = schemas[name]
        if not isinstance(schema, Mapping):
            continue
        for gvk in _as_list(schema.get("x-kubernetes-group-version-kind")):
            if isinstance(gvk, Mapping) and {k: gvk.get(k) for k in want} == want:
                return schema
    return None


def _crd(group: str, resource: str, versions: list[_Version], preferred: str) -> SynthesizedAPI:
    versions = sorted(versions, key=lambda v: version_priority_key(v.version))
    names = [v.version for v in versions]
    storage = preferred if preferred in names else names[0]
    entry = next(v.entry for v in versions if v.version == storage)
    kind = str(entry["kind"])
    crd_names: Obj = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": resource,
        "singular": entry.get("singularName") or kind.lower(),
    }
    for key in ("shortNames", "categories"):
        values = [x for x in _as_list(entry.get(key)) if isinstance(x, str) and x]
        if values:
            crd_names[key] = values
    losses = [PRINTER_COLUMNS_LOSS]
    if len(versions) > 1:
        losses.append(CONVERSION_LOSS)
    crd_versions = []
    for v in versions:
        out: Obj = {
            "name": v.version,
            "schema": {"openAPIV3Schema": v.schema},
            "served": True,
            "storage": v.version == storage,
        }
        if "status" in v.subresources:
            out["subresources"] = {"status": {}}
        crd_versions.append(out)
        for sub in v.subresources:
            if sub == "scale":
                losses.append(f"{v.version}: " + SCALE_LOSS.format(name=f"{resource}/scale"))
            elif sub != "status":
                losses.append(f"{v.version}: " + SUBRESOURCE_LOSS.format(name=f"{resource}/{sub}"))
        losses.extend(f"{v.version}: {loss}" for loss in v.losses)
    crd: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{resource}.{group}"},
        "spec": {
            "conversion": {"strategy": "None"},
            "group": group,
            "names": crd_names,
            "scope": "Namespaced" if entry.get("namespaced") is True else "Cluster",
            "versions": crd_versions,
        },
    }
    crd["spec"]["names"] = dict(sorted(crd_names.items()))
    return SynthesizedAPI(crd, tuple(dict.fromkeys(losses)))
