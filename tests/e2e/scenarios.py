"""Run a kbsim scenario file against real kube-apiservers and the real `konnector` process.

The same YAML that defines behaviour in the simulator (`kbsim/scenario.py`) is replayed here:

- one fresh control plane per cluster the scenario names (`tests/harness/clusters.py`), with
  the core.kube-bind.io CRDs (`crds/*.yaml`) and the konnector namespace on the konnector's
  cluster, as `kbsim.scenario.build_world` installs them;
- the `setup` manifests server-side applied (field manager `kubectl`, force), retried while a
  CRD created just before is not served yet;
- `konnector` started as a separate process (`--log-format json`, probes and metrics on free
  loopback ports) once setup is done, and awaited on `/readyz`;
- the steps: user writes go through `kbsim.scenario.user_write` itself, and expectations
  through `kbsim.scenario.unmet_expectation` itself, both over `RealWorld`, the small slice of kbsim's
  `World` they use (`clusters[name]` with `kind_to_gvr`/`get`/`create`/`patch`/`delete`, and
  `user_call`), backed by `kbshell.client.KubeClient` and discovery. So "what the scenario
  checks" has one definition.

Simulated addresses (docs/design.md, "Addressing simulated clusters"): in every Secret written (setup
and steps), a kubeconfig whose cluster server has the host `<name>.kbsim` gets cluster
`<name>`'s real URL and CA, and each user with a `token` T becomes a client-certificate user:
T `admin` or empty -> that cluster's admin (system:masters); any other T -> a certificate
minted for user T with no groups, so only the scenario's RBAC objects authorize it, as in
kbsim. Everything else (exec, tokenFile, ...) is left for the konnector to refuse.

Time: `advance: Ns` does not sleep. Real time passes on its own; the following expectations
get N more seconds before they fail (their deadline is N s after the advance plus the usual
30 s). An expectation is polled until it holds or its deadline passes, so one that already
holds is satisfied at once (an `absent` after `advance` is checked when it is reached, not N
seconds later). `settle` polls the konnector's /metrics until its work queue is quiet: depth 0
(which counts keys waiting for a retry), no key in process (keys taken minus reconciles
finished), caches synced (/readyz), and no reconcile or queue add for `QUIET_SECONDS`; and,
as kbsim's settle waits for its simulated controllers, until no Namespace or CRD is being
deleted and every CRD is Established (`controllers_busy`). A settle that never gets there is
a failure (a hot loop is a bug). `fault` steps have no real counterpart here; scenarios with
faults are not run by this module.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import attrs
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kbcore import objects as o
from kbcore.api.resources import CRDS, LEASES, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbshell.client import KubeClient, PatchType
from kbsim.scenario import USER_WRITES, Scenario, ScenarioError, Step, unmet_expectation, user_write
from kbsim.world import parse_duration
from tests.harness.clusters import REPO_ROOT, Cluster, Clusters, Process, start_clusters

SCENARIO_DIR = REPO_ROOT / "examples" / "scenarios"
CRD_DIR = REPO_ROOT / "crds"
QUEUE = "konnector"

EXPECT_TIMEOUT = 30.0
"""Seconds an expectation may take to hold, plus the credit of a preceding `advance`."""
SETUP_TIMEOUT = 30.0
"""Seconds a setup write is retried while its kind (a CRD created just before) is not served."""
READY_TIMEOUT = 60.0
QUIET_SECONDS = 1.0
POLL = 0.1
LOG_TAIL_LINES = 40
SIGTERM_LIMIT = 10.0
RECORD = os.environ.get("KBIND_E2E_RECORD", "") not in ("", "0")
"""KBIND_E2E_RECORD=1 runs the konnector with `--record` (a settle failure then names the keys
it kept handling); off by default, so the konnector runs exactly as deployed."""


def scenario_files() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*/scenario.yaml"))


QUIET_STEP_SECONDS = 35.0
"""The longest real window a `quiet` step watches (kbsim's is virtual time)."""


def has_faults(sc: Scenario) -> bool:
    return any(s.kind == "fault" for s in sc.steps)


# -- a real cluster as kbsim.scenario sees a simulated one ---------------------------------------


class UnknownKindError(ApiError):
    """Discovery does not list the kind (yet): a 404, as kbsim's `kind_to_gvr` raises."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(
            404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"'
        )


class RealServer:
    """One real cluster with the methods of kbsim's `APIServer` that `kbsim.scenario` calls.

    `user=` (kbsim's acting user) is accepted and ignored: the client is the cluster's admin.
    """

    def __init__(self, name: str, client: KubeClient) -> None:
        self.name = name
        self.client = client
        self._resources: dict[str, dict[str, GVR]] = {}

    def kind_to_gvr(self, api_version: str, kind: str) -> GVR:
        """Discovery (`/api/v1`, `/apis/<group>/<version>`), cached; refreshed once on a miss."""
        for refresh in (False, True):
            if refresh or api_version not in self._resources:
                self._resources[api_version] = self._discover(api_version)
            gvr = self._resources[api_version].get(kind)
            if gvr is not None:
                return gvr
        raise UnknownKindError(api_version, kind)

    def _discover(self, api_version: str) -> dict[str, GVR]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            doc = self.client.get_path(path)
        except ApiError as err:
            if err.is_not_found:
                return {}
            raise
        return {
            r["kind"]: GVR(group, version, r["name"])
            for r in doc.get("resources") or []
            if isinstance(r, dict) and "/" not in str(r.get("name", "")) and r.get("kind")
        }

    def get(self, gvr: GVR, key: ObjectKey, user: Any = None) -> Obj:
        return self.client.get(gvr, key)

    def list(self, gvr: GVR, namespace: str = "") -> list[Obj]:
        return self.client.list(gvr, namespace)[0]

    def create(self, gvr: GVR, body: Obj, user: Any = None, field_manager: str = "kubectl") -> Obj:
        return self.client.create(gvr, body, field_manager=field_manager)

    def patch(
        self,
        gvr: GVR,
        key: ObjectKey,
        body: Any,
        patch_type: str,
        field_manager: str = "kubectl",
        force: bool = False,
        subresource: str = "",
        user: Any = None,
    ) -> Obj:
        assert patch_type in ("merge", "json", "apply"), patch_type
        kind = cast(PatchType, patch_type)
        return self.client.patch(gvr, key, body, kind, field_manager, force, subresource)

    def delete(self, gvr: GVR, key: ObjectKey, user: Any = None) -> Obj | None:
        return self.client.delete(gvr, key)


class RealWorld:
    """What `kbsim.scenario.user_write` and `unmet_expectation` use of a kbsim `World`."""

    def __init__(self, clusters: Mapping[str, RealServer]) -> None:
        self.clusters = dict(clusters)

    def user_call(self, fn: Callable[[], Any]) -> Any:
        return fn()


# -- simulated addresses -> real clusters ---------------------------------------------------------


@attrs.frozen
class Endpoint:
    """How a translated kubeconfig reaches one real cluster."""

    server: str
    ca_data: str
    credentials: Callable[[str], tuple[str, str]]
    """token -> (client-certificate-data, client-key-data) of the user that token names."""


def endpoint_of(cluster: Cluster) -> Endpoint:
    minted: dict[str, tuple[str, str]] = {}

    def user_data(path: Path) -> tuple[str, str]:
        user = yaml.safe_load(path.read_text())["users"][0]["user"]
        return user["client-certificate-data"], user["client-key-data"]

    def credentials(token: str) -> tuple[str, str]:
        if token in ("", "admin"):
            return user_data(cluster.kubeconfig)
        if token not in minted:
            minted[token] = user_data(cluster.mint_kubeconfig(token))
        return minted[token]

    ca = base64.b64encode(cluster.ca.cert.read_bytes()).decode()
    return Endpoint(cluster.url, ca, credentials)


def translate_kubeconfig(text: str, endpoints: Mapping[str, Endpoint]) -> str | None:
    """`text` with `<name>.kbsim` servers and token users made real; None if nothing to do."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("clusters"), list):
        return None
    real: dict[str, Endpoint] = {}  # kubeconfig cluster entry name -> endpoint (verified TLS)
    touched = False
    for entry in config["clusters"]:
        cluster = entry.get("cluster") if isinstance(entry, dict) else None
        if not isinstance(cluster, dict) or not isinstance(cluster.get("server"), str):
            continue
        host = urllib.parse.urlsplit(cluster["server"]).hostname or ""
        name = host.removesuffix(".kbsim")
        if not host.endswith(".kbsim") or name not in endpoints:
            continue
        ep = endpoints[name]
        touched = True
        if urllib.parse.urlsplit(cluster["server"]).scheme == "http":
            # A plain-http kubeconfig stays plain http (and its users as written): the
            # konnector's answer to it is what the scenario checks, not a real connection.
            cluster["server"] = urllib.parse.urlsplit(ep.server)._replace(scheme="http").geturl()
            continue
        cluster["server"] = ep.server
        if cluster.get("insecure-skip-tls-verify"):
            # Unverified TLS keeps its users as written too: a token sent there is refused.
            continue
        cluster["certificate-authority-data"] = ep.ca_data
        real[str(entry.get("name"))] = ep
    if not touched:
        return None
    # Each user is made real for the (first) translated cluster a context pairs it with.
    user_cluster: dict[str, Endpoint] = {}
    for ctx in config.get("contexts") or []:
        context = ctx.get("context") if isinstance(ctx, dict) else None
        if isinstance(context, dict) and str(context.get("cluster")) in real:
            user_cluster.setdefault(str(context.get("user")), real[str(context.get("cluster"))])
    for entry in config.get("users") or []:
        user = entry.get("user") if isinstance(entry, dict) else None
        target = user_cluster.get(str(entry.get("name"))) if isinstance(entry, dict) else None
        if not isinstance(user, dict) or target is None or "token" not in user:
            continue
        token = user.pop("token")
        cert, key = target.credentials(str(token or ""))
        user["client-certificate-data"] = cert
        user["client-key-data"] = key
    return yaml.safe_dump(config, sort_keys=False)


def translate_manifest(obj: Obj, endpoints: Mapping[str, Endpoint]) -> Obj:
    """A copy of `obj` with every kubeconfig in a Secret's data/stringData made real."""
    if obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1":
        return obj
    out = o.deepcopy(obj)
    for field, encoded in (("stringData", False), ("data", True)):
        values = out.get(field)
        if not isinstance(values, dict):
            continue
        for k, v in values.items():
            if not isinstance(v, str):
                continue
            try:
                text = base64.b64decode(v, validate=True).decode() if encoded else v
            except ValueError:
                continue
            translated = translate_kubeconfig(text, endpoints)
            if translated is not None:
                values[k] = (
                    base64.b64encode(translated.encode()).decode() if encoded else translated
                )
    return out


# -- the konnector process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def konnector_command() -> list[str]:
    script = Path(sys.executable).with_name("konnector")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kbshell.main"]


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def metric(samples: Samples, name: str, /, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def by_label(samples: Samples, name: str, *label_names: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for (n, ls), v in samples.items():
        if n == name:
            d = dict(ls)
            k = tuple(d.get(label, "") for label in label_names)
            out[k] = out.get(k, 0.0) + v
    return out


class KonnectorProcess:
    """`konnector` against one cluster's admin kubeconfig, logging JSON to `log_path`."""

    def __init__(
        self, kubeconfig: Path, namespace: str, workdir: Path, *, record: bool = RECORD
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.workdir = workdir
        self.log_path = workdir / "konnector.log"
        self.trace_path = workdir / "trace.jsonl" if record else None
        self.health_port = 0
        self.metrics_port = 0
        self.proc: Process | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start and wait for /readyz; a port taken in between is retried with new ones."""
        for attempt in range(3):
            self.health_port, self.metrics_port = _free_port(), _free_port()
            argv = [
                *konnector_command(),
                "--kubeconfig", str(self.kubeconfig),
                "--namespace", self.namespace,
                "--health-probe-bind-address", f"127.0.0.1:{self.health_port}",
                "--metrics-bind-address", f"127.0.0.1:{self.metrics_port}",
                "--log-format", "json",
                "--workers", "4",
                *(["--record", str(self.trace_path)] if self.trace_path else []),
            ]  # fmt: skip
            self.proc = Process("konnector", argv, self.log_path, self.workdir)
            self.proc.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self.proc.alive():
                    break
                if self.readyz()[0] == 200:
                    return
                time.sleep(POLL)
            if self.proc.alive():
                raise RuntimeError(
                    f"konnector not ready within {timeout:.0f}s: /readyz {self.readyz()}\n"
                    + self.tail()
                )
            if attempt < 2 and "cannot serve probes or metrics" in self.tail(5):
                continue
            raise RuntimeError(
                f"konnector {self.proc.describe_exit()} while starting:\n{self.tail()}"
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def describe(self) -> str:
        return self.proc.describe_exit() if self.proc else "konnector not started"

    def _get(self, port: int, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except OSError as err:
            return 0, str(err)

    def readyz(self) -> tuple[int, str]:
        return self._get(self.health_port, "/readyz?verbose")

    def metrics(self) -> Samples:
        status, text = self._get(self.metrics_port, "/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}: {text[:200]} ({self.describe()})")
        return parse_metrics(text)

    def write_counters(self) -> str:
        try:
            m = self.metrics()
        except RuntimeError as err:
            return f"(no metrics: {err})"
        writes = by_label(m, "kubebind_writes_total", "cluster")
        actions = by_label(m, "kubebind_actions_total", "kind", "cluster")
        errors = by_label(m, "kubebind_action_errors_total", "kind", "cluster", "code")
        reconciles = by_label(m, "controller_runtime_reconcile_total", "result")
        parts = [
            "writes " + ", ".join(f"{c} {v:g}" for (c,), v in sorted(writes.items())),
            "actions " + (", ".join(f"{k}/{c} {v:g}" for (k, c), v in sorted(actions.items()))
                          or "none"),
            "action errors " + (", ".join(f"{k}/{c}/{code} {v:g}"
                                          for (k, c, code), v in sorted(errors.items())) or "none"),
            "reconciles " + ", ".join(f"{r} {v:g}" for (r,), v in sorted(reconciles.items())),
        ]  # fmt: skip
        return "; ".join(parts)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return self.proc.tail(lines) if self.proc else "(konnector not started)"

    def keys_handled(self, since: float) -> str:
        """With `--record`: the keys handled since wall-clock `since`, counted, with the last
        outcome of each (requeue, failures); '' without a trace."""
        if self.trace_path is None or not self.trace_path.exists():
            return ""
        counts: dict[str, int] = {}
        last: dict[str, str] = {}
        for line in self.trace_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or float(record.get("now") or 0) < since:
                continue
            key = " ".join(str(p) for p in record.get("key") or [] if p)
            counts[key] = counts.get(key, 0) + 1
            out = record.get("outcome") or {}
            plan = out.get("plan") or {}
            last[key] = (
                ", ".join(
                    f"{k} {out[k]}" for k in ("requeue_after", "verdict") if out.get(k) is not None
                )
                + (f", {len(out['failures'])} failed" if out.get("failures") else "")
                + (
                    f", why {plan.get('why')!r}"
                    if isinstance(plan, dict) and plan.get("why")
                    else ""
                )
            )
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
        return "; ".join(f"{k} x{n} (last: {last[k] or 'done'})" for k, n in top)

    def terminate(self, limit: float = SIGTERM_LIMIT) -> tuple[int | None, float]:
        """SIGTERM; (exit status or None if still running after `limit` s, seconds taken)."""
        assert self.proc is not None and self.proc.popen is not None
        popen = self.proc.popen
        started = time.monotonic()
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(limit)
        return popen.poll(), time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=5.0)


# -- quiet queue ----------------------------------------------------------------------------------


@attrs.frozen
class QueueState:
    depth: float
    unfinished: float
    in_process: float
    ready: tuple[int, str]
    adds: float
    reconciles: float

    @classmethod
    def read(cls, k: KonnectorProcess) -> QueueState:
        m = k.metrics()
        return cls(
            depth=metric(m, "workqueue_depth", name=QUEUE),
            unfinished=metric(m, "workqueue_unfinished_work_seconds", name=QUEUE),
            # Every key a worker takes is observed once by queue_duration, and every key it
            # finishes once by reconcile_total: the difference is what is in process.
            in_process=metric(m, "workqueue_queue_duration_seconds_count", name=QUEUE)
            - metric(m, "controller_runtime_reconcile_total", controller=QUEUE),
            ready=k.readyz(),
            adds=metric(m, "workqueue_adds_total", name=QUEUE),
            reconciles=metric(m, "controller_runtime_reconcile_total", controller=QUEUE),
        )

    @property
    def busy(self) -> list[str]:
        why = []
        if self.depth:
            why.append(f"queue depth {self.depth:g}")
        if self.in_process:
            why.append(f"{self.in_process:g} key(s) in process")
        if self.unfinished:
            why.append(f"unfinished work {self.unfinished:.2f}s")
        if self.ready[0] != 200:
            why.append(f"/readyz {self.ready[0]}: {' '.join(self.ready[1].split())[:300]}")
        return why

    @property
    def activity(self) -> tuple[float, float]:
        return (self.adds, self.reconciles)


def controllers_busy(servers: Mapping[str, RealServer]) -> list[str]:
    """The clusters' own pending work that kbsim's settle also waits for (its `pending_work`:
    namespace finalization, CRD cleanup and establishment), here done by kube-controller-manager
    and the apiserver: a Namespace or CRD being deleted, a CRD not yet Established."""
    busy = []
    for name, server in servers.items():
        for ns in server.list(NAMESPACES):
            if o.metadata(ns).get("deletionTimestamp"):
                busy.append(f"namespace {o.name(ns)} terminating on {name}")
        for crd in server.list(CRDS):
            conditions = {
                c.get("type"): c.get("status")
                for c in (crd.get("status") or {}).get("conditions") or []
                if isinstance(c, dict)
            }
            if o.metadata(crd).get("deletionTimestamp"):
                busy.append(f"CRD {o.name(crd)} being deleted on {name}")
            elif (
                conditions.get("Established") != "True"
                and conditions.get("NamesAccepted") != "False"
            ):
                busy.append(f"CRD {o.name(crd)} not established on {name}")
    return busy


def wait_quiet(
    k: KonnectorProcess,
    timeout: float,
    clusters_busy: Callable[[], list[str]] = lambda: [],
) -> str:
    """'' once the konnector's queue has been quiet for QUIET_SECONDS (and `clusters_busy`
    reports nothing), else what is pending."""
    deadline = time.monotonic() + timeout
    wall_start = time.time()
    quiet_since: float | None = None
    activity: tuple[float, float] | None = None
    first: QueueState | None = None
    state: QueueState | None = None
    while True:
        now = time.monotonic()
        if not k.alive():
            return f"the konnector is not running ({k.describe()})"
        try:
            state = QueueState.read(k)
        except RuntimeError as err:
            return str(err)
        first = first or state
        busy = state.busy or clusters_busy()
        if busy:
            quiet_since = None
        elif quiet_since is None or state.activity != activity:
            quiet_since = now
        elif now - quiet_since >= QUIET_SECONDS:
            return ""
        activity = state.activity
        if now > deadline:
            pending = busy or ["queue empty but still working"]
            handled = k.keys_handled(max(wall_start, time.time() - 10.0))
            return (
                f"not settled within {timeout:g}s: {'; '.join(pending)}; during the wait "
                f"{state.reconciles - first.reconciles:g} reconciles, "
                f"{state.adds - first.adds:g} queue adds"
                + (f"; keys handled in the last 10s: {handled}" if handled else "")
            )
        time.sleep(POLL)


# -- a scenario on real clusters ------------------------------------------------------------------


@attrs.define
class StepRun:
    step: Step
    outcome: str = "not run"
    detail: str = ""
    seconds: float = 0.0


class RealScenario:
    """Fresh clusters, setup, the konnector process, the steps; `close()` stops everything."""

    def __init__(self, sc: Scenario, workdir: Path, *, bin_dir: Path | None = None) -> None:
        self.sc = sc
        self.workdir = workdir
        self.bin_dir = bin_dir
        self.clusters: Clusters | None = None
        self.servers: dict[str, RealServer] = {}
        self.endpoints: dict[str, Endpoint] = {}
        # Any: kbsim.scenario's helpers are typed for a kbsim World; this is the slice they use.
        self.world: Any = RealWorld({})
        self.konnector: KonnectorProcess | None = None
        self.steps = [StepRun(s) for s in sc.steps]
        self.credit_until = 0.0
        self.timings: dict[str, float] = {}

    # -- lifecycle

    def __enter__(self) -> RealScenario:
        try:
            self.start()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.close(failed=exc_type is not None)

    def start(self) -> None:
        started = time.monotonic()
        self.clusters = start_clusters(list(self.sc.clusters), bin_dir=self.bin_dir)
        self.timings["clusters"] = time.monotonic() - started
        for name, cluster in self.clusters.items():
            self.servers[name] = RealServer(
                name, KubeClient.from_kubeconfig_file(cluster.kubeconfig)
            )
            self.endpoints[name] = endpoint_of(cluster)
        self.world = RealWorld(self.servers)
        started = time.monotonic()
        self._install_core()
        for line, where, obj in self.sc.setup:
            try:
                self._write_retrying("apply", where, translate_manifest(obj, self.endpoints))
            except ApiError as err:
                raise ScenarioError(
                    f"{self.sc.path}:{line}: setup failed on real cluster {where}: {err}"
                ) from err
        self.timings["setup"] = time.monotonic() - started
        started = time.monotonic()
        kc = self.clusters[self.sc.konnector_cluster].kubeconfig
        self.konnector = KonnectorProcess(kc, self.sc.konnector_namespace, self.workdir)
        self.konnector.start()
        self.timings["konnector ready"] = time.monotonic() - started

    def _install_core(self) -> None:
        server = self.servers[self.sc.konnector_cluster]
        kinds = []
        for path in sorted(CRD_DIR.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            server.create(CRDS, crd)
            group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
            kinds.append((f"{group}/{version}", crd["spec"]["names"]["kind"]))
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.sc.konnector_namespace},
        }
        try:
            server.create(NAMESPACES, namespace)
        except ApiError as err:
            if not err.is_already_exists:
                raise
        for api_version, kind in kinds:
            self._retry(functools.partial(server.kind_to_gvr, api_version, kind), SETUP_TIMEOUT)

    @staticmethod
    def _retry(fn: Callable[[], Any], timeout: float, *, any_404: bool = True) -> Any:
        """`fn()`, retried while the kind is unknown (or any 404 if `any_404`) until `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except ApiError as err:
                retry = isinstance(err, UnknownKindError) or (any_404 and err.is_not_found)
                if not retry or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def _write_retrying(self, verb: str, cluster: str, obj: Obj, *, any_404: bool = True) -> None:
        write = functools.partial(user_write, self.world, verb, cluster, obj)
        self._retry(write, SETUP_TIMEOUT, any_404=any_404)

    def close(self, *, failed: bool = False) -> None:
        """Kill the konnector, stop the clusters; on failure keep their logs in `workdir`."""
        if self.konnector is not None:
            self.konnector.kill()
        for server in self.servers.values():
            server.client.close()
        if self.clusters is not None:
            if failed:
                for name, cluster in self.clusters.items():
                    for proc in cluster.processes:
                        with contextlib.suppress(OSError):
                            dest = self.workdir / "clusters" / name
                            dest.mkdir(parents=True, exist_ok=True)
                            shutil.copy(proc.log_path, dest / proc.log_path.name)
            self.clusters.stop()
            self.clusters = None

    # -- steps

    def run(self) -> str:
        """Run every step; '' when all held, else the failure report."""
        for r in self.steps:
            started = time.monotonic()
            try:
                r.detail = self._step(r.step)
            except ApiError as err:
                r.detail = f"{err.code} {err.reason}: {err.message}"
            except (ValueError, RuntimeError) as err:
                r.detail = str(err)
            r.seconds = time.monotonic() - started
            r.outcome = "failed" if r.detail else "ok"
            if r.detail:
                return self.report(r)
        return ""

    def _step(self, s: Step) -> str:
        b = s.body
        if s.kind in USER_WRITES:
            obj = translate_manifest(b[s.kind], self.endpoints)
            # Only an unknown kind is waited for: a missing object fails, as in kbsim.
            self._write_retrying(s.kind, b["cluster"], obj, any_404=False)
            return ""
        if s.kind == "fault":
            return "fault steps cannot run on real clusters"
        if s.kind == "advance":
            seconds = parse_duration(b["advance"])
            self.credit_until = max(self.credit_until, time.monotonic() + seconds)
            return ""
        if s.kind == "settle":
            assert self.konnector is not None
            timeout = parse_duration((b.get("settle") or {}).get("timeout", "60s"))
            # An `advance` before it is real time a real konnector needs (its 30 s resync picks
            # up what no watch tells it), so the settle may take that long on top.
            timeout += max(0.0, self.credit_until - time.monotonic())
            return wait_quiet(self.konnector, timeout, lambda: controllers_busy(self.servers))
        if s.kind == "quiet":
            return self.quiet(b["quiet"])
        return self.expect(b["expect"])

    def quiet(self, q: dict[str, Any]) -> str:
        """kbsim's `quiet` on real servers: their own write counts of the resource over a
        window of `for`, at most QUIET_STEP_SECONDS (longer than the konnector's 30 s resync, so a
        write loop or a write per resync shows up; nothing else writes these resources)."""
        real = self.clusters
        assert real is not None
        names = [q["cluster"]] if q.get("cluster") else list(real)

        def without_subresource(key: str) -> str:  # "widgets/status.example.org"
            resource, slash, rest = key.partition("/")
            group = rest.partition(".")[2] if slash else ""
            return f"{resource}.{group}" if group else (resource if slash else key)

        def count() -> float:
            return sum(
                n
                for name in names
                for key, n in real[name].write_requests().items()
                if not q.get("resource") or without_subresource(key) == q["resource"]
            )

        before = count()
        time.sleep(min(parse_duration(q["for"]), QUIET_STEP_SECONDS))
        written = count() - before
        limit = q.get("writes_at_most", 0)
        if written <= limit:
            return ""
        return f"{written:g} writes of {q.get('resource') or 'anything'}, at most {limit} allowed"

    def expect(self, e: dict[str, Any]) -> str:
        start = time.monotonic()
        deadline = max(start, self.credit_until) + EXPECT_TIMEOUT
        while True:
            why = unmet_expectation(self.world, e)
            if not why:
                return ""
            if time.monotonic() > deadline:
                return f"{why} (still after {time.monotonic() - start:.1f}s)"
            time.sleep(POLL)

    # -- reporting

    def report(self, failed: StepRun) -> str:
        assert self.konnector is not None
        s = failed.step
        lines = [
            f"scenario {self.sc.name} ({self.sc.path.relative_to(REPO_ROOT)}) failed on real "
            f"clusters at step {s.index} (line {s.line}): {s.describe()}",
            f"  why: {failed.detail}",
            "steps:",
        ]
        for r in self.steps:
            mark = {"ok": "ok", "failed": "FAILED", "not run": "not run"}[r.outcome]
            lines.append(
                f"  {r.step.index:3d}  line {r.step.line:<4d} "
                f"{r.step.describe():<58} {mark} ({r.seconds:.1f}s)"
            )
        lines.append(f"konnector metrics: {self.konnector.write_counters()}")
        lines.append(
            f"konnector ({self.konnector.describe()}), last {LOG_TAIL_LINES} lines of "
            f"{self.konnector.log_path}:"
        )
        lines.append(self.konnector.tail(LOG_TAIL_LINES))
        return "\n".join(lines)


@contextlib.contextmanager
def real_scenario(
    sc: Scenario, workdir: Path, *, bin_dir: Path | None = None
) -> Iterator[RealScenario]:
    run = RealScenario(sc, workdir, bin_dir=bin_dir)
    with run:
        yield run


def lease_renew_times(server: RealServer, namespace: str = "kube-bind") -> dict[str, str]:
    """name -> spec.renewTime of the Leases in the provider's heartbeat namespace."""
    try:
        leases = server.list(LEASES, namespace)
    except ApiError as err:
        if err.is_not_found:
            return {}
        raise
    return {o.name(lease): str((lease.get("spec") or {}).get("renewTime")) for lease in leases}
