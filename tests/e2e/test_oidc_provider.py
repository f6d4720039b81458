"""What the gateway will rely on from its real services: Dex's OIDC login and Redis' expiring keys.

Dex (tests/harness/oidc.py) runs with users alice and bob and two clients, a public one (PKCE
alone) and a confidential one (a secret, and PKCE), both redirecting to a 127.0.0.1 listener
that records what arrives. The flows are driven with httpx the way a browser goes: it follows
Dex's real redirects from /dex/auth to the password form, posts the form as a user would, and
follows on to the redirect URI. ID tokens are verified with PyJWT against Dex's JWKS.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import redis

from tests.conftest import CONFIDENTIAL_CLIENT_ID, PUBLIC_CLIENT_ID
from tests.harness.dex_login import (
    Login,
    client,
    code_from,
    log_in,
    new_browser,
    open_login_form,
    redeem,
    submit_password,
)
from tests.harness.konnector import eventually
from tests.harness.oidc import (
    ALICE,
    BOB,
    PASSWORD,
    Dex,
    RedirectCatcher,
    RedisServer,
    html_forms,
)


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with new_browser() as client:
        yield client


def verified_claims(dex: Dex, login: Login, id_token: str) -> dict[str, Any]:
    """The ID token's claims, after PyJWT checked its signature against Dex's published keys,
    its issuer, audience and expiry."""
    discovery = httpx.get(dex.discovery_url, trust_env=False).json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(id_token)
    # The algorithm pinned, never taken from the token or the server: what a verifier must do.
    claims: dict[str, Any] = jwt.decode(
        id_token, key, algorithms=["RS256"], audience=login.client.id, issuer=dex.issuer
    )
    return claims


def test_discovery_names_the_issuer_and_the_endpoints_the_gateway_uses(dex: Dex) -> None:
    resp = httpx.get(dex.discovery_url, trust_env=False)
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["issuer"] == dex.issuer == f"http://127.0.0.1:{dex.port}/dex"
    for name, path in [("authorization_endpoint", "/auth"), ("token_endpoint", "/token"),
                       ("jwks_uri", "/keys"), ("userinfo_endpoint", "/userinfo")]:  # fmt: skip
        assert doc[name] == dex.endpoint(path), name
    assert "S256" in doc["code_challenge_methods_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in doc["response_types_supported"]
    assert {"openid", "email", "groups"} <= set(doc["scopes_supported"])
    keys = httpx.get(doc["jwks_uri"], trust_env=False).json()["keys"]
    assert keys and all(k["use"] == "sig" for k in keys)


@pytest.fixture(params=[PUBLIC_CLIENT_ID, CONFIDENTIAL_CLIENT_ID])
def alices_code(
    request: pytest.FixtureRequest,
    dex: Dex,
    redirect_catcher: RedirectCatcher,
    browser: httpx.Client,
) -> tuple[Login, str]:
    """Alice logged in through the form, for each client: its request and the code Dex sent."""
    login = Login.new(client(dex, request.param))
    return login, log_in(browser, dex, redirect_catcher, login, ALICE)


def test_pkce_login_through_the_password_form_yields_an_id_token_for_alice(
    dex: Dex, browser: httpx.Client, alices_code: tuple[Login, str]
) -> None:
    login, code = alices_code
    resp = redeem(browser, dex, login, code)
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert tokens["token_type"].lower() == "bearer"
    claims = verified_claims(dex, login, tokens["id_token"])
    assert claims["iss"] == dex.issuer
    assert claims["aud"] == login.client.id
    assert claims["nonce"] == login.nonce
    assert (claims["email"], claims["email_verified"]) == (ALICE.email, True)
    assert claims["groups"] == list(ALICE.groups)
    assert claims["name"] == ALICE.username

    # A code is good for one exchange only: a replay (say, from a leaked log) gets nothing.
    assert redeem(browser, dex, login, code).json()["error"] == "invalid_grant"


def test_two_users_get_different_subjects_and_their_own_groups(
    dex: Dex, redirect_catcher: RedirectCatcher
) -> None:
    claims = {}
    for user in (ALICE, BOB):
        # A browser of their own each: Dex's session cookie must not carry one into the other.
        with new_browser() as browser:
            login = Login.new(client(dex, PUBLIC_CLIENT_ID))
            code = log_in(browser, dex, redirect_catcher, login, user)
            id_token = redeem(browser, dex, login, code).json()["id_token"]
            claims[user.email] = verified_claims(dex, login, id_token)
    alice, bob = claims[ALICE.email], claims[BOB.email]
    assert alice["sub"] != bob["sub"]
    assert (bob["email"], bob["groups"]) == (BOB.email, list(BOB.groups))


def test_a_wrong_password_shows_the_form_again_with_an_error_and_issues_no_code(
    dex: Dex, redirect_catcher: RedirectCatcher, browser: httpx.Client
) -> None:
    login = Login.new(client(dex, PUBLIC_CLIENT_ID))
    page = open_login_form(browser, dex, login)

    again = submit_password(browser, page, ALICE.email, "not-" + PASSWORD)
    assert again.status_code == 401
    assert again.url.path == "/dex/auth/local/login"
    assert "Invalid Email Address and password." in again.text
    # The same form, with the login kept and the password asked for again.
    (form,) = [f for f in html_forms(again.text) if "password" in f.fields]
    assert (form.fields["login"], form.fields["password"]) == (ALICE.email, "")
    assert not [q for q in redirect_catcher.received if q.get("state") == login.state]

    # The form still works: the right password now gets the code through.
    landing = submit_password(browser, again, ALICE.email, PASSWORD)
    assert code_from(landing, login, redirect_catcher)


def test_the_token_endpoint_refuses_a_code_with_the_wrong_verifier(
    dex: Dex, browser: httpx.Client, alices_code: tuple[Login, str]
) -> None:
    login, code = alices_code
    # A verifier of the right form that is not the one the challenge was made from: what an
    # attacker who intercepted the code (but not the client's memory) would have.
    resp = redeem(browser, dex, login, code, code_verifier=secrets.token_urlsafe(48))
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    assert "code_verifier" in resp.json()["error_description"]
    assert "id_token" not in resp.json()


def test_the_consent_page_comes_after_the_password_when_approval_is_on(
    dex_with_consent: Dex, redirect_catcher: RedirectCatcher, browser: httpx.Client
) -> None:
    dex = dex_with_consent
    login = Login.new(client(dex, CONFIDENTIAL_CLIENT_ID))
    page = open_login_form(browser, dex, login)

    consent = submit_password(browser, page, ALICE.email, PASSWORD)
    assert consent.status_code == 200
    assert consent.url.path == "/dex/approval"
    assert "Grant Access" in consent.text
    assert not [q for q in redirect_catcher.received if q.get("state") == login.state]

    (grant,) = [f for f in html_forms(consent.text) if f.fields.get("approval") == "approve"]
    # The form has no action: it posts back to the page it is on.
    landing = browser.post(consent.url.join(grant.action), data=grant.fields)
    resp = redeem(browser, dex, login, code_from(landing, login, redirect_catcher))
    assert verified_claims(dex, login, resp.json()["id_token"])["email"] == ALICE.email


def test_a_redis_key_with_a_ttl_is_readable_and_then_gone_not_before_its_time(
    redis_server: RedisServer,
) -> None:
    ttl_ms = 1500  # long enough that a busy machine reads it back in time
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as r:
        key = f"session:{secrets.token_hex(8)}"
        set_at = time.monotonic()
        assert r.set(key, ALICE.email, px=ttl_ms)
        assert r.get(key) == ALICE.email
        assert 0 < r.pttl(key) <= ttl_ms

        # PTTL -2: the key no longer exists (Redis expires it on access or in its sweep).
        eventually(lambda: r.pttl(key) == -2, timeout=10, what=f"{key} to expire")
        assert time.monotonic() - set_at >= ttl_ms / 1000
        assert r.get(key) is None
        assert r.exists(key) == 0


def test_the_test_redis_keeps_nothing_on_disk(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as r:
        assert r.config_get("save") == {"save": ""}
        assert r.config_get("appendonly") == {"appendonly": "no"}
        assert r.config_get("bind") == {"bind": "127.0.0.1"}
