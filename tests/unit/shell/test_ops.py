"""kbshell.ops: metrics, probes/HTTP server and structured logging, without any cluster."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families

from kbcore.errors import ApiError
from kbcore.objects import GVR
from kbshell.ops import (
    Metrics,
    OpsServer,
    Probes,
    Watchdog,
    configure_logging,
    log_context,
    obj_ref,
    parse_bind_address,
    ready_when_synced,
    redact,
)
from kbshell.ops.logs import REDACTED

WIDGETS = GVR("example.org", "v1", "widgets")
PROMETHEUS_TEXT = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"

# ------------------------------------------------------------------------------------- metrics


def _samples(m: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _value(m: Metrics, metric: str, /, **labels: str) -> float:
    return _samples(m)[(metric, frozenset(labels.items()))]


def _exercise(m: Metrics) -> None:
    m.queue_add("binding", depth=1)
    m.queue_get("binding", waited=0.002, depth=0)
    m.queue_done("binding", seconds=0.03)
    m.queue_retry("binding")
    m.queue_in_flight("binding", started=[10.0, 12.0], now=13.0)
    m.reconcile("binding", "success", 0.01)
    m.reconcile("binding", "error", 0.2)
    m.reconcile("binding", "requeue_after", 0.05)
    with m.active_worker("binding"):
        pass
    m.action("Apply", "provider")
    m.action("UpdateStatus", "consumer", error_code=409)
    m.write("provider")
    m.read("consumer")
    m.sync_lag("my-binding", 0.3)
    m.conflicts("my-binding", 2)
    m.relist(WIDGETS, "provider")
    m.cache_synced(WIDGETS, "consumer", True)
    m.engaged_providers(1)
    m.leader(True)
    m.synced_objects(WIDGETS, 7)


EXPECTED_FAMILIES = {
    "workqueue_depth": {"name"},
    "workqueue_adds_total": {"name"},
    "workqueue_queue_duration_seconds": {"name"},
    "workqueue_work_duration_seconds": {"name"},
    "workqueue_retries_total": {"name"},
    "workqueue_unfinished_work_seconds": {"name"},
    "workqueue_longest_running_processor_seconds": {"name"},
    "controller_runtime_reconcile_total": {"controller", "result"},
    "controller_runtime_reconcile_errors_total": {"controller"},
    "controller_runtime_reconcile_time_seconds": {"controller"},
    "controller_runtime_max_concurrent_reconciles": {"controller"},
    "controller_runtime_active_workers": {"controller"},
    "kubebind_actions_total": {"kind", "cluster"},
    "kubebind_action_errors_total": {"kind", "cluster", "code"},
    "kubebind_writes_total": {"cluster"},
    "kubebind_reads_total": {"cluster"},
    "kubebind_sync_lag_seconds": {"binding"},
    "kubebind_conflicts": {"binding"},
    "kubebind_watch_relists_total": {"resource", "cluster"},
    "kubebind_cache_synced": {"resource", "cluster"},
    "kubebind_engaged_providers": set(),
    "kubebind_leader": set(),
    "kubebind_synced_objects": {"resource"},
}


def test_every_metric_is_exposed_with_its_labels() -> None:
    m = Metrics(controllers=["binding"], queues=["binding"])
    _exercise(m)
    text = m.render().decode()
    for name, labels in EXPECTED_FAMILIES.items():
        assert re.search(rf"^# TYPE {name} ", text, re.M), name
        series = [
            line for line in text.splitlines() if line.startswith((name + "{", name + " "))
        ] or [line for line in text.splitlines() if line.startswith(name + "_bucket{")]
        assert series, name
        found = set(re.findall(r'(\w+)="', series[0])) - {"le"}
        assert found == labels, (name, found)


def test_values_after_calls() -> None:
    m = Metrics()
    _exercise(m)
    assert _value(m, "workqueue_adds_total", name="binding") == 1
    assert _value(m, "workqueue_depth", name="binding") == 0
    assert _value(m, "workqueue_retries_total", name="binding") == 1
    assert _value(m, "workqueue_unfinished_work_seconds", name="binding") == 4.0
    assert _value(m, "workqueue_longest_running_processor_seconds", name="binding") == 3.0
    assert (
        _value(m, "controller_runtime_reconcile_total", controller="binding", result="error") == 1
    )
    assert _value(m, "controller_runtime_reconcile_errors_total", controller="binding") == 1
    assert _value(m, "controller_runtime_active_workers", controller="binding") == 0
    assert _value(m, "kubebind_actions_total", kind="UpdateStatus", cluster="consumer") == 1
    assert (
        _value(
            m, "kubebind_action_errors_total", kind="UpdateStatus", cluster="consumer", code="409"
        )
        == 1
    )
    assert _value(m, "kubebind_writes_total", cluster="provider") == 1
    assert _value(m, "kubebind_reads_total", cluster="consumer") == 1
    assert _value(m, "kubebind_conflicts", binding="my-binding") == 2
    res = "widgets.example.org/v1"
    assert _value(m, "kubebind_watch_relists_total", resource=res, cluster="provider") == 1
    assert _value(m, "kubebind_cache_synced", resource=res, cluster="consumer") == 1
    assert _value(m, "kubebind_engaged_providers") == 1
    assert _value(m, "kubebind_leader") == 1
    assert _value(m, "kubebind_synced_objects", resource=res) == 7


def test_histograms_have_buckets_sum_and_count() -> None:
    m = Metrics()
    m.sync_lag("b", 0.3)
    m.sync_lag("b", 2.0)
    m.reconcile("c", "success", 0.12)
    assert _value(m, "kubebind_sync_lag_seconds_count", binding="b") == 2
    assert _value(m, "kubebind_sync_lag_seconds_sum", binding="b") == pytest.approx(2.3)
    assert _value(m, "kubebind_sync_lag_seconds_bucket", binding="b", le="0.5") == 1
    assert _value(m, "kubebind_sync_lag_seconds_bucket", binding="b", le="+Inf") == 2
    assert (
        _value(m, "controller_runtime_reconcile_time_seconds_bucket", controller="c", le="0.15")
        == 1
    )
    assert (
        _value(m, "controller_runtime_reconcile_time_seconds_bucket", controller="c", le="0.1") == 0
    )


def test_declared_controllers_and_queues_exist_at_zero() -> None:
    m = Metrics(controllers=["binding"], queues=["binding"])
    for result in ("success", "error", "requeue", "requeue_after"):
        assert (
            _value(m, "controller_runtime_reconcile_total", controller="binding", result=result)
            == 0
        )
    assert _value(m, "workqueue_adds_total", name="binding") == 0
    assert _value(m, "controller_runtime_max_concurrent_reconciles", controller="binding") == 1


def test_no_metric_is_labelled_by_object_name_or_namespace() -> None:
    m = Metrics(controllers=["binding"], queues=["binding"])
    _exercise(m)
    for metric in m.registry.collect():
        for sample in metric.samples:
            assert not {"namespace", "uid", "object"} & set(sample.labels), sample
            # "name" is client-go's workqueue label (the queue's name); nothing else may use it.
            if "name" in sample.labels:
                assert metric.name.startswith("workqueue_"), sample


def test_cluster_label_must_be_a_role() -> None:
    m = Metrics()
    with pytest.raises(ValueError, match="cluster label"):
        m.write("https://10.0.0.1:6443")
    with pytest.raises(ValueError, match="result"):
        m.reconcile("c", "ok", 0.1)  # type: ignore[arg-type]


def test_instances_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.leader(True)
    assert _value(a, "kubebind_leader") == 1
    assert _value(b, "kubebind_leader") == 0


def test_forget_binding_and_resource_drop_series() -> None:
    m = Metrics()
    _exercise(m)
    m.forget_binding("my-binding")
    m.forget_resource(WIDGETS)
    m.forget_binding("never-seen")
    text = m.render().decode()
    assert "my-binding" not in text
    assert "widgets.example.org" not in text


def test_timed_reconcile_counts_error_when_block_raises() -> None:
    m = Metrics()
    with m.timed_reconcile("c") as box:
        box[0] = "requeue"
    with pytest.raises(RuntimeError), m.timed_reconcile("c"):
        raise RuntimeError("boom")
    assert _value(m, "controller_runtime_reconcile_total", controller="c", result="requeue") == 1
    assert _value(m, "controller_runtime_reconcile_total", controller="c", result="error") == 1
    assert _value(m, "controller_runtime_active_workers", controller="c") == 0


# ------------------------------------------------------------------------------------- server


def _get(port: int, path: str, accept: str | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


class Flag:
    def __init__(self) -> None:
        self.ok, self.reason = True, "ok"

    def __call__(self) -> tuple[bool, str]:
        return self.ok, self.reason


@pytest.fixture
def served() -> Iterator[tuple[OpsServer, Flag, Flag, Metrics]]:
    live, ready = Flag(), Flag()
    metrics = Metrics()
    probes = Probes(liveness={"workers": live}, readiness={"caches": ready})
    srv = OpsServer(
        probes=probes,
        metrics=metrics,
        health_address="127.0.0.1:0",
        metrics_address="127.0.0.1:0",
    ).start()
    try:
        yield srv, live, ready, metrics
    finally:
        srv.shutdown()


def test_parse_bind_address() -> None:
    assert parse_bind_address(":8081") == ("", 8081)
    assert parse_bind_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind_address("[::1]:8085") == ("::1", 8085)
    assert parse_bind_address("0") is None
    assert parse_bind_address("") is None
    for bad in ("8081", "host:port", ":70000", "::1:80"):
        with pytest.raises(ValueError):
            parse_bind_address(bad)


def test_health_and_ready_ok(served: tuple[OpsServer, Flag, Flag, Metrics]) -> None:
    srv, _, _, _ = served
    assert srv.health_port and srv.metrics_port and srv.health_port != srv.metrics_port
    for path in ("/healthz", "/livez", "/readyz"):
        assert _get(srv.health_port, path)[::2] == (200, "ok")
    code, _, body = _get(srv.health_port, "/readyz?verbose")
    assert code == 200
    assert body.splitlines() == ["[+]ping ok", "[+]caches ok", "readyz check passed"]


def test_not_ready_is_503_with_reason(served: tuple[OpsServer, Flag, Flag, Metrics]) -> None:
    srv, _, ready, _ = served
    ready.ok, ready.reason = False, "caches not synced: widgets.example.org/v1"
    code, _, body = _get(srv.health_port or 0, "/readyz")
    assert code == 503
    assert "[-]caches failed: caches not synced: widgets.example.org/v1" in body
    assert body.rstrip().endswith("readyz check failed")
    # Liveness is independent of readiness.
    assert _get(srv.health_port or 0, "/healthz")[0] == 200
    # Excluding the failing check, or asking for another single check, passes.
    assert _get(srv.health_port or 0, "/readyz?exclude=caches")[0] == 200
    assert _get(srv.health_port or 0, "/readyz/ping")[0] == 200
    assert _get(srv.health_port or 0, "/readyz/caches")[0] == 503
    assert _get(srv.health_port or 0, "/readyz/nope")[0] == 404


def test_wedged_is_not_live(served: tuple[OpsServer, Flag, Flag, Metrics]) -> None:
    srv, live, _, _ = served
    live.ok, live.reason = False, "workers busy for more than 60s: binding-0"
    code, _, body = _get(srv.health_port or 0, "/healthz")
    assert code == 503 and "binding-0" in body


def test_check_that_raises_fails_the_probe() -> None:
    def broken() -> tuple[bool, str]:
        raise RuntimeError("lost")

    result = Probes(readiness={"broken": broken}).readiness()
    assert not result.ok
    assert "RuntimeError: lost" in result.body(verbose=False)


def test_metrics_endpoint(served: tuple[OpsServer, Flag, Flag, Metrics]) -> None:
    srv, _, _, metrics = served
    metrics.leader(True)
    code, ctype, body = _get(srv.metrics_port or 0, "/metrics")
    assert code == 200
    # Content type as prometheus_client's own handler negotiates it (text when no Accept).
    assert ctype == choose_encoder("")[1]
    assert body == metrics.render().decode()
    assert "kubebind_leader 1.0" in body
    assert _get(srv.metrics_port or 0, "/metrics", accept=PROMETHEUS_TEXT)[1] == CONTENT_TYPE_TEXT
    code, ctype, body = _get(
        srv.metrics_port or 0, "/metrics", accept="application/openmetrics-text; version=1.0.0"
    )
    assert code == 200 and ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_paths_are_served_on_their_own_listener(
    served: tuple[OpsServer, Flag, Flag, Metrics],
) -> None:
    srv, _, _, _ = served
    assert _get(srv.health_port or 0, "/metrics")[0] == 404
    assert _get(srv.metrics_port or 0, "/healthz")[0] == 404
    assert _get(srv.health_port or 0, "/")[0] == 404
    assert _get(srv.health_port or 0, "/healthzzz")[0] == 404


def test_shared_fixed_address_serves_everything_on_one_listener() -> None:
    probe = OpsServer(probes=Probes(), health_address="127.0.0.1:0", metrics_address="0")
    port = probe.health_port
    probe.shutdown()  # only to find a free port
    assert port
    with OpsServer(
        probes=Probes(),
        metrics=Metrics(),
        health_address=f"127.0.0.1:{port}",
        metrics_address=f"127.0.0.1:{port}",
    ) as srv:
        assert srv.health_port == srv.metrics_port == port
        assert _get(port, "/healthz")[0] == 200
        assert _get(port, "/metrics")[0] == 200


def test_disabled_addresses_serve_nothing() -> None:
    srv = OpsServer(probes=Probes(), metrics=Metrics(), health_address="0", metrics_address="0")
    with srv:
        assert srv.health_port is None and srv.metrics_port is None
    with OpsServer(
        probes=Probes(), metrics=Metrics(), health_address="127.0.0.1:0", metrics_address="0"
    ) as srv:
        assert srv.health_port and srv.metrics_port is None
        assert _get(srv.health_port, "/metrics")[0] == 404


def _returns(fn: Callable[[], object]) -> None:
    """`fn()` returns rather than hanging (on a server loop that was never started, say)."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"{fn} hangs"


def test_shutdown_returns_and_closes_the_port() -> None:
    srv = OpsServer(probes=Probes(), health_address="127.0.0.1:0", metrics_address="0").start()
    port = srv.health_port or 0
    assert _get(port, "/healthz")[0] == 200
    _returns(srv.shutdown)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    srv.shutdown()  # idempotent


def test_shutdown_before_start_does_not_hang() -> None:
    srv = OpsServer(probes=Probes(), health_address="127.0.0.1:0", metrics_address="0")
    _returns(srv.shutdown)


def test_watchdog() -> None:
    now = [100.0]
    dog = Watchdog(limit=60, clock=lambda: now[0])
    assert dog() == (True, "ok")
    dog.start("w1")
    now[0] += 61
    ok, reason = dog()
    assert not ok and "w1" in reason
    dog.stop("w1")
    assert dog()[0]
    with dog.busy("w2"):
        assert dog.started() == {"w2": 161.0}
    assert dog.started() == {}


def test_ready_when_synced() -> None:
    pending = ["a", "b", "c", "d", "e", "f", "g"]
    leading = [True]
    check = ready_when_synced(lambda: pending, lambda: leading[0])
    ok, reason = check()
    assert not ok and reason == "caches not synced: a, b, c, d, e and 2 more"
    leading[0] = False
    assert check() == (True, "standby (not the leader)")
    pending.clear()
    leading[0] = True
    assert check() == (True, "ok")


# ------------------------------------------------------------------------------------- logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    yield stream
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_fixed_keys_and_object_refs(log_stream: io.StringIO) -> None:
    configure_logging("json", "info", stream=log_stream)
    log = logging.getLogger("kbshell.binding")
    log.debug("hidden")
    log.info(
        "Reconciling",
        extra={**obj_ref("APIServiceBinding", "", "widgets"), "controller": "binding"},
    )
    with log_context(controller="instance", reconcileID="r-1"):
        log.info("Applied", extra=obj_ref("Widget", "team-a", "w1"))
    (first, second) = _lines(log_stream)
    assert list(first)[:4] == ["ts", "level", "logger", "msg"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["ts"]))
    assert first["level"] == "info" and first["logger"] == "kbshell.binding"
    assert first["msg"] == "Reconciling"
    assert first["object"] == {"name": "widgets"}
    assert first["kind"] == "APIServiceBinding" and first["controller"] == "binding"
    assert second["object"] == {"name": "w1", "namespace": "team-a"}
    assert second["controller"] == "instance" and second["reconcileID"] == "r-1"


def test_errors_render_as_error_and_stacktrace(log_stream: io.StringIO) -> None:
    configure_logging("json", "info", stream=log_stream)
    log = logging.getLogger("kbshell.x")
    try:
        raise ApiError(409, "Conflict", "the object has been modified")
    except ApiError as exc:
        log.error("Apply failed", exc_info=exc)
    try:
        raise KeyError("surprise")
    except KeyError:
        log.exception("Reconciler error")
    log.info("Retrying", extra={"error": ValueError("bad value")})
    expected, unexpected, plain = _lines(log_stream)
    assert expected["error"] == "409 Conflict: the object has been modified"
    assert "stacktrace" not in expected
    assert unexpected["level"] == "error" and unexpected["error"] == "'surprise'"
    assert "Traceback" in str(unexpected["stacktrace"])
    assert plain["error"] == "bad value"


def test_secrets_are_masked(log_stream: io.StringIO) -> None:
    configure_logging("json", "debug", stream=log_stream)
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"ca.crt": "Q0VSVA=="}}
    logging.getLogger("kbshell").info(
        "Read",
        extra={
            "token": "abc",
            "auth": {"client-key-data": "S0VZ", "bearerToken": "t", "user": "me"},
            "kubeconfig": "apiVersion: v1...",
            "secret": secret,
            "raw": b"\x00secret",
        },
    )
    (line,) = _lines(log_stream)
    assert line["token"] == REDACTED and line["kubeconfig"] == REDACTED
    assert line["auth"] == {"client-key-data": REDACTED, "bearerToken": REDACTED, "user": "me"}
    assert line["secret"] == {"apiVersion": "v1", "kind": "Secret", "data": REDACTED}
    assert line["raw"] == "<7 bytes>"
    for leaked in ("abc", "S0VZ", "Q0VSVA", "\\u0000secret"):
        assert leaked not in log_stream.getvalue()
    assert secret["data"] == {"ca.crt": "Q0VSVA=="}  # the caller's object is untouched


def test_redact_keeps_references_to_secrets() -> None:
    assert redact({"secretRef": {"name": "kubeconfig-abc"}, "password": 1}) == {
        "secretRef": {"name": "kubeconfig-abc"},
        "password": REDACTED,
    }


def test_text_format_is_one_line_of_key_values(log_stream: io.StringIO) -> None:
    configure_logging("text", "info", stream=log_stream)
    log = logging.getLogger("kbshell.binding")
    try:
        raise RuntimeError("multi\nline")
    except RuntimeError:
        log.exception(
            "Reconciler error",
            extra={**obj_ref("Widget", "team-a", "w1"), "controller": "b", "n": 3, "token": "x"},
        )
    out = log_stream.getvalue()
    assert out.count("\n") == 1
    assert ' ERROR kbshell.binding "Reconciler error" ' in out
    for part in ("object=team-a/w1", "kind=Widget", "controller=b", "n=3", f"token={REDACTED}"):
        assert f" {part}" in out
    assert 'error="multi\\nline"' in out and "stacktrace=" in out


def test_configure_logging_replaces_its_handler_and_quiets_client(log_stream: io.StringIO) -> None:
    configure_logging("json", "debug", stream=io.StringIO())
    configure_logging("json", "debug", stream=log_stream)
    logging.getLogger("kbshell").debug("once")
    assert len(_lines(log_stream)) == 1
    assert logging.getLogger("kubernetes").level == logging.WARNING
    with pytest.raises(ValueError):
        configure_logging("yaml", stream=log_stream)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        configure_logging("json", "loud", stream=log_stream)
