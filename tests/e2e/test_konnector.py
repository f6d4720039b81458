"""The real konnector process under process and server faults, on fresh real clusters.

Each test starts its own provider and consumer (real etcd + kube-apiserver +
kube-controller-manager, ~7 s), applies the quickstart bundle, and runs `konnector` as a
separate process. What a user relies on:
 - SIGKILL in the middle of a sync and a restart lose nothing and duplicate nothing;
 - with two replicas and leader election, only the leader ever writes, and the standby takes
   over when the leader goes away;
 - an API server restart on either side is survived without a konnector restart;
 - `konnector --record` writes a trace that `kbsim replay` replays with no divergence.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbcore.api import keys
from kbcore.api.resources import LEASES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from tests.harness.clusters import build_binaries, start_clusters
from tests.harness.konnector import WIDGETS, Konnector, Pair, eventually

pytestmark = pytest.mark.realcluster

KBSIM = Path(sys.executable).parent / "kbsim"


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    clusters = start_clusters(["provider", "consumer"], bin_dir=build_binaries())
    p = Pair(clusters, tmp_path)
    try:
        p.install()
        yield p
    finally:
        failed = getattr(request.node, "rep_call", None)
        p.close()
        clusters.stop(keep_dir=bool(failed and failed.failed))


def _logs(p: Pair) -> str:
    return "\n".join(f"--- {k.log_path.name}\n{k.log_tail()}" for k in p.konnectors)


VAPS = GVR("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies")
VAP_BINDINGS = GVR("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings")
HOLD = "e2e-hold-widget-creates"


def _provider_refuses(pair: Pair, name: str) -> bool:
    """Whether the provider refuses to create a Widget `name` now (a probe, deleted at once)."""
    probe = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": "default", "name": name},
        "spec": {"size": "probe"},
    }
    try:
        pair.provider.create(WIDGETS, probe)
    except ApiError as err:
        if err.code in (403, 422):
            return True
        raise
    pair.provider.delete(WIDGETS, ObjectKey("default", name))
    return False


def _hold_creates(pair: Pair, prefix: str) -> None:
    """Until `_release_creates`, the provider refuses to create Widgets named `prefix*` (a
    ValidatingAdmissionPolicy): a sync cannot complete, however fast the machine."""
    pair.apply(
        pair.provider,
        VAPS,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": HOLD},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["example.org"],
                            "apiVersions": ["*"],
                            "operations": ["CREATE"],
                            "resources": ["widgets"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": f"!object.metadata.name.startsWith('{prefix}')",
                        "message": "held by the e2e test until the konnector is killed",
                    }
                ],
            },
        },
    )
    pair.apply(
        pair.provider,
        VAP_BINDINGS,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": HOLD},
            "spec": {"policyName": HOLD, "validationActions": ["Deny"]},
        },
    )
    # A new policy takes effect once the server has loaded it.
    eventually(lambda: _provider_refuses(pair, f"{prefix}-probe"), 60, "the hold in effect")


def _release_creates(pair: Pair, prefix: str) -> None:
    pair.provider.delete(VAP_BINDINGS, ObjectKey("", HOLD))
    pair.provider.delete(VAPS, ObjectKey("", HOLD))
    eventually(lambda: not _provider_refuses(pair, f"{prefix}-probe"), 60, "the hold lifted")


def test_sigkill_mid_sync_and_restart_lose_and_duplicate_nothing(pair: Pair) -> None:
    k = pair.konnector().wait_ready()
    pair.wait_bound()
    names = [f"w{i:03d}" for i in range(150)]
    # Kill it mid-sync: the provider refuses w100..w149 until the kill, so 100 copies are
    # written and 50 are still to do when it dies.
    _hold_creates(pair, "w1")
    pair.create_widgets(names)
    eventually(lambda: len(pair.provider_widgets()) == 100, 120, "the copies not held back")
    k.kill()
    assert len(pair.provider_widgets()) == 100  # the held ones were refused, not written
    _release_creates(pair, "w1")

    k2 = pair.konnector().wait_ready()

    def all_synced() -> bool:
        return len(pair.provider_widgets()) == len(names)

    eventually(all_synced, 120, f"all {len(names)} copies on the provider\n{_logs(pair)}")
    k2.quiet()
    copies = pair.provider_widgets()
    assert sorted(c["metadata"]["name"] for c in copies) == names  # none lost, none extra
    consumer = {w["metadata"]["name"]: w for w in pair.consumer.list(WIDGETS)[0]}
    for c in copies:
        name = c["metadata"]["name"]
        assert c["spec"] == {"size": name}
        ann = c["metadata"]["annotations"]
        assert ann[keys.ANNOTATION_CONSUMER_OBJECT_UID] == consumer[name]["metadata"]["uid"]
        assert keys.FINALIZER_SYNCER in consumer[name]["metadata"]["finalizers"]

    # Status comes back for every one, written on the provider after the restart.
    for c in copies:
        pair.provider.patch(
            WIDGETS,
            ObjectKey("default", c["metadata"]["name"]),
            {"status": {"phase": "Ready"}},
            "merge",
            "provider-controller",
            False,
            "status",
        )
    eventually(
        lambda: all(
            (w.get("status") or {}).get("phase") == "Ready" for w in pair.consumer.list(WIDGETS)[0]
        ),
        120,
        "status back on every consumer object",
    )


def _lease(pair: Pair) -> dict[str, Any]:
    return pair.consumer.get(LEASES, ObjectKey("kube-bind", "konnector.kube-bind.io"))


def _stamp(micro_time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(micro_time.replace("Z", "+00:00"))


def test_two_replicas_only_the_leader_writes_and_the_standby_takes_over(pair: Pair) -> None:
    a = pair.konnector("--leader-elect").wait_ready()
    b = pair.konnector("--leader-elect").wait_ready()  # a standby is ready too

    def one_leader() -> tuple[Konnector, Konnector] | None:
        la, lb = a.metric("kubebind_leader"), b.metric("kubebind_leader")
        if la + lb != 1:
            return None
        return (a, b) if la == 1 else (b, a)

    leader, standby = eventually(one_leader, 60, "exactly one leader")
    pair.wait_bound()
    pair.create_widgets([f"led{i}" for i in range(20)])
    eventually(lambda: len(pair.provider_widgets()) == 20, 60, "copies written by the leader")
    leader.quiet()
    assert standby.metric("kubebind_writes_total") == 0, standby.writes()
    assert standby.metric("kubebind_leader") == 0
    assert leader.metric("kubebind_writes_total") > 20

    # A graceful stop releases the Lease: the standby leads at once and syncs new objects.
    assert leader.terminate() == 0
    eventually(lambda: standby.metric("kubebind_leader") == 1, 30, "standby took over")
    pair.create_widgets([f"after{i}" for i in range(5)])
    eventually(
        lambda: len(pair.provider_widgets()) == 25, 60, f"synced by the new leader\n{_logs(pair)}"
    )
    assert standby.metric("kubebind_writes_total") > 0

    # A leader killed outright cannot release: a third replica waits out the lease, then leads.
    c = pair.konnector("--leader-elect").wait_ready()
    assert c.metric("kubebind_leader") == 0
    standby.kill()
    dead = _lease(pair)["spec"]  # nothing renews it any more
    eventually(lambda: c.metric("kubebind_leader") == 1, 60, "took over after a SIGKILL")
    taken = _lease(pair)["spec"]
    assert taken["holderIdentity"] != dead["holderIdentity"]
    expired = _stamp(dead["renewTime"]) + dt.timedelta(seconds=dead["leaseDurationSeconds"])
    assert _stamp(taken["acquireTime"]) >= expired, (
        "took over before the dead leader's lease expired"
    )
    pair.create_widgets(["after-kill"])
    eventually(lambda: len(pair.provider_widgets()) == 26, 60, "synced by the third replica")


def test_api_server_restarts_on_both_sides_are_survived(pair: Pair) -> None:
    k = pair.konnector().wait_ready()
    pair.wait_bound()
    pair.create_widgets(["before"])
    eventually(lambda: len(pair.provider_widgets()) == 1, 60, "first copy")

    pair.clusters.provider.restart_apiserver(crash=True)
    pair.clusters.consumer.restart_apiserver()
    pair.create_widgets(["after"])
    pair.consumer.patch(
        WIDGETS, ObjectKey("default", "before"), {"spec": {"size": "XL"}}, "merge", "user", False
    )

    def caught_up() -> bool:
        copies = {w["metadata"]["name"]: w for w in pair.provider_widgets()}
        return set(copies) == {"before", "after"} and copies["before"]["spec"]["size"] == "XL"

    eventually(caught_up, 90, f"changes made after the restarts synced\n{_logs(pair)}")
    assert k.alive, "the konnector survived without a restart"
    assert k.ready()


def test_a_recorded_run_replays_with_no_divergence(pair: Pair) -> None:
    trace = pair.tmp / "trace.jsonl"
    k = pair.konnector("--record", str(trace)).wait_ready()
    pair.wait_bound()
    pair.create_widgets(["r1", "r2", "r3"])
    eventually(lambda: len(pair.provider_widgets()) == 3, 60, "copies")
    pair.consumer.delete(WIDGETS, ObjectKey("default", "r2"))
    eventually(lambda: len(pair.provider_widgets()) == 2, 60, "a deleted object's copy removed")
    k.quiet()
    assert k.terminate() == 0
    assert oct(trace.stat().st_mode & 0o777) == "0o600"  # the trace holds the kubeconfig Secret
    records = trace.read_text().splitlines()
    assert len(records) > 10
    done = subprocess.run(
        [str(KBSIM), "replay", str(trace)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(records)} records replayed" in done.stdout
