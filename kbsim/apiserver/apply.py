"""PATCH: merge patch (RFC 7386), JSON patch (RFC 6902) and server-side apply.

Merge and JSON patches are applied to the live object and then written as an update. A
server-side apply runs the field manager (`kbsim.fieldsets`): it merges the applied
configuration into the live object, computes the new managedFields and the conflicts with
other managers (409 unless forced), and creates the object when it is absent. Both end in the
pipeline's shared update tail (`_write_update`) or in `_create`.
"""

from __future__ import annotations

from typing import Any

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbsim import apierrors as errs
from kbsim import fieldsets
from kbsim.apiserver import strategy
from kbsim.apiserver.pipeline import Pipeline
from kbsim.apiserver.store import ensure_meta
from kbsim.patch import json_patch, merge_patch
from kbsim.rbac import User
from kbsim.resources import ResourceInfo

ACCEPTED_PATCH_TYPES = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)


class Patch(Pipeline):
    """The PATCH verb (see the module docstring)."""

    def _patch_request(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: str,
        field_manager: str,
        force: bool,
        subresource: str,
        user: User,
    ) -> Obj:
        info, version = self._resolve(gvr)
        self._check_subresource(info, subresource, key)
        if patch_type not in ("merge", "json", "apply"):
            raise errs.unsupported_media_type(ACCEPTED_PATCH_TYPES)
        if patch_type == "apply" and not field_manager:
            raise errs.invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [errs.required("fieldManager", "is required for apply patch")],
            )
        if patch_type != "apply" and force:
            raise errs.invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                [errs.forbidden_field("force", "may not be specified for non-apply patch")],
            )
        self._check_scope(info, key)
        existing = self._store(info).get(key)
        if patch_type == "apply":
            return self._apply(
                info, version, key, existing, body, field_manager, force, subresource, user
            )
        if existing is None:
            raise errs.not_found(info.group, info.resource, key.name)
        live = self._present(info, version, existing, view=True)
        if patch_type == "merge":
            if not isinstance(body, dict):
                raise errs.bad_request(
                    "json: cannot unmarshal into Go value of type map[string]interface {}"
                )
            patched = merge_patch(live, body)
        else:
            patched = json_patch(live, body)
        if not isinstance(patched, dict):
            raise errs.bad_request("the patched object must be a JSON object")
        strategy.check_body_type(info, version, patched)
        return self._write_update(
            info,
            version,
            key,
            existing,
            patched,
            verb="patch",
            subresource=subresource,
            field_manager=field_manager,
            user=user,
            applied=None,
        )

    def _apply(
        self,
        info: ResourceInfo,
        version: str,
        key: ObjectKey,
        existing: Obj | None,
        body: Any,
        field_manager: str,
        force: bool,
        subresource: str,
        user: User,
    ) -> Obj:
        if not isinstance(body, dict):
            raise errs.bad_request(
                "error decoding YAML: the applied configuration must be an object"
            )
        expected = info.api_version(version)
        if body.get("apiVersion") != expected or body.get("kind") != info.kind:
            # The field manager's version check (its first step), with the GVK's String().
            api_version, kind = str(body.get("apiVersion") or ""), str(body.get("kind") or "")
            gv = api_version if "/" in api_version else "/" + api_version
            if api_version.count("/") > 1:
                gv = "/"
            raise errs.bad_request(f"invalid object type: {gv}, Kind={kind}")
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise errs.bad_request("metadata must be an object")
        if isinstance(meta, dict) and meta.get("managedFields") is not None:
            raise errs.bad_request("metadata.managedFields must be nil")
        meta = ensure_meta(body)
        if meta.get("name", key.name) != key.name:
            raise errs.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({key.name})"
            )
        typ = info.smd_type(version)
        now = self._now()
        if existing is None:
            if subresource:
                raise errs.not_found(info.group, info.resource, key.name)
            if meta.get("uid"):
                raise errs.conflict(
                    info.group,
                    info.resource,
                    key.name,
                    f"uid mismatch: the provided object specified uid {meta['uid']}, and no "
                    "existing object was found",
                )
            self._authorize(user, "create", info.gvr(version), "", key, reason_only=True)
            config = o.deepcopy(body)
            ensure_meta(config)["name"] = key.name
            ensure_meta(config).pop("resourceVersion", None)  # nothing to compare it with
            if info.namespaced:
                ensure_meta(config)["namespace"] = key.namespace
            result = fieldsets.apply(
                None,
                config,
                manager=field_manager,
                managed=(),
                api_version=expected,
                typ=typ,
                now=now,
                force=force,
                ignore=strategy.ignored_fields(info, ""),
            )
            return self._create(
                info, version, result.obj, field_manager, user, managed=result.managed
            )
        live = self._present(info, version, existing, view=True)
        try:
            result = fieldsets.apply(
                live,
                body,
                manager=field_manager,
                api_version=expected,
                typ=typ,
                now=now,
                force=force,
                subresource=subresource,
                ignore=strategy.ignored_fields(info, subresource),
            )
        except fieldsets.FieldSetError as exc:
            raise errs.internal(f"failed to create typed patch object: {exc}") from None
        if result.conflicts:
            raise ApiError(
                409,
                "Conflict",
                fieldsets.conflict_message(result.conflicts),
                details={"causes": fieldsets.conflict_causes(result.conflicts)},
            )
        return self._write_update(
            info,
            version,
            key,
            existing,
            result.obj,
            verb="patch",
            subresource=subresource,
            field_manager=field_manager,
            user=user,
            applied=result.managed,
        )
