"""Constructors for the `ApiError`s kube-apiserver returns, with its exact wording.

Each function mirrors one constructor of k8s.io/apimachinery/pkg/api/errors (`NewNotFound`,
`NewConflict`, `NewInvalid`, ...) so kbsim's messages are byte-identical to a real server's.
`FieldError` mirrors `field.Error`; `invalid()` aggregates them like `NewInvalid`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from kbcore import errors as reasons
from kbcore.errors import UNREACHABLE, UNREACHABLE_CODE, ApiError
from kbcore.objects import canonical_json, json_text

OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def _qualified(group: str, name: str) -> str:
    """`GroupResource.String()` / `GroupKind.String()`: `name.group`, or `name` for core."""
    return f"{name}.{group}" if group else name


def _details(group: str, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    if kind:
        out["kind"] = kind
    out.update(extra)
    return out


def _object_error(
    code: int, reason: str, group: str, resource: str, name: str, text: str
) -> ApiError:
    """An error about one named object: `<resource.group> "<name>" <text>`."""
    return ApiError(
        code,
        reason,
        f'{_qualified(group, resource)} "{name}" {text}',
        details=_details(group, resource, name),
    )


def not_found(group: str, resource: str, name: str) -> ApiError:
    return _object_error(404, reasons.NOT_FOUND, group, resource, name, "not found")


def unauthorized() -> ApiError:
    """A bearer token the authenticators reject (kube-apiserver: 401 with message Unauthorized)."""
    return ApiError(401, "Unauthorized", "Unauthorized")


def resource_not_found() -> ApiError:
    """What the server answers for a resource it does not serve (unknown or not established)."""
    return ApiError(404, reasons.NOT_FOUND, "the server could not find the requested resource")


def already_exists(group: str, resource: str, name: str) -> ApiError:
    return _object_error(409, reasons.ALREADY_EXISTS, group, resource, name, "already exists")


def conflict(group: str, resource: str, name: str, reason: str) -> ApiError:
    return ApiError(
        409,
        reasons.CONFLICT,
        f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {reason}',
        details=_details(group, resource, name),
    )


def forbidden(group: str, resource: str, name: str, reason: str) -> ApiError:
    qualified = _qualified(group, resource)
    if not name:
        message = f"{qualified} is forbidden: {reason}"
    else:
        message = f'{qualified} "{name}" is forbidden: {reason}'
    return ApiError(403, reasons.FORBIDDEN, message, details=_details(group, resource, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, reasons.BAD_REQUEST, message)


def method_not_allowed(group: str, resource: str, action: str) -> ApiError:
    return ApiError(
        405,
        reasons.METHOD_NOT_ALLOWED,
        f'{action} is not supported on resources of kind "{_qualified(group, resource)}"',
        details=_details(group, resource, ""),
    )


def method_not_supported() -> ApiError:
    """What the server answers for a verb a path does not serve (`NewMethodNotSupported` is for
    resources; this is the router's plain 405)."""
    return ApiError(
        405,
        reasons.METHOD_NOT_ALLOWED,
        "the server does not allow this method on the requested resource",
    )


def request_entity_too_large(message: str) -> ApiError:
    """`NewRequestEntityTooLargeError`: a body larger than the server reads (413)."""
    return ApiError(413, reasons.REQUEST_ENTITY_TOO_LARGE, f"Request entity too large: {message}")


def too_deep(patch_type: str, kind: str, opening: str, body: Any) -> ApiError:
    """400 for a body Go's JSON decoder refuses as nested too deep (`invalid character '{'
    exceeded max depth`), worded as the handler of each verb wraps decode errors: a create or
    update names the kind it expected and the body's first 30 characters (`transformDecodeError`);
    a merge patch is json-patch's `Invalid JSON Patch`; a JSON patch and an apply pass the
    decoder's words on."""
    cause = f"invalid character '{opening}' exceeded max depth"
    if patch_type == "merge":
        return bad_request("Invalid JSON Patch")
    if patch_type == "json":
        return bad_request(cause)
    if patch_type == "apply":
        return bad_request(f"error decoding YAML: {cause}")
    text = json_text(body)
    summary = text[:30] + " ..." if len(text) > 30 else text
    return bad_request(
        f"the object provided is unrecognized (must be of type {kind}): couldn't get "
        f"version/kind; json parse error: {cause} ({summary})"
    )


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, reasons.UNSUPPORTED_MEDIA_TYPE, message)


def expired(message: str) -> ApiError:
    return ApiError(410, reasons.GONE, message)


def internal(message: str) -> ApiError:
    return ApiError(500, reasons.INTERNAL_ERROR, f"Internal error occurred: {message}")


def timeout(message: str, retry_after: float | None = None) -> ApiError:
    return ApiError(504, reasons.TIMEOUT, message, retry_after=retry_after)


# --- field errors -------------------------------------------------------------------------------

_OMIT = object()


def go_value(value: Any) -> str:
    """Format a bad value the way field.Error.ErrorBody does (%q strings, %v numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return canonical_json(value)


@attrs.frozen
class FieldError:
    """`field.Error`: `type` is the human ErrorType string (`Invalid value`, ...)."""

    type: str
    field: str
    bad_value: Any = _OMIT
    detail: str = ""
    reason: str = ""  # the cause reason, when the type string does not decide it

    def body(self) -> str:
        bodyless = ("Required value", "Forbidden", "Too long", "Internal error")
        if self.type in bodyless or self.bad_value is _OMIT:
            out = self.type
        else:
            out = f"{self.type}: {go_value(self.bad_value)}"
        if self.detail:
            out += f": {self.detail}"
        return out

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    @property
    def cause_reason(self) -> str:
        if self.reason:
            return self.reason
        return {
            "Required value": "FieldValueRequired",
            "Invalid value": "FieldValueInvalid",
            "Unsupported value": "FieldValueNotSupported",
            "Forbidden": "FieldValueForbidden",
            "Duplicate value": "FieldValueDuplicate",
            "Too long": "FieldValueTooLong",
            "Too many": "FieldValueTooMany",
            "Not found": "FieldValueNotFound",
        }.get(self.type, "FieldValueInvalid")


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("Required value", field, detail=detail)


def invalid_value(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("Invalid value", field, value, detail)


def type_invalid(field: str, value: Any, detail: str) -> FieldError:
    """`field.TypeInvalid`: reads "Invalid value", cause reason `FieldValueTypeInvalid`."""
    return FieldError("Invalid value", field, value, detail, reason="FieldValueTypeInvalid")


def forbidden_field(field: str, detail: str) -> FieldError:
    return FieldError("Forbidden", field, detail=detail)


def not_supported(field: str, value: Any, supported: Sequence[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError("Unsupported value", field, value, detail)


def too_long(field: str, detail: str) -> FieldError:
    return FieldError("Too long", field, detail=detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("Duplicate value", field, value)


def immutable(field: str, value: Any) -> FieldError:
    return invalid_value(field, value, "field is immutable")


def invalid(group: str, kind: str, name: str, errs: Sequence[FieldError]) -> ApiError:
    """`NewInvalid(GroupKind, name, errs)`: 422 with the aggregated message and causes."""
    qualified = _qualified(group, kind)
    if not errs:
        message = f'{qualified} "{name}" is invalid'
    elif len(errs) == 1:
        message = f'{qualified} "{name}" is invalid: {errs[0]}'
    else:
        message = f'{qualified} "{name}" is invalid: [{", ".join(str(e) for e in errs)}]'
    causes = [{"reason": e.cause_reason, "message": e.body(), "field": e.field} for e in errs]
    return ApiError(
        422, reasons.INVALID, message, details=_details(group, kind, name, causes=causes)
    )


def unreachable() -> ApiError:
    """What a client sees when no simulated cluster answers at a kubeconfig's server."""
    return ApiError(UNREACHABLE_CODE, UNREACHABLE, "no API server answers at the provider address")
