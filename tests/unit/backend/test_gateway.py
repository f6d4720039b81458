"""The gateway app in-process (Starlette's TestClient) with an in-process OIDC provider, a
recording issuer and the memory store on a settable clock (tests/unit/backend/fakes.py)."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterator

import httpx
import jwt
import pytest
import yaml
from starlette.testclient import TestClient

from kbshell.backend.gateway import SESSION_COOKIE
from kbshell.bundle_yaml import bundle_yaml
from tests.unit.backend.fakes import (
    CLI_CLIENT,
    CLIENT_SECRET,
    EXTERNAL,
    GATEWAY_CLIENT,
    ISSUER,
    KUBECONFIG_MARKER,
    FakeOp,
    World,
    bundle,
)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def alice(world: World) -> Iterator[TestClient]:
    with world.browser() as browser:
        resp = world.log_in(browser)
        assert resp.status_code == 303, resp.text
        yield browser


def bind(client: TestClient, export: str = "widgets", **headers: str) -> httpx.Response:
    return client.post(
        "/api/bind", json={"export": export, "consumerClusterUID": "cluster-uid-1"},
        headers=headers,
    )  # fmt: skip


def pickup_path(resp: httpx.Response) -> str:
    assert resp.status_code == 201, resp.text
    url = resp.json()["pickupURL"]
    assert url.startswith(EXTERNAL + "/api/bundle/")
    assert resp.json()["expiresInSeconds"] == 300
    return urllib.parse.urlsplit(url).path


def test_a_browser_login_opens_a_session_the_catalog_and_bind_accept(
    world: World, alice: TestClient
) -> None:
    catalog = alice.get("/api/catalog")
    assert catalog.status_code == 200
    assert [e["name"] for e in catalog.json()["exports"]] == ["widgets", "gadgets"]
    assert [e["name"] for e in catalog.json()["collections"]] == ["everything"]
    assert catalog.json()["exports"][0] == {
        "kind": "Export", "name": "widgets", "title": "Widgets",
        "description": "Widgets as a service", "docsURL": "", "iconURL": "",
        "apis": ["widgets.example.com"],
    }  # fmt: skip
    pickup_path(bind(alice))
    (who, export, uid) = world.issuer.binds[0]
    assert (who.issuer, who.subject, who.email) == (ISSUER, "alice-id", "alice@example.com")
    assert (export, uid) == ("widgets", "cluster-uid-1")
    # PKCE: the gateway redeemed the code with its secret and the verifier (the fake checks both).
    assert len(world.op.token_requests) == 1


def test_the_login_redirect_returns_to_the_page_asked_for_and_only_to_this_gateway(
    world: World,
) -> None:
    with world.browser() as browser:
        for asked, lands in [("/exports", "/exports"), ("https://evil.example/x", "/exports"),
                             ("//evil.example/x", "/exports")]:  # fmt: skip
            request = world.start_login(browser, returnTo=asked)
            code = world.op.approve(request)
            resp = browser.get("/api/callback", params={"code": code, "state": request["state"]})
            assert resp.status_code == 303
            assert resp.headers["location"] == EXTERNAL + lands


def test_the_session_cookie_is_httponly_samesite_lax_and_rotated_at_login(world: World) -> None:
    with world.browser() as browser:
        first = browser.get("/api/authorize")
        before = first.cookies[SESSION_COOKIE]
        assert "httponly" in first.headers["set-cookie"].lower()
        assert "samesite=lax" in first.headers["set-cookie"].lower()
        request = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
            first.headers["location"]).query))  # fmt: skip
        code = world.op.approve(request)
        done = browser.get("/api/callback", params={"code": code, "state": request["state"]})
        assert done.cookies[SESSION_COOKIE] != before


def test_a_pickup_works_once_then_is_gone(alice: TestClient) -> None:
    path = pickup_path(bind(alice))
    first = alice.get(path)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/yaml")
    assert first.headers["cache-control"] == "no-store"
    assert list(yaml.safe_load_all(first.text)) == bundle("widgets")
    second = alice.get(path)
    assert second.status_code == 410
    assert second.json()["error"] == "gone"
    assert "already used or has expired" in second.json()["message"]


def test_the_yaml_pickup_is_byte_identical_to_kubectl_bind_output(alice: TestClient) -> None:
    resp = alice.get(pickup_path(bind(alice)), headers={"Accept": "application/yaml"})
    assert resp.content == bundle_yaml(bundle("widgets")).encode()


def test_a_pickup_needs_no_session_the_token_is_the_capability(
    world: World, alice: TestClient
) -> None:
    path = pickup_path(bind(alice))
    with world.browser() as stranger:
        assert stranger.get(path).status_code == 200


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        ("application/json", "json"),
        ("application/yaml", "yaml"),
        ("", "yaml"),
        ("*/*", "yaml"),
        ("application/yaml;q=0.5, application/json", "json"),
        ("application/json;q=0.1, text/yaml", "yaml"),
    ],
)
def test_the_accept_header_chooses_yaml_or_json(alice: TestClient, accept: str, kind: str) -> None:
    resp = alice.get(pickup_path(bind(alice)), headers={"Accept": accept})
    assert resp.status_code == 200
    if kind == "json":
        assert resp.headers["content-type"] == "application/json"
        assert resp.json() == {"bundle": bundle("widgets")}
    else:
        assert resp.headers["content-type"].startswith("application/yaml")
        assert list(yaml.safe_load_all(resp.text)) == bundle("widgets")


def test_an_unacceptable_format_is_406_and_does_not_burn_the_pickup(alice: TestClient) -> None:
    path = pickup_path(bind(alice))
    refused = alice.get(path, headers={"Accept": "text/html"})
    assert refused.status_code == 406
    assert refused.json()["error"] == "not_acceptable"
    assert alice.get(path).status_code == 200


def test_a_pickup_expires_after_five_minutes(world: World, alice: TestClient) -> None:
    early, late = pickup_path(bind(alice)), pickup_path(bind(alice))
    world.clock.advance(299)
    assert alice.get(early).status_code == 200
    world.clock.advance(2)
    assert alice.get(late).status_code == 410


def test_a_head_request_does_not_burn_a_pickup(alice: TestClient) -> None:
    path = pickup_path(bind(alice))
    assert alice.head(path).status_code == 405
    assert alice.get(path).status_code == 200


def test_a_bind_body_over_64_kib_is_413(alice: TestClient) -> None:
    body = json.dumps({"export": "widgets", "consumerClusterUID": "u", "pad": "x" * 70_000})
    resp = alice.post("/api/bind", content=body, headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (413, "too_large")


def test_a_pickup_url_of_the_wrong_shape_is_404_and_a_guessed_one_410(alice: TestClient) -> None:
    assert alice.get("/api/bundle/short").status_code == 404
    assert alice.get("/api/bundle/short").json()["error"] == "not_found"
    assert alice.get("/api/bundle/" + "A" * 43).status_code == 410


def test_the_store_holds_no_readable_bundle_and_no_token(world: World, alice: TestClient) -> None:
    path = pickup_path(bind(alice))
    token = path.rsplit("/", 1)[1]
    at_rest = json.dumps(world.store._entries)
    assert KUBECONFIG_MARKER not in at_rest
    assert "widgets-kubeconfig" not in at_rest
    assert token not in at_rest
    assert alice.cookies[SESSION_COOKIE] not in at_rest


def test_a_forged_state_is_400(world: World) -> None:
    with world.browser() as browser:
        request = world.start_login(browser)
        code = world.op.approve(request)
        resp = browser.get("/api/callback", params={"code": code, "state": "forged-" + "x" * 30})
        assert resp.status_code == 400
        assert resp.json()["error"] == "invalid_state"
        assert "start again at http://testserver/api/authorize" in resp.json()["message"]
        no_state = browser.get("/api/callback", params={"code": code})
        assert (no_state.status_code, no_state.json()["error"]) == (400, "invalid_state")
        assert SESSION_COOKIE not in resp.cookies
        assert world.op.token_requests == []


def test_a_state_from_another_browser_session_is_400(world: World) -> None:
    with world.browser() as victim, world.browser() as attacker:
        request = world.start_login(attacker)
        code = world.op.approve(request, "bob@example.com")
        # The attacker's login lured into the victim's browser (login CSRF).
        resp = victim.get("/api/callback", params={"code": code, "state": request["state"]})
        assert resp.status_code == 400
        assert resp.json()["message"] == "this login was not started by this browser session"
        assert victim.get("/api/catalog").status_code == 401


def test_a_state_is_used_once(world: World) -> None:
    with world.browser() as browser:
        request = world.start_login(browser)
        code = world.op.approve(request)
        params = {"code": code, "state": request["state"]}
        assert browser.get("/api/callback", params=params).status_code == 303
        again = browser.get("/api/callback", params=params)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_state")


def test_a_login_state_expires(world: World) -> None:
    with world.browser() as browser:
        request = world.start_login(browser)
        code = world.op.approve(request)
        world.clock.advance(601)
        resp = browser.get("/api/callback", params={"code": code, "state": request["state"]})
        assert (resp.status_code, resp.json()["error"]) == (400, "invalid_state")


def test_an_id_token_with_another_nonce_is_refused(world: World) -> None:
    world.op.nonce_override = "not-the-nonce-the-gateway-sent"
    with world.browser() as browser:
        resp = world.log_in(browser)
        assert resp.status_code == 400
        assert resp.json() == {
            "error": "invalid_id_token",
            "message": "the ID token is refused: its nonce is not the one this login sent",
        }
        assert browser.get("/api/catalog").status_code == 401


def test_the_providers_error_on_the_callback_is_a_400_saying_it(world: World) -> None:
    with world.browser() as browser:
        request = world.start_login(browser)
        resp = browser.get("/api/callback", params={"state": request["state"],
                                                    "error": "access_denied"})  # fmt: skip
        assert resp.status_code == 400
        assert resp.json()["error"] == "login_failed"
        assert "access_denied" in resp.json()["message"]


def test_a_bearer_id_token_of_an_accepted_client_is_a_caller(world: World) -> None:
    with world.browser() as curl:
        for aud in (GATEWAY_CLIENT, CLI_CLIENT):
            token = world.op.mint("bob@example.com", aud=aud)
            resp = curl.get("/api/catalog", headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 200, resp.text
            assert [e["name"] for e in resp.json()["exports"]] == ["widgets"]


def test_an_unverified_email_is_not_the_callers_email(world: World) -> None:
    with world.browser() as curl:
        token = world.op.mint("alice@example.com", email_verified=False)
        resp = curl.get("/api/catalog", headers={"Authorization": f"Bearer {token}"})
        # The issuer shows gadgets to alice@example.com only: a claim nobody verified is not her.
        assert [e["name"] for e in resp.json()["exports"]] == ["widgets"]


def _forged_tokens(op: FakeOp) -> dict[str, str]:
    now = 1_900_000_000
    hs256 = jwt.encode({"iss": ISSUER, "sub": "x", "aud": GATEWAY_CLIENT, "exp": now,
                        "iat": now - 10}, "s" * 32, algorithm="HS256", headers={"kid": op.kid})  # fmt: skip
    unsigned = jwt.encode(
        {"iss": ISSUER, "sub": "x", "aud": GATEWAY_CLIENT}, None, algorithm="none"
    )
    return {
        "another client": op.mint(aud="someone-else"),
        "another provider": op.mint(iss="https://evil.example"),
        "expired": op.mint(exp=1_000_000_000, iat=999_999_000),
        "HS256": hs256,
        "alg none": unsigned,
        "garbage": "not.a.jwt",
        "no sub": op.mint(sub=None),
    }


@pytest.mark.parametrize(
    "case",
    ["another client", "another provider", "expired", "HS256", "alg none", "garbage", "no sub"],
)
def test_a_bad_bearer_token_is_401(world: World, case: str) -> None:
    token = _forged_tokens(world.op)[case]
    with world.browser() as curl:
        resp = curl.get("/api/catalog", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
        assert resp.json()["error"] == "invalid_token"
        assert resp.headers["www-authenticate"].startswith("Bearer")


def test_without_a_login_the_api_is_401_and_the_landing_page_redirects(world: World) -> None:
    with world.browser() as anonymous:
        for resp in (anonymous.get("/api/catalog"), bind(anonymous)):
            assert resp.status_code == 401
            assert resp.json()["error"] == "unauthenticated"
            assert resp.headers["www-authenticate"] == 'Bearer realm="kube-bind"'
        browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        landing = anonymous.get("/exports", headers={"Accept": browser_accept})
        assert landing.status_code == 302
        assert landing.headers["location"] == EXTERNAL + "/api/authorize?returnTo=/exports"
        assert (
            anonymous.get("/exports", headers={"Accept": "application/json"}).json()["authorizeURL"]
            == EXTERNAL + "/api/authorize"
        )


def test_the_landing_page_lists_what_the_user_may_bind(alice: TestClient) -> None:
    page = alice.get("/exports", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Logged in as alice@example.com" in page.text
    assert "<code>gadgets</code>" in page.text
    assert "kubectl bind http://testserver/exports" in page.text


def test_provider_and_healthz(world: World) -> None:
    with world.browser() as client:
        assert client.get("/api/provider").json() == {
            "name": "Widgets Inc.",
            "version": "1.2.3",
            "authMethods": ["oidc", "bearer-id-token"],
            "authorizeURL": EXTERNAL + "/api/authorize",
            # The CLI's client (--oidc-cli-client-id): `kubectl bind` logs in as it.
            "oidc": {
                "issuer": ISSUER,
                "audiences": [GATEWAY_CLIENT, CLI_CLIENT],
                "cliClientID": CLI_CLIENT,
            },
        }
        assert client.get("/api/healthz").json() == {"status": "ok"}


def test_binds_beyond_the_rate_limit_are_429_with_retry_after() -> None:
    world = World(rate_limit=2)
    alice_token = world.op.mint("alice@example.com")
    bob_token = world.op.mint("bob@example.com")
    with world.browser() as curl:
        world.clock.now = 1_800_000_000.0 + 15  # 15 s into a 60 s window
        as_alice = {"Authorization": f"Bearer {alice_token}"}
        assert [bind(curl, **as_alice).status_code for _ in range(2)] == [201, 201]
        refused = bind(curl, **as_alice)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "45"
        assert refused.json()["error"] == "rate_limited"
        assert len(world.issuer.binds) == 2  # the issuer was not asked
        # Another identity has its own budget.
        assert bind(curl, Authorization=f"Bearer {bob_token}").status_code == 201
        world.clock.advance(45)
        assert bind(curl, **as_alice).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{", "application/json", 400, "invalid_request"),
        (b"[]", "application/json", 400, "invalid_request"),
        (b'{"export": "widgets"}', "application/json", 400, "invalid_request"),
        (b'{"export": 7, "consumerClusterUID": "u"}', "application/json", 400, "invalid_request"),
        (b'{"export": "", "consumerClusterUID": "u"}', "application/json", 400, "invalid_request"),
        (
            b'{"export": "widgets", "consumerClusterUID": "u"}',
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (b"export=widgets", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (
            b'{"export": "gizmos", "consumerClusterUID": "u"}',
            "application/json",
            404,
            "UnknownExport",
        ),
        (b"\xff\xfe", "application/json", 400, "invalid_request"),
    ],
)
def test_bad_bind_requests_are_4xx_json(
    alice: TestClient, body: bytes, content_type: str, status: int, error: str
) -> None:
    resp = alice.post("/api/bind", content=body, headers={"Content-Type": content_type})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error


def test_an_export_another_tenant_sees_is_refused_like_one_that_does_not_exist(
    world: World,
) -> None:
    with world.browser() as curl:
        bob = {"Authorization": f"Bearer {world.op.mint('bob@example.com')}"}
        hidden, missing = bind(curl, "gadgets", **bob), bind(curl, "gizmos", **bob)
        assert (hidden.status_code, missing.status_code) == (404, 404)
        assert hidden.json()["message"] == "there is no export 'gadgets' to bind"


def test_unknown_routes_and_methods_are_json(world: World) -> None:
    with world.browser() as client:
        assert client.get("/nope").status_code == 404
        assert client.get("/nope").json()["error"] == "http_404"
        assert client.get("/api/bind").status_code == 405
        assert client.get("/api/bind").json()["error"] == "http_405"


def test_no_credential_in_any_header_url_or_log_record(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with world.browser() as browser:
        request = world.start_login(browser)
        code = world.op.approve(request)
        assert browser.get("/api/callback", params={"code": code, "state": request["state"]}
                           ).status_code == 303  # fmt: skip
        session = browser.cookies[SESSION_COOKIE]
        path = pickup_path(bind(browser))
        token = path.rsplit("/", 1)[1]
        assert browser.get(path).status_code == 200
        bearer = world.op.mint()
        assert browser.get("/api/catalog", headers={"Authorization": f"Bearer {bearer}"}
                           ).status_code == 200  # fmt: skip
        assert browser.get(path).status_code == 410

    secrets_ = {
        "kubeconfig": KUBECONFIG_MARKER, "pickup token": token, "session": session,
        "code": code, "state": request["state"], "nonce": request["nonce"], "bearer": bearer,
        "client secret": CLIENT_SECRET,
    }  # fmt: skip
    # Every record but the test client's own request lines (httpx logs the URLs it asks for:
    # the client here is the caller, holding the pickup URL, not the gateway).
    logged = "\n".join(
        f"{r.getMessage()} {json.dumps({k: str(v) for k, v in r.__dict__.items()})}"
        for r in caplog.records
        if not (r.name == "httpx" and EXTERNAL in r.getMessage())
    )
    assert "bundle issued" in logged and "bundle picked up" in logged
    for what, value in secrets_.items():
        assert value not in logged, what
    # Headers and URLs: no bundle credential ever (the token and code only where they belong).
    for resp in world.responses:
        exposed = [str(resp.request.url), *(f"{k}: {v}" for k, v in resp.headers.items())]
        for line in exposed:
            assert KUBECONFIG_MARKER not in line
            assert CLIENT_SECRET not in line
        if "location" in resp.headers:
            assert token not in resp.headers["location"]


def test_a_bind_may_ask_for_a_binding_in_a_consumer_namespace(
    world: World, alice: TestClient
) -> None:
    body = {"export": "widgets", "consumerClusterUID": "cluster-uid-1"}
    assert alice.post("/api/bind", json={**body, "namespace": "team-a"}).status_code == 201
    assert alice.post("/api/bind", json=body).status_code == 201
    assert world.issuer.namespaces == ["team-a", ""]  # "": a ClusterBinding
    for bad in ("Team", "-a", "a" * 64, 7):
        resp = alice.post("/api/bind", json={**body, "namespace": bad})
        assert (resp.status_code, resp.json()["error"]) == (400, "invalid_request"), bad
    assert len(world.issuer.binds) == 2  # refused before the issuer was asked
