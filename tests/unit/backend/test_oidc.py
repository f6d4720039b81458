"""The gateway's OIDC relying party (kbshell/backend/oidc.py) against the in-process provider of
fakes.py: the authorization request, code redemption (rule 4) for a confidential and a public
client, and how a provider's refusal or failure reaches the caller. Discovery and ID token
checks are exercised through the gateway in test_gateway.py; the real Dex in
tests/e2e/test_gateway.py."""

from __future__ import annotations

import secrets
import urllib.parse

import httpx
import pytest

from kbshell.backend.oidc import LoginRefusedError, OidcClient, OidcError, OidcProvider
from tests.unit.backend.fakes import (
    CLI_CLIENT,
    CLIENT_SECRET,
    GATEWAY_CLIENT,
    ISSUER,
    FakeOp,
)

REDIRECT = "http://testserver/api/callback"


def provider(op: FakeOp, *, secret: str | None = CLIENT_SECRET) -> OidcProvider:
    return OidcProvider(
        OidcClient(ISSUER, GATEWAY_CLIENT, secret, extra_audiences=(CLI_CLIENT,)),
        httpx.Client(transport=op.transport()),
    )


def authorize(oidc: OidcProvider, verifier: str) -> dict[str, str]:
    url = oidc.authorization_url(
        redirect_uri=REDIRECT, state="the-state", nonce="the-nonce", verifier=verifier
    )
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == ISSUER + "/auth"
    return dict(urllib.parse.parse_qsl(parts.query))


def test_the_authorization_request_asks_for_a_code_with_an_s256_challenge_and_no_secret() -> None:
    params = authorize(provider(FakeOp()), secrets.token_urlsafe(48))
    challenge = params.pop("code_challenge")
    assert params == {
        "response_type": "code", "client_id": GATEWAY_CLIENT, "redirect_uri": REDIRECT,
        "scope": "openid email profile", "state": "the-state", "nonce": "the-nonce",
        "code_challenge_method": "S256",
    }  # fmt: skip
    assert len(challenge) == 43  # a SHA-256 digest, base64url without padding
    assert CLIENT_SECRET not in challenge


@pytest.mark.parametrize("secret", [CLIENT_SECRET, None], ids=["confidential", "public"])
def test_a_code_is_redeemed_once_with_its_verifier_and_the_clients_authentication(
    secret: str | None,
) -> None:
    op = FakeOp()
    op.public_client = secret is None
    oidc = provider(op, secret=secret)
    verifier = secrets.token_urlsafe(48)
    code = op.approve(authorize(oidc, verifier))
    # The fake redeems only with the verifier whose S256 challenge it was given, and only with
    # HTTP Basic (confidential) or the bare client_id in the body (public).
    who = oidc.verify(oidc.redeem(code=code, verifier=verifier, redirect_uri=REDIRECT),
                      nonce="the-nonce")  # fmt: skip
    assert (who.issuer, who.subject, who.email) == (ISSUER, "alice-id", "alice@example.com")
    (request,) = op.token_requests
    form = dict(urllib.parse.parse_qsl(request.content.decode()))
    assert form["grant_type"] == "authorization_code"
    assert CLIENT_SECRET not in request.content.decode()
    assert ("authorization" in request.headers) is (secret is not None)
    with pytest.raises(LoginRefusedError) as again:
        oidc.redeem(code=code, verifier=verifier, redirect_uri=REDIRECT)
    assert again.value.error == "invalid_grant"


def test_a_wrong_verifier_is_refused_with_the_providers_reason() -> None:
    op = FakeOp()
    oidc = provider(op)
    code = op.approve(authorize(oidc, secrets.token_urlsafe(48)))
    with pytest.raises(LoginRefusedError) as refused:
        oidc.redeem(code=code, verifier=secrets.token_urlsafe(48), redirect_uri=REDIRECT)
    assert (refused.value.error, refused.value.description) == (
        "invalid_grant",
        "bad code_verifier",
    )


def test_a_gateway_with_the_wrong_secret_is_refused_as_an_invalid_client() -> None:
    op = FakeOp()
    oidc = provider(op, secret="not-the-secret")
    verifier = secrets.token_urlsafe(48)
    code = op.approve(authorize(oidc, verifier))
    with pytest.raises(LoginRefusedError) as refused:
        oidc.redeem(code=code, verifier=verifier, redirect_uri=REDIRECT)
    assert refused.value.error == "invalid_client"
    assert "not-the-secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502"),
        (httpx.Response(500, json={"error": "server_error"}), "server_error"),
        (httpx.Response(403, json={}), "HTTP 403"),
        (httpx.Response(200, json=["not", "an", "object"]), "HTTP 200"),
        (httpx.Response(200, json={"access_token": "opaque", "token_type": "bearer"}),
         "no_id_token"),
    ],
)  # fmt: skip
def test_a_token_response_without_an_id_token_is_a_refusal_saying_what_came(
    response: httpx.Response, error: str
) -> None:
    op = FakeOp()
    answer = op.handle

    def handle(request: httpx.Request) -> httpx.Response:
        return response if request.url.path == "/dex/token" else answer(request)

    oidc = OidcProvider(OidcClient(ISSUER, GATEWAY_CLIENT, CLIENT_SECRET),
                        httpx.Client(transport=httpx.MockTransport(handle)))  # fmt: skip
    with pytest.raises(LoginRefusedError) as refused:
        oidc.redeem(code="a-code", verifier=secrets.token_urlsafe(48), redirect_uri=REDIRECT)
    assert refused.value.error == error
    assert "a-code" not in str(refused.value) and CLIENT_SECRET not in str(refused.value)


def test_an_unreachable_token_endpoint_is_an_unusable_provider() -> None:
    op = FakeOp()
    answer = op.handle

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dex/token":
            raise httpx.ConnectError("connection refused", request=request)
        return answer(request)

    oidc = OidcProvider(OidcClient(ISSUER, GATEWAY_CLIENT, CLIENT_SECRET),
                        httpx.Client(transport=httpx.MockTransport(handle)))  # fmt: skip
    with pytest.raises(OidcError) as unusable:
        oidc.redeem(code="a-code", verifier=secrets.token_urlsafe(48), redirect_uri=REDIRECT)
    assert str(unusable.value).startswith(f"cannot reach the token endpoint {ISSUER}/token: ")
