"""Real Kubernetes control planes for tests: etcd + kube-apiserver + kube-controller-manager.

The machines have no Docker, so the tests run the upstream binaries directly, built from
source by ``hack/k8s/build.sh`` (see ``hack/k8s/README.md``). Each cluster is three
processes on 127.0.0.1 with free ports and its own directory::

    <base>/<name>/pki/          CA, serving cert, client certs, service-account key
    <base>/<name>/etcd/         etcd data (kept across an apiserver restart)
    <base>/<name>/*.log         one log per process
    <base>/<name>/kubeconfig    admin (system:masters), inline certificate data

Every cluster has its own CA, so a client certificate minted for one cluster is rejected
by the others, as with real clusters. kube-controller-manager runs only the namespace,
garbage-collector and ServiceAccount-token controllers: enough for namespace deletion,
ownerReference cascades (which a bare apiserver, as envtest, never completes) and the token
Secrets a provider's issuer mints.

Processes run in their own sessions, so one ``killpg`` stops a process with all its
children; they are stopped on ``Clusters.stop()``, at interpreter exit, on SIGTERM/SIGHUP,
and (Linux) by the kernel when the Python thread that started them dies, so an interrupted
or killed test run leaves nothing behind.

Command line (used by ``make clusters``)::

    python -m tests.harness.clusters up [--dir DIR] [--background] [NAME ...]
    python -m tests.harness.clusters down [--dir DIR]
"""

from __future__ import annotations

import argparse
import atexit
import base64
import collections
import contextlib
import ctypes
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "k8s" / "build.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
DEFAULT_NAMES = ("provider", "consumer")
# Start-up of several clusters at once on 2 cores takes 10-30 s; leave ample headroom.
DEFAULT_TIMEOUT = 180.0
STOP_GRACE = 10.0
LOG_TAIL_LINES = 40


WRITES = frozenset({"POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"})
"""`apiserver_request_total` verbs that change state (APPLY is a server-side apply patch)."""


class HarnessError(RuntimeError):
    """A real server could not be built, started or restarted; the message carries log tails."""


class ClusterError(HarnessError):
    """A cluster could not be built, started or restarted; the message carries log tails."""


# --------------------------------------------------------------------------- binaries


def build_binaries() -> Path:
    """Run hack/k8s/build.sh (a no-op when built) and return the binary directory."""
    return run_build_script(BUILD_SCRIPT, BINARIES, "the Kubernetes test binaries", ClusterError)


def run_build_script(
    script: Path, binaries: Sequence[str], what: str, error: type[HarnessError]
) -> Path:
    """Run one of the hack/*/build.sh scripts (a no-op when built); return its binary directory.

    The script prints progress on stderr, passed through live (a cold build takes many
    minutes), and the directory as its last stdout line. On failure the ``error`` carries
    the end of that progress output, so the reason is in the test report.
    """
    name = script.relative_to(REPO_ROOT)
    if shutil.which("bash") is None:
        raise error(f"bash is required to run {name}")
    proc = subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None and proc.stdout is not None
    progress: collections.deque[str] = collections.deque(maxlen=25)
    for line in proc.stderr:
        sys.stderr.write(line)
        sys.stderr.flush()
        progress.append(line)
    lines = proc.stdout.read().strip().splitlines()
    if proc.wait() != 0 or not lines:
        raise error(
            f"building {what} failed ({name} exit {proc.returncode}; it needs Go and the Go "
            f"module proxy):\n" + "".join(progress)
        )
    bin_dir = Path(lines[-1])
    missing = [b for b in binaries if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise error(f"{name} reported {bin_dir} but {missing} are missing")
    return bin_dir


# --------------------------------------------------------------------------- processes

_LIVE: set[Process] = set()
_LIVE_LOCK = threading.Lock()
_PREVIOUS_HANDLERS: dict[int, Any] = {}


def _set_parent_death_signal() -> None:
    """In the child, before exec: ask Linux to SIGKILL us when our parent thread dies.

    This is the last line of defence when the test process is SIGKILLed (no atexit,
    no signal handler runs); without it etcd and the apiservers would keep running.
    """
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class Process:
    """One long-running child process with its own log file and process group."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        _install_cleanup_handlers()
        # Append, so the log of a restarted process keeps what happened before the restart.
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if sys.platform == "linux" else None,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds (at once if 0).

        Signals go to the group only while its leader is unreaped: afterwards the id could
        in principle belong to someone else's process.
        """
        popen = self.popen
        if popen is None:
            return
        first = signal.SIGTERM if grace > 0 else signal.SIGKILL
        for sig, wait in ((first, grace), (signal.SIGKILL, STOP_GRACE)):
            if popen.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(wait)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def describe_exit(self) -> str:
        if self.popen is None:
            return f"{self.name} not started"
        rc = self.popen.poll()
        return f"{self.name} running" if rc is None else f"{self.name} exited with status {rc}"


def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    # Apiservers and controller-managers first, etcd last, as a clean shutdown would.
    for proc in sorted(live, key=lambda p: p.name.startswith("etcd")):
        proc.stop(grace=3.0)


def _on_signal(signum: int, frame: Any) -> None:
    _stop_all()
    previous = _PREVIOUS_HANDLERS.get(signum)
    if callable(previous):
        previous(signum, frame)
        return
    # Default disposition: die from the same signal, so the exit status stays honest.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_handlers_installed = False


def _install_cleanup_handlers() -> None:
    """atexit always; SIGTERM/SIGHUP only from the main thread and if not ignored."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous = signal.getsignal(sig)
        if previous is signal.SIG_IGN:  # e.g. under nohup: keep ignoring it
            continue
        _PREVIOUS_HANDLERS[sig] = previous
        signal.signal(sig, _on_signal)


# --------------------------------------------------------------------------- PKI (openssl CLI)

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
[dn]
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {sans}
"""
# The apiserver's first service IP (10.0.0.1 for 10.0.0.0/24) and in-cluster names, as
# kube-apiserver's own self-signed certificate would carry them.
_SERVER_SANS = (
    "IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,"
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
)
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def _subject(common_name: str, organizations: Sequence[str] = ()) -> str:
    """An openssl -subj string; Kubernetes reads CN as the user and each O as a group."""

    def esc(value: str) -> str:
        for ch in "\\/+=":
            value = value.replace(ch, "\\" + ch)
        return value

    return "".join(f"/O={esc(o)}" for o in organizations) + f"/CN={esc(common_name)}"


class CertificateAuthority:
    """An ECDSA P-256 CA in ``directory`` (ca.crt, ca.key) that signs serving and client certs."""

    def __init__(self, directory: Path, common_name: str) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        self._config = self.dir / "openssl.cnf"
        self._config.write_text(_OPENSSL_CONFIG.format(sans=_SERVER_SANS))
        self._lock = threading.Lock()
        _openssl(
            "req", "-x509", "-new", *_EC, "-keyout", str(self.key), "-out", str(self.cert),
            "-days", "7", "-subj", _subject(common_name), "-config", str(self._config),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            cwd=self.dir,
        )  # fmt: skip

    def issue(
        self,
        stem: str,
        common_name: str,
        organizations: Sequence[str] = (),
        *,
        server: bool = False,
    ) -> tuple[Path, Path]:
        """Write ``<stem>.crt``/``<stem>.key`` signed by this CA; returns their paths."""
        crt, key, csr = (self.dir / f"{stem}{ext}" for ext in (".crt", ".key", ".csr"))
        with self._lock:
            _openssl(
                "req", "-new", *_EC, "-keyout", str(key), "-out", str(csr),
                "-subj", _subject(common_name, organizations), "-config", str(self._config),
                cwd=self.dir,
            )  # fmt: skip
            # A random serial instead of a serial file: no shared state between issues.
            _openssl(
                "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                "-set_serial", f"0x{secrets.token_hex(16)}", "-days", "7",
                "-extfile", str(self._config), "-extensions", "server" if server else "client",
                "-out", str(crt),
                cwd=self.dir,
            )  # fmt: skip
            csr.unlink()
        return crt, key


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_dict(
    cluster_name: str, server: str, ca_file: Path, cert_file: Path, key_file: Path, user: str
) -> dict[str, Any]:
    """A kubeconfig with inline data only (kube-bind refuses file paths in kubeconfigs)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_file)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_file),
                    "client-key-data": _b64(key_file),
                },
            }
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": cluster_name,
    }


# --------------------------------------------------------------------------- clusters


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports; all sockets stay open until every port is picked."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_ok(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, http.client.HTTPException):  # URLError and SSLError are OSErrors
        return False


class Cluster:
    """One control plane. Use :attr:`kubeconfig` (admin) or :meth:`mint_kubeconfig`."""

    def __init__(
        self,
        name: str,
        directory: Path,
        bin_dir: Path,
        audit_policy: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.dir = directory
        self.bin_dir = bin_dir
        self.audit_policy = audit_policy
        """An audit.k8s.io Policy: the apiserver logs what it selects to `audit_log`."""
        self.audit_log = self.dir / "audit.log"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.etcd_port, self.etcd_peer_port, self.port, self.kcm_port = free_ports(4)
        self.url = f"https://127.0.0.1:{self.port}"
        self.startup_seconds = 0.0

        self.ca = CertificateAuthority(self.dir / "pki", f"kbind-test-{name}-ca")
        self.serving_cert, self.serving_key = self.ca.issue("apiserver", name, server=True)
        self.sa_key = self.dir / "pki" / "sa.key"
        # Signs and verifies service-account tokens (TokenRequest works without a controller).
        sa_args = ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(self.sa_key)]
        _openssl(*sa_args, cwd=self.dir)
        # The admin kubeconfig also at a short, predictable path for people (make clusters).
        self.kubeconfig = self.dir / "kubeconfig"
        shutil.copyfile(self.mint_kubeconfig("kbind-admin", ("system:masters",)), self.kubeconfig)
        # A distinct identity makes the controller-manager's writes recognisable in
        # managedFields and audit; system:masters because it deletes arbitrary CRs.
        self._kcm_kubeconfig = self.mint_kubeconfig(
            "system:kube-controller-manager", ("system:masters",)
        )
        self._admin_ssl = ssl.create_default_context(cafile=str(self.ca.cert))
        self._admin_ssl.load_cert_chain(*self._user_cert_paths("kbind-admin"))

        self.etcd = Process("etcd", self._etcd_argv(), self.dir / "etcd.log", self.dir)
        argv = self._apiserver_argv()
        if audit_policy is not None:
            policy = self.dir / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(dict(audit_policy)))
            argv += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-mode=blocking",  # every request is in the log when it is answered
            ]
        self.apiserver = Process("kube-apiserver", argv, self.dir / "kube-apiserver.log", self.dir)
        self.controller_manager = Process(
            "kube-controller-manager",
            self._kcm_argv(),
            self.dir / "kube-controller-manager.log",
            self.dir,
        )

    def __repr__(self) -> str:
        return f"<Cluster {self.name} {self.url} dir={self.dir}>"

    # ---- command lines

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        return [
            str(self.bin_dir / "etcd"),
            f"--name={self.name}",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}",
            # Test data is disposable; skipping fsync makes etcd much faster (envtest does too).
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_argv(self) -> list[str]:
        pki = self.dir / "pki"
        return [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            # Required without a default route: it cannot guess a host address otherwise.
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={self.serving_cert}",
            f"--tls-private-key-file={self.serving_key}",
            f"--client-ca-file={self.ca.cert}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.sa_key}",
            f"--service-account-signing-key-file={self.sa_key}",
            # No serviceaccount controller runs, so namespaces have no "default" SA; the
            # admission plugin would then reject every Pod (envtest disables it too).
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            # Do not keep trying to publish 127.0.0.1 as the kubernetes Service endpoint.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            # Without a bound, graceful shutdown waits for the controller-manager's watches
            # to end, which they never do: a restart would hang until SIGKILL.
            "--shutdown-watch-termination-grace-period=2s",
        ]

    def _kcm_argv(self) -> list[str]:
        kc = str(self._kcm_kubeconfig)
        return [
            str(self.bin_dir / "kube-controller-manager"),
            f"--kubeconfig={kc}",
            # No --authentication/--authorization-kubeconfig: its own HTTPS port only serves
            # /healthz here (always allowed), and delegated authn would log an error every
            # second because this apiserver has no front-proxy (requestheader) CA.
            # The token controller fills the long-lived ServiceAccount token Secrets a
            # provider's issuer mints (kbcore.service.issuer).
            "--controllers=namespace-controller,garbage-collector-controller,"
            "serviceaccount-token-controller",
            f"--service-account-private-key-file={self.sa_key}",
            f"--root-ca-file={self.ca.cert}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.kcm_port}",
            f"--cert-dir={self.dir / 'pki' / 'kcm'}",
        ]

    # ---- readiness

    def etcd_healthy(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.etcd_port}/health")

    def apiserver_ready(self) -> bool:
        # /readyz covers the post-start hooks (RBAC bootstrap, CRD controllers...); the
        # system namespaces are created asynchronously right after, so wait for them too.
        return http_ok(f"{self.url}/readyz", self._admin_ssl) and http_ok(
            f"{self.url}/api/v1/namespaces/kube-system", self._admin_ssl
        )

    def controller_manager_healthy(self) -> bool:
        # Its serving certificate is self-signed (generated in --cert-dir); it is only a
        # liveness probe on loopback, so verification buys nothing here.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return http_ok(f"https://127.0.0.1:{self.kcm_port}/healthz", insecure)

    # ---- users

    @staticmethod
    def _user_stem(user: str) -> str:
        return "user-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in user)

    def _user_cert_paths(self, user: str) -> tuple[Path, Path]:
        stem = self.dir / "pki" / self._user_stem(user)
        return stem.with_suffix(".crt"), stem.with_suffix(".key")

    def mint_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """Mint a client certificate (CN=user, O=groups) and write a kubeconfig for it.

        The user has no permissions beyond what RBAC grants ``user``/``groups`` (plus the
        defaults for system:authenticated); the test creates the bindings it needs.
        Returns ``<cluster dir>/users/<user>.kubeconfig`` (certificate data inline).
        """
        stem = self._user_stem(user)
        crt, key = self.ca.issue(stem, user, groups)
        users_dir = self.dir / "users"
        users_dir.mkdir(exist_ok=True)
        path = users_dir / f"{stem}.kubeconfig"
        config = kubeconfig_dict(self.name, self.url, self.ca.cert, crt, key, user)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def kubeconfig_text(self) -> str:
        return self.kubeconfig.read_text()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        accept: str = "application/json",
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One admin HTTP request with the standard library; returns (status, decoded JSON).

        For setup and capture scripts that must not depend on a client library's
        interpretation of the API. Error statuses are returned, not raised.
        """
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._admin_ssl, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def write_requests(self) -> dict[str, float]:
        """Write requests this apiserver has served so far, per resource ("widgets.example.org",
        "leases.coordination.k8s.io", "namespaces"), from its own `apiserver_request_total`.

        The server's count, independent of what any client believes it sent."""
        from prometheus_client.parser import text_string_to_metric_families

        status, text = self.request("GET", "/metrics", accept="text/plain")
        if status != 200 or not isinstance(text, str):
            raise ClusterError(f"{self.name}: GET /metrics answered {status}")
        counts: dict[str, float] = collections.defaultdict(float)
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                labels = sample.labels
                if sample.name != "apiserver_request_total" or labels.get("verb") not in WRITES:
                    continue
                group = labels.get("group", "")
                resource = labels.get("resource", "")
                if labels.get("subresource"):
                    resource += "/" + labels["subresource"]
                counts[f"{resource}.{group}" if group else resource] += sample.value
        return dict(counts)

    # ---- lifecycle

    @property
    def processes(self) -> tuple[Process, ...]:
        return (self.etcd, self.apiserver, self.controller_manager)

    def restart_apiserver(
        self, downtime: float = 0.0, *, crash: bool = False, timeout: float = DEFAULT_TIMEOUT
    ) -> float:
        """Stop kube-apiserver, wait ``downtime`` s, start it again on the same port.

        A graceful stop (SIGTERM) by default; ``crash=True`` SIGKILLs it instead, so open
        connections break without a goodbye. etcd (and therefore every object, UID and
        resourceVersion) and the controller-manager keep running. Returns the seconds from
        the new start until the apiserver was ready again.
        """
        self.apiserver.stop(grace=0.0 if crash else STOP_GRACE)
        time.sleep(downtime)
        started = time.monotonic()
        self.apiserver.start()
        _wait_all({self.name: self.apiserver_ready}, {self.name: self}, "kube-apiserver", timeout)
        return time.monotonic() - started

    def stop(self) -> None:
        for proc in (self.controller_manager, self.apiserver, self.etcd):
            proc.stop()

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for proc in self.processes:
            parts.append(
                f"----- {self.name}/{proc.name} ({proc.describe_exit()}), "
                f"last {lines} lines of {proc.log_path}"
            )
            parts.append(proc.tail(lines))
        return "\n".join(parts)


def _wait_all(
    checks: Mapping[str, Callable[[], bool]],
    clusters: Mapping[str, Cluster],
    what: str,
    timeout: float,
) -> None:
    """Poll every check until all pass; fail fast (with logs) if a process exits."""
    deadline = time.monotonic() + timeout
    pending = dict(checks)
    while pending:
        for name in list(pending):
            cluster = clusters[name]
            dead = [p for p in cluster.processes if p.popen is not None and not p.alive()]
            if dead:
                raise ClusterError(
                    f"cluster {name}: {dead[0].describe_exit()} during start-up\n"
                    + cluster.log_tails()
                )
            if pending[name]():
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{what} not ready after {timeout:.0f}s in {sorted(pending)}\n"
                + "\n".join(clusters[n].log_tails() for n in sorted(pending))
            )
        time.sleep(0.2)


class Clusters(Mapping[str, Cluster]):
    """Started clusters by name; ``clusters["provider"]`` or ``clusters.provider``."""

    def __init__(self, clusters: dict[str, Cluster], base_dir: Path, owns_dir: bool) -> None:
        self._clusters = clusters
        self.base_dir = base_dir
        self._owns_dir = owns_dir
        self.startup_seconds = 0.0

    def __getitem__(self, name: str) -> Cluster:
        return self._clusters[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._clusters)

    def __len__(self) -> int:
        return len(self._clusters)

    def __getattr__(self, name: str) -> Cluster:
        # Only reached for names that are not real attributes. "_..." never names a cluster,
        # and must not recurse while the object is half-built (copy, pickle).
        if not name.startswith("_") and name in self._clusters:
            return self._clusters[name]
        raise AttributeError(name)

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(c.log_tails(lines) for c in self._clusters.values())

    def rss_kib(self) -> dict[str, int]:
        """Resident set size per process (``ps -o rss``), e.g. {'provider/kube-apiserver': ...}."""
        out: dict[str, int] = {}
        for cluster in self._clusters.values():
            for proc in cluster.processes:
                if proc.alive():
                    res = subprocess.run(
                        ["ps", "-o", "rss=", "-p", str(proc.pid)],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if res.stdout.strip():
                        out[f"{cluster.name}/{proc.name}"] = int(res.stdout.split()[0])
        return out

    def stop(self, *, keep_dir: bool = False) -> None:
        """Stop every process; remove the directory unless asked to keep it (logs)."""
        for cluster in self._clusters.values():
            cluster.stop()
        if self._owns_dir and not keep_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Clusters:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.stop(keep_dir=exc_type is not None)


_TMP_PREFIX = "kbind-clusters-"
_OWNER_FILE = "owner.pid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_dirs() -> None:
    """Remove temporary cluster dirs left by runs that died (or kept logs after failures).

    Each holds about 250 MB of etcd data for two clusters, so they must not pile up.
    Only dirs whose owning process is gone are removed, so concurrent runs are safe.
    """
    for old in Path(tempfile.gettempdir()).glob(f"{_TMP_PREFIX}*"):
        try:
            owner = int((old / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            # No owner file yet: maybe a run that is just starting; only old ones are stale.
            stale = time.time() - old.stat().st_mtime > 600
        else:
            stale = not _pid_alive(owner)
        if stale:
            shutil.rmtree(old, ignore_errors=True)


def start_clusters(
    names: Sequence[str] = DEFAULT_NAMES,
    *,
    bin_dir: Path | None = None,
    base_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    audit_policy: Mapping[str, Any] | None = None,
) -> Clusters:
    """Start one control plane per name and wait until all are usable.

    The three phases (all etcds, then all apiservers, then all controller-managers) each
    run for every cluster at once, so N clusters start in about the time of one. All
    processes are started from the calling thread (see :func:`_set_parent_death_signal`).
    On failure everything started is stopped, the directory is kept (until a later run
    sweeps it), and the error carries the log tails.
    """
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"cluster names must be unique and non-empty: {names}")
    binaries = bin_dir or build_binaries()

    def start() -> Clusters:
        return _start_clusters_once(names, binaries, base_dir, timeout, audit_policy)

    # A retry needs a new directory; a directory the caller chose is not ours to replace.
    return retry_port_races(start) if base_dir is None else start()


PORT_RACE_ATTEMPTS = 3


def retry_port_races(start: Callable[[], T]) -> T:
    """``start()``, again (up to PORT_RACE_ATTEMPTS times) when a port was taken meanwhile.

    A free port is chosen before the process binds it, so another process on the machine may
    take it first; ``start`` must pick new ports (and a new directory) each time.
    """
    for attempt in range(PORT_RACE_ATTEMPTS):
        try:
            return start()
        except HarnessError as err:
            # Go says "address already in use", redis-server "Address already in use".
            taken = "address already in use" in str(err).lower()
            if not taken or attempt == PORT_RACE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _start_clusters_once(
    names: Sequence[str],
    bin_dir: Path,
    base_dir: Path | None,
    timeout: float,
    audit_policy: Mapping[str, Any] | None,
) -> Clusters:
    owns_dir = base_dir is None
    if base_dir is None:
        _sweep_stale_dirs()
        base = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX))
        (base / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    else:
        base = base_dir
        base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    clusters = {name: Cluster(name, base / name, bin_dir, audit_policy) for name in names}
    result = Clusters(clusters, base, owns_dir)
    try:
        for phase, ready in (
            ("etcd", Cluster.etcd_healthy),
            ("kube-apiserver", Cluster.apiserver_ready),
            ("kube-controller-manager", Cluster.controller_manager_healthy),
        ):
            for cluster in clusters.values():
                next(p for p in cluster.processes if p.name == phase).start()
            checks = {n: (lambda c=c, ready=ready: ready(c)) for n, c in clusters.items()}
            _wait_all(checks, clusters, phase, timeout)
    except BaseException:
        result.stop(keep_dir=True)
        raise
    result.startup_seconds = time.monotonic() - started
    for cluster in clusters.values():
        cluster.startup_seconds = result.startup_seconds
    return result


def mint_kubeconfig(cluster: Cluster, user: str, groups: Sequence[str] = ()) -> Path:
    """Kubeconfig for a restricted ``user`` in ``groups`` on ``cluster`` (apply RBAC yourself)."""
    return cluster.mint_kubeconfig(user, groups)


def api_client(kubeconfig: Path) -> Any:
    """A ``kubernetes.client.ApiClient`` for a kubeconfig file."""
    from kubernetes import config  # imported lazily: only tests that talk to a cluster need it

    return config.new_client_from_config(config_file=str(kubeconfig))


# --------------------------------------------------------------------------- CLI (make clusters)

# Outside the work tree (nothing to ignore in git), stable so kubeconfig paths are predictable.
_CACHE_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
_DEFAULT_CLI_DIR = _CACHE_HOME / "kube-bind" / "clusters"


def _cli_up(args: argparse.Namespace) -> int:
    base: Path = args.dir
    pidfile, readyfile, summary = base / "harness.pid", base / "ready.json", base / "ready.txt"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text())
        if pid != os.getpid() and _pid_alive(pid):
            print(f"clusters already running (pid {pid}); stop them first: {args.down_hint}",
                  file=sys.stderr)  # fmt: skip
            return 1
    if args.background:
        # Re-run ourselves detached; the child owns the processes and stays alive until
        # SIGTERM ("down"). Wait here until it reports ready (or dies) and print the result.
        bin_dir = build_binaries()  # progress visible on our stderr, before detaching
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        log = (base / "harness.log").open("ab")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.harness.clusters", "up", "--dir", str(base),
             "--bin-dir", str(bin_dir), "--down-hint", args.down_hint, *args.names],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + DEFAULT_TIMEOUT + 30
        while not readyfile.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                print((base / "harness.log").read_text(errors="replace")[-6000:], file=sys.stderr)
                print("clusters failed to start", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
                return 1
            time.sleep(0.3)
        sys.stdout.write(summary.read_text())
        return 0

    if args.bin_dir is None:  # run directly, not as the detached child of --background
        shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(f"{os.getpid()}\n")
    stopping = threading.Event()
    # "down" sends SIGTERM: leave the wait loop and stop everything in the finally block.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stopping.set())
    clusters: Clusters | None = None
    try:
        clusters = start_clusters(args.names, bin_dir=args.bin_dir, base_dir=base)
        lines = [f"clusters up in {clusters.startup_seconds:.1f}s (logs and data in {base}):"]
        for c in clusters.values():
            lines.append(f"  {c.name:<10} {c.url}   export KUBECONFIG={c.kubeconfig}")
        lines.append(f"stop them with: {args.down_hint}")
        summary.write_text("\n".join(lines) + "\n")
        readyfile.write_text(json.dumps({n: str(c.kubeconfig) for n, c in clusters.items()}))
        print(summary.read_text(), flush=True)
        while not stopping.wait(1.0):
            for c in clusters.values():
                dead = [p for p in c.processes if not p.alive()]
                # The SIGTERM handler stops the processes before it sets the event.
                if dead and not stopping.is_set():
                    print(f"{c.name}: {dead[0].describe_exit()}\n{c.log_tails()}", flush=True)
                    return 1
        return 0
    finally:
        if clusters is not None:
            clusters.stop(keep_dir=True)  # etcd data and logs stay for a look afterwards
        for f in (pidfile, readyfile, summary):
            f.unlink(missing_ok=True)


def _cli_down(args: argparse.Namespace) -> int:
    pidfile = args.dir / "harness.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        print(f"no clusters running (no {pidfile})")
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pidfile.unlink(missing_ok=True)
            print(f"clusters stopped (logs kept in {args.dir})")
            return 0
        time.sleep(0.3)
    print(f"harness pid {pid} did not exit within 60s", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.clusters")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start clusters and keep them running until 'down'")
    up.add_argument("names", nargs="*", default=list(DEFAULT_NAMES))
    up.add_argument("--background", action="store_true", help="detach once ready")
    up.add_argument("--bin-dir", type=Path, help=argparse.SUPPRESS)
    up.add_argument(
        "--down-hint", default="python -m tests.harness.clusters down", help=argparse.SUPPRESS
    )
    down = sub.add_parser("down", help="stop clusters started with 'up'")
    for p in (up, down):
        p.add_argument("--dir", type=Path, default=_DEFAULT_CLI_DIR)
    args = parser.parse_args(argv)
    return _cli_up(args) if args.cmd == "up" else _cli_down(args)


if __name__ == "__main__":
    sys.exit(main())
