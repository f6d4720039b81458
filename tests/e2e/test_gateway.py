"""The gateway as real processes (tests/harness/gateway.py) against the real Dex and Redis of
tests/harness/oidc.py, with the static dev issuer serving a fixed catalog and bundle.

Two replicas, A and B, share one Redis; Dex knows both callbacks for the confidential client
``kube-bind-gateway``. A browser is httpx keeping cookies; its cookie jar, like a browser's,
does not separate ports on one host, so A and B look like one site behind a load balancer.
The CLI's path is a bearer ID token of the public client ``kube-bind-cli``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
import redis

from kbshell.backend.sessions import RedisStore
from kbshell.bundle_yaml import bundle_yaml
from tests.conftest import CONFIDENTIAL_CLIENT_ID, PUBLIC_CLIENT_ID
from tests.harness.dex_login import Login, log_in, new_browser, redeem, submit_password
from tests.harness.gateway import GatewayServer, callback_url, gateway_ports
from tests.harness.konnector import eventually
from tests.harness.oidc import (
    ALICE,
    BOB,
    PASSWORD,
    Client,
    Dex,
    RedirectCatcher,
    RedisServer,
    User,
    start_dex,
)

pytestmark = pytest.mark.realservice

MARKER = "provider-sa-token-" + secrets.token_hex(8)
BUNDLE = [
    {"apiVersion": "v1", "kind": "Secret",
     "metadata": {"name": "widgets-kubeconfig", "namespace": "kube-bind"},
     "stringData": {"kubeconfig": f"apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {MARKER}\n"}},
    {"apiVersion": "kube-bind.io/v1alpha1", "kind": "Connection", "metadata": {"name": "widgets"},
     "spec": {"kubeconfigSecretRef": {"name": "widgets-kubeconfig"}}},
    {"apiVersion": "kube-bind.io/v1alpha1", "kind": "ClusterBinding",
     "metadata": {"name": "widgets"}, "spec": {"connection": "widgets"}},
]  # fmt: skip
ISSUER_FILE = {
    "catalog": [
        {"kind": "Export", "name": "widgets", "title": "Widgets", "apis": ["widgets.example.com"]},
        {"kind": "Export", "name": "gadgets", "title": "Gadgets", "visibleTo": [ALICE.email]},
    ],
    "bundles": {"widgets": BUNDLE, "gadgets": BUNDLE},
}


OTHER_CLIENT_ID = "some-other-app"
"""A Dex client the gateways do not accept: its ID tokens are for another audience."""


@attrs.frozen
class Site:
    dex: Dex
    a: GatewayServer
    b: GatewayServer
    catcher: RedirectCatcher
    issuer_file: Path
    secret: str
    restricted_port: int
    """Dex knows this port's callback too: for a replica a test starts with its own flags."""

    def logs(self) -> str:
        return self.a.log_text() + self.b.log_text()


@pytest.fixture(scope="module")
def site(
    dex_bin: Path,
    redis_server: RedisServer,
    redirect_catcher: RedirectCatcher,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("gateway")
    port_a, port_b, port_c = gateway_ports(3)
    secret = secrets.token_urlsafe(24)
    callbacks = (callback_url(port_a), callback_url(port_b), callback_url(port_c))
    clients = [
        Client(CONFIDENTIAL_CLIENT_ID, callbacks, secret),
        Client(PUBLIC_CLIENT_ID, (redirect_catcher.url,)),
        Client(OTHER_CLIENT_ID, (redirect_catcher.url,)),
    ]
    issuer_file = tmp / "issuer.yaml"
    issuer_file.write_text(json.dumps(ISSUER_FILE))
    with start_dex(tmp / "dex", clients, bin_dir=dex_bin) as dex:
        replicas = [
            GatewayServer(
                tmp / name,
                port,
                oidc_issuer=dex.issuer,
                client_id=CONFIDENTIAL_CLIENT_ID,
                client_secret=secret,
                issuer_file=issuer_file,
                session_store=redis_server.url,
                accept_audiences=[PUBLIC_CLIENT_ID],
            )
            for name, port in (("a", port_a), ("b", port_b))
        ]
        for replica in replicas:
            replica.start()
        try:
            yield Site(dex, replicas[0], replicas[1], redirect_catcher, issuer_file, secret,
                       port_c)  # fmt: skip
        finally:
            for replica in replicas:
                replica.stop()


def to_dex_form(browser: httpx.Client, start: str) -> httpx.Response:
    """Open ``start`` on a gateway and follow it (through /api/authorize) to Dex's form."""
    page = browser.get(start)
    assert page.status_code == 200, page.text
    assert page.url.path == "/dex/auth/local/login"
    return page


def post_password(
    browser: httpx.Client, page: httpx.Response, user: User, *, follow: bool = True
) -> httpx.Response:
    return submit_password(browser, page, user.email, PASSWORD, follow=follow)


def callback_from_dex(browser: httpx.Client, page: httpx.Response, user: User) -> str:
    """Log in at Dex, but stop where Dex sends the browser back: the gateway callback URL."""
    resp = post_password(browser, page, user, follow=False)
    while "/api/callback" not in resp.headers.get("location", ""):
        assert resp.is_redirect, resp.text
        resp = browser.get(resp.url.join(resp.headers["location"]), follow_redirects=False)
    return str(resp.url.join(resp.headers["location"]))


@contextlib.contextmanager
def logged_in_browser(site: Site, user: User, gateway: GatewayServer) -> Iterator[httpx.Client]:
    """A browser with a session: it opened /exports, logged in at Dex, and is back."""
    with new_browser() as browser:
        yield _log_in(browser, user, gateway)


def _log_in(browser: httpx.Client, user: User, gateway: GatewayServer) -> httpx.Client:
    landing = post_password(browser, to_dex_form(browser, gateway.url + "/exports"), user)
    assert landing.status_code == 200, landing.text
    assert landing.url == gateway.url + "/exports"
    assert f"Logged in as {user.email}" in landing.text
    return browser


def bind(
    client: httpx.Client, gateway: GatewayServer, export: str, **headers: str
) -> httpx.Response:
    return client.post(gateway.url + "/api/bind", headers=headers,
                       json={"export": export, "consumerClusterUID": "consumer-uid-1"})  # fmt: skip


def test_a_browser_logs_in_through_dex_and_sees_its_catalog(site: Site) -> None:
    with logged_in_browser(site, ALICE, site.a) as alice:
        catalog = alice.get(site.a.url + "/api/catalog")
        assert catalog.status_code == 200
        assert [e["name"] for e in catalog.json()["exports"]] == ["widgets", "gadgets"]
    with logged_in_browser(site, BOB, site.a) as bob:
        catalog = bob.get(site.a.url + "/api/catalog").json()
        assert [e["name"] for e in catalog["exports"]] == ["widgets"]
        assert bind(bob, site.a, "gadgets").status_code == 404


def test_a_forged_or_foreign_state_is_refused(site: Site) -> None:
    with new_browser() as browser:
        forged = browser.get(site.a.url + "/api/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 400
        assert forged.json()["error"] == "invalid_state"
    # Mallory logs in at Dex and lures Alice's browser to the callback with Mallory's code.
    with new_browser() as mallory, new_browser() as victim:
        url = callback_from_dex(mallory, to_dex_form(mallory, site.a.url + "/api/authorize"), BOB)
        assert url.startswith(site.a.url + "/api/callback?")
        lured = victim.get(url)
        assert lured.status_code == 400
        assert lured.json()["message"] == "this login was not started by this browser session"
        assert victim.get(site.a.url + "/api/catalog").status_code == 401
        # The state was used up by that attempt: not even Mallory's own browser can finish it.
        assert mallory.get(url).json()["error"] == "invalid_state"


def test_login_on_a_bind_on_b_pickup_once_on_a_then_410_on_b(site: Site) -> None:
    with logged_in_browser(site, ALICE, site.a) as browser:
        resp = bind(browser, site.b, "widgets")
        assert resp.status_code == 201, resp.text
        pickup = urllib.parse.urlsplit(resp.json()["pickupURL"])
        assert f"{pickup.scheme}://{pickup.netloc}" == site.b.url
        first = browser.get(site.a.url + pickup.path)
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("application/yaml")
        assert first.content == bundle_yaml(BUNDLE).encode()
        second = browser.get(site.b.url + pickup.path)
        assert second.status_code == 410
        assert second.json()["error"] == "gone"
    logs = site.logs()
    assert '"msg": "bundle issued"' in logs and '"msg": "bundle picked up"' in logs
    assert MARKER not in logs
    assert pickup.path.rsplit("/", 1)[1] not in logs


def test_curl_with_a_cli_id_token_binds_and_picks_up_json(site: Site) -> None:
    """The CLI's path: a Dex login of the public client (PKCE), then bearer ID token calls."""
    id_token = cli_id_token(site, BOB)
    with httpx.Client(trust_env=False, timeout=15) as curl:
        bearer = {"Authorization": f"Bearer {id_token}"}
        catalog = curl.get(site.b.url + "/api/catalog", headers=bearer)
        assert [e["name"] for e in catalog.json()["exports"]] == ["widgets"]
        url = bind(curl, site.a, "widgets", **bearer).json()["pickupURL"]
        bundle = curl.get(url, headers={"Accept": "application/json"})
        assert bundle.json() == {"bundle": BUNDLE}
        assert curl.get(url).status_code == 410
        refused = curl.get(site.a.url + "/api/catalog", headers={"Authorization": "Bearer x.y.z"})
        assert refused.status_code == 401
    assert id_token not in site.logs()


def test_the_redis_store_gives_a_pickup_to_exactly_one_of_many_concurrent_takers(
    redis_server: RedisServer,
) -> None:
    stores = [RedisStore.from_url(redis_server.url) for _ in range(8)]
    key = f"pickup:test-{secrets.token_hex(8)}"
    stores[0].put(key, "the bundle", ttl=30)
    got: list[str | None] = []
    start = threading.Barrier(len(stores))

    def take(store: RedisStore) -> None:
        start.wait()
        got.append(store.take(key))

    threads = [threading.Thread(target=take, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (got.count("the bundle"), got.count(None)) == (1, 7)
    # And an entry is gone after its TTL, in Redis' own time.
    stores[0].put(key, "short-lived", ttl=0.3)
    eventually(lambda: stores[1].get(key) is None, timeout=10, what="the entry to expire")
    # A rate-limit count: the first one starts the window, later ones do not extend it.
    counter = f"rate:test-{secrets.token_hex(8)}"
    assert [stores[i].count(counter, ttl=60) for i in range(3)] == [1, 2, 3]
    with redis.Redis.from_url(redis_server.url) as raw:
        assert 0 < raw.pttl("kube-bind:gateway:" + counter) <= 60_000
        stores[3].count(counter, ttl=600)
        assert raw.pttl("kube-bind:gateway:" + counter) <= 60_000
    for s in stores:
        s.close()


def test_a_session_outlives_the_replica_that_opened_it(site: Site) -> None:
    with logged_in_browser(site, ALICE, site.a) as browser:
        site.a.stop()
        try:
            assert browser.get(site.b.url + "/api/catalog").status_code == 200
        finally:
            site.a.start()
        assert browser.get(site.a.url + "/api/catalog").status_code == 200


def cli_id_token(site: Site, user: User, client_id: str = PUBLIC_CLIENT_ID) -> str:
    """What `kubectl bind login` will hold: an ID token of the public CLI client (PKCE)."""
    with new_browser() as browser:
        login = Login.new(next(c for c in site.dex.clients if c.id == client_id))
        code = log_in(browser, site.dex, site.catcher, login, user)
        token: str = redeem(browser, site.dex, login, code).json()["id_token"]
        return token


def test_the_rate_limit_is_shared_by_the_replicas(
    site: Site, redis_server: RedisServer, tmp_path: Path
) -> None:
    # Two more replicas of their own (bearer tokens only: no callback for Dex to know), on
    # another Redis database so no other test's binds count; a day-long window, so the four
    # binds below cannot straddle two windows but by a very rare chance.
    store = redis_server.url.rsplit("/", 1)[0] + "/3"
    with redis.Redis.from_url(store) as raw:
        raw.flushdb()  # the counters of an earlier run on this server, if any
    replicas = [
        GatewayServer(
            tmp_path / str(port),
            port,
            oidc_issuer=site.dex.issuer,
            client_id=CONFIDENTIAL_CLIENT_ID,
            client_secret=None,
            issuer_file=site.issuer_file,
            session_store=store,
            accept_audiences=[PUBLIC_CLIENT_ID],
            rate_limit=3,
            extra_args=["--bind-rate-window", "86400"],
        )
        for port in gateway_ports(2)
    ]
    with replicas[0], replicas[1]:
        for replica in replicas:
            replica.start()
        bearer = {"Authorization": f"Bearer {cli_id_token(site, BOB)}"}
        with httpx.Client(trust_env=False, timeout=15) as curl:
            codes = [bind(curl, replicas[i % 2], "widgets", **bearer).status_code
                     for i in range(4)]  # fmt: skip
            assert codes == [201, 201, 201, 429]
            refused = bind(curl, replicas[0], "widgets", **bearer)
            assert refused.status_code == 429
            assert 1 <= int(refused.headers["retry-after"]) <= 86400
            assert refused.json()["error"] == "rate_limited"
            # Alice has a budget of her own.
            alice = {"Authorization": f"Bearer {cli_id_token(site, ALICE)}"}
            assert bind(curl, replicas[1], "widgets", **alice).status_code == 201


# --------------------------------------------------------------------------- bad input


def test_an_id_token_for_another_audience_is_401(site: Site) -> None:
    """A real Dex token, validly signed, but issued to a client the gateway does not accept."""
    foreign = cli_id_token(site, ALICE, OTHER_CLIENT_ID)
    with httpx.Client(trust_env=False, timeout=15) as curl:
        for call in (
            lambda: curl.get(site.a.url + "/api/catalog", headers={"Authorization": f"Bearer {foreign}"}),
            lambda: bind(curl, site.b, "widgets", Authorization=f"Bearer {foreign}"),
        ):  # fmt: skip
            refused = call()
            assert refused.status_code == 401
            assert refused.json() == {
                "error": "invalid_token",
                "message": "the bearer ID token is refused: it was issued to another client",
            }
            assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert foreign not in site.logs()


def test_a_replayed_state_is_400_even_after_its_login_succeeded(site: Site) -> None:
    with new_browser() as browser:
        url = callback_from_dex(browser, to_dex_form(browser, site.a.url + "/api/authorize"), BOB)
        done = browser.get(url, follow_redirects=False)
        assert done.status_code == 303
        replayed = browser.get(url, follow_redirects=False)
        assert replayed.status_code == 400
        assert replayed.json()["error"] == "invalid_state"
        assert "already used" in replayed.json()["message"]
        assert browser.get(site.a.url + "/api/catalog").status_code == 200  # still logged in


def _keys(store: str, kind: str) -> list[bytes]:
    with redis.Redis.from_url(store) as raw:
        return list(raw.scan_iter(f"kube-bind:gateway:{kind}:*"))


def test_outside_the_allowed_set_is_403_and_nothing_is_written(
    site: Site, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A replica admitting Alice only, on a Redis database of its own, with 2 s pickups: Bob is
    refused at the callback and on bearer requests, and no session, rate count or pickup of
    his exists; Alice's pickups are single use and expire."""
    store = redis_server.url.rsplit("/", 1)[0] + "/4"
    with redis.Redis.from_url(store) as raw:
        raw.flushdb()
    restricted = GatewayServer(
        tmp_path / "c", site.restricted_port,
        oidc_issuer=site.dex.issuer, client_id=CONFIDENTIAL_CLIENT_ID, client_secret=site.secret,
        issuer_file=site.issuer_file, session_store=store, accept_audiences=[PUBLIC_CLIENT_ID],
        extra_args=["--allow-email", ALICE.email, "--pickup-ttl", "2"],
    )  # fmt: skip
    with restricted:
        restricted.start()
        with new_browser() as bob:
            url = callback_from_dex(bob, to_dex_form(bob, restricted.url + "/exports"), BOB)
            refused = bob.get(url, follow_redirects=False)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"] == "not_allowed"
            assert refused.json()["message"].startswith(f"{BOB.email} is not among the users")
            assert "ask the provider's administrator" in refused.json()["message"]
            assert bob.get(restricted.url + "/api/catalog").status_code == 401
        bearer = {"Authorization": f"Bearer {cli_id_token(site, BOB)}"}
        with httpx.Client(trust_env=False, timeout=15) as curl:
            assert bind(curl, restricted, "widgets", **bearer).status_code == 403
            assert curl.get(restricted.url + "/api/catalog", headers=bearer).status_code == 403
            assert [_keys(store, k) for k in ("session", "rate", "pickup")] == [[], [], []]
            # Alice is admitted; her pickup is single use, and gone once its 2 s are up.
            alice = {"Authorization": f"Bearer {cli_id_token(site, ALICE)}"}
            first = bind(curl, restricted, "widgets", **alice).json()
            assert first["expiresInSeconds"] == 2
            assert curl.get(first["pickupURL"]).status_code == 200
            reused = curl.get(first["pickupURL"])
            assert (reused.status_code, reused.json()["error"]) == (410, "gone")
            second = bind(curl, restricted, "widgets", **alice).json()["pickupURL"]
            assert len(_keys(store, "pickup")) == 1
            eventually(lambda: not _keys(store, "pickup"), timeout=15, what="the pickup to expire")
            expired = curl.get(second)
            assert expired.status_code == 410
            assert "already used or has expired" in expired.json()["message"]
        with new_browser() as browser:
            _log_in(browser, ALICE, restricted)
            assert len(_keys(store, "session")) == 1
    assert '"msg": "caller not allowed"' in restricted.log_text()


def test_a_group_rule_admits_by_dexs_groups_claim(site: Site, tmp_path: Path) -> None:
    """--allow-group makes the login ask Dex for the groups scope: Alice (kube-bind-admins) is
    admitted, Bob (developers only) is not."""
    restricted = GatewayServer(
        tmp_path / "g", site.restricted_port,
        oidc_issuer=site.dex.issuer, client_id=CONFIDENTIAL_CLIENT_ID, client_secret=site.secret,
        issuer_file=site.issuer_file, session_store="memory",
        extra_args=["--allow-group", "kube-bind-admins"],
    )  # fmt: skip
    with restricted:
        restricted.start()
        with logged_in_browser(site, ALICE, restricted) as alice:
            assert alice.get(restricted.url + "/api/catalog").status_code == 200
        with new_browser() as bob:
            url = callback_from_dex(bob, to_dex_form(bob, restricted.url + "/exports"), BOB)
            refused = bob.get(url, follow_redirects=False)
            assert refused.status_code == 403
            assert "the ID token's groups: developers" in refused.json()["message"]
