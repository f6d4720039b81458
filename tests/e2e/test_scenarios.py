"""The example scenarios on real kube-apiservers with the real `konnector` process.

Every `examples/scenarios/*/scenario.yaml` without a `fault` step (faults are kbsim's) runs on
fresh clusters through `tests/e2e/scenarios.py`: the files that define behaviour in the
simulator prove it on real clusters (upstream's end-to-end steps: docs/design.md,
"Upstream's end-to-end steps"). After each scenario the
konnector must stop cleanly on SIGTERM. A last test watches the settled quickstart world over
a control resync: the only writes allowed are the heartbeat Lease's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore import objects as o
from kbcore.objects import GVR
from kbsim.scenario import load
from tests.e2e.scenarios import (
    SCENARIO_DIR,
    SIGTERM_LIMIT,
    Endpoint,
    RealScenario,
    by_label,
    controllers_busy,
    has_faults,
    lease_renew_times,
    real_scenario,
    scenario_files,
    translate_kubeconfig,
    wait_quiet,
)
from tests.harness.clusters import ClusterError, build_binaries

SCENARIOS = {path.parent.name: load(path) for path in scenario_files()}
RUNNABLE = sorted(name for name, sc in SCENARIOS.items() if not has_faults(sc))

OBSERVE_SECONDS = 35.0
"""The steady-state window: longer than one control resync (30 s)."""
HEARTBEAT = {("Update", "provider"), ("Create", "provider")}
"""Action kinds a Lease renewal (or re-creation) shows up as in kubebind_actions_total."""
KONNECTOR_WRITTEN = {
    "widgets.example.org",
    "connections.core.kube-bind.io",
    "clusterbindings.core.kube-bind.io",
    "bindings.core.kube-bind.io",
    "customresourcedefinitions.apiextensions.k8s.io",
    "namespaces",
    "secrets",
    "events",
}
"""What the konnector may write besides its heartbeat Lease (resource.group, as the apiserver's
request metrics name them)."""
CONSUMER_WATCHED = (
    GVR("core.kube-bind.io", "v1alpha1", "connections"),
    GVR("core.kube-bind.io", "v1alpha1", "clusterbindings"),
    GVR("core.kube-bind.io", "v1alpha1", "bindings"),
    GVR("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
    GVR("", "v1", "secrets"),
)


@pytest.fixture(scope="session")
def k8s_bin_dir() -> Path:
    """The real control-plane binaries (built once, cached in ~/.cache/kube-bind/k8sbin)."""
    try:
        return build_binaries()
    except ClusterError as err:
        pytest.fail(str(err), pytrace=False)


def _stop_cleanly(run: RealScenario) -> None:
    assert run.konnector is not None
    status, seconds = run.konnector.terminate(SIGTERM_LIMIT)
    assert status == 0, (
        f"konnector did not exit 0 within {SIGTERM_LIMIT:g}s of SIGTERM "
        f"(status {status}, {seconds:.1f}s); last log lines:\n{run.konnector.tail(20)}"
    )


@pytest.mark.realcluster
@pytest.mark.parametrize("name", RUNNABLE)
def test_scenario(name: str, k8s_bin_dir: Path, tmp_path: Path) -> None:
    sc = SCENARIOS[name]
    with real_scenario(sc, tmp_path, bin_dir=k8s_bin_dir) as run:
        failure = run.run()
        if failure:
            pytest.fail(f"{failure}\n(cluster logs copied to {tmp_path})", pytrace=False)
        _stop_cleanly(run)


def test_only_fault_scenarios_are_left_out() -> None:
    """Faults have no real counterpart here; every other scenario runs on real clusters."""
    left_out = sorted(set(SCENARIOS) - set(RUNNABLE))
    assert all(has_faults(SCENARIOS[n]) for n in left_out)
    assert "quickstart" in RUNNABLE


def _snapshot(run: RealScenario) -> dict[str, dict[str, Any]]:
    server = run.servers[run.sc.konnector_cluster]
    out = {}
    for gvr in CONSUMER_WATCHED:
        for obj in server.list(gvr):
            out[f"{gvr.resource} {o.key_of(obj)}"] = obj
    return out


def _changed(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key), after.get(key)
        if b is None or a is None:
            lines.append(f"{key}: {'created' if b is None else 'deleted'}")
        elif o.resource_version(a) != o.resource_version(b):
            diff = {
                k: (b.get(k), a.get(k))
                for k in sorted(set(a) | set(b))
                if k != "metadata" and a.get(k) != b.get(k)
            }
            lines.append(f"{key}: rv {o.resource_version(b)} -> {o.resource_version(a)}: "
                         f"{yaml.safe_dump(diff, width=200)}")  # fmt: skip
    return lines


@pytest.fixture
def settled_quickstart(k8s_bin_dir: Path, tmp_path: Path) -> Iterator[RealScenario]:
    with real_scenario(SCENARIOS["quickstart"], tmp_path, bin_dir=k8s_bin_dir) as run:
        failure = run.run()
        if failure:
            pytest.fail(failure, pytrace=False)
        yield run


@pytest.mark.realcluster
def test_steady_state_writes_only_the_heartbeat(settled_quickstart: RealScenario) -> None:
    run = settled_quickstart
    k = run.konnector
    assert k is not None
    why = wait_quiet(k, 30.0, lambda: controllers_busy(run.servers))
    assert not why, why
    provider = run.servers["provider"]
    assert run.clusters is not None
    real = run.clusters
    served_before = {c: real[c].write_requests() for c in real}
    before, objects_before = k.metrics(), _snapshot(run)
    renew_times: dict[str, list[str]] = {}
    end = time.monotonic() + OBSERVE_SECONDS
    while time.monotonic() < end:  # the observation window: a poll loop, not a sleep
        for lease, renewed in lease_renew_times(provider).items():
            seen = renew_times.setdefault(lease, [])
            if renewed not in seen:
                seen.append(renewed)
        after = k.metrics()
        time.sleep(0.5)
    after, objects_after = k.metrics(), _snapshot(run)
    # The servers' own count: writes to what the konnector syncs or manages, by any client.
    served = {
        f"{c}: {resource}": n - served_before[c].get(resource, 0.0)
        for c in real
        for resource, n in real[c].write_requests().items()
        if resource.split("/")[0] in KONNECTOR_WRITTEN and n != served_before[c].get(resource, 0.0)
    }

    def delta(name: str, *labels: str) -> dict[tuple[str, ...], float]:
        b, a = by_label(before, name, *labels), by_label(after, name, *labels)
        return {k: v - b.get(k, 0.0) for k, v in a.items() if v != b.get(k, 0.0)}

    actions = delta("kubebind_actions_total", "kind", "cluster")
    writes = sum(delta("kubebind_writes_total", "cluster").values())
    renewals = sum(len(times) - 1 for times in renew_times.values())
    heartbeat = sum(v for k, v in actions.items() if k in HEARTBEAT)
    others = {f"{kind}/{cluster}": v for (kind, cluster), v in actions.items()
              if (kind, cluster) not in HEARTBEAT}  # fmt: skip
    report = (
        f"in {OBSERVE_SECONDS:g}s: writes {writes:g}, actions {actions}, Lease renewals seen "
        f"{renewals} ({renew_times}); consumer objects changed: "
        f"{_changed(objects_before, objects_after) or 'none'}; apiserver-counted writes to "
        f"synced and kube-bind resources: {served or 'none'}\n"
        f"konnector log tail:\n{k.tail(20)}"
    )
    print(report)  # shown with -rP: what steady state looked like
    assert renewals >= 1, f"the window did not span a heartbeat renewal: {report}"
    assert not others, f"steady state wrote more than the heartbeat: {report}"
    assert heartbeat == renewals == writes, f"writes other than Lease renewals: {report}"
    assert not served, f"the apiservers served writes besides Lease renewals: {report}"
    _stop_cleanly(run)


def test_translate_kubeconfig_keeps_hostile_fields() -> None:
    """The address translation only swaps server, CA and token users; exec etc. stay."""
    ep = Endpoint("https://127.0.0.1:6443", "Q0E=", lambda t: (f"cert-{t or 'admin'}", "key"))
    text = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "p",
        "clusters": [{"name": "p", "cluster": {"server": "https://provider.kbsim"}},
                     {"name": "x", "cluster": {"server": "https://elsewhere.example"}}],
        "users": [{"name": "a", "user": {"token": "admin"}},
                  {"name": "n", "user": {"token": "nobody"}},
                  {"name": "e", "user": {"exec": {"command": "/bin/sh"}}}],
        "contexts": [{"name": "p", "context": {"cluster": "p", "user": "a"}},
                     {"name": "q", "context": {"cluster": "p", "user": "n"}},
                     {"name": "r", "context": {"cluster": "p", "user": "e"}}],
    })  # fmt: skip
    out = yaml.safe_load(translate_kubeconfig(text, {"provider": ep}) or "")
    assert out["clusters"][0]["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": "Q0E=",
    }
    assert out["clusters"][1]["cluster"] == {"server": "https://elsewhere.example"}
    users = {u["name"]: u["user"] for u in out["users"]}
    assert users["a"] == {"client-certificate-data": "cert-admin", "client-key-data": "key"}
    assert users["n"] == {"client-certificate-data": "cert-nobody", "client-key-data": "key"}
    assert users["e"] == {"exec": {"command": "/bin/sh"}}
    assert translate_kubeconfig("not: [a kubeconfig", {"provider": ep}) is None
    assert SCENARIO_DIR.is_dir()


def test_translate_kubeconfig_keeps_insecure_transports_as_written() -> None:
    """A plain-http or unverified kubeconfig stays so on real clusters, tokens included: the
    konnector must refuse what the scenario wrote, not a certificate user the harness made."""
    ep = Endpoint("https://127.0.0.1:6443", "Q0E=", lambda t: (f"cert-{t or 'admin'}", "key"))
    for cluster in (
        {"server": "http://provider.kbsim"},
        {"server": "https://provider.kbsim", "insecure-skip-tls-verify": True},
    ):
        text = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "p",
            "clusters": [{"name": "p", "cluster": dict(cluster)}],
            "users": [{"name": "a", "user": {"token": "admin"}}],
            "contexts": [{"name": "p", "context": {"cluster": "p", "user": "a"}}],
        })  # fmt: skip
        out = yaml.safe_load(translate_kubeconfig(text, {"provider": ep}) or "")
        scheme = "http" if cluster["server"].startswith("http:") else "https"
        assert out["clusters"][0]["cluster"] == {**cluster, "server": f"{scheme}://127.0.0.1:6443"}
        assert out["users"][0]["user"] == {"token": "admin"}
