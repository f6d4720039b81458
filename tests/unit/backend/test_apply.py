"""``POST /api/apply`` (kbshell.backend.apply): off by default; when on, the consumer kubeconfig
is checked with the project's sanitizer before a pickup is taken or a bind made, each bundle
object is applied server-side in order, a refusal says what was applied, and the kubeconfig
never reaches a log or the store."""

from __future__ import annotations

import base64
import logging
import urllib.parse
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from kbcore.errors import UNREACHABLE, UNREACHABLE_CODE, ApiError
from kbcore.objects import GVR, ObjectKey
from kbshell.backend.apply import FIELD_MANAGER, Applier, ApplyRefusedError, check_bundle
from tests.unit.backend.fakes import KUBECONFIG_MARKER, World, bundle

CONSUMER_TOKEN = "consumer-token-s3cr3t-abcdef"
CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


def kubeconfig(server: str = "https://consumer.example:6443", **user: Any) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server}
    if server.startswith("https://"):
        cluster["certificate-authority-data"] = CA
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user or {"token": CONSUMER_TOKEN}}],
    }  # fmt: skip


class FakeConsumer:
    def __init__(self, refuse: str = "", unreachable: bool = False) -> None:
        self.patches: list[tuple[GVR, ObjectKey, Any, Any, str, bool]] = []
        self.refuse, self.unreachable = refuse, unreachable
        self.closed = False
        self.creds: Any = None

    def connect(self, creds: Any) -> FakeConsumer:
        self.creds = creds
        return self

    def patch(
        self, gvr: GVR, key: ObjectKey, body: Any, patch_type: Any, field_manager: str, force: bool
    ) -> Any:
        if self.unreachable:
            raise ApiError(UNREACHABLE_CODE, UNREACHABLE, "connection refused")
        if body["kind"] == self.refuse:
            raise ApiError(403, "Forbidden", f"{body['kind'].lower()}s is forbidden: no")
        self.patches.append((gvr, key, body, patch_type, field_manager, force))
        return body

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def consumer() -> FakeConsumer:
    return FakeConsumer()


@pytest.fixture
def world(consumer: FakeConsumer) -> World:
    return World(applier=Applier(connect=consumer.connect))


@pytest.fixture
def alice(world: World) -> Any:
    with world.browser() as browser:
        assert world.log_in(browser).status_code == 303
        yield browser


def apply(client: TestClient, **body: Any) -> Any:
    return client.post("/api/apply", json=body)


def by_bind(**extra: Any) -> dict[str, Any]:
    return {"export": "widgets", "consumerClusterUID": "cluster-uid-1", **extra}


def test_apply_is_off_by_default_and_says_so() -> None:
    world = World()
    with world.browser() as browser:
        assert world.log_in(browser).status_code == 303
        resp = apply(browser, **by_bind(kubeconfig=kubeconfig()))
        assert resp.status_code == 404
        assert resp.json()["error"] == "apply_disabled"
        assert "--enable-apply" in resp.json()["message"]
        assert world.issuer.binds == []


def test_apply_by_bind_applies_each_object_server_side_in_order(
    world: World, alice: TestClient, consumer: FakeConsumer
) -> None:
    resp = apply(alice, **by_bind(kubeconfig=kubeconfig()))
    assert resp.status_code == 200, resp.text
    want = bundle("widgets")
    assert resp.json() == {"applied": [
        {"apiVersion": "v1", "kind": "Secret", "name": "widgets-kubeconfig",
         "namespace": "kube-bind"},
        {"apiVersion": "core.kube-bind.io/v1alpha1", "kind": "Connection", "name": "widgets"},
        {"apiVersion": "core.kube-bind.io/v1alpha1", "kind": "ClusterBinding", "name": "widgets"},
    ]}  # fmt: skip
    assert [p[2] for p in consumer.patches] == want
    assert {(p[3], p[4], p[5]) for p in consumer.patches} == {("apply", FIELD_MANAGER, True)}
    assert consumer.patches[0][1] == ObjectKey("kube-bind", "widgets-kubeconfig")
    assert consumer.creds.server == "https://consumer.example:6443"
    assert consumer.closed
    assert len(world.issuer.binds) == 1
    assert not [k for k in world.store._entries if k.startswith("pickup:")]  # nothing to pick up


def test_apply_by_pickup_takes_it_once(world: World, alice: TestClient) -> None:
    url = alice.post("/api/bind", json=by_bind()).json()["pickupURL"]
    text = yaml.safe_dump(kubeconfig())  # the kubeconfig as YAML text works too
    assert apply(alice, pickup=url, kubeconfig=text).status_code == 200
    assert alice.get(urllib.parse.urlsplit(url).path).status_code == 410
    again = apply(alice, pickup=url.rsplit("/", 1)[1], kubeconfig=kubeconfig())
    assert again.status_code == 410 and again.json()["error"] == "gone"


@pytest.mark.parametrize(
    ("config", "error", "says"),
    [
        (kubeconfig(exec={"command": "/bin/sh", "apiVersion": "x"}), "invalid_kubeconfig", "exec"),
        (kubeconfig(tokenFile="/var/run/secrets/token"), "invalid_kubeconfig", "file path"),
        (kubeconfig("https://u:p@consumer.example"), "invalid_kubeconfig", "user info"),
        (kubeconfig("http://consumer.example", token="t"), "invalid_kubeconfig", "plain http"),
        (kubeconfig("http://10.0.0.1:8080", username=""), "insecure_consumer", "plain http"),
        ({"apiVersion": "v1", "kind": "Config"}, "invalid_kubeconfig", "current-context"),
        ("[not, a, mapping]", "invalid_kubeconfig", "must be a kubeconfig"),
    ],
    ids=["exec", "tokenFile", "userinfo", "http-token", "http-anonymous", "empty", "list"],
)
def test_a_bad_kubeconfig_is_refused_before_a_pickup_or_bind_is_spent(
    world: World, alice: TestClient, consumer: FakeConsumer, config: Any, error: str, says: str
) -> None:
    url = alice.post("/api/bind", json=by_bind()).json()["pickupURL"]
    binds = len(world.issuer.binds)
    for body in (by_bind(kubeconfig=config), {"pickup": url, "kubeconfig": config}):
        resp = apply(alice, **body)
        assert resp.status_code in (400, 422), resp.text
        assert resp.json()["error"] == error
        assert says in resp.json()["message"], resp.json()["message"]
    assert len(world.issuer.binds) == binds and consumer.patches == []
    assert alice.get(urllib.parse.urlsplit(url).path).status_code == 200  # still there


def test_a_refusal_by_the_consumer_says_what_was_applied_before() -> None:
    consumer = FakeConsumer(refuse="Connection")
    world = World(applier=Applier(connect=consumer.connect))
    with world.browser() as browser:
        world.log_in(browser)
        resp = apply(browser, **by_bind(kubeconfig=kubeconfig()))
    assert resp.status_code == 422
    assert resp.json()["error"] == "apply_refused"
    assert "refused Connection widgets (403 Forbidden)" in resp.json()["message"]
    assert [a["kind"] for a in resp.json()["applied"]] == ["Secret"]
    assert consumer.closed


def test_an_unreachable_consumer_is_502() -> None:
    consumer = FakeConsumer(unreachable=True)
    world = World(applier=Applier(connect=consumer.connect))
    with world.browser() as browser:
        world.log_in(browser)
        resp = apply(browser, **by_bind(kubeconfig=kubeconfig()))
    assert resp.status_code == 502 and resp.json()["error"] == "consumer_unreachable"
    assert resp.json()["applied"] == []


def test_apply_needs_a_caller_and_one_source(world: World, alice: TestClient) -> None:
    with world.browser() as anonymous:
        assert apply(anonymous, **by_bind(kubeconfig=kubeconfig())).status_code == 401
    assert apply(alice, **by_bind()).json()["message"].startswith("kubeconfig")
    both = apply(alice, **by_bind(pickup="x" * 43, kubeconfig=kubeconfig()))
    assert both.status_code == 400
    assert apply(alice, pickup="nope", kubeconfig=kubeconfig()).status_code == 400
    form = alice.post("/api/apply", data={"kubeconfig": "x"})
    assert form.status_code == 415


def test_the_consumer_kubeconfig_is_never_logged_or_stored(
    world: World, alice: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert apply(alice, **by_bind(kubeconfig=kubeconfig())).status_code == 200
    assert apply(alice, **by_bind(kubeconfig=kubeconfig(exec={"command": "x"}))).status_code
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert CONSUMER_TOKEN not in text and KUBECONFIG_MARKER not in text
    assert "bundle applied" in caplog.text
    assert CONSUMER_TOKEN not in str(world.store._entries)


def test_a_bundle_kind_the_gateway_does_not_apply_is_refused() -> None:
    with pytest.raises(ApplyRefusedError) as err:
        check_bundle([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}])
    assert err.value.status == 409 and "Pod" in err.value.message
