"""The physical limit the konnector is measured against: the same requests from a plain client.

For N objects, a creator stream makes the consumer Widgets exactly as the konnector bench does
(one thread, one POST each), and `workers` threads carry out, per object, the request sequence the
konnector issues for it, built from the kernel's own actions and bodies (`AddFinalizer`, `Create`
of `desired_provider_body`, optionally the `Apply` the konnector sends right after a create,
`UpdateStatus` of the provider's status) and sent by the same `KubeClient.perform`, plus the
provider's status write the bench's provider controller makes. No watches, no caches, no
decisions: what is left is the API servers' (and etcd's) own cost for the same work.

CPU is read from /proc for each cluster's etcd and kube-apiserver, and for the machine as a
whole (how busy both cores were), over the phase from the first create until the last status
is back.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

import attrs
import yaml

from kbcore import objects as o
from kbcore.actions import CONSUMER, PROVIDER, AddFinalizer, Apply, Create, UpdateStatus
from kbcore.api import keys
from kbcore.api.resources import CRDS, NAMESPACES
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.runtime.requests import to_request
from kbcore.sync.instance import desired_provider_body
from kbshell.client import KubeClient
from tests.harness.clusters import Clusters, start_clusters
from tests.harness.konnector import REPO, WIDGETS, wait_established


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@attrs.define
class CpuMeter:
    """CPU used by the clusters' etcd and kube-apiserver processes and by the whole machine
    between `start` and `stop`."""

    clusters: Clusters
    servers: dict[str, float] = attrs.field(factory=dict)
    busy: float = 0.0
    _before: dict[str, float] = attrs.field(factory=dict)
    _machine: tuple[int, int] = (0, 0)

    def _read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, cluster in self.clusters.items():
            for role, proc in (("etcd", cluster.etcd), ("kube-apiserver", cluster.apiserver)):
                if proc.pid is not None:
                    out[f"{name} {role}"] = process_cpu(proc.pid)
        return out

    def start(self) -> None:
        self._before, self._machine = self._read(), machine_ticks()

    def stop(self) -> None:
        after, (busy, total) = self._read(), machine_ticks()
        self.servers = {k: v - self._before.get(k, 0.0) for k, v in after.items()}
        busy0, total0 = self._machine
        self.busy = (busy - busy0) / max(1, total - total0)

    def line(self, n: int) -> str:
        """The servers' CPU per object and how busy the machine was, for one printed line."""
        apiservers = sum(v for k, v in self.servers.items() if k.endswith("kube-apiserver"))
        etcds = sum(v for k, v in self.servers.items() if k.endswith("etcd"))
        return (
            f"kube-apiservers {apiservers / n * 1000:.1f} ms/object, etcds "
            f"{etcds / n * 1000:.1f} ms/object, machine {self.busy * 100:.0f} % busy"
        )


@attrs.frozen
class LimitResult:
    seconds: float
    writes_per_object: int
    """The konnector's writes per object it stands for (the provider's status write apart)."""
    cpu: CpuMeter


def widget(name: str, namespace: str = "default") -> dict[str, Any]:
    """The consumer Widget the bench's creator stream makes (`Pair.create_widgets`)."""
    return {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"size": name},
    }


def limit_clusters(bin_dir: Any) -> Clusters:
    """Fresh clusters for one plain-client run: the Widget CRD on both sides (the konnector run
    has the consumer's pulled from the provider by the binding)."""
    clusters = start_clusters(["provider", "consumer"], bin_dir=bin_dir)
    crd = yaml.safe_load((REPO / "examples/scenarios/_common/widgets-crd.yaml").read_text())
    for cluster in (clusters.provider, clusters.consumer):
        client = KubeClient.from_kubeconfig_file(cluster.kubeconfig)
        client.create(CRDS, o.deepcopy(crd))
        wait_established(client, [crd["metadata"]["name"]])
        client.close()
    return clusters


def run_limit(
    clusters: Clusters, names: Iterable[str], *, workers: int, redundant_apply: bool
) -> LimitResult:
    """The plain client's run over `names` on `clusters` (the Widget CRD installed on both)."""
    consumer = KubeClient.from_kubeconfig_file(clusters.consumer.kubeconfig)
    provider = KubeClient.from_kubeconfig_file(clusters.provider.kubeconfig)
    local_uid = consumer.get(NAMESPACES, ObjectKey("", "kube-system"))["metadata"]["uid"]
    todo: queue.Queue[dict[str, Any] | None] = queue.Queue()
    failures: list[BaseException] = []
    names = list(names)

    def one(obj: dict[str, Any]) -> None:
        now = time.time()
        key = ObjectKey(obj["metadata"]["namespace"], obj["metadata"]["name"])
        cref, pref = ObjectRef(CONSUMER, WIDGETS, key), ObjectRef(PROVIDER, WIDGETS, key)
        rv = obj["metadata"]["resourceVersion"]
        fin = AddFinalizer(cref, keys.FINALIZER_SYNCER, rv, (keys.FINALIZER_SYNCER,))
        held = perform(consumer, fin, now)
        body = desired_provider_body(obj, key, local_uid)
        copy = perform(provider, Create(pref, body, keys.FIELD_MANAGER), now)
        if redundant_apply:
            applied = desired_provider_body(obj, key, local_uid)
            applied["metadata"]["uid"] = copy["metadata"]["uid"]
            copy = perform(provider, Apply(pref, applied, keys.FIELD_MANAGER, force=True), now)
        status = {"observedSize": obj["spec"]["size"]}
        provider.patch(
            WIDGETS, key, {"status": status}, "merge", "provider-controller", False, "status"
        )
        mirrored = {k: v for k, v in held.items() if k != "status"}
        mirrored["status"] = status
        perform(consumer, UpdateStatus(cref, mirrored), now)

    def worker() -> None:
        while (obj := todo.get()) is not None:
            try:
                one(obj)
            except BaseException as err:  # reported after the run, which then fails
                failures.append(err)

    meter = CpuMeter(clusters)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    meter.start()
    started = time.monotonic()
    for name in names:
        todo.put(consumer.create(WIDGETS, widget(name)))
    for _ in threads:
        todo.put(None)
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    meter.stop()
    consumer.close()
    provider.close()
    if failures:
        raise RuntimeError(f"{len(failures)} objects failed in the limit run: {failures[0]!r}")
    return LimitResult(seconds, 4 if redundant_apply else 3, meter)


def perform(client: KubeClient, action: Any, now: float) -> dict[str, Any]:
    request = to_request(action, now)
    assert request is not None
    out = client.perform(request)
    assert out is not None
    return out
