"""The konnector as the chart's Pod runs it: the in-cluster credential path, on real clusters.

The test clusters have no nodes, so no Pod ever starts; tests/harness/pod.py plays the Pod: the
chart installed by `helm install`, the konnector process started with the Deployment's args,
the image's entrypoint and environment, the Pod's service environment, its user, no capability,
a read-only root, an emptyDir /tmp, and a ServiceAccount token (TokenRequest, bound to a Pending
Pod object) at /var/run/secrets/kubernetes.io/serviceaccount in its own mount namespace. There
is no kubeconfig anywhere, so the only way in is `KubeClient.in_cluster`. The provider side is
the quickstart bundle, as in test_konnector.py. Each test has its own clusters.

What a user relies on:
 - a Widget syncs both ways through that path, and the Pod writes nothing but /tmp;
 - two replicas elect one leader, and the standby leads once the leader is killed;
 - a token rotated while it runs (the old one revoked at once) is picked up without a restart,
   before the once-a-minute re-read would have happened (a 401 re-reads the file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kbcore.api import keys
from kbcore.api.resources import LEASES
from kbcore.objects import ObjectKey
from kbshell.client import SERVICE_ACCOUNT_DIR, TOKEN_REFRESH_SECONDS
from tests.harness.clusters import build_binaries, start_clusters
from tests.harness.helm import Helm, build_helm
from tests.harness.konnector import WIDGETS, Pair, eventually
from tests.harness.pod import Replica, install_chart, whoami

pytestmark = pytest.mark.realcluster

NAMESPACE = "kube-bind"
SA_USER = f"system:serviceaccount:{NAMESPACE}:kb-konnector"
VALUES: dict[str, Any] = {"rbac": {"boundResourceGroups": ["example.org"]}}
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(build_helm(), tmp_path_factory.mktemp("helm-home"))


class PodPair(Pair):
    """The quickstart pair, the chart installed on the consumer, and replicas of its Pod."""

    def __init__(self, pair: Pair, objs: list[dict[str, Any]]) -> None:
        self.__dict__.update(pair.__dict__)
        self.objs = objs

    def replica(self, name: str) -> Replica:
        r = Replica(self.clusters.consumer, self.objs, name, self.tmp)
        self.konnectors.append(r)
        return r.start()


def _pod_pair(helm: Helm, tmp: Path, values: dict[str, Any]) -> Iterator[PodPair]:
    clusters = start_clusters(["provider", "consumer"], bin_dir=build_binaries())
    pair = Pair(clusters, tmp)
    failed = True
    try:
        objs = install_chart(helm, clusters.consumer, values, NAMESPACE)
        pair.install()
        yield PodPair(pair, objs)
        failed = False
    finally:
        pair.close()
        clusters.stop(keep_dir=failed)


@pytest.fixture
def pod_pair(helm: Helm, tmp_path: Path) -> Iterator[PodPair]:
    yield from _pod_pair(helm, tmp_path, VALUES)


@pytest.fixture
def two_replicas(helm: Helm, tmp_path: Path) -> Iterator[PodPair]:
    yield from _pod_pair(helm, tmp_path, {**VALUES, "replicaCount": 2})


def _logs(p: Pair) -> str:
    return "\n".join(f"--- {k.log_path.name}\n{k.log_tail()}" for k in p.konnectors)


def _synced(p: Pair, name: str) -> bool:
    """The copy is on the provider and the consumer object carries the konnector's finalizer
    (a write to the consumer, with the ServiceAccount's token)."""
    copies = [w for w in p.provider_widgets() if w["metadata"]["name"] == name]
    consumer = p.consumer.get(WIDGETS, ObjectKey("default", name))
    return bool(copies) and keys.FINALIZER_SYNCER in consumer["metadata"].get("finalizers", [])


def _status_comes_back(p: Pair, name: str, phase: str) -> None:
    key = ObjectKey("default", name)
    p.provider.patch(WIDGETS, key, {"status": {"phase": phase}}, "merge", "e2e", False, "status")
    eventually(
        lambda: (p.consumer.get(WIDGETS, key).get("status") or {}).get("phase") == phase,
        TIMEOUT,
        f"{name} status back on the consumer\n{_logs(p)}",
    )


def _wrote_nothing_but_tmp(r: Replica) -> None:
    assert list(r.workdir.iterdir()) == [], "the konnector wrote to its working directory"
    log = r.log_path.read_text()
    for sign in ("Read-only file system", "Permission denied", "Traceback"):
        assert sign not in log, r.log_tail()


def test_a_widget_syncs_both_ways_through_the_pods_service_account(pod_pair: PodPair) -> None:
    r = pod_pair.replica("kb-konnector-5f7d9-abcde").wait_ready()
    # The process is the Pod's: its user, no capability, no kubeconfig, the token where the
    # kubelet puts it, and its hostname the Pod's name.
    status = r.proc_status()
    assert status["Uid"].split()[:2] == ["65532", "65532"] and status["CapEff"] == "0" * 16
    assert status["NoNewPrivs"] == "1"
    env = r.environ()
    assert "KUBECONFIG" not in env and env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    argv = r.cmdline()
    assert argv[1:3] == ["-m", "kbshell.main"] and not any("kubeconfig" in a for a in argv), argv
    assert list(r.sees(env["HOME"]).iterdir()) == []
    token = (r.sees(SERVICE_ACCOUNT_DIR) / "token").read_text()
    assert token == r.tokens[-1] and whoami(pod_pair.clusters.consumer, token) == SA_USER
    assert os.readlink(f"/proc/{r.pid()}/cwd") == env["HOME"]
    assert os.path.samestat(os.stat(f"/proc/{r.pid()}/cwd"), os.stat(r.workdir))
    mounts = r.mounts()
    assert "ro" in mounts["/"] and "ro" in mounts[os.path.realpath(SERVICE_ACCOUNT_DIR)]
    assert mounts["/tmp"][0] == "tmpfs" and "rw" in mounts["/tmp"]

    pod_pair.wait_bound()
    pod_pair.create_widgets(["w1"])
    eventually(lambda: _synced(pod_pair, "w1"), TIMEOUT, f"w1 synced up\n{_logs(pod_pair)}")
    _status_comes_back(pod_pair, "w1", "Running")
    assert r.alive
    _wrote_nothing_but_tmp(r)


def test_two_replicas_one_leads_and_the_standby_takes_over_when_it_is_killed(
    two_replicas: PodPair,
) -> None:
    p = two_replicas
    a = p.replica("kb-konnector-5f7d9-aaaaa").wait_ready()
    b = p.replica("kb-konnector-5f7d9-bbbbb").wait_ready()  # a standby is ready too
    assert "--leader-elect" in a.cmdline()  # replicaCount 2 forces it

    def one_leader() -> tuple[Replica, Replica] | None:
        la, lb = a.metric("kubebind_leader"), b.metric("kubebind_leader")
        if la + lb != 1:
            return None
        return (a, b) if la == 1 else (b, a)

    leader, standby = eventually(one_leader, TIMEOUT, "exactly one leader")
    lease = p.consumer.get(LEASES, ObjectKey(NAMESPACE, "konnector.kube-bind.io"))
    assert lease["spec"]["holderIdentity"].startswith(leader.name + "_")  # the Pod's hostname
    p.wait_bound()
    p.create_widgets(["led"])
    eventually(lambda: _synced(p, "led"), TIMEOUT, f"synced by the leader\n{_logs(p)}")
    leader.quiet()
    assert standby.metric("kubebind_writes_total") == 0, standby.writes()

    leader.kill()
    eventually(lambda: standby.metric("kubebind_leader") == 1, TIMEOUT, "standby took over")
    p.create_widgets(["after"])
    eventually(lambda: _synced(p, "after"), TIMEOUT, f"synced by the new leader\n{_logs(p)}")
    _status_comes_back(p, "after", "Running")
    lease = p.consumer.get(LEASES, ObjectKey(NAMESPACE, "konnector.kube-bind.io"))
    assert lease["spec"]["holderIdentity"].startswith(standby.name + "_")
    for r in (a, b):
        _wrote_nothing_but_tmp(r)


def test_a_token_rotated_and_revoked_while_it_runs_is_picked_up_without_a_restart(
    pod_pair: PodPair,
) -> None:
    p = pod_pair
    started = time.monotonic()  # before the process reads its token
    r = p.replica("kb-konnector-5f7d9-rotat").wait_ready()
    pid = r.pid()
    p.wait_bound()
    p.create_widgets(["before"])
    eventually(lambda: _synced(p, "before"), TIMEOUT, f"synced\n{_logs(p)}")

    # The kubelet's rotation, and the old token's Pod object deleted: it is refused from now.
    r.rotate(revoke=True)
    consumer = p.clusters.consumer
    assert whoami(consumer, r.tokens[0]) == 401 and whoami(consumer, r.tokens[1]) == SA_USER
    assert (r.sees(SERVICE_ACCOUNT_DIR) / "token").read_text() == r.tokens[1]
    # Its watches are still open (a server authenticates a request once); this change needs
    # consumer writes (the finalizer, then the status), each first sent with the old token.
    p.create_widgets(["after-rotation"])
    eventually(lambda: _synced(p, "after-rotation"), TIMEOUT, f"synced\n{_logs(p)}")
    _status_comes_back(p, "after-rotation", "Rotated")
    assert time.monotonic() - started < TOKEN_REFRESH_SECONDS, (
        "synced only after the periodic re-read: a 401 did not re-read the token"
    )

    # Every watch reconnects (an API server restart): with the new token, the old is refused.
    consumer.restart_apiserver()
    p.create_widgets(["after-restart"])
    eventually(lambda: _synced(p, "after-restart"), 90, f"synced\n{_logs(p)}")
    assert r.alive and r.pid() == pid, "the konnector was not restarted"
    assert r.ready()
    _wrote_nothing_but_tmp(r)
