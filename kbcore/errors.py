"""The outcome of an API request, as a value both shells speak.

kbshell turns a `kubernetes` ApiException into an `ApiError`; kbsim raises `ApiError` directly.
The kernel's requeue policy reads only this type, so it cannot tell a real cluster from a
simulated one, which is the point.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed API request: HTTP status `code`, Kubernetes `reason`, human `message`.

    `retry_after` is the server's Retry-After in seconds (429/503), if it sent one.
    `details` mirrors `Status.details` (e.g. `{"causes": [...]}` for 409 apply conflicts).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiError) and (
            self.code,
            self.reason,
            self.message,
            self.retry_after,
        ) == (other.code, other.reason, other.message, other.retry_after)

    def __hash__(self) -> int:
        return hash((self.code, self.reason, self.message))

    def status(self) -> dict[str, Any]:
        """The `metav1.Status` body a real API server would send."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @property
    def is_not_found(self) -> bool:
        return self.code == 404

    @property
    def is_conflict(self) -> bool:
        return self.code == 409 and self.reason == CONFLICT

    @property
    def is_already_exists(self) -> bool:
        return self.code == 409 and self.reason == ALREADY_EXISTS

    @property
    def is_forbidden(self) -> bool:
        return self.code == 403

    @property
    def is_namespace_terminating(self) -> bool:
        """A 403 from the namespace lifecycle admission: the namespace is being deleted, so
        nothing new may be created in it until it is gone (and may then be recreated)."""
        causes = self.details.get("causes") or []
        return self.code == 403 and any(
            isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes
        )

    @property
    def is_gone(self) -> bool:
        return self.code == 410

    @property
    def is_retryable(self) -> bool:
        """A live server failed or throttled (5xx, 429): the same request may succeed soon.
        Not an unreachable server (`UNREACHABLE`, code 0), which may never answer."""
        return self.code == 429 or 500 <= self.code <= 599

    @property
    def is_unreachable(self) -> bool:
        return self.code == UNREACHABLE_CODE


# Status reasons (k8s.io/apimachinery/pkg/apis/meta/v1 StatusReason), verbatim.
NOT_FOUND = "NotFound"
ALREADY_EXISTS = "AlreadyExists"
CONFLICT = "Conflict"
FORBIDDEN = "Forbidden"
GONE = "Expired"
INVALID = "Invalid"
BAD_REQUEST = "BadRequest"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
TOO_MANY_REQUESTS = "TooManyRequests"
INTERNAL_ERROR = "InternalError"
SERVICE_UNAVAILABLE = "ServiceUnavailable"
TIMEOUT = "Timeout"
UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
REQUEST_ENTITY_TOO_LARGE = "RequestEntityTooLarge"

# Not a Kubernetes status: no HTTP answer at all (connection refused, no such host, TLS).
UNREACHABLE = "Unreachable"
UNREACHABLE_CODE = 0
