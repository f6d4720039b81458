"""The gateway's OIDC relying party: discovery, the authorization URL, code redemption, and ID
token verification (browser logins and bearer tokens alike).

Rules:

1. Discovery must name exactly the configured issuer, offer PKCE ``S256`` and sign ID tokens
   with ``RS256``; otherwise the gateway refuses to use the provider (:class:`OidcError`).
2. An ID token is accepted only when its signature verifies with a key from the provider's JWKS
   under the algorithm pinned to ``RS256`` (never the token's own ``alg``), ``iss`` is the
   issuer, ``aud`` names an accepted client, ``exp`` has not passed, and ``sub`` is present;
   a browser login's token must also carry the login's ``nonce``. The identity's email is the
   ``email`` claim unless ``email_verified`` is false (then none); its groups are the
   ``groups`` claim's strings (none when the claim is absent or not a list).
3. An unknown ``kid`` refetches the JWKS (the provider rotated keys), at most once per
   :data:`JWKS_REFRESH_SECONDS`.
4. Codes are redeemed with the PKCE verifier, and with the client secret (HTTP Basic) when the
   gateway is a confidential client; a public client sends only its ``client_id``.

The OAuth 2.0 client parts (the authorization URL with its S256 challenge, the code-for-token
request and its client authentication) are Authlib's ``OAuth2Client``; ID tokens are verified
with PyJWT. This module adds the rules above on top and turns both libraries' failures into
this module's errors, whose messages never carry a token or the client secret.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import attrs
import httpx
import jwt
from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
    OAuth2Client,
    OAuthError,
)

from kbshell.backend.issuing import Identity

JWKS_REFRESH_SECONDS = 30.0
ALGORITHM = "RS256"


class OidcError(Exception):
    """The identity provider is unusable or unreachable (a 502 for a request that needs it)."""


class InvalidIdTokenError(Exception):
    """Rule 2 failed: the message says which check, never the token."""


class LoginRefusedError(Exception):
    """The provider would not redeem the code (it said why: ``error``, ``description``)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class _OAuth2(Protocol):
    """The part of Authlib's (untyped) ``OAuth2Client`` this module calls, typed."""

    def create_authorization_url(
        self, url: str, state: str, code_verifier: str, *, nonce: str
    ) -> tuple[str, str]: ...

    def fetch_token(
        self, url: str, *, grant_type: str, code: str, code_verifier: str
    ) -> dict[str, object]: ...

    def register_compliance_hook(
        self, hook_type: str, hook: Callable[[httpx.Response], httpx.Response]
    ) -> None: ...

    def close(self) -> None: ...


class _Through(httpx.BaseTransport):
    """Authlib's client sends its requests through the gateway's own ``httpx.Client`` (its
    timeout, connection pool and proxies; in tests, its mock transport), and closing Authlib's
    client leaves that one open."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._http.send(request)


def _refuse_unless_ok(resp: httpx.Response) -> httpx.Response:
    """The token responses Authlib would not turn into an ``OAuthError`` with the provider's
    reason (a body that is not a JSON object, an error status without an OAuth ``error``, a
    5xx): LoginRefusedError saying the status. A 4xx with an ``error`` goes on to Authlib."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise LoginRefusedError(
            f"HTTP {resp.status_code}", "the token response is not a JSON object"
        )
    if resp.status_code == 200 or (resp.status_code < 500 and "error" in body):
        return resp
    raise LoginRefusedError(
        str(body.get("error", f"HTTP {resp.status_code}")),
        str(body.get("error_description", "")),
    )


@attrs.frozen
class OidcClient:
    issuer: str
    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=False)
    extra_audiences: tuple[str, ...] = ()
    """Other clients (e.g. the CLI's) whose ID tokens are accepted as bearer tokens."""
    scopes: str = "openid email profile"

    @property
    def audiences(self) -> tuple[str, ...]:
        return (self.client_id, *self.extra_audiences)


@attrs.frozen
class _Endpoints:
    """The provider's endpoint URLs, from its discovery document (`redeem_url`: where a code
    is redeemed, the token endpoint)."""

    authorization: str
    redeem_url: str
    jwks: str


class OidcProvider:
    def __init__(
        self,
        client: OidcClient,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._http = http
        self._clock = clock
        self._lock = threading.Lock()
        self._endpoints: _Endpoints | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at: float | None = None

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            resp = self._http.get(url)
        except httpx.HTTPError as err:
            raise OidcError(f"cannot read the {what} at {url}: {err}") from err
        if resp.status_code != 200:
            raise OidcError(f"the {what} at {url} answered {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError as err:
            raise OidcError(f"the {what} at {url} is not JSON") from err
        if not isinstance(doc, dict):
            raise OidcError(f"the {what} at {url} is not a JSON object")
        return doc

    def endpoints(self) -> _Endpoints:
        """Rule 1: discovery, once (a failure is retried on the next call)."""
        with self._lock:
            if self._endpoints is None:
                self._endpoints = self._discover()
            return self._endpoints

    def _discover(self) -> _Endpoints:
        url = self.client.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "OIDC discovery document")
        if doc.get("issuer") != self.client.issuer:
            raise OidcError(
                f"the discovery document at {url} names issuer {doc.get('issuer')!r}, "
                f"not {self.client.issuer!r}"
            )
        if "S256" not in doc.get("code_challenge_methods_supported", []):
            raise OidcError(f"the provider at {self.client.issuer} does not offer PKCE S256")
        if ALGORITHM not in doc.get("id_token_signing_alg_values_supported", []):
            raise OidcError(f"the provider at {self.client.issuer} does not sign with RS256")
        try:
            return _Endpoints(
                str(doc["authorization_endpoint"]), str(doc["token_endpoint"]),
                str(doc["jwks_uri"]),
            )  # fmt: skip
        except KeyError as err:
            raise OidcError(f"the discovery document at {url} lacks {err}") from err

    def _oauth(self, redirect_uri: str) -> _OAuth2:
        """An Authlib client for one login: it remembers the last token it fetched, so one
        shared by concurrent logins could hand one login another's token."""
        secret = self.client.client_secret
        oauth = OAuth2Client(
            client_id=self.client.client_id,
            client_secret=secret,
            token_endpoint_auth_method="none" if secret is None else "client_secret_basic",
            scope=self.client.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            transport=_Through(self._http),
            timeout=self._http.timeout,
            trust_env=False,  # the gateway's own client already applied the environment
        )
        return cast(_OAuth2, oauth)

    def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        endpoint = self.endpoints().authorization
        with contextlib.closing(self._oauth(redirect_uri)) as oauth:
            url, _ = oauth.create_authorization_url(endpoint, state, verifier, nonce=nonce)
        return url

    def redeem(self, *, code: str, verifier: str, redirect_uri: str) -> str:
        """Rule 4: the ID token for ``code``; LoginRefusedError when the provider says no."""
        token_url = self.endpoints().redeem_url
        with contextlib.closing(self._oauth(redirect_uri)) as oauth:
            oauth.register_compliance_hook("access_token_response", _refuse_unless_ok)
            try:
                token = oauth.fetch_token(
                    token_url, grant_type="authorization_code", code=code, code_verifier=verifier
                )
            except OAuthError as err:
                raise LoginRefusedError(str(err.error), str(err.description or "")) from err
            except httpx.HTTPError as err:
                raise OidcError(f"cannot reach the token endpoint {token_url}: {err}") from err
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise LoginRefusedError("no_id_token", "the token response carries no id_token")
        return id_token

    def _key(self, kid: str) -> jwt.PyJWK:
        """Rule 3."""
        with self._lock:
            now = self._clock()
            stale = self._keys_fetched_at is None or (
                kid not in self._keys and now - self._keys_fetched_at >= JWKS_REFRESH_SECONDS
            )
            if stale:
                jwks_url = self._endpoints.jwks if self._endpoints else None
                if jwks_url is None:
                    raise OidcError("discovery has not succeeded")
                doc = self._get_json(jwks_url, "JWKS")
                try:
                    keyset = jwt.PyJWKSet.from_dict(doc)
                except jwt.PyJWKSetError as err:
                    raise OidcError(f"the JWKS at {jwks_url} has no usable key: {err}") from err
                self._keys = {k.key_id: k for k in keyset.keys if k.key_id}
                self._keys_fetched_at = now
            if kid not in self._keys:
                raise InvalidIdTokenError("it is signed with a key the provider does not publish")
            return self._keys[kid]

    def verify(self, id_token: str, *, nonce: str | None = None) -> Identity:
        """Rule 2: the token's identity, or InvalidIdTokenError saying what failed."""
        self.endpoints()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.InvalidTokenError as err:
            raise InvalidIdTokenError("it is not a JWT") from err
        if header.get("alg") != ALGORITHM:
            raise InvalidIdTokenError(f"it is not signed with {ALGORITHM}")
        key = self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[ALGORITHM],
                audience=list(self.client.audiences),
                issuer=self.client.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise InvalidIdTokenError("it has expired") from err
        except jwt.InvalidAudienceError as err:
            raise InvalidIdTokenError("it was issued to another client") from err
        except jwt.InvalidIssuerError as err:
            raise InvalidIdTokenError("it was issued by another provider") from err
        except jwt.InvalidTokenError as err:
            raise InvalidIdTokenError(f"it does not verify ({type(err).__name__})") from err
        if nonce is not None and not hmac.compare_digest(
            str(claims.get("nonce", "")).encode(), nonce.encode()
        ):
            raise InvalidIdTokenError("its nonce is not the one this login sent")
        # An address the provider did not verify names nobody: a catalog keyed by email would
        # otherwise trust whatever a user typed at sign-up.
        email = claims.get("email", "") if claims.get("email_verified") is not False else ""
        groups = claims.get("groups")
        return Identity(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else "",
            groups=tuple(g for g in groups if isinstance(g, str))
            if isinstance(groups, list)
            else (),
        )
