"""The provider's gateway: an HTTP API that logs a caller in (OIDC), shows the catalog, and hands
out a bind's bundle once (docs/service-layer.md, "Gateway").

Endpoints: ``GET /exports`` (landing page), ``GET /api/provider``, ``GET /api/authorize`` and
``GET /api/callback`` (browser login: authorization code with PKCE), ``GET /api/catalog``,
``POST /api/bind``, ``GET /api/bundle/{token}``, ``POST /api/apply`` (when enabled),
``GET /api/healthz``. A caller is a browser session (cookie) or carries
``Authorization: Bearer <ID token>`` (the CLI, curl).

Rules:

1. Credentials travel only in response bodies: the bundle in the one pickup, never in a URL or
   a redirect; no log line holds a token, a code, a cookie or a bundle (the access log names
   routes, not paths with tokens, and no query strings).
2. A pickup token is 32 random bytes (urlsafe). The store keeps only ``SHA-256("id" + token)``
   as the key and the bundle sealed with AES-GCM under ``SHA-256("key" + token)``: what is at
   rest in the store cannot be read without the token, which only the caller has.
3. A pickup is single use and lives :attr:`GatewayConfig.pickup_ttl` seconds (5 min): the first
   GET takes it (atomically, on any replica), every later one is 410 Gone, as is one after the
   TTL. The format (YAML, the default, or JSON) is chosen before the take, so a 406 does not
   burn the token.
4. A browser login's ``state`` is bound to the session cookie that started it and is used once;
   an unknown, expired, replayed or foreign state is 400. The ID token must carry the login's
   nonce (:mod:`kbshell.backend.oidc`, rule 2). A successful login rotates the session id.
5. ``POST /api/bind`` takes a JSON body only (a cross-site form cannot send one, and the cookie
   is SameSite=Lax): ``export``, ``consumerClusterUID`` and, for a Binding instead of a
   ClusterBinding, the consumer ``namespace``; and at most
   :attr:`GatewayConfig.bind_rate_limit` binds per identity per window; beyond that 429 with
   ``Retry-After``.
6. A caller outside the allowed set (:mod:`kbshell.backend.admission`) is refused with 403
   ``not_allowed``: at the login callback before the session is written, and on every request
   (bearer token or a session opened before the set changed), so no Grant or pickup is made
   for it.
7. ``POST /api/apply`` (off unless ``--enable-apply``: 404 ``apply_disabled``) applies a bundle
   to the consumer cluster of the kubeconfig in its body, which is checked before the pickup
   is taken or the bind made, and is never logged or stored (:mod:`kbshell.backend.apply`).
8. Every refusal is a JSON body ``{"error": code, "message": text}`` with a 4xx status; a 5xx
   means the gateway or something it depends on failed, never the caller's input.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from kbshell.backend.admission import Admission
from kbshell.backend.apply import Applier, ApplyRefusedError, consumer_credentials
from kbshell.backend.issuing import BindRefused, Identity, Issuer, refusal_status
from kbshell.backend.metrics import GatewayMetrics
from kbshell.backend.oidc import InvalidIdTokenError, LoginRefusedError, OidcError, OidcProvider
from kbshell.backend.sessions import SessionStore
from kbshell.bundle_yaml import bundle_yaml

log = logging.getLogger("gateway")

SESSION_COOKIE = "kube_bind_session"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_BODY = 64 * 1024
MAX_APPLY_BODY = 1024 * 1024  # a kubeconfig may hold certificates; the API server's own limit
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


@attrs.frozen
class GatewayConfig:
    external_url: str
    """Where callers reach the gateway (scheme, host, optional path prefix); no trailing /."""
    provider_name: str = "kube-bind"
    version: str = ""
    bind_rate_limit: int = 10
    bind_rate_window: float = 60.0
    pickup_ttl: float = 300.0
    login_ttl: float = 600.0
    session_ttl: float = 8 * 3600.0
    admission: Admission = attrs.field(factory=Admission)
    """Who may use the gateway (``--allow-*``); everyone the OIDC provider vouches for by
    default."""
    cli_client_id: str = ""
    """The public OIDC client `kubectl bind` logs in as (``--oidc-cli-client-id``), shown in
    ``/api/provider``; "" when the provider names none."""

    @property
    def secure_cookies(self) -> bool:
        return self.external_url.startswith("https://")

    def url(self, path: str) -> str:
        return self.external_url.rstrip("/") + path


class RefusalError(Exception):
    """Rule 8: answer ``status`` with ``{"error": error, "message": message}``."""

    def __init__(
        self, status: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.headers = headers or {}


def _error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"error": error, "message": message},
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _digest(label: str, secret: str) -> bytes:
    return hashlib.sha256(label.encode() + b":" + secret.encode()).digest()


def _pickup_key(token: str) -> str:
    return "pickup:" + _digest("id", token).hex()


def _seal(token: str, payload: bytes) -> str:
    """Rule 2."""
    nonce = os.urandom(12)
    sealed = AESGCM(_digest("key", token)).encrypt(nonce, payload, None)
    return base64.b64encode(nonce + sealed).decode("ascii")


def _unseal(token: str, blob: str) -> bytes:
    raw = base64.b64decode(blob)
    return AESGCM(_digest("key", token)).decrypt(raw[:12], raw[12:], None)


def _session_key(session_id: str) -> str:
    return "session:" + _digest("session", session_id).hex()


def _safe_return_path(value: str | None) -> str:
    """Only a path on this gateway (no scheme, no host, no //): never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/exports"


def _wants(accept: str) -> str | None:
    """Rule 3's choice: "yaml" or "json" from an Accept header, None when neither is acceptable.
    Highest q wins; ties go to the first listed; no header, */* and application/* mean YAML."""
    if not accept.strip():
        return "yaml"
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept.split(",")):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, kind.lower()))
    for neg_q, _, kind in sorted(ranked):
        if neg_q == 0:
            continue
        if kind in YAML_TYPES or kind in ("*/*", "application/*", "text/*"):
            return "yaml"
        if kind == "application/json":
            return "json"
    return None


class _AccessLog(BaseHTTPMiddleware):
    """Rule 1: method, route, status and duration; no query string, no pickup token. And the
    request metrics (kbshell.backend.metrics)."""

    def __init__(self, app: Any, metrics: GatewayMetrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.monotonic()
        path = request.url.path
        try:
            response = await call_next(request)
        except Exception:
            self.metrics.request(path, request.method, 500, time.monotonic() - start)
            raise
        response.headers.setdefault("Cache-Control", "no-store")  # nothing here is cacheable
        self.metrics.request(path, request.method, response.status_code, time.monotonic() - start)
        route = "/api/bundle/{token}" if path.startswith("/api/bundle/") else path
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "durationMs": round((time.monotonic() - start) * 1000, 1),
            },
        )
        return response


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        oidc: OidcProvider,
        issuer: Issuer,
        store: SessionStore,
        clock: Callable[[], float] = time.time,
        applier: Applier | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        """``applier`` None: ``POST /api/apply`` is disabled (``--enable-apply``)."""
        self.metrics = metrics or GatewayMetrics(config.version)
        self.config = config
        self.oidc = oidc
        self.issuer = issuer
        self.store = store
        self.clock = clock
        self.applier = applier

    # ------------------------------------------------------------------ who is calling

    def identity(self, request: Request) -> Identity | None:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise RefusalError(401, "invalid_token", "Authorization must be Bearer <ID token>")
            try:
                return self._admitted(self.oidc.verify(token.strip()))
            except InvalidIdTokenError as err:
                raise RefusalError(
                    401, "invalid_token", f"the bearer ID token is refused: {err}",
                    {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                ) from err  # fmt: skip
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        stored = self.store.get(_session_key(session_id))
        if stored is None:
            return None
        fields = json.loads(stored)
        return self._admitted(
            Identity(fields["issuer"], fields["subject"], fields["email"],
                     tuple(fields.get("groups", ())))
        )  # fmt: skip

    def _admitted(self, who: Identity) -> Identity:
        """Rule 6."""
        if not self.config.admission.admits(who):
            log.info("caller not allowed", extra={"subject": who.subject, "email": who.email})
            raise RefusalError(403, "not_allowed", self.config.admission.refusal(who))
        return who

    def caller(self, request: Request) -> Identity:
        who = self.identity(request)
        if who is None:
            raise RefusalError(
                401, "unauthenticated",
                f"log in at {self.config.url('/api/authorize')} or send a bearer ID token",
                {"WWW-Authenticate": 'Bearer realm="kube-bind"'},
            )  # fmt: skip
        return who

    # ------------------------------------------------------------------ endpoints

    def provider(self, request: Request) -> Response:
        return JSONResponse(self.provider_document())

    def provider_document(self) -> dict[str, Any]:
        return {
            "name": self.config.provider_name,
            "version": self.config.version,
            "authMethods": ["oidc", "bearer-id-token"],
            "authorizeURL": self.config.url("/api/authorize"),
            "oidc": {
                "issuer": self.oidc.client.issuer,
                "audiences": list(self.oidc.client.audiences),
                **({"cliClientID": self.config.cli_client_id} if self.config.cli_client_id else {}),
            },
        }

    def healthz(self, request: Request) -> Response:
        if not self.store.ping():
            return _error(503, "unhealthy", "the session store does not answer")
        return JSONResponse({"status": "ok"})

    def authorize(self, request: Request) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE) or secrets.token_urlsafe(32)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        login = {
            "session": _digest("login", session_id).hex(),
            "nonce": nonce,
            "verifier": verifier,
            "returnTo": _safe_return_path(request.query_params.get("returnTo")),
        }
        self.store.put("login:" + _digest("state", state).hex(), json.dumps(login),
                       self.config.login_ttl)  # fmt: skip
        target = self.oidc.authorization_url(
            redirect_uri=self.config.url("/api/callback"),
            state=state,
            nonce=nonce,
            verifier=verifier,
        )
        response = RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
        self._set_cookie(response, session_id)
        return response

    def callback(self, request: Request) -> Response:
        try:
            response = self._callback(request)
        except RefusalError as err:
            self.metrics.login(err.error)
            raise
        except OidcError:
            self.metrics.login("identity_provider_unavailable")
            raise
        self.metrics.login("ok")
        return response

    def _callback(self, request: Request) -> Response:
        params = request.query_params
        state = params.get("state", "")
        login_json = self.store.take("login:" + _digest("state", state).hex()) if state else None
        if login_json is None:
            raise RefusalError(
                400, "invalid_state",
                "unknown, expired or already used login state: start again at "
                + self.config.url("/api/authorize"),
            )  # fmt: skip
        login = json.loads(login_json)
        session_id = request.cookies.get(SESSION_COOKIE, "")
        if not secrets.compare_digest(_digest("login", session_id).hex(), login["session"]):
            raise RefusalError(
                400, "invalid_state", "this login was not started by this browser session"
            )
        if "error" in params:
            raise RefusalError(
                400, "login_failed",
                f"the identity provider said {params['error']}: "
                + params.get("error_description", ""),
            )  # fmt: skip
        code = params.get("code")
        if not code:
            raise RefusalError(400, "invalid_request", "the callback carries no code")
        try:
            id_token = self.oidc.redeem(
                code=code, verifier=login["verifier"], redirect_uri=self.config.url("/api/callback")
            )
            who = self.oidc.verify(id_token, nonce=login["nonce"])
        except LoginRefusedError as err:
            raise RefusalError(
                400, "login_failed",
                f"the identity provider refused the code: {err.error} {err.description}".strip(),
            ) from err  # fmt: skip
        except InvalidIdTokenError as err:
            raise RefusalError(400, "invalid_id_token", f"the ID token is refused: {err}") from err
        self._admitted(who)  # before anything is written for it
        if session_id:
            self.store.take(_session_key(session_id))  # a re-login ends the old session
        new_session = secrets.token_urlsafe(32)
        self.store.put(_session_key(new_session), json.dumps(attrs.asdict(who)),
                       self.config.session_ttl)  # fmt: skip
        log.info("logged in", extra={"subject": who.subject, "email": who.email})
        response = RedirectResponse(
            self.config.url(login["returnTo"]), status_code=303,
            headers={"Cache-Control": "no-store"},
        )  # fmt: skip
        self._set_cookie(response, new_session)
        return response

    def _set_cookie(self, response: Response, session_id: str) -> None:
        response.set_cookie(
            SESSION_COOKIE, session_id, max_age=int(self.config.session_ttl), path="/",
            httponly=True, samesite="lax", secure=self.config.secure_cookies,
        )  # fmt: skip

    def catalog(self, request: Request) -> Response:
        entries = self.issuer.catalog(self.caller(request))
        return JSONResponse(
            {
                "exports": [e.to_json() for e in entries if e.kind == "Export"],
                "collections": [e.to_json() for e in entries if e.kind == "Collection"],
            }
        )

    async def _json_body(self, request: Request, what: str, limit: int) -> bytes:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise RefusalError(
                415, "unsupported_media_type", f"send the {what} request as application/json"
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RefusalError(413, "too_large", f"a {what} request is at most {limit} bytes")
        return body

    async def bind(self, request: Request) -> Response:
        body = await self._json_body(request, "bind", MAX_BODY)
        return await run_in_threadpool(self._bind, request, body)

    @staticmethod
    def _object(body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body)
        except ValueError as err:
            raise RefusalError(400, "invalid_request", "the body is not JSON") from err
        if not isinstance(doc, dict):
            raise RefusalError(400, "invalid_request", "the body must be a JSON object")
        return doc

    @staticmethod
    def _bind_request(doc: dict[str, Any]) -> tuple[str, str, str]:
        """Export, consumer cluster UID, and the consumer namespace of a Binding ("": a
        ClusterBinding)."""
        export, uid = doc.get("export"), doc.get("consumerClusterUID")
        namespace = doc.get("namespace", "")
        if not isinstance(export, str) or not 0 < len(export) <= 253:
            raise RefusalError(
                400, "invalid_request", "export must be a name (1 to 253 characters)"
            )
        if not isinstance(uid, str) or not 0 < len(uid) <= 128:
            raise RefusalError(
                400, "invalid_request", "consumerClusterUID must be a string (1 to 128 characters)"
            )
        if not isinstance(namespace, str) or (namespace and not NAMESPACE_RE.match(namespace)):
            raise RefusalError(
                400, "invalid_request", "namespace must be a namespace name (a DNS label)"
            )
        return export, uid, namespace

    def _issue(
        self, who: Identity, export: str, uid: str, namespace: str = ""
    ) -> list[dict[str, Any]]:
        try:
            self._limit(who)
        except RefusalError:
            self.metrics.bind_refused("RateLimited")
            raise
        try:
            # The namespace only when asked for: a plain bind suits any Issuer.
            objects = (
                self.issuer.bind(who, export, uid, namespace=namespace)
                if namespace
                else self.issuer.bind(who, export, uid)
            )
        except BindRefused as err:
            self.metrics.bind_refused(err.reason)
            raise RefusalError(refusal_status(err), err.reason, err.message) from err
        self.metrics.bind_issued()
        return objects

    def _bind(self, request: Request, body: bytes) -> Response:
        who = self.caller(request)
        export, uid, namespace = self._bind_request(self._object(body))
        objects = self._issue(who, export, uid, namespace)
        token = secrets.token_urlsafe(32)
        payload = json.dumps({"bundle": objects}).encode()
        self.store.put(_pickup_key(token), _seal(token, payload), self.config.pickup_ttl)
        log.info(
            "bundle issued",
            extra={"subject": who.subject, "email": who.email, "export": export,
                   "consumerClusterUID": uid, "objects": len(objects)},
        )  # fmt: skip
        return JSONResponse(
            {
                "pickupURL": self.config.url(f"/api/bundle/{token}"),
                "expiresInSeconds": math.ceil(self.config.pickup_ttl),
            },
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    def _limit(self, who: Identity) -> None:
        """Rule 5: a fixed window per identity, shared by replicas through the store."""
        window = self.config.bind_rate_window
        now = self.clock()
        index = math.floor(now / window)
        key = f"rate:{_digest('rate', who.key).hex()}:{index}"
        if self.store.count(key, window) > self.config.bind_rate_limit:
            retry = max(1, math.ceil((index + 1) * window - now))
            raise RefusalError(
                429, "rate_limited",
                f"at most {self.config.bind_rate_limit} binds per {window:g}s; "
                f"try again in {retry}s",
                {"Retry-After": str(retry)},
            )  # fmt: skip

    def bundle(self, request: Request) -> Response:
        if request.method != "GET":  # Starlette adds HEAD to GET routes: a probe must not burn it
            raise RefusalError(405, "method_not_allowed", "GET the pickup URL")
        token = request.path_params["token"]
        if not TOKEN_RE.match(token):
            raise RefusalError(404, "not_found", "this is not a pickup URL")
        fmt = _wants(request.headers.get("accept", ""))
        if fmt is None:
            raise RefusalError(
                406, "not_acceptable", "the bundle is application/yaml or application/json"
            )
        objects = self._take(token)
        log.info("bundle picked up", extra={"format": fmt, "objects": len(objects)})
        headers = {"Cache-Control": "no-store"}
        if fmt == "json":
            return JSONResponse({"bundle": objects}, headers=headers)
        return Response(bundle_yaml(objects), media_type="application/yaml", headers=headers)

    def _take(self, token: str) -> list[dict[str, Any]]:
        """Rule 3: the pickup's bundle, taken (once)."""
        sealed = self.store.take(_pickup_key(token))
        self.metrics.pickup(taken=sealed is not None)
        if sealed is None:
            raise RefusalError(
                410, "gone",
                "this pickup URL was already used or has expired; bind again for a new one",
            )  # fmt: skip
        try:
            objects: list[dict[str, Any]] = json.loads(_unseal(token, sealed))["bundle"]
        except (InvalidTag, ValueError, KeyError) as err:
            raise RefusalError(410, "gone", "this pickup could not be opened") from err
        return objects

    async def apply(self, request: Request) -> Response:
        """Rule 7 (kbshell.backend.apply has its own rules)."""
        if self.applier is None:
            raise RefusalError(
                404, "apply_disabled",
                "POST /api/apply is disabled on this provider (kube-bind-backend --enable-apply); "
                "fetch the pickup URL of POST /api/bind and apply it yourself, e.g. "
                "curl -s $PICKUP_URL | kubectl apply -f -",
            )  # fmt: skip
        body = await self._json_body(request, "apply", MAX_APPLY_BODY)
        return await run_in_threadpool(self._apply, request, body)

    def _apply(self, request: Request, body: bytes) -> Response:
        try:
            response = self._apply_checked(request, body)
        except RefusalError as err:
            self.metrics.apply(err.error)
            raise
        return response

    def _apply_checked(self, request: Request, body: bytes) -> Response:
        assert self.applier is not None
        who = self.caller(request)
        doc = self._object(body)
        pickup = doc.get("pickup")
        token = export = uid = namespace = ""
        if pickup is not None and ("export" in doc or "consumerClusterUID" in doc):
            raise RefusalError(
                400, "invalid_request", "give either pickup or export and consumerClusterUID"
            )
        if pickup is not None:
            token = str(pickup).rstrip("/").rsplit("/", 1)[-1] if isinstance(pickup, str) else ""
            if not TOKEN_RE.match(token):
                raise RefusalError(
                    400, "invalid_request", "pickup must be a pickup token or pickup URL"
                )
        else:
            export, uid, namespace = self._bind_request(doc)
        if "kubeconfig" not in doc:
            raise RefusalError(400, "invalid_request", "kubeconfig (the consumer's) is required")
        try:
            # Apply rule 3: everything is checked before a pickup is taken or a bind is made.
            creds = consumer_credentials(doc.pop("kubeconfig"))
            objects = (
                self._take(token)
                if pickup is not None
                else self._issue(who, export, uid, namespace)
            )
            applied = self.applier.apply(creds, objects)
        except ApplyRefusedError as err:
            self.metrics.apply(err.error)
            extra = {"applied": err.applied} if err.applied or err.status >= 422 else {}
            return JSONResponse(
                {"error": err.error, "message": err.message, **extra},
                status_code=err.status, headers={"Cache-Control": "no-store"},
            )  # fmt: skip
        self.metrics.apply("ok")
        log.info(
            "bundle applied",
            extra={"subject": who.subject, "email": who.email, "objects": len(applied),
                   "via": "pickup" if pickup is not None else "bind"},
        )  # fmt: skip
        return JSONResponse({"applied": applied}, headers={"Cache-Control": "no-store"})

    def exports(self, request: Request) -> Response:
        """The URL a user pastes: JSON for programs, a page for browsers (login first)."""
        if _wants(request.headers.get("accept", "")) == "json":
            return JSONResponse(self.provider_document())
        who = self.identity(request)
        if who is None:
            return RedirectResponse(self.config.url("/api/authorize?returnTo=/exports"), 302)
        rows = "".join(
            f"<li><b>{html.escape(e.title or e.name)}</b> ({html.escape(e.kind)} "
            f"<code>{html.escape(e.name)}</code>): {html.escape(e.description)}</li>"
            for e in self.issuer.catalog(who)
        )
        name = html.escape(self.config.provider_name)
        page = (
            f"<!doctype html><html><head><meta charset=utf-8><title>{name}</title></head><body>"
            f"<h1>{name}</h1><p>Logged in as {html.escape(who.email or who.subject)}.</p>"
            f"<ul>{rows}</ul><p>Bind from a terminal: "
            f"<code>kubectl bind {html.escape(self.config.url('/exports'))}</code></p>"
            "</body></html>"
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RefusalError)
    return _error(exc.status, exc.error, exc.message, exc.headers)


def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(
        exc.status_code, f"http_{exc.status_code}", str(exc.detail), dict(exc.headers or {})
    )


def _unavailable(request: Request, exc: Exception) -> Response:
    log.error("the identity provider failed", extra={"error": str(exc)})
    return _error(502, "identity_provider_unavailable", str(exc))


def _internal(request: Request, exc: Exception) -> Response:
    log.error("request failed", exc_info=exc)
    return _error(500, "internal_error", "the gateway failed; its log says why")


def make_app(gateway: Gateway) -> Starlette:
    g = gateway
    return Starlette(
        routes=[
            Route("/exports", g.exports, methods=["GET"]),
            Route("/api/provider", g.provider, methods=["GET"]),
            Route("/api/healthz", g.healthz, methods=["GET"]),
            Route("/api/authorize", g.authorize, methods=["GET"]),
            Route("/api/callback", g.callback, methods=["GET"]),
            Route("/api/catalog", g.catalog, methods=["GET"]),
            Route("/api/bind", g.bind, methods=["POST"]),
            Route("/api/bundle/{token}", g.bundle, methods=["GET"]),
            Route("/api/apply", g.apply, methods=["POST"]),
        ],
        middleware=[Middleware(_AccessLog, metrics=g.metrics)],
        exception_handlers={
            RefusalError: _refusal,
            HTTPException: _http_exception,
            OidcError: _unavailable,
            Exception: _internal,
        },
    )
