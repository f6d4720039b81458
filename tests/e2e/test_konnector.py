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

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kbcore.api import keys
from kbcore.objects import ObjectKey
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


def test_sigkill_mid_sync_and_restart_lose_and_duplicate_nothing(pair: Pair) -> None:
    k = pair.konnector().wait_ready()
    pair.wait_bound()
    names = [f"w{i:03d}" for i in range(150)]
    pair.create_widgets(names)
    # Kill it while the copies are being written, not before and not after.
    eventually(lambda: len(pair.provider_widgets()) >= 10, 60, "first copies on the provider")
    k.kill()
    synced_at_kill = len(pair.provider_widgets())
    assert synced_at_kill < len(names), "the kill came too late to be mid-sync"

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
    killed_at = time.monotonic()
    standby.kill()
    eventually(lambda: c.metric("kubebind_leader") == 1, 60, "took over after a SIGKILL")
    assert time.monotonic() - killed_at > 5, "took over before the dead leader's lease expired"
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
