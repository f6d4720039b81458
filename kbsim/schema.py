"""Custom resources against their CRD's structural schema, and CRDs against the CRD rules.

What apiextensions-apiserver does to a custom resource, in its order:

1. **Prune** unknown fields (everywhere except below `x-kubernetes-preserve-unknown-fields`);
   `apiVersion`, `kind` and `metadata` are always kept at the root and in embedded resources,
   and `metadata` is reduced to the fields of ObjectMeta.
2. **Default**: a missing property with a `default` gets it (only where its parent exists); a
   `null` in a non-nullable field is replaced by its default, or dropped if it has none.
3. **Validate**: types, `enum`, `required`, numeric and length bounds, `pattern`, item counts,
   `nullable`, and uniqueness of `set`/`map` lists. Messages follow kube-openapi's wording
   (`spec.size in body must be of type integer: "string"`).

Not modelled: CEL rules (`x-kubernetes-validations`), `format` checks, `oneOf`/`anyOf`/`allOf`/
`not`, `uniqueItems`, ratcheting of unchanged invalid fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kbcore import objects as o
from kbcore.selectors import dns1123_label_errors, dns1123_subdomain_errors
from kbsim.apierrors import (
    FieldError,
    duplicate,
    immutable,
    invalid_value,
    not_supported,
    required,
    too_long,
    type_invalid,
)

OBJECT_META_FIELDS = frozenset(o.OBJECT_META_FIELDS)


def prune_metadata(meta: Any) -> Any:
    if not isinstance(meta, dict):
        return meta
    return {k: v for k, v in meta.items() if k in OBJECT_META_FIELDS}


def _preserves(schema: Mapping[str, Any]) -> bool:
    return schema.get("x-kubernetes-preserve-unknown-fields") is True


def prune(obj: dict[str, Any], schema: Mapping[str, Any], *, share: bool = False) -> dict[str, Any]:
    """A custom resource with unknown fields removed. Containers on schema paths are always
    new; values the schema does not describe are deep-copied, or shared with `share=True`."""
    out = o.run_walk(_prune(obj, schema, share, root=True))
    return out if isinstance(out, dict) else {}


# The walks below follow the schema as deep as the object goes, and a schema (like an object)
# may nest as deep as an API server stores (kbcore.limits.MAX_JSON_DEPTH): each is a
# `kbcore.objects.Walk`, which yields where it would recurse, run by `o.run_walk`.


def _prune(
    value: Any, schema: Mapping[str, Any], share: bool, *, root: bool = False
) -> o.Walk[Any]:
    def keep(v: Any) -> Any:
        return v if share else o.deepcopy(v)

    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            pruned = []
            for v in value:
                pruned.append((yield _prune(v, items, share)))
            return pruned
        return keep(value)
    if not isinstance(value, dict):
        return keep(value)
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    additional = schema.get("additionalProperties")
    keep_all = _preserves(schema) or additional is True
    embedded = root or schema.get("x-kubernetes-embedded-resource") is True
    out: dict[str, Any] = {}
    for key, child in value.items():
        if embedded and key in ("apiVersion", "kind"):
            out[key] = keep(child)
        elif embedded and key == "metadata":
            out[key] = prune_metadata(child) if root else keep(child)
        elif key in props:
            out[key] = yield _prune(child, props[key], share)
        elif isinstance(additional, Mapping):
            out[key] = yield _prune(child, additional, share)
        elif keep_all:
            out[key] = keep(child)
    return out


def default(obj: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with schema defaults applied and non-nullable nulls defaulted or dropped."""
    return default_in_place(o.deepcopy(obj), schema)


def default_in_place(obj: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """`default` without the copy: only for the fresh containers `prune` returns (defaulting
    only writes into containers on schema paths)."""
    o.run_walk(_default(obj, schema, root=True))
    return obj


def _default(value: Any, schema: Mapping[str, Any], *, root: bool = False) -> o.Walk[None]:
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in value:
                yield _default(item, items)
        return
    if not isinstance(value, dict):
        return
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for key, sub in props.items():
            if not isinstance(sub, Mapping) or (root and key in ("metadata", "apiVersion", "kind")):
                continue
            if key not in value and "default" in sub:
                value[key] = o.deepcopy(sub["default"])
            elif key in value and value[key] is None and not sub.get("nullable"):
                if "default" in sub:
                    value[key] = o.deepcopy(sub["default"])
                else:
                    del value[key]
                    continue
            if key in value:
                yield _default(value[key], sub)
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        for key in list(value):
            if isinstance(props, Mapping) and key in props:
                continue
            yield _default(value[key], additional)


_JSON_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "object")


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    return True


def validate(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> list[FieldError]:
    """Schema errors of a (pruned, defaulted) custom resource."""
    errs: list[FieldError] = []
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    for key in sorted(obj):
        if key in ("apiVersion", "kind", "metadata") or key not in props:
            continue
        o.run_walk(_validate(obj[key], props[key], key, errs))
    for name in schema.get("required") or []:
        if name not in obj and name not in ("apiVersion", "kind", "metadata"):
            errs.append(required(name))
    return errs


def _validate(
    value: Any, schema: Mapping[str, Any], path: str, errs: list[FieldError]
) -> o.Walk[None]:
    if not isinstance(schema, Mapping):
        return
    if value is None:
        if not schema.get("nullable") and schema.get("type"):
            errs.append(
                type_invalid(
                    path, "null", f'{path} in body must be of type {schema["type"]}: "null"'
                )
            )
        return
    int_or_string = isinstance(value, (int, str)) and not isinstance(value, bool)
    if schema.get("x-kubernetes-int-or-string") and not int_or_string:
        actual = _json_type(value)
        detail = f'{path} in body must be of type integer or string: "{actual}"'
        errs.append(type_invalid(path, actual, detail))
        return
    kind = schema.get("type")
    if isinstance(kind, str) and kind and not _type_ok(value, kind):
        actual = _json_type(value)
        errs.append(
            type_invalid(path, actual, f'{path} in body must be of type {kind}: "{actual}"')
        )
        return
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(o.json_equal(value, e) for e in enum):
        errs.append(not_supported(path, value, [str(e) for e in enum]))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, schema, path, errs)
    if isinstance(value, str):
        _validate_string(value, schema, path, errs)
    if isinstance(value, list):
        yield from _validate_list(value, schema, path, errs)
    if isinstance(value, dict):
        yield from _validate_object(value, schema, path, errs)


def _validate_number(
    value: float, schema: Mapping[str, Any], path: str, errs: list[FieldError]
) -> None:
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    if isinstance(minimum, (int, float)):
        if schema.get("exclusiveMinimum") and value <= minimum:
            errs.append(
                invalid_value(path, value, f"{path} in body should be greater than {minimum}")
            )
        elif value < minimum:
            errs.append(
                invalid_value(
                    path, value, f"{path} in body should be greater than or equal to {minimum}"
                )
            )
    if isinstance(maximum, (int, float)):
        if schema.get("exclusiveMaximum") and value >= maximum:
            errs.append(invalid_value(path, value, f"{path} in body should be less than {maximum}"))
        elif value > maximum:
            errs.append(
                invalid_value(
                    path, value, f"{path} in body should be less than or equal to {maximum}"
                )
            )
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple and value % multiple:
        errs.append(
            invalid_value(path, value, f"{path} in body should be a multiple of {multiple}")
        )


def _validate_string(
    value: str, schema: Mapping[str, Any], path: str, errs: list[FieldError]
) -> None:
    max_length, min_length = schema.get("maxLength"), schema.get("minLength")
    if isinstance(max_length, int) and len(value) > max_length:
        errs.append(too_long(path, f"may not be more than {max_length} bytes"))
    if isinstance(min_length, int) and len(value) < min_length:
        errs.append(
            invalid_value(path, value, f"{path} in body should be at least {min_length} chars long")
        )
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True
        if not matched:
            errs.append(invalid_value(path, value, f"{path} in body should match '{pattern}'"))


def _validate_list(
    value: list[Any], schema: Mapping[str, Any], path: str, errs: list[FieldError]
) -> o.Walk[None]:
    _check_size(len(value), schema.get("maxItems"), schema.get("minItems"), "items", path, errs)
    list_type = schema.get("x-kubernetes-list-type")
    seen: list[Any] = []
    for i, item in enumerate(value):
        if list_type == "set":
            if any(o.json_equal(item, s) for s in seen):
                errs.append(duplicate(f"{path}[{i}]", item))
            seen.append(item)
        elif list_type == "map" and isinstance(item, dict):
            keys = schema.get("x-kubernetes-list-map-keys") or []
            key = {k: item.get(k) for k in keys}
            if any(o.json_equal(key, s) for s in seen):
                errs.append(duplicate(f"{path}[{i}]", key))
            seen.append(key)
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            yield _validate(item, items, f"{path}[{i}]", errs)


def _validate_object(
    value: dict[str, Any], schema: Mapping[str, Any], path: str, errs: list[FieldError]
) -> o.Walk[None]:
    props = schema.get("properties")
    props = props if isinstance(props, Mapping) else {}
    for key in sorted(value):
        if key in props:
            yield _validate(value[key], props[key], f"{path}.{key}", errs)
        elif isinstance(schema.get("additionalProperties"), Mapping):
            yield _validate(value[key], schema["additionalProperties"], f"{path}[{key}]", errs)
    for name in schema.get("required") or []:
        if name not in value:
            errs.append(required(f"{path}.{name}"))
    most, least = schema.get("maxProperties"), schema.get("minProperties")
    _check_size(len(value), most, least, "properties", path, errs)


def _check_size(
    size: int, most: Any, least: Any, unit: str, path: str, errs: list[FieldError]
) -> None:
    """maxItems/minItems or maxProperties/minProperties. The real "Too many" message says
    "items" for both."""
    if isinstance(most, int) and size > most:
        errs.append(FieldError("Too many", path, size, f"must have at most {most} items"))
    if isinstance(least, int) and size < least:
        errs.append(
            invalid_value(path, size, f"{path} in body should have at least {least} {unit}")
        )


# --- CustomResourceDefinitions ------------------------------------------------------------------

APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

_DNS1035_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def is_protected_group(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def default_crd(crd: dict[str, Any]) -> None:
    """`SetDefaults_CustomResourceDefinitionSpec`, copy-on-write: only `crd` itself and the
    containers it changes are replaced, nested values are never mutated."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    spec = dict(spec)
    crd["spec"] = spec
    names = spec.get("names")
    if isinstance(names, dict):
        kind = names.get("kind")
        if isinstance(kind, str) and kind and not ("singular" in names and "listKind" in names):
            names = dict(names)
            names.setdefault("singular", kind.lower())
            names.setdefault("listKind", kind + "List")
            spec["names"] = names
    conversion = spec.get("conversion")
    if conversion is None:
        spec["conversion"] = {"strategy": "None"}
    elif isinstance(conversion, dict) and "strategy" not in conversion:
        spec["conversion"] = {**conversion, "strategy": "None"}


def validate_crd(crd: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    meta = crd.get("metadata") or {}
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return [required("spec")]
    group = spec.get("group") or ""
    names = spec.get("names") if isinstance(spec.get("names"), Mapping) else {}
    assert isinstance(names, Mapping)
    plural = names.get("plural") or ""
    name = meta.get("name") or ""
    if name != f"{plural}.{group}":
        errs.append(
            invalid_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    if not group:
        errs.append(required("spec.group"))
    else:
        errs += [invalid_value("spec.group", group, m) for m in dns1123_subdomain_errors(group)]
        if "." not in group:
            errs.append(
                invalid_value("spec.group", group, "should be a domain with at least one dot")
            )
    if is_protected_group(group):
        approval = (meta.get("annotations") or {}).get(APPROVAL_ANNOTATION)
        field = f"metadata.annotations[{APPROVAL_ANNOTATION}]"
        if not approval:
            errs.append(
                required(
                    field,
                    f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", '
                    "see https://github.com/kubernetes/enhancements/pull/1111",
                )
            )
    scope = spec.get("scope") or ""
    if not scope:
        errs.append(required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    for field in ("plural", "singular"):
        value = names.get(field) or ""
        if not value and field == "plural":
            errs.append(required("spec.names.plural"))
        elif value:
            errs += [
                invalid_value(f"spec.names.{field}", value, m) for m in dns1123_label_errors(value)
            ]
    for field in ("kind", "listKind"):
        if not names.get(field):
            errs.append(required(f"spec.names.{field}"))
    errs += _validate_versions(spec.get("versions"))
    if old is not None:
        errs += _validate_crd_update(crd, old)
    return errs


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(
        isinstance(c, Mapping) and c.get("type") == "Established" and c.get("status") == "True"
        for c in conditions
    )


def _validate_crd_update(crd: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """`validateCustomResourceDefinitionSpecUpdate` and the stored-versions rule: scope and
    names.kind are immutable once the old CRD is Established, group and names.plural always; a
    version in status.storedVersions must stay in spec.versions."""
    errs: list[FieldError] = []
    spec, old_spec = crd.get("spec") or {}, old.get("spec") or {}
    names, old_names = spec.get("names") or {}, old_spec.get("names") or {}
    if _established(old):
        if old_spec.get("scope") != spec.get("scope"):
            errs.append(immutable("spec.scope", spec.get("scope") or ""))
        if old_names.get("kind") != names.get("kind"):
            errs.append(immutable("spec.names.kind", names.get("kind") or ""))
    if old_spec.get("group") != spec.get("group"):
        errs.append(immutable("spec.group", spec.get("group") or ""))
    if old_names.get("plural") != names.get("plural"):
        errs.append(immutable("spec.names.plural", names.get("plural") or ""))
    stored = (crd.get("status") or {}).get("storedVersions") or []
    versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping)]
    if not stored:
        return [*errs, invalid_value("status.storedVersions", [], STORED_VERSION_REQUIRED)]
    listed = {v.get("name") for v in versions}
    for v in versions:
        if v.get("storage") is True and v.get("name") not in stored:
            errs.append(
                invalid_value(
                    "status.storedVersions", stored, f"must have the storage version {v['name']}"
                )
            )
    for i, name in enumerate(stored):
        if name not in listed:
            errs.append(
                invalid_value(f"status.storedVersions[{i}]", name, _stored_version_kept(name))
            )
    return errs


STORED_VERSION_REQUIRED = "must have at least one stored version"


def _stored_version_kept(v: str) -> str:
    return (
        f"missing from spec.versions; {v} was previously a storage version, and must remain in "
        f"spec.versions until a storage migration ensures no data remains persisted in {v} and "
        f"removes {v} from status.storedVersions"
    )


def _validate_versions(versions: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(versions, list) or not versions:
        return [
            invalid_value(
                "spec.versions",
                versions or [],
                "must have exactly one version marked as storage version",
            )
        ]
    names: list[str] = []
    storage = 0
    served = 0
    for i, version in enumerate(versions):
        base = f"spec.versions[{i}]"
        if not isinstance(version, Mapping):
            errs.append(invalid_value(base, version, "must be an object"))
            continue
        vname = version.get("name") or ""
        if not vname:
            errs.append(required(f"{base}.name"))
        elif not _DNS1035_RE.match(vname) or len(vname) > 63:
            errs.append(invalid_value(f"{base}.name", vname, _DNS1035_MSG))
        if vname in names:
            errs.append(duplicate(f"{base}.name", vname))
        names.append(vname)
        storage += 1 if version.get("storage") is True else 0
        served += 1 if version.get("served") is True else 0
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        field = f"{base}.schema.openAPIV3Schema"
        if not isinstance(schema, Mapping):
            errs.append(required(field, "schemas are required"))
            continue
        root_type = schema.get("type")
        if not root_type:
            errs.append(required(f"{field}.type", "must not be empty at the root"))
        elif root_type != "object":
            errs.append(not_supported(f"{field}.type", root_type, ["object"]))
        o.run_walk(_structural(schema, field, errs, root=True))
    if storage != 1:
        errs.append(
            invalid_value(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )
    if served == 0:
        errs.append(
            invalid_value(
                "spec.versions", versions, "must have at least one version marked as served"
            )
        )
    return errs


def _untyped(schema: Mapping[str, Any]) -> bool:
    """No type, and neither preserve-unknown-fields nor int-or-string stands in for one."""
    return (
        not schema.get("type")
        and not _preserves(schema)
        and not schema.get("x-kubernetes-int-or-string")
    )


def _structural(
    schema: Mapping[str, Any], path: str, errs: list[FieldError], *, root: bool = False
) -> o.Walk[None]:
    """The structural-schema rule that trips people most: every specified field has a type."""
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for key in sorted(props):
            sub = props[key]
            sub_path = f"{path}.properties[{key}]"
            if not isinstance(sub, Mapping):
                continue
            if root and key == "metadata":
                continue
            if _untyped(sub):
                errs.append(
                    required(f"{sub_path}.type", "must not be empty for specified object fields")
                )
            yield _structural(sub, sub_path, errs)
    items = schema.get("items")
    if isinstance(items, Mapping):
        if _untyped(items):
            errs.append(
                required(f"{path}.items.type", "must not be empty for specified array items")
            )
        yield _structural(items, f"{path}.items", errs)
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        yield _structural(additional, f"{path}.additionalProperties", errs)
