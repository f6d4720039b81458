"""The request pipeline: what every request goes through, and the verbs' logic.

`_request` runs request hooks (fault injection), RBAC, the body checks a handler makes before
decoding (size, JSON depth), then the verb: reads (get, list, watch), create, update and delete
(preconditions, admission, the field manager's Update bookkeeping, the kind's strategy and
validation from `strategy`, storage conflicts, commit). The order matters: it decides which
error a request that is wrong in two ways gets. Patch and server-side apply are in `apply`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import attrs

from kbcore import limits
from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.selectors import Selector
from kbcore.selectors import parse as parse_selector
from kbsim import apierrors as errs
from kbsim import fieldsets
from kbsim import schema as crschema
from kbsim import validation as v
from kbsim.apiserver import strategy
from kbsim.apiserver.store import (
    Store,
    canonical,
    condition,
    condition_true,
    ensure_meta,
    same_ignoring_rv,
    set_condition,
)
from kbsim.apiserver.watch import Watch, fields_match, parse_field_selector
from kbsim.rbac import Attributes, Authorizer, User, forbidden_reason
from kbsim.resources import ResourceInfo

T = TypeVar("T")

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@attrs.frozen
class AfterWrite:
    """A request-hook verdict: perform the request, then fail it with `error`.

    Models a 500/504 after the write committed ("write happened, response lost"): the outcome
    is unknown to the client.
    """

    error: ApiError


ResponseLost = AfterWrite
RequestHook = Callable[[str, GVR, ObjectKey, User], "ApiError | AfterWrite | None"]

_NO_BODY = object()

SA_TOKEN_PREFIX = "kbsim-sa-token."
"""Tokens the token controller mints (`Controllers._token_controller`) start with this; a user
still named by one is a token no authenticator accepted (`authenticate`), refused with 401."""


def _refuse_unauthenticated(user: User) -> None:
    if user.name.startswith(SA_TOKEN_PREFIX):
        raise errs.unauthorized()


def _too_deep_at(value: Any) -> str:
    """The character Go's JSON scanner stops at (`{` or `[`) when `value`, written out, nests
    deeper than `MAX_JSON_DEPTH`: the first container past it in document order; else ''."""
    if limits.json_depth(value, limits.MAX_JSON_DEPTH) <= limits.MAX_JSON_DEPTH:
        return ""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > limits.MAX_JSON_DEPTH:
            return "{" if isinstance(node, dict) else "["
        children = list(node.values()) if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in reversed(children))
    return "{"  # deeper only through tuples, which JSON writes as lists


def _allows_unconditional_update(info: ResourceInfo) -> bool:
    """`AllowUnconditionalUpdate()` of the resource's strategy: may a PUT omit
    metadata.resourceVersion? Not for custom resources, CRDs and Leases."""
    return info.builtin and info.group not in ("apiextensions.k8s.io", "coordination.k8s.io")


class Pipeline(Store):
    """Request hooks, RBAC and the verbs get, list, watch, create, update and delete."""

    def __init__(self, name: str, *, clock: Callable[[], float], seed: int) -> None:
        super().__init__(name, clock=clock, seed=seed)
        self._hooks: builtins.list[RequestHook] = []
        self._authorizer = Authorizer(self._rbac_lookup)

    def add_request_hook(self, fn: RequestHook) -> None:
        """`fn(verb, gvr, key, user)` runs before every request; returning an `ApiError` fails
        the request without performing it, an `AfterWrite` performs it and then fails it."""
        self._hooks.append(fn)

    def _url_key(self, gvr: GVR, body: Obj, url_namespace: str | None = None) -> ObjectKey:
        """The namespace/name in the URL for this body: `url_namespace` when the client said,
        else what a scope-aware client would send."""
        meta = ensure_meta(body)
        info = self._builtin.get((gvr.group, gvr.resource)) or self._custom.get(
            (gvr.group, gvr.resource)
        )
        namespace = str(meta.get("namespace") or "")
        if url_namespace is not None:
            namespace = url_namespace
        elif info is not None and not info.namespaced:
            namespace = ""
        return ObjectKey(namespace, str(meta.get("name") or ""))

    def _in_scope(self, gvr: GVR, key: ObjectKey, explicit: bool) -> None:
        """A URL whose scope is not the resource's is routed nowhere: 404, as the apiextensions
        handler answers for a namespaced URL of a cluster-scoped resource (and, for a custom
        resource, a cluster URL of a namespaced one when the client named the URL itself)."""
        info = self._builtin.get((gvr.group, gvr.resource)) or self._custom.get(
            (gvr.group, gvr.resource)
        )
        if info is None:
            return
        if key.namespace and not info.namespaced:
            raise errs.resource_not_found()
        if explicit and not key.namespace and info.namespaced and not info.builtin:
            raise errs.resource_not_found()

    @staticmethod
    def _body(obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise errs.bad_request("the body of the request must be a JSON object")
        body = o.deepcopy(obj)
        if not isinstance(body.get("metadata", {}), dict):
            raise errs.bad_request("metadata must be an object")
        ensure_meta(body)
        return body

    def _request(
        self,
        verb: str,
        gvr: GVR,
        key: ObjectKey,
        user: User,
        subresource: str,
        fn: Callable[[], T],
        *,
        body: Any = _NO_BODY,
        patch_type: str = "",
    ) -> T:
        _refuse_unauthenticated(user)
        verdict: ApiError | AfterWrite | None = None
        for hook in self._hooks:
            verdict = hook(verb, gvr, key, user)
            if verdict is not None:
                break
        if isinstance(verdict, ApiError):
            raise verdict
        # A POST names no object in its URL: RBAC sees no name (so resourceNames never match).
        self._authorize(
            user, verb, gvr, subresource, ObjectKey(key.namespace, "") if verb == "create" else key
        )
        try:
            if body is not _NO_BODY:
                self._check_readable(gvr, body, patch_type)
            result = fn()
        except ApiError:
            if isinstance(verdict, AfterWrite):
                raise verdict.error from None
            raise
        if isinstance(verdict, AfterWrite):
            if isinstance(result, Watch):
                result.stop()
            raise verdict.error
        return result

    def _nonresource_request(self, path: str, user: User, fn: Callable[[], T]) -> T:
        """A GET of a non-resource URL: request hooks, no RBAC (every authenticated user may
        read discovery and OpenAPI documents)."""
        parts = [p for p in path.split("?", 1)[0].strip("/").split("/") if p]
        if parts[:2] == ["openapi", "v3"]:
            parts = parts[2:]
        group = version = ""
        if parts[:1] == ["api"] and len(parts) > 1:
            version = parts[1]
        elif parts[:1] == ["apis"] and len(parts) > 1:
            group, version = parts[1], parts[2] if len(parts) > 2 else ""
        _refuse_unauthenticated(user)
        verdict: ApiError | AfterWrite | None = None
        for hook in self._hooks:
            verdict = hook("get", GVR(group, version, ""), ObjectKey("", ""), user)
            if verdict is not None:
                break
        if isinstance(verdict, ApiError):
            raise verdict
        result = fn()
        if isinstance(verdict, AfterWrite):
            raise verdict.error
        return o.deepcopy(result)

    def _check_readable(self, gvr: GVR, body: Any, patch_type: str) -> None:
        """What the handler does before it decodes a body: read at most
        `MAX_REQUEST_BODY_BYTES` (413), then decode with Go's JSON decoder, which refuses a
        document nested deeper than `MAX_JSON_DEPTH` (400). kbsim has no bytes: the size is the
        compact UTF-8 JSON encoding, the smallest a client sends."""
        try:
            size = len(o.canonical_json(body, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except (TypeError, ValueError):
            size = 0  # not JSON at all: the verb's own checks answer
        if size > limits.MAX_REQUEST_BODY_BYTES:
            raise errs.request_entity_too_large(f"limit is {limits.MAX_REQUEST_BODY_BYTES}")
        opening = _too_deep_at(body)
        if opening:
            raise errs.too_deep(patch_type, self._resolve(gvr)[0].kind, opening, body)

    def _authorize(
        self,
        user: User,
        verb: str,
        gvr: GVR,
        subresource: str,
        key: ObjectKey,
        reason_only: bool = False,
    ) -> None:
        namespace = key.namespace
        if gvr.group == "" and gvr.resource == "namespaces" and key.name:
            # RequestInfo: /api/v1/namespaces/NAME[/status] is a request "in the namespace" NAME.
            namespace = key.name
        a = Attributes(user, verb, gvr.group, gvr.resource, subresource, namespace, key.name)
        allowed, reason = self._authorizer.authorize(a)
        if allowed:
            return
        text = reason if reason_only else forbidden_reason(a, reason)
        raise errs.forbidden(gvr.group, gvr.resource, key.name, text)

    def _rbac_lookup(self, kind: str, namespace: str) -> Iterable[Obj]:
        resource = {
            "ClusterRole": "clusterroles",
            "ClusterRoleBinding": "clusterrolebindings",
            "Role": "roles",
            "RoleBinding": "rolebindings",
        }[kind]
        store = self._objects.get(("rbac.authorization.k8s.io", resource), {})
        return [store[k] for k in sorted(store) if k.namespace == namespace]

    def _namespace_admission(self, info: ResourceInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        ns = self._objects.get(("", "namespaces"), {}).get(ObjectKey("", namespace))
        if ns is None:
            raise errs.not_found("", "namespaces", namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating":
            error = errs.forbidden(
                info.group,
                info.resource,
                name,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
            )
            error.details.setdefault("causes", []).append(
                {
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            )
            raise error

    def _get(self, gvr: GVR, key: ObjectKey, subresource: str) -> Obj:
        info, version = self._resolve(gvr)
        self._check_subresource(info, subresource, key, reading=True)
        self._check_scope(info, key)
        obj = self._store(info).get(key)
        if obj is None:
            raise errs.not_found(info.group, info.resource, key.name)
        return self._present(info, version, obj)

    def _list(
        self, gvr: GVR, namespace: str, label_selector: str, field_selector: str
    ) -> tuple[builtins.list[Obj], str]:
        info, version = self._resolve(gvr)
        if namespace and not info.namespaced:
            raise errs.resource_not_found()
        selector = self._selector(label_selector)
        fields = parse_field_selector(field_selector)
        store = self._store(info)
        items = []
        for key in sorted(store):
            obj = store[key]
            if namespace and key.namespace != namespace:
                continue
            if not fields_match(fields, obj):
                continue
            if not selector.matches((obj.get("metadata") or {}).get("labels") or {}):
                continue
            items.append(self._present(info, version, obj, in_list=True))
        return items, str(self._rv)

    @staticmethod
    def _selector(text: str) -> Selector:
        try:
            return parse_selector(text)
        except ValueError as exc:
            raise errs.bad_request(f"unable to parse requirement: {exc}") from None

    def _watch(
        self,
        gvr: GVR,
        namespace: str,
        resource_version: str,
        allow_bookmarks: bool,
        label_selector: str,
        field_selector: str,
    ) -> Watch:
        info, version = self._resolve(gvr)
        if namespace and not info.namespaced:
            raise errs.resource_not_found()
        w = Watch(
            self._history,
            info,
            version,
            namespace,
            self._selector(label_selector),
            parse_field_selector(field_selector),
            allow_bookmarks,
        )
        if resource_version in ("", "0"):
            self._history.start_with_state(w, self._store(info), self._rv)
            return w
        try:
            start = int(resource_version)
        except ValueError:
            raise errs.bad_request(f'invalid resource version "{resource_version}"') from None
        self._history.start(w, start, self._rv)
        return w

    def _check_subresource(
        self, info: ResourceInfo, subresource: str, key: ObjectKey, *, reading: bool = False
    ) -> None:
        if subresource and subresource not in info.subresources:
            if not info.builtin:  # the CR handler answers for the object
                raise errs.not_found(info.group, info.resource, key.name)
            raise errs.resource_not_found()
        if reading and subresource == "finalize":
            raise errs.method_not_supported()

    def _create_request(self, gvr: GVR, body: Obj, field_manager: str, user: User) -> Obj:
        info, version = self._resolve(gvr)
        strategy.check_body_type(info, version, body)
        return self._create(info, version, body, field_manager, user, managed=None)

    def _create(
        self,
        info: ResourceInfo,
        version: str,
        body: Obj,
        field_manager: str,
        user: User,
        *,
        managed: tuple[fieldsets.ManagedFieldsEntry, ...] | None,
    ) -> Obj:
        meta = ensure_meta(body)
        if not info.namespaced:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            # The client would POST to the all-namespaces collection, which only lists.
            raise errs.method_not_supported()
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if not info.builtin:
            crd = self._objects.get(("apiextensions.k8s.io", "customresourcedefinitions"), {}).get(
                ObjectKey("", info.crd_name)
            )
            if crd is not None and condition_true(crd, "Terminating"):
                raise errs.method_not_allowed(info.group, info.resource, "create")
        self._namespace_admission(info, namespace, name)
        if meta.get("resourceVersion"):
            # etcd3 store.Create's plain error: a 500 without a reason.
            raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
        obj = strategy.decode_request(info, version, body)
        now = self._now()
        if managed is None:
            managed = fieldsets.update_managed_fields(
                None,
                obj,
                strategy.provided_entries(obj, ()),
                manager=field_manager,
                api_version=info.api_version(version),
                typ=info.smd_type(version),
                now=now,
                ignore=strategy.ignored_fields(info, ""),
            )
        if info.group == "events.k8s.io":
            strategy.raise_invalid(info, obj, v.validate_events_v1(obj))
        strategy.prepare_create(info, obj)
        meta = ensure_meta(obj)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if generated:
            meta["name"] = self._generate_name(info, namespace, str(meta["generateName"]))
        strategy.raise_invalid(info, obj, strategy.validate(info, version, obj, None))
        key = ObjectKey(str(namespace), str(meta["name"]))
        if key in self._store(info):
            raise errs.already_exists(info.group, info.resource, key.name)
        meta["uid"] = self._uid()
        meta["creationTimestamp"] = now
        strategy.encode_managed(obj, managed)
        stored = self._commit(
            info,
            key,
            None,
            canonical(info, self._to_storage(info, obj)),
            verb="create",
            user=user,
            field_manager=field_manager,
            version=version,
        )
        return self._present(info, version, stored)

    def _generate_name(self, info: ResourceInfo, namespace: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(self._rng.choice(_NAME_ALPHABET) for _ in range(5))
            if ObjectKey(namespace, name) not in self._store(info):
                return name
        return name

    def _update_request(
        self, gvr: GVR, key: ObjectKey, body: Obj, subresource: str, field_manager: str, user: User
    ) -> Obj:
        info, version = self._resolve(gvr)
        self._check_subresource(info, subresource, key)
        strategy.check_body_type(info, version, body)
        if not info.namespaced:
            ensure_meta(body).pop("namespace", None)
            key = ObjectKey("", key.name)
        self._check_scope(info, key)
        existing = self._store(info).get(key)
        if existing is None:
            raise errs.not_found(info.group, info.resource, key.name)
        return self._write_update(
            info,
            version,
            key,
            existing,
            body,
            verb="update",
            subresource=subresource,
            field_manager=field_manager,
            user=user,
            applied=None,
        )

    @staticmethod
    def _etcd_key(info: ResourceInfo, key: ObjectKey) -> str:
        """The object's etcd key, as storage errors quote it (`/registry/configmaps/ns/name`;
        custom resources and CRDs are prefixed with their group)."""
        group, resource = info.storage
        custom = not info.builtin or info.group == "apiextensions.k8s.io"
        prefix = f"{group}/{resource}" if custom else resource
        return "/".join(["/registry", prefix, *filter(None, (key.namespace, key.name))])

    def _preconditions(
        self, info: ResourceInfo, key: ObjectKey, existing: Obj, new: Obj, verb: str
    ) -> None:
        """A PUT's body uid is a storage precondition (409); a patched or applied body with
        another uid instead fails validation (422, metadata.uid is immutable). Both check
        metadata.resourceVersion (409)."""
        meta, old_meta = new.get("metadata") or {}, existing.get("metadata") or {}
        uid = meta.get("uid")
        if verb == "update" and uid and uid != old_meta.get("uid"):
            raise errs.conflict(
                info.group,
                info.resource,
                key.name,
                f"StorageError: invalid object, Code: 4, Key: {self._etcd_key(info, key)}, "
                f"ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in "
                f"precondition: {uid}, UID in object meta: {old_meta.get('uid')}",
            )
        rv = meta.get("resourceVersion")
        if verb == "update" and not rv and not _allows_unconditional_update(info):
            raise errs.invalid(
                info.group,
                info.resource,
                key.name,
                [
                    errs.invalid_value(
                        "metadata.resourceVersion", 0, "must be specified for an update"
                    )
                ],
            )
        if rv and rv != old_meta.get("resourceVersion"):
            raise errs.conflict(info.group, info.resource, key.name, errs.OPTIMISTIC_LOCK_MESSAGE)

    def _write_update(
        self,
        info: ResourceInfo,
        version: str,
        key: ObjectKey,
        existing: Obj,
        body: Obj,
        *,
        verb: str,
        subresource: str,
        field_manager: str,
        user: User,
        applied: tuple[fieldsets.ManagedFieldsEntry, ...] | None,
    ) -> Obj:
        """The shared tail of update, patch and apply: preconditions, field manager, strategy,
        validation, finalizer-emptied deletion, no-op detection, commit."""
        body_meta = dict(ensure_meta(body))
        body["metadata"] = body_meta
        if body_meta.get("name", key.name) != key.name:
            raise errs.bad_request(
                f"the name of the object ({body_meta.get('name')}) does not match the name on "
                f"the URL ({key.name})"
            )
        if info.namespaced and body_meta.get("namespace", key.namespace) != key.namespace:
            raise errs.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        body_meta["name"] = key.name
        if info.namespaced:
            body_meta["namespace"] = key.namespace
        self._preconditions(info, key, existing, body, verb)
        live = self._present(info, version, existing, view=True)
        new = strategy.decode_request(info, version, body)
        live_entries = strategy.managed_entries(existing)
        if applied is None:
            base = live_entries if subresource else strategy.provided_entries(new, live_entries)
            entries = fieldsets.update_managed_fields(
                live,
                new,
                base,
                manager=field_manager,
                api_version=info.api_version(version),
                typ=info.smd_type(version),
                now=self._now(),
                subresource=subresource,
                ignore=strategy.ignored_fields(info, subresource),
            )
        else:
            entries = applied
        if info.group == "events.k8s.io":
            strategy.raise_invalid(info, new, v.validate_events_v1(new))
        final = strategy.prepare_update(info, new, live, subresource)
        strategy.raise_invalid(
            info, final, strategy.validate(info, version, final, live, subresource)
        )
        strategy.encode_managed(final, entries)
        stored_form = canonical(info, self._to_storage(info, final))
        meta = ensure_meta(stored_form)
        meta["resourceVersion"] = (existing.get("metadata") or {}).get("resourceVersion")
        # An object marked for deletion goes when its last finalizer does (a namespace waits
        # for its spec.finalizers too); the answer is its last state.
        namespace_held = info.kind == "Namespace" and (stored_form.get("spec") or {}).get(
            "finalizers"
        )
        emptied = bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
        gone = emptied and not namespace_held
        if not gone and same_ignoring_rv(stored_form, existing):
            return self._present(info, version, existing)
        stored = self._commit(
            info,
            key,
            existing,
            None if gone else stored_form,
            verb=verb,
            user=user,
            field_manager=field_manager,
            subresource=subresource,
            version=version,
        )
        return self._present(info, version, existing if gone else stored)

    def _delete_request(
        self,
        gvr: GVR,
        key: ObjectKey,
        uid: str | None,
        resource_version: str | None,
        propagation_policy: str | None,
        user: User,
    ) -> Obj | None:
        info, version = self._resolve(gvr)
        self._check_scope(info, key)
        if info.kind == "Namespace" and info.group == "" and key.name in IMMORTAL_NAMESPACES:
            raise errs.forbidden("", "namespaces", key.name, "this namespace may not be deleted")
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise errs.invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                [
                    errs.not_supported(
                        "propagationPolicy",
                        propagation_policy,
                        ["Foreground", "Background", "Orphan", "nil"],
                    )
                ],
            )
        existing = self._store(info).get(key)
        if existing is None:
            raise errs.not_found(info.group, info.resource, key.name)
        result = self._delete(
            info, key, existing, uid, resource_version, propagation_policy, user, version
        )
        return None if result is None else self._present(info, version, result)

    def _delete(
        self,
        info: ResourceInfo,
        key: ObjectKey,
        existing: Obj,
        uid: str | None,
        resource_version: str | None,
        propagation_policy: str | None,
        user: User,
        version: str = "",
    ) -> Obj | None:
        meta = existing.get("metadata") or {}
        special = (
            info.kind == "Namespace" and info.group == ""
        ) or info.kind == "CustomResourceDefinition"
        uid_now, rv_now = meta.get("uid"), meta.get("resourceVersion")
        if special:  # Namespaces and CRDs check them in their own Delete, worded differently
            what = info.resource
            wrong_uid = (
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {uid_now}"
            )
            wrong_rv = (
                "Precondition failed: ResourceVersion in precondition: "
                f"{resource_version}, ResourceVersion in object meta: {rv_now}"
            )
        else:
            what = info.kind
            wrong_uid = (
                f"the UID in the precondition ({uid}) does not match the UID in record "
                f"({uid_now}). The object might have been deleted and then recreated"
            )
            wrong_rv = (
                f"the ResourceVersion in the precondition ({resource_version}) does not match "
                f"the ResourceVersion in record ({rv_now}). The object might have been modified"
            )
        if uid is not None and uid != uid_now:
            raise errs.conflict(info.group, what, key.name, wrong_uid)
        if resource_version is not None and resource_version != rv_now:
            raise errs.conflict(info.group, what, key.name, wrong_rv)
        now = self._now()
        if special and not meta.get("deletionTimestamp"):
            marked = o.deepcopy(existing)
            mmeta = ensure_meta(marked)
            mmeta["deletionTimestamp"] = now
            if info.kind == "Namespace":
                marked.setdefault("status", {})["phase"] = "Terminating"
            else:
                finalizers = list(mmeta.get("finalizers") or [])
                if crschema.CLEANUP_FINALIZER not in finalizers:
                    finalizers.append(crschema.CLEANUP_FINALIZER)
                mmeta["finalizers"] = finalizers
                status = marked.setdefault("status", {})
                status["conditions"] = set_condition(
                    status.get("conditions") or [],
                    condition(
                        "Terminating",
                        "True",
                        "InstanceDeletionPending",
                        "CustomResourceDefinition marked for deletion; CustomResource deletion "
                        "will begin soon",
                        now,
                    ),
                )
            return self._commit(
                info, key, existing, marked, verb="delete", user=user, version=version
            )
        if (
            info.kind == "Namespace"
            and info.group == ""
            and (existing.get("spec") or {}).get("finalizers")
        ):
            return existing
        finalizers = list(meta.get("finalizers") or [])
        if propagation_policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
            finalizers.append(ORPHAN_FINALIZER)
        if propagation_policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        if not finalizers:
            self._commit(info, key, existing, None, verb="delete", user=user, version=version)
            return None
        marked = o.deepcopy(existing)
        mmeta = ensure_meta(marked)
        mmeta["finalizers"] = finalizers
        if not mmeta.get("deletionTimestamp"):
            if int(mmeta.get("generation") or 0) > 0:
                mmeta["generation"] = int(mmeta["generation"]) + 1
            mmeta["deletionTimestamp"] = now
        mmeta["deletionGracePeriodSeconds"] = 0
        marked = canonical(info, marked)
        if same_ignoring_rv(marked, existing):
            return existing
        return self._commit(info, key, existing, marked, verb="delete", user=user, version=version)
