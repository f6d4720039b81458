"""The gateway's Prometheus metrics (kbshell.backend.metrics): what a login, binds, pickups and
requests count, with bounded labels, served with the probes by one ops server."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from kbshell.backend.admission import Admission
from kbshell.backend.metrics import GatewayMetrics, route_of
from kbshell.ops.server import OpsServer, Probes
from tests.unit.backend.fakes import CLI_CLIENT, World


def samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def test_logins_binds_pickups_and_requests_are_counted() -> None:
    world = World(rate_limit=2)
    gateway_metrics = world.gateway.metrics
    with world.browser() as alice:
        assert world.log_in(alice).status_code == 303
        bad = alice.get("/api/callback", params={"state": "forged", "code": "x"})
        assert bad.status_code == 400
        body = {"export": "widgets", "consumerClusterUID": "u"}
        url = alice.post("/api/bind", json=body).json()["pickupURL"]
        path = httpx.URL(url).path
        assert alice.get(path).status_code == 200
        assert alice.get(path).status_code == 410
        assert alice.post("/api/bind", json={**body, "export": "nope"}).status_code == 404
        assert alice.post("/api/bind", json=body).status_code == 429
        assert alice.get("/no/such/path").status_code == 404
    m = gateway_metrics
    assert value(m, "kubebind_gateway_logins_total", result="ok") == 1
    assert value(m, "kubebind_gateway_logins_total", result="invalid_state") == 1
    assert value(m, "kubebind_gateway_binds_total", result="issued", reason="") == 1
    assert value(m, "kubebind_gateway_binds_total", result="refused",
                 reason="UnknownExport") == 1  # fmt: skip
    assert value(m, "kubebind_gateway_binds_total", result="refused", reason="RateLimited") == 1
    assert value(m, "kubebind_gateway_pickups_total", result="taken") == 1
    assert value(m, "kubebind_gateway_pickups_total", result="gone") == 1
    assert value(m, "kubebind_gateway_requests_total",
                 route="/api/bundle/{token}", method="GET", code="410") == 1  # fmt: skip
    assert value(m, "kubebind_gateway_requests_total",
                 route="/api/bind", method="POST", code="201") == 1  # fmt: skip
    assert value(m, "kubebind_gateway_requests_total", route="other", method="GET",
                 code="404") == 1  # fmt: skip
    text = m.render().decode()
    assert "/api/bundle/" + path.rsplit("/", 1)[1] not in text  # no token as a label
    assert "alice" not in text and "widgets" not in text  # no identity, no export name


def test_a_bearer_caller_outside_the_set_counts_as_a_403_request() -> None:
    world = World(admission=Admission(emails=["alice@example.com"]))
    m = world.gateway.metrics
    token = world.op.mint("bob@example.com", aud=CLI_CLIENT)
    with world.browser() as curl:
        assert (
            curl.get("/api/catalog", headers={"Authorization": f"Bearer {token}"}).status_code
            == 403
        )
    assert value(m, "kubebind_gateway_requests_total", route="/api/catalog", method="GET",
                 code="403") == 1  # fmt: skip


def test_route_labels_are_a_fixed_set() -> None:
    assert route_of("/api/bundle/abc") == "/api/bundle/{token}"
    assert route_of("/api/bind") == "/api/bind"
    assert route_of("/api/catalog/../x") == "other"


def test_one_ops_server_serves_the_probes_and_the_gateway_metrics() -> None:
    metrics = GatewayMetrics("1.2.3")
    with OpsServer(probes=Probes(), metrics=metrics, health_address="127.0.0.1:0",
                   metrics_address=None) as server:  # fmt: skip
        base = f"http://127.0.0.1:{server.health_port}"
        assert server.metrics_port == server.health_port
        assert httpx.get(base + "/healthz").text == "ok"
        scrape = httpx.get(base + "/metrics")
        assert scrape.status_code == 200
        assert "kubebind_backend_build_info{python=" in scrape.text and '"1.2.3"' in scrape.text
        assert "kubebind_gateway_pickups_total" in scrape.text
