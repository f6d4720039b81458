"""In-process stand-ins for the gateway's unit tests: an OIDC provider behind httpx's
MockTransport (discovery, JWKS, token endpoint that checks PKCE), a settable clock, and an
Issuer that records what it was asked. The real Dex and Redis are in tests/e2e/test_gateway.py."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
from typing import Any

import attrs
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from kbshell.backend.admission import Admission
from kbshell.backend.apply import Applier
from kbshell.backend.gateway import Gateway, GatewayConfig, make_app
from kbshell.backend.issuing import BindRefused, CatalogEntry, Identity
from kbshell.backend.oidc import OidcClient, OidcProvider
from kbshell.backend.sessions import MemoryStore

ISSUER = "https://op.test/dex"
GATEWAY_CLIENT = "kube-bind-gateway"
CLI_CLIENT = "kube-bind-cli"
CLIENT_SECRET = "gateway-client-secret-xyzzy"
# In the bundle's Secret: the test looks for it wherever credentials must not be.
KUBECONFIG_MARKER = "provider-token-0123456789abcdef"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@attrs.define
class _Grant:
    challenge: str
    nonce: str
    redirect_uri: str
    email: str
    groups: tuple[str, ...] = ()


class FakeOp:
    """A provider: ``approve(authorize_params, email)`` plays the user logging in and returns
    the code; the token endpoint redeems it once, only with the right verifier and secret."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.grants: dict[str, _Grant] = {}
        self.nonce_override: str | None = None
        self.token_requests: list[httpx.Request] = []
        self.public_client = False
        """The gateway has no secret: its token requests must carry none."""

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def mint(self, email: str = "alice@example.com", **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": f"{email.split('@')[0]}-id",
            "aud": GATEWAY_CLIENT,
            "exp": now + 3600,
            "iat": now,
            "email": email,
            **overrides,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def approve(
        self, params: dict[str, str], email: str = "alice@example.com",
        groups: tuple[str, ...] = (),
    ) -> str:  # fmt: skip
        assert params["code_challenge_method"] == "S256"
        assert params["client_id"] == GATEWAY_CLIENT
        code = secrets.token_urlsafe(16)
        self.grants[code] = _Grant(
            params["code_challenge"], params["nonce"], params["redirect_uri"], email, groups
        )
        return code

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/dex/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER,
                "authorization_endpoint": ISSUER + "/auth",
                "token_endpoint": ISSUER + "/token",
                "jwks_uri": ISSUER + "/keys",
                "code_challenge_methods_supported": ["S256", "plain"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })  # fmt: skip
        if path == "/dex/keys":
            return httpx.Response(200, json=self.jwks())
        if path == "/dex/token" and request.method == "POST":
            self.token_requests.append(request)
            return self._token(request)
        return httpx.Response(404)

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = dict(urllib.parse.parse_qsl(request.content.decode(), keep_blank_values=True))
        if self.public_client:  # RFC 6749 4.1.3: a public client names itself in the body
            if ("authorization" in request.headers or "client_secret" in form
                    or form.get("client_id") != GATEWAY_CLIENT):  # fmt: skip
                return httpx.Response(401, json={"error": "invalid_client"})
        else:
            basic = base64.b64encode(f"{GATEWAY_CLIENT}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {basic}" or "client_secret" in form:
                return httpx.Response(401, json={"error": "invalid_client"})
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None:
            return httpx.Response(400, json={"error": "invalid_grant"})
        # RFC 7636 4.6, the reference the gateway's challenge must match: BASE64URL(SHA256(v)).
        digest = hashlib.sha256(form["code_verifier"].encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return httpx.Response(400, json={"error": "invalid_grant",
                                             "error_description": "bad code_verifier"})  # fmt: skip
        assert form["redirect_uri"] == grant.redirect_uri
        nonce = self.nonce_override or grant.nonce
        return httpx.Response(200, json={
            "token_type": "bearer", "access_token": "opaque",
            "id_token": self.mint(grant.email, nonce=nonce,
                                  groups=list(grant.groups) if grant.groups else None),
        })  # fmt: skip


def bundle(export: str) -> list[dict[str, Any]]:
    kubeconfig = f"apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {KUBECONFIG_MARKER}\n"
    return [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": f"{export}-kubeconfig", "namespace": "kube-bind"},
         "stringData": {"kubeconfig": kubeconfig}},
        {"apiVersion": "core.kube-bind.io/v1alpha1", "kind": "Connection",
         "metadata": {"name": export}, "spec": {"kubeconfigSecretRef": {"name": f"{export}-kubeconfig"}}},
        {"apiVersion": "core.kube-bind.io/v1alpha1", "kind": "ClusterBinding",
         "metadata": {"name": export}, "spec": {"connection": export, "apis": ["widgets.example.com"]}},
    ]  # fmt: skip


class RecordingIssuer:
    """Alice sees ``widgets`` and ``gadgets``; Bob only ``widgets``; nobody a Collection's bind."""

    def __init__(self) -> None:
        self.binds: list[tuple[Identity, str, str]] = []
        self.namespaces: list[str] = []

    def catalog(self, identity: Identity) -> list[CatalogEntry]:
        entries = [
            CatalogEntry("Export", "widgets", "Widgets", "Widgets as a service",
                         apis=("widgets.example.com",)),
            CatalogEntry("Collection", "everything", "Everything"),
        ]  # fmt: skip
        if identity.email == "alice@example.com":
            entries.append(CatalogEntry("Export", "gadgets", "Gadgets"))
        return entries

    def bind(
        self, identity: Identity, export: str, consumer_cluster_uid: str, *, namespace: str = ""
    ) -> list[dict[str, Any]]:
        self.binds.append((identity, export, consumer_cluster_uid))
        self.namespaces.append(namespace)
        names = {e.name for e in self.catalog(identity) if e.kind == "Export"}
        if export not in names:
            raise BindRefused("UnknownExport", f"there is no export {export!r} to bind")
        return bundle(export)


EXTERNAL = "http://testserver"


class World:
    """A gateway with its provider, issuer, store and clock; ``browser()`` is a cookie jar."""

    def __init__(
        self, rate_limit: int = 10, admission: Admission | None = None,
        applier: Applier | None = None,
    ) -> None:  # fmt: skip
        self.clock = Clock()
        self.op = FakeOp()
        self.issuer = RecordingIssuer()
        self.store = MemoryStore(clock=self.clock)
        oidc = OidcProvider(
            OidcClient(ISSUER, GATEWAY_CLIENT, CLIENT_SECRET, extra_audiences=(CLI_CLIENT,)),
            httpx.Client(transport=self.op.transport()),
        )
        config = GatewayConfig(EXTERNAL, provider_name="Widgets Inc.", version="1.2.3",
                               bind_rate_limit=rate_limit, cli_client_id=CLI_CLIENT,
                               admission=admission or Admission())  # fmt: skip
        self.gateway = Gateway(
            config, oidc, self.issuer, self.store, clock=self.clock, applier=applier
        )
        self.app = make_app(self.gateway)
        self.responses: list[httpx.Response] = []

    def browser(self) -> TestClient:
        client = TestClient(self.app, base_url=EXTERNAL, follow_redirects=False)
        client.event_hooks["response"].append(self.responses.append)
        return client

    def start_login(self, browser: TestClient, **params: str) -> dict[str, str]:
        """GET /api/authorize: the provider's authorization request it redirects to."""
        resp = browser.get("/api/authorize", params=params)
        assert resp.status_code == 302, resp.text
        target = urllib.parse.urlsplit(resp.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == ISSUER + "/auth"
        return dict(urllib.parse.parse_qsl(target.query))

    def log_in(
        self, browser: TestClient, email: str = "alice@example.com", groups: tuple[str, ...] = ()
    ) -> httpx.Response:
        request = self.start_login(browser)
        code = self.op.approve(request, email, groups)
        return browser.get("/api/callback", params={"code": code, "state": request["state"]})
