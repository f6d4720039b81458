"""The Prometheus metrics of ``kube-bind-backend``'s gateway, served on ``/metrics`` by the same
ops server as its probes (``kbshell.ops.server``; docs/service-layer.md, "Metrics").

Cardinality rule, as the konnector's (``kbshell.ops.metrics``): no label value is ever an
identity, an export name, a token or a path with one. Labels are route templates (a fixed set;
any other path is ``other``), methods, HTTP status codes, and reasons: the issuer's CamelCase
refusal reasons and the gateway's error codes, both finite sets in the code.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from kbshell.ops.metrics import PrivateRegistry

ROUTES = (
    "/exports", "/api/provider", "/api/healthz", "/api/authorize", "/api/callback",
    "/api/catalog", "/api/bind", "/api/bundle/{token}", "/api/apply",
)  # fmt: skip
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def route_of(path: str) -> str:
    """The route template of a request path; ``other`` for a path no route serves."""
    if path.startswith("/api/bundle/"):
        return "/api/bundle/{token}"
    return path if path in ROUTES else "other"


class GatewayMetrics(PrivateRegistry):
    """Every metric the gateway exports, in a private registry (`kbshell.ops.metrics`)."""

    def __init__(self, version: str = "") -> None:
        super().__init__(
            "kubebind_backend_build", "Build information of kube-bind-backend", version
        )
        r = self.registry
        self._requests = Counter(
            "kubebind_gateway_requests_total",
            "HTTP requests the gateway answered, by route template, method and status code",
            ["route", "method", "code"],
            registry=r,
        )
        self._duration = Histogram(
            "kubebind_gateway_request_duration_seconds",
            "Time to answer a request, by route template",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self._binds = Counter(
            "kubebind_gateway_binds_total",
            "Binds asked for: result issued, or refused with the reason (the issuer's, or "
            "RateLimited)",
            ["result", "reason"],
            registry=r,
        )
        self._pickups = Counter(
            "kubebind_gateway_pickups_total",
            "Pickup fetches: taken (the bundle handed out) or gone (already used or expired)",
            ["result"],
            registry=r,
        )
        self._logins = Counter(
            "kubebind_gateway_logins_total",
            "Browser logins finished at the callback: ok, or the error code of the refusal",
            ["result"],
            registry=r,
        )
        self._applies = Counter(
            "kubebind_gateway_applies_total",
            "POST /api/apply requests: ok, or the error code of the refusal",
            ["result"],
            registry=r,
        )
        self._binds.labels("issued", "")
        for result in ("taken", "gone"):
            self._pickups.labels(result)
        self._logins.labels("ok")
        self._applies.labels("ok")

    def request(self, path: str, method: str, code: int, seconds: float) -> None:
        route = route_of(path)
        self._requests.labels(route, method if method in METHODS else "other", str(code)).inc()
        self._duration.labels(route).observe(max(seconds, 0.0))

    def bind_issued(self) -> None:
        self._binds.labels("issued", "").inc()

    def bind_refused(self, reason: str) -> None:
        self._binds.labels("refused", reason).inc()

    def pickup(self, taken: bool) -> None:
        self._pickups.labels("taken" if taken else "gone").inc()

    def login(self, result: str) -> None:
        self._logins.labels(result).inc()

    def apply(self, result: str) -> None:
        self._applies.labels(result).inc()
