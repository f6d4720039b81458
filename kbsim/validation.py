"""Validation of object metadata and of the built-in kinds kbsim serves.

Each function returns a list of `FieldError`s in the order kube-apiserver reports them (map
iteration, random in Go, is sorted here). Messages quote k8s.io/apimachinery validation and the
per-kind `validation.go` files of kubernetes/pkg/apis; only the checks a controller can trip are
modelled (see the module docstring of kbsim.apiserver for what is not).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from kbcore.selectors import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    qualified_name_errors,
)
from kbsim.apierrors import (
    FieldError,
    forbidden_field,
    immutable,
    invalid_value,
    not_supported,
    required,
    too_long,
)

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
MAX_SECRET_SIZE = 1024 * 1024


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return dns1123_subdomain_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return dns1123_label_errors(_mask_trailing_dash(name) if prefix else name)


def path_segment_name(name: str, prefix: bool) -> list[str]:
    """`path.ValidatePathSegmentName` (RBAC object names may contain ':')."""
    errs: list[str] = []
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    for bad in ("/", "%"):
        if bad in name:
            errs.append(f"may not contain '{bad}'")
    return errs


def validate_object_meta(
    meta: Mapping[str, Any], *, namespaced: bool, name_fn: NameFn
) -> list[FieldError]:
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs += [
            invalid_value("metadata.generateName", generate_name, m)
            for m in name_fn(generate_name, True)
        ]
    name = meta.get("name") or ""
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    else:
        errs += [invalid_value("metadata.name", name, m) for m in name_fn(name, False)]
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required("metadata.namespace"))
        else:
            errs += [
                invalid_value("metadata.namespace", namespace, m)
                for m in dns1123_label_errors(namespace)
            ]
    elif namespace:
        errs.append(forbidden_field("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errs.append(
            invalid_value("metadata.generation", generation, "must be greater than or equal to 0")
        )
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += _validate_annotations(meta.get("annotations"))
    errs += _validate_owner_references(meta.get("ownerReferences"))
    errs += _validate_finalizers(meta.get("finalizers"))
    return errs


def validate_labels(labels: Any, field: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(labels, Mapping):
        return errs
    for key in sorted(labels):
        errs += [invalid_value(field, key, m) for m in qualified_name_errors(key)]
        value = labels[key]
        if not isinstance(value, str):
            errs.append(invalid_value(field, value, "label values must be strings"))
            continue
        errs += [invalid_value(field, value, m) for m in label_value_errors(value)]
    return errs


def _validate_annotations(annotations: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(annotations, Mapping):
        return errs
    total = 0
    for key in sorted(annotations):
        errs += [
            invalid_value("metadata.annotations", key, m)
            for m in qualified_name_errors(key.lower())
        ]
        value = annotations[key]
        total += len(key) + len(value if isinstance(value, str) else "")
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(
            too_long(
                "metadata.annotations", f"must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"
            )
        )
    return errs


def _validate_owner_references(refs: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(refs, list):
        return errs
    controllers = 0
    for ref in refs:
        if not isinstance(ref, Mapping):
            errs.append(invalid_value("metadata.ownerReferences", ref, "must be an object"))
            continue
        for key, label in (
            ("apiVersion", "version"),
            ("kind", "kind"),
            ("name", "name"),
            ("uid", "uid"),
        ):
            if not ref.get(key):
                errs.append(
                    invalid_value(
                        f"metadata.ownerReferences.{key}", "", f"{label} must not be empty"
                    )
                )
        if ref.get("controller") is True:
            controllers += 1
    if controllers > 1:
        errs.append(
            invalid_value(
                "metadata.ownerReferences",
                refs,
                "Only one reference can have Controller set to true",
            )
        )
    return errs


def _validate_finalizers(finalizers: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(finalizers, list):
        return errs
    for finalizer in finalizers:
        if not isinstance(finalizer, str):
            errs.append(invalid_value("metadata.finalizers", finalizer, "must be a string"))
            continue
        errs += [
            invalid_value("metadata.finalizers", finalizer, m)
            for m in qualified_name_errors(finalizer)
        ]
    return errs


def validate_object_meta_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[FieldError]:
    """`ValidateObjectMetaUpdate`: immutables and no new finalizers on a deleting object."""
    errs: list[FieldError] = []
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
        if (new.get(key) or "") != (old.get(key) or ""):
            errs.append(immutable(f"metadata.{key}", new.get(key) or ""))
    if old.get("deletionTimestamp"):
        before = set(old.get("finalizers") or [])
        extra = sorted(set(new.get("finalizers") or []) - before)
        if extra:
            quoted = ", ".join(f'"{f}"' for f in extra)
            errs.append(
                forbidden_field(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers []string{{{quoted}}}",
                )
            )
    return errs


# --- Secrets and ConfigMaps ---------------------------------------------------------------------

_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
    "regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _config_key_errors(key: str) -> list[str]:
    errs: list[str] = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY_RE.match(key):
        errs.append(_CONFIG_KEY_MSG)
    if key in (".", ".."):
        errs.append(f"must not be '{key}'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_JSON_KINDS = (
    (bool, "bool"),
    (int, "number"),
    (float, "number"),
    (dict, "object"),
    (list, "array"),
)


def go_base64_error(text: str) -> int | None:
    """The offset Go's `base64.StdEncoding.Decode` reports (`illegal base64 data at input byte
    N`) for `text`, or None if it decodes. CR and LF are skipped, as Go does."""
    src = text.encode()
    si = 0
    while si < len(src):
        j = 0
        while j < 4:
            if si == len(src):
                return None if j == 0 else si - j
            c = src[si]
            si += 1
            if c in _B64:
                j += 1
                continue
            if c in b"\r\n":
                continue
            if c != ord("=") or j < 2:
                return si - 1
            if j == 2:  # "==" expected: the first is consumed
                while si < len(src) and src[si] in b"\r\n":
                    si += 1
                if si == len(src):
                    return len(src)
                if src[si] != ord("="):
                    return si - 1
                si += 1
            while si < len(src) and src[si] in b"\r\n":
                si += 1
            return si if si < len(src) else None  # trailing garbage after the padding
    return None


def decode_secret_data(data: Any) -> str | None:
    """The decoding error a real server reports for Secret data that is not base64, or None."""
    if not isinstance(data, Mapping):
        return None
    for value in data.values():
        if value is None:
            continue
        if not isinstance(value, str):
            kind = next((name for t, name in _JSON_KINDS if isinstance(value, t)), "value")
            return f"json: cannot unmarshal {kind} into Go struct field Secret.data of type []uint8"
        offset = go_base64_error(value)
        if offset is not None:
            return f"illegal base64 data at input byte {offset}"
    return None


def normalized_secret_data(data: Mapping[str, Any]) -> dict[str, str]:
    """Secret data as the server stores it: decoded and re-encoded (line breaks dropped)."""
    return {
        k: base64.b64encode(base64.b64decode(v.replace("\r", "").replace("\n", ""))).decode()
        for k, v in data.items()
        if isinstance(v, str)
    }


def validate_secret(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    data = obj.get("data") or {}
    total = 0
    for key in sorted(data):
        errs += [invalid_value(f"data[{key}]", key, m) for m in _config_key_errors(key)]
        total += len(base64.b64decode(data[key])) if isinstance(data[key], str) else 0
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", f"must have at most {MAX_SECRET_SIZE} bytes"))
    if old is not None:
        errs += _immutable_data(obj, old, ("data",))
        if (obj.get("type") or "") != (old.get("type") or ""):
            errs.append(immutable("type", obj.get("type") or ""))
    return errs


def validate_config_map(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    for field in ("data", "binaryData"):
        values = obj.get(field) or {}
        for key in sorted(values):
            errs += [invalid_value(f"{field}[{key}]", key, m) for m in _config_key_errors(key)]
            total += len(values[key]) if isinstance(values[key], str) else 0
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("", f"must have at most {MAX_SECRET_SIZE} bytes"))
    if old is not None:
        errs += _immutable_data(obj, old, ("data", "binaryData"))
    return errs


def _immutable_data(
    obj: Mapping[str, Any], old: Mapping[str, Any], fields: tuple[str, ...]
) -> list[FieldError]:
    errs: list[FieldError] = []
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            errs.append(forbidden_field("immutable", "field is immutable when `immutable` is set"))
        for field in fields:
            if (obj.get(field) or {}) != (old.get(field) or {}):
                errs.append(forbidden_field(field, "field is immutable when `immutable` is set"))
    return errs


# --- Leases and Events --------------------------------------------------------------------------


def validate_lease(obj: Mapping[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        errs.append(invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        errs.append(
            invalid_value(
                "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
            )
        )
    return errs


def validate_events_v1(obj: Mapping[str, Any]) -> list[FieldError]:
    """The strict checks events.k8s.io/v1 applies on create (core/v1 events are lenient)."""
    errs: list[FieldError] = []
    if not obj.get("eventTime"):
        errs.append(required("eventTime"))
    event_type = obj.get("type") or ""
    if event_type not in ("Normal", "Warning"):
        errs.append(invalid_value("type", "", f"has invalid value: {event_type}"))
    for field in ("reportingController", "reportingInstance", "action", "reason"):
        if not obj.get(field):
            errs.append(required(field))
    controller = obj.get("reportingController") or ""
    if controller:
        errs += [
            invalid_value("reportingController", controller, m)
            for m in qualified_name_errors(controller)
        ]
    return errs


# --- RBAC ---------------------------------------------------------------------------------------


def validate_rules(rules: Any) -> list[FieldError]:
    errs: list[FieldError] = []
    if rules is None:
        return errs
    if not isinstance(rules, list):
        return [invalid_value("rules", rules, "must be a list")]
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            errs.append(invalid_value(f"rules[{i}]", rule, "must be an object"))
            continue
        if not rule.get("verbs"):
            errs.append(required(f"rules[{i}].verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            continue
        if not rule.get("apiGroups"):
            errs.append(
                required(
                    f"rules[{i}].apiGroups", "resource rules must supply at least one api group"
                )
            )
        if not rule.get("resources"):
            errs.append(
                required(
                    f"rules[{i}].resources", "resource rules must supply at least one resource"
                )
            )
    return errs


def validate_binding(
    obj: Mapping[str, Any], old: Mapping[str, Any] | None, *, cluster: bool
) -> list[FieldError]:
    errs: list[FieldError] = []
    ref = obj.get("roleRef")
    if not isinstance(ref, Mapping):
        errs.append(required("roleRef"))
    else:
        kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
        if ref.get("apiGroup") != "rbac.authorization.k8s.io":
            errs.append(
                not_supported(
                    "roleRef.apiGroup", ref.get("apiGroup") or "", ["rbac.authorization.k8s.io"]
                )
            )
        if ref.get("kind") not in kinds:
            errs.append(not_supported("roleRef.kind", ref.get("kind") or "", list(kinds)))
        if not ref.get("name"):
            errs.append(required("roleRef.name"))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        errs.append(invalid_value("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    for i, subject in enumerate(obj.get("subjects") or []):
        if not isinstance(subject, Mapping):
            errs.append(invalid_value(f"subjects[{i}]", subject, "must be an object"))
            continue
        kind = subject.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            errs.append(
                not_supported(
                    f"subjects[{i}].kind", kind or "", ["ServiceAccount", "User", "Group"]
                )
            )
        if not subject.get("name"):
            errs.append(required(f"subjects[{i}].name"))
        if kind == "ServiceAccount" and cluster and not subject.get("namespace"):
            errs.append(required(f"subjects[{i}].namespace"))
    return errs
