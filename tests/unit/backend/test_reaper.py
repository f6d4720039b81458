"""The reaper's controller (kbshell/backend/reaper.py) over a provider API server (kbsim): one
pass logs each stale Grant as a JSON line and writes only outside a dry run; the thread runs
passes until stopped."""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Any

import pytest

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import GRANTS, LEASES, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.service.reaper import ReapMode
from kbcore.timestamps import rfc3339
from kbshell.backend import components
from kbshell.backend.main import main
from kbshell.backend.reaper import Reaper, parse_duration, reap_once, reap_settings
from kbshell.ops.logs import configure_logging
from kbsim.rbac import User
from tests.unit.service.provider import CLUSTER_UID, NOW, converge, issue, provider

TTL = 300.0


def issued_provider() -> tuple[Any, Any, str, list[str]]:
    """A provider with one issued Grant and a record of every write made to it."""
    server, api = provider()
    home = issue(api)
    converge(server, api, home)
    writes: list[str] = []

    def record(verb: str, gvr: GVR, key: ObjectKey, user: User) -> None:
        if verb not in ("get", "list", "watch"):
            writes.append(f"{verb} {gvr.resource} {key.name}")

    server.add_request_hook(record)
    return server, api, home, writes


def heartbeat(api: Any, home: str, renewed: float) -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": f"consumer-{CLUSTER_UID}-provider", "namespace": home,
                     "annotations": {keys.ANNOTATION_CONSUMER_CLUSTER_UID: CLUSTER_UID}},
        "spec": {"holderIdentity": "k", "renewTime": rfc3339(renewed)[:-1] + ".000000Z"},
    }  # fmt: skip
    api.create(LEASES, lease, "test")


def logged(fn: Any) -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = configure_logging("json", "info", stream)
    try:
        fn()
    finally:
        logging.getLogger().removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_dry_run_logs_the_stale_grant_and_writes_nothing() -> None:
    _, api, home, writes = issued_provider()
    heartbeat(api, home, NOW - 400)
    writes.clear()
    lines = logged(lambda: reap_once(api, ReapMode.DRY_RUN, TTL, NOW))
    (line,) = [x for x in lines if x.get("grant")]
    assert line["namespace"] == home and line["grant"] == home
    assert line["heartbeatAge"] == 400.0 and line["mode"] == "DryRun"
    assert line["why"] == "no heartbeat for 400s (TTL 300s)"
    assert writes == []


def test_revoke_writes_the_grants_status_only() -> None:
    _, api, home, writes = issued_provider()
    heartbeat(api, home, NOW - 400)
    writes.clear()
    reaped = reap_once(api, ReapMode.REVOKE, TTL, NOW)
    assert [d.grant for d in reaped.decisions] == [home]
    assert writes == [f"update grants {home}"]
    conds = {c["type"]: c["reason"] for c in api.get(GRANTS, ObjectKey("", home))["status"]
             ["conditions"]}  # fmt: skip
    assert conds["Revoked"] == "HeartbeatExpired"


def test_a_fresh_heartbeat_is_left_alone_in_every_mode() -> None:
    _, api, home, writes = issued_provider()
    heartbeat(api, home, NOW - 10)
    writes.clear()
    for mode in ReapMode:
        assert reap_once(api, mode, TTL, NOW).decisions == ()
    assert writes == []


def test_delete_deletes_the_grant() -> None:
    _, api, home, _ = issued_provider()
    reap_once(api, ReapMode.DELETE, TTL, NOW + 2 * TTL)  # no Lease: counted from issuedAt
    assert o.name(api.get(NAMESPACES, ObjectKey("", home))) == home  # until the GC runs
    assert api.list(GRANTS, "", "")[0] == []


def test_the_thread_runs_passes_until_stopped() -> None:
    _, api, home, _ = issued_provider()
    heartbeat(api, home, NOW - 400)
    two = threading.Event()
    ticks = iter(range(1000))

    def clock() -> float:
        if next(ticks) >= 1:
            two.set()
        return NOW

    reaper = Reaper(api, ReapMode.REVOKE, TTL, interval_seconds=0.01, clock=clock)
    reaper.start()
    try:
        assert two.wait(10)
    finally:
        reaper.stop()
    assert reaper.passes >= 2
    conds = api.get(GRANTS, ObjectKey("", home))["status"]["conditions"]
    assert any(c["type"] == "Revoked" and c["status"] == "True" for c in conds)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600),
                                                ("1h30m", 5400), ("45", 45), ("0.5s", 0.5)])  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1d", "-5s", "0", "1h30", "inf"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_reap_off_is_no_reaper() -> None:
    assert reap_settings("off", "1h") is None


def test_reap_flags_give_the_mode_and_ttl() -> None:
    assert reap_settings("dry-run", "90s") == (ReapMode.DRY_RUN, 90.0)
    with pytest.raises(ValueError, match="--reap-ttl"):
        reap_settings("revoke", "soon")


def test_the_reaper_passes_a_quarter_of_the_ttl_within_one_to_sixty_seconds() -> None:
    _server, api = provider()
    assert Reaper.every(api, ReapMode.REVOKE, 3600).interval_seconds == 60
    assert Reaper.every(api, ReapMode.REVOKE, 20).interval_seconds == 5
    assert Reaper.every(api, ReapMode.REVOKE, 2).interval_seconds == 1


class _Closing:
    """A provider client for `kube-bind-backend --reap-once`: the kbsim API, closed at the end."""

    def __init__(self, api: Any, *, failing: bool = False) -> None:
        self.api, self.failing, self.closed = api, failing, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)

    def list(self, *args: Any, **kwargs: Any) -> Any:
        if self.failing:
            raise ApiError(503, "ServiceUnavailable", "the provider is down")
        return self.api.list(*args, **kwargs)

    def close(self) -> None:
        self.closed = True


def test_reap_once_makes_one_pass_and_exits(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--reap-once`: 0 after a pass (a dry run writes nothing, revoke writes the status), 1
    when the pass failed; the provider client is closed either way."""
    _, api, home, writes = issued_provider()
    heartbeat(api, home, 1_000_000_000.0)  # long before the wall clock the pass runs at
    writes.clear()
    clients = iter([_Closing(api), _Closing(api), _Closing(api, failing=True)])
    used: list[_Closing] = []

    def client(_kubeconfig: str | None) -> _Closing:
        used.append(next(clients))
        return used[-1]

    monkeypatch.setattr(components, "provider_client", client)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # main installs its own
    monkeypatch.setattr(root, "level", root.level)
    assert main(["--reap-once", "--reap=dry-run", "--reap-ttl=1h"]) == 0
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines() if "stale Grant" in x]
    assert (line["grant"], line["mode"]) == (home, "DryRun")
    assert writes == []
    assert main(["--reap-once", "--reap=revoke", "--reap-ttl=1h"]) == 0
    assert writes == [f"update grants {home}"]
    assert main(["--reap-once", "--reap=revoke", "--reap-ttl=1h"]) == 1
    assert "reaper pass failed" in capsys.readouterr().err
    assert [c.closed for c in used] == [True, True, True]
