"""What a resource's strategy and the field manager do to a request body, per kind.

Pure functions of the resource and the objects (no server state): decoding (type meta, CR
pruning and defaulting, Secret data, defaulting funcs), the managed-fields bookkeeping of an
Update, the create/update strategies (status/spec split, generation, immutable metadata) and
validation (the 422 causes). The request pipeline calls them in the order a real server does.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from kbcore import objects as o
from kbcore.objects import Obj
from kbsim import apierrors as errs
from kbsim import fieldsets
from kbsim import schema as crschema
from kbsim import validation as v
from kbsim.apiserver.store import ensure_meta
from kbsim.resources import ResourceInfo

NAMESPACE_FINALIZER = "kubernetes"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def check_body_type(info: ResourceInfo, version: str, body: Obj) -> None:
    """What decoding a request body checks. Built-in kinds default a missing apiVersion and
    kind from the URL. A custom resource body is decoded as unstructured: it must carry
    both; a wrong kind is left for validation to reject (422, `ValidateTypeMeta`)."""
    expected = info.api_version(version)
    api_version = body.get("apiVersion")
    if (api_version or not info.builtin) and api_version != expected:
        raise errs.bad_request(
            f"the API version in the data ({api_version or ''}) does not match the expected "
            f"API version ({expected})"
        )
    kind = body.get("kind")
    if not info.builtin:
        if not kind:
            raise errs.bad_request(
                f"the object provided is unrecognized (must be of type {info.kind}): Object "
                f"'Kind' is missing in '{o.json_text(body)}'"
            )
        return
    if kind and kind != info.kind:
        raise errs.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
        )
    body["apiVersion"], body["kind"] = expected, info.kind


def decode_request(info: ResourceInfo, version: str, obj: Obj) -> Obj:
    """What decoding does to a request body, before the field manager sees it: CR pruning
    and defaulting, Secret data checks and stringData conversion, defaulting funcs."""
    if not info.builtin:
        schema = info.schema(version)
        # The request body is already our own copy: prune may share its values.
        return crschema.default_in_place(crschema.prune(obj, schema, share=True), schema)
    if info.kind == "Secret":
        problem = v.decode_secret_data(obj.get("data"))
        if problem:
            raise errs.bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: {problem}'
            )
        if isinstance(obj.get("data"), dict):
            obj["data"] = {**obj["data"], **v.normalized_secret_data(obj["data"])}
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = dict(obj.get("data") or {})
            for k, val in string_data.items():
                data[k] = base64.b64encode(str(val).encode()).decode()
            obj["data"] = data
        obj.setdefault("type", "Opaque")
    elif info.kind == "Namespace":
        meta = ensure_meta(obj)
        if meta.get("name"):
            meta["labels"] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: meta["name"]}
    elif info.kind == "CustomResourceDefinition":
        crschema.default_crd(obj)
    return obj


def prepare_create(info: ResourceInfo, obj: Obj) -> None:
    meta = ensure_meta(obj)
    for key in (
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ):
        meta.pop(key, None)
    if info.tracks_generation:
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    if info.status and info.kind not in ("Namespace", "CustomResourceDefinition"):
        obj.pop("status", None)
    prepare_kind(info, obj, None)


def prepare_kind(info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
    meta = ensure_meta(obj)
    if info.kind == "Namespace" and info.group == "":
        meta["labels"] = {
            **(meta.get("labels") or {}),
            NAMESPACE_NAME_LABEL: meta.get("name", ""),
        }
        if old is None:
            obj["spec"] = {"finalizers": [NAMESPACE_FINALIZER]}
            obj["status"] = {"phase": "Active"}
    elif info.kind == "CustomResourceDefinition":
        versions = (obj.get("spec") or {}).get("versions") or []
        storage = [x.get("name") for x in versions if isinstance(x, dict) and x.get("storage")]
        if old is None:
            obj["status"] = {
                "acceptedNames": {"plural": "", "kind": ""},
                "storedVersions": storage[:1],
            }
        elif storage:
            # PrepareForUpdate: a new storage version joins status.storedVersions.
            status = obj.setdefault("status", {})
            stored = list(status.get("storedVersions") or [])
            if storage[0] not in stored:
                status["storedVersions"] = [*stored, storage[0]]


def prepare_update(info: ResourceInfo, new: Obj, old: Obj, subresource: str) -> Obj:
    if subresource == "status":
        out = o.deepcopy(old)
        if "status" in new:
            out["status"] = o.deepcopy(new["status"])
        else:
            out.pop("status", None)
        return out
    if subresource == "finalize":
        out = o.deepcopy(old)
        out.setdefault("spec", {})["finalizers"] = o.deepcopy(
            (new.get("spec") or {}).get("finalizers") or []
        )
        return out
    out = o.deepcopy(new)
    meta, old_meta = ensure_meta(out), old.get("metadata") or {}
    if not meta.get("uid"):
        meta["uid"] = old_meta.get("uid")
    for key in ("creationTimestamp", "generation"):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    if old_meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
        if "deletionGracePeriodSeconds" in old_meta:
            meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
    meta.pop("selfLink", None)
    if info.status:
        if "status" in old:
            out["status"] = o.deepcopy(old["status"])
        else:
            out.pop("status", None)
    if info.kind == "Namespace" and info.group == "":
        out["spec"] = o.deepcopy(old.get("spec") or {})
    prepare_kind(info, out, old)
    if info.tracks_generation:
        if info.builtin:  # CRDs: spec changes only
            changed = not fieldsets.json_equal(out.get("spec"), old.get("spec"))
        else:  # custom resources: anything but metadata (status is reset above if split)
            changed = not fieldsets.json_equal(
                {k: x for k, x in out.items() if k != "metadata"},
                {k: x for k, x in old.items() if k != "metadata"},
            )
        if changed:
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
    return out


def name_fn(info: ResourceInfo) -> v.NameFn:
    if info.resource == "namespaces" and info.group == "":
        return v.name_is_dns_label
    if info.group == "rbac.authorization.k8s.io":
        return v.path_segment_name
    return v.name_is_dns_subdomain


def validate(
    info: ResourceInfo, version: str, obj: Obj, old: Obj | None, subresource: str = ""
) -> list[errs.FieldError]:
    problems: list[errs.FieldError] = []
    meta = obj.get("metadata") or {}
    if not info.builtin and obj.get("kind") != info.kind:
        # ValidateTypeMeta: reported alone
        return [errs.invalid_value("kind", obj.get("kind"), f"must be {info.kind}")]
    if info.kind == "CustomResourceDefinition":
        # The status strategy validates only the status (ValidateUpdate...Status).
        problems += crschema.validate_crd(obj, None if subresource else old)
    elif not info.builtin:
        problems += crschema.validate(obj, info.schema(version))
    elif info.kind == "Secret":
        problems += v.validate_secret(obj, old)
    elif info.kind == "ConfigMap":
        problems += v.validate_config_map(obj, old)
    elif info.kind == "Lease":
        problems += v.validate_lease(obj)
    elif info.group == "rbac.authorization.k8s.io":
        if info.kind in ("Role", "ClusterRole"):
            problems += v.validate_rules(obj.get("rules"))
        else:
            problems += v.validate_binding(obj, old, cluster=info.kind == "ClusterRoleBinding")
    problems += v.validate_object_meta(meta, namespaced=info.namespaced, name_fn=name_fn(info))
    if old is not None:
        problems += v.validate_object_meta_update(meta, old.get("metadata") or {})
    return problems


def raise_invalid(info: ResourceInfo, obj: Obj, problems: list[errs.FieldError]) -> None:
    if problems:
        name = (obj.get("metadata") or {}).get("name") or ""
        # The object's own kind (a custom resource may carry a wrong one).
        kind = str(obj.get("kind") or info.kind) if not info.builtin else info.kind
        raise errs.invalid(info.group, kind, name, problems)


def ignored_fields(info: ResourceInfo, subresource: str) -> fieldsets.FieldSet:
    """The reset fields of the strategy (the field manager never records them)."""
    if subresource == "status":
        return fieldsets.FieldSet.of([("f:spec",)])
    if subresource == "finalize" or info.status:
        return fieldsets.FieldSet.of([("f:status",)])
    return fieldsets.EMPTY


def managed_entries(obj: Obj) -> tuple[fieldsets.ManagedFieldsEntry, ...]:
    try:
        return fieldsets.decode_managed_fields((obj.get("metadata") or {}).get("managedFields"))
    except fieldsets.FieldSetError:
        return ()


def provided_entries(
    obj: Obj, fallback: tuple[fieldsets.ManagedFieldsEntry, ...]
) -> tuple[fieldsets.ManagedFieldsEntry, ...]:
    """managedFields sent by the client: used when non-empty and decodable (a `[{}]` list
    resets them), otherwise the live ones (clients that drop the field lose nothing)."""
    raw = (obj.get("metadata") or {}).get("managedFields")
    if not isinstance(raw, list) or not raw:
        return fallback
    entries = [e for e in raw if e]
    if not entries:
        return ()
    try:
        return fieldsets.decode_managed_fields(entries)
    except fieldsets.FieldSetError:
        return fallback


def encode_managed(obj: Obj, entries: Iterable[fieldsets.ManagedFieldsEntry]) -> None:
    encoded = fieldsets.encode_managed_fields(entries)
    meta = ensure_meta(obj)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
