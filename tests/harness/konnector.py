"""The real `konnector` process for e2e tests and benchmarks: start, probe, read metrics, stop.

The konnector runs as a separate process (the console script from this checkout), on free
127.0.0.1 ports for its probes and metrics, logging JSON lines to a file. Nothing here
sleeps for a fixed time: waits poll with deadlines.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kbcore.api.resources import CRDS, NAMESPACES, SECRETS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbshell.client import KubeClient
from tests.harness.clusters import Clusters

T = TypeVar("T")
KONNECTOR = Path(sys.executable).parent / "konnector"
REPO = Path(__file__).resolve().parents[2]
WIDGETS = GVR("example.org", "v1", "widgets")
CLUSTERBINDINGS = GVR("core.kube-bind.io", "v1alpha1", "clusterbindings")
CONNECTIONS = GVR("core.kube-bind.io", "v1alpha1", "connections")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def eventually(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2
) -> T:
    """Poll `check` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError as err:
            last = err
        else:
            if last is not None and last is not False:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s (last: {last})")
        time.sleep(interval)


class Konnector:
    """One konnector process against a consumer kubeconfig (None: tests/harness/pod.py's
    Replica, which starts it as a Pod runs it)."""

    def __init__(
        self,
        kubeconfig: Path | None,
        log_path: Path,
        *,
        namespace: str = "kube-bind",
        extra: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.namespace = namespace
        self.extra = list(extra)
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Konnector:
        assert self.kubeconfig is not None
        argv = [
            str(KONNECTOR),
            "--kubeconfig",
            str(self.kubeconfig),
            "--namespace",
            self.namespace,
            "--health-probe-bind-address",
            f"127.0.0.1:{self.health_port}",
            "--metrics-bind-address",
            f"127.0.0.1:{self.metrics_port}",
            "--log-format",
            "json",
            *self.extra,
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _get(self, port: int, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def readyz(self) -> tuple[int, str]:
        """/readyz?verbose: the status and which checks pass."""
        return self._get(self.health_port, "/readyz?verbose")

    def ready(self) -> bool:
        try:
            return self._get(self.health_port, "/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> Konnector:
        def check() -> bool:
            if not self.alive:
                raise RuntimeError(f"konnector exited early:\n{self.log_tail()}")
            return self.ready()

        eventually(check, timeout, "konnector /readyz")
        return self

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample: (name, sorted labels) -> value."""
        _, text = self._get(self.metrics_port, "/metrics")
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric(self, metric: str, /, **labels: str) -> float:
        """The sum of `name` over samples whose labels include `labels`."""
        return sum(
            v
            for (n, ls), v in self.metrics().items()
            if n == metric and all(dict(ls).get(k) == want for k, want in labels.items())
        )

    def quiet(self, window: float = 1.0, timeout: float = 60.0) -> None:
        """Wait until the work queue is empty, nothing is in process, and no reconcile ran for
        `window` seconds (delayed retries may still be waiting)."""

        def snapshot() -> tuple[float, float, float]:
            return (
                self.metric("workqueue_depth", name="konnector"),
                self.metric("controller_runtime_active_workers", controller="konnector"),
                self.metric("controller_runtime_reconcile_total", controller="konnector"),
            )

        def check() -> bool:
            depth, active, before = snapshot()
            if depth or active:
                return False
            time.sleep(window)
            depth, active, after = snapshot()
            return not depth and not active and after == before

        eventually(check, timeout, "konnector queue quiet", interval=0.1)

    def writes(self) -> dict[str, float]:
        """Mutating requests sent, by action kind and cluster ('Apply/provider': 3, ...)."""
        return {
            f"{dict(ls)['kind']}/{dict(ls)['cluster']}": v
            for (n, ls), v in self.metrics().items()
            if n == "kubebind_actions_total"
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc is not None and self.proc.poll() is None:
                self.terminate(15)
        self.kill()

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used."""
        with open(f"/proc/{self.pid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def wait_established(client: KubeClient, names: list[str], timeout: float = 60.0) -> None:
    """Until every CRD in `names` is Established (its API is served)."""

    def established() -> bool:
        for name in names:
            crd = client.get(CRDS, ObjectKey("", name))
            conds = (crd.get("status") or {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conds):
                return False
        return True

    eventually(established, timeout, f"CRDs {', '.join(names)} established")


class Pair:
    """A provider and a consumer with the quickstart bundle applied."""

    def __init__(self, clusters: Clusters, tmp: Path) -> None:
        self.clusters = clusters
        self.tmp = tmp
        self.provider = KubeClient.from_kubeconfig_file(clusters.provider.kubeconfig)
        self.consumer = KubeClient.from_kubeconfig_file(clusters.consumer.kubeconfig)
        self.konnectors: list[Konnector] = []

    def apply(self, client: KubeClient, gvr: GVR, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = ObjectKey(meta.get("namespace", ""), meta["name"])
        return client.patch(gvr, key, obj, "apply", "e2e", True)

    def install(self) -> None:
        crds = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
        for crd in crds:
            self.apply(self.consumer, CRDS, crd)
        # A CRD just created answers 404 until it is Established (a busy machine shows it).
        wait_established(self.consumer, [crd["metadata"]["name"] for crd in crds])
        self.apply(
            self.consumer,
            NAMESPACES,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bind"}},
        )
        widgets = yaml.safe_load((REPO / "examples/scenarios/_common/widgets-crd.yaml").read_text())
        self.apply(self.provider, CRDS, widgets)
        kubeconfig = self.clusters.provider.kubeconfig.read_text()
        self.apply(
            self.consumer,
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"namespace": "kube-bind", "name": "demo-provider-kubeconfig"},
                "data": {"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
            },
        )
        bundle = (REPO / "examples/scenarios/_common/bundle.yaml").read_text()
        for doc in yaml.safe_load_all(bundle):
            if doc["kind"] == "Connection":
                self.apply(self.consumer, CONNECTIONS, doc)
            elif doc["kind"] == "ClusterBinding":
                self.apply(self.consumer, CLUSTERBINDINGS, doc)

    def konnector(self, *extra: str) -> Konnector:
        k = Konnector(
            self.clusters.consumer.kubeconfig,
            self.tmp / f"konnector-{len(self.konnectors)}.log",
            extra=extra,
        )
        self.konnectors.append(k)
        return k.start()

    def wait_bound(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            try:
                cb = self.consumer.get(CLUSTERBINDINGS, ObjectKey("", "widgets"))
                self.consumer.get(WIDGETS, ObjectKey("default", "__probe__"))
            except ApiError as err:
                if err.code != 404 or "widgets" not in err.message:
                    return False
                cb = self.consumer.get(CLUSTERBINDINGS, ObjectKey("", "widgets"))
            conds = (cb.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        eventually(ready, timeout, "ClusterBinding widgets Ready and Widgets served")

    def create_widgets(self, names: list[str], namespace: str = "default") -> None:
        for name in names:
            self.consumer.create(
                WIDGETS,
                {
                    "apiVersion": "example.org/v1",
                    "kind": "Widget",
                    "metadata": {"namespace": namespace, "name": name},
                    "spec": {"size": name},
                },
            )

    def provider_widgets(self) -> list[dict[str, Any]]:
        return self.provider.list(WIDGETS)[0]

    def close(self) -> None:
        for k in self.konnectors:
            k.stop()
        self.provider.close()
        self.consumer.close()
