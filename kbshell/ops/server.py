"""Health probes and the HTTP server that exposes them and the metrics.

`Probes` holds named liveness and readiness checks; `OpsServer` serves them the way
controller-runtime and the kube components do: `/healthz` and `/livez` (liveness), `/readyz`
(readiness), each with `?verbose`, `?exclude=NAME` and `/<path>/NAME` for a single check, on the
health-probe address, and `/metrics` on the metrics address. Addresses are Go style (`:8081`,
`127.0.0.1:8081`, `[::1]:8081`); `0` (or empty) disables that listener, port 0 binds an
ephemeral port (see `health_port` / `metrics_port`). When both addresses are the same fixed
address, or the metrics address is None, one listener serves all paths. Any registry with
`render_for` (`Exposition`) is served: the konnector's `Metrics`, `kube-bind-backend`'s
`GatewayMetrics`.

The server is stdlib `ThreadingHTTPServer` in a daemon thread: a probe must never wait behind a
scrape, and the process must never wait for the server on exit.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import attrs


class Exposition(Protocol):
    """A metrics registry the server can expose (`kbshell.ops.metrics.Metrics` is one)."""

    def render_for(self, accept: str | None) -> tuple[bytes, str]: ...


Check = Callable[[], tuple[bool, str]]
"""A probe check: returns (ok, reason); the reason is shown when it fails."""

HEALTH_PATHS = ("/healthz", "/livez")
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"


@attrs.frozen
class CheckResult:
    name: str
    ok: bool
    reason: str


@attrs.frozen
class ProbeResult:
    """The outcome of one probe: every check that ran, in registration order."""

    probe: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def body(self, verbose: bool) -> str:
        """kube-style body: `ok` when passing; otherwise, or when verbose, one `[+]`/`[-]` line
        per check and a verdict line (reasons are shown: they carry no secrets here)."""
        if self.ok and not verbose:
            return "ok"
        lines = [
            f"[+]{c.name} ok" if c.ok else f"[-]{c.name} failed: {c.reason}" for c in self.checks
        ]
        lines.append(f"{self.probe} check {'passed' if self.ok else 'failed'}")
        return "\n".join(lines) + "\n"


def _run(name: str, check: Check) -> CheckResult:
    # A check that raises must fail the probe, not kill the request thread with a 500 and a
    # traceback on stderr.
    try:
        ok, reason = check()
    except Exception as exc:
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(name, bool(ok), reason or ("ok" if ok else "not ok"))


def _ping() -> tuple[bool, str]:
    return True, "ok"


class Probes:
    """Named liveness and readiness checks. Both start with `ping` (always passes), like the
    kube components, so an empty probe still answers."""

    def __init__(
        self,
        *,
        liveness: Mapping[str, Check] | None = None,
        readiness: Mapping[str, Check] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, Check] = {"ping": _ping, **(liveness or {})}
        self._ready: dict[str, Check] = {"ping": _ping, **(readiness or {})}

    def add_liveness(self, name: str, check: Check) -> None:
        with self._lock:
            self._live[name] = check

    def add_readiness(self, name: str, check: Check) -> None:
        with self._lock:
            self._ready[name] = check

    def liveness(self, exclude: frozenset[str] = frozenset()) -> ProbeResult:
        return self._probe("livez", self._live, exclude)

    def readiness(self, exclude: frozenset[str] = frozenset()) -> ProbeResult:
        return self._probe("readyz", self._ready, exclude)

    def names(self, probe: str) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._live if probe == "livez" else self._ready)

    def _probe(self, probe: str, checks: dict[str, Check], exclude: frozenset[str]) -> ProbeResult:
        with self._lock:
            items = [(n, c) for n, c in checks.items() if n not in exclude]
        # Checks run outside the lock: one slow check must not block registration or others.
        return ProbeResult(probe, tuple(_run(n, c) for n, c in items))


class Watchdog:
    """Liveness for worker threads: a worker marks itself busy around each item, and the check
    fails when one has been busy longer than `limit` seconds (wedged). Idle workers are fine;
    waiting on an empty queue is not being stuck."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._busy: dict[str, float] = {}

    def start(self, worker: str) -> None:
        with self._lock:
            self._busy[worker] = self._clock()

    def stop(self, worker: str) -> None:
        with self._lock:
            self._busy.pop(worker, None)

    @contextmanager
    def busy(self, worker: str) -> Iterator[None]:
        self.start(worker)
        try:
            yield
        finally:
            self.stop(worker)

    def started(self) -> dict[str, float]:
        """Busy workers and when they started (feeds `Metrics.queue_in_flight`)."""
        with self._lock:
            return dict(self._busy)

    def __call__(self) -> tuple[bool, str]:
        now = self._clock()
        stuck = sorted(w for w, t in self.started().items() if now - t > self._limit)
        if stuck:
            return False, f"workers busy for more than {self._limit:g}s: {', '.join(stuck)}"
        return True, "ok"


def ready_when_synced(
    unsynced: Callable[[], list[str]], leading: Callable[[], bool] | None = None
) -> Check:
    """The konnector's readiness: every cache synced. With leader election, a standby replica
    (`leading()` false) is ready whatever its caches (it keeps the control-plane caches warm
    for a fast takeover but does no work): kubelet must not restart it, and it still serves
    metrics. `unsynced` lists caches not yet synced."""

    def check() -> tuple[bool, str]:
        if leading is not None and not leading():
            return True, "standby (not the leader)"
        pending = sorted(unsynced())
        if pending:
            shown = ", ".join(pending[:5]) + (
                f" and {len(pending) - 5} more" if len(pending) > 5 else ""
            )
            return False, f"caches not synced: {shown}"
        return True, "ok"

    return check


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """Go-style bind address -> (host, port), or None when disabled ("0" or "").

    ":8081" binds every interface; "[::1]:8081" is IPv6. Raises ValueError on anything else.
    """
    address = address.strip()
    if address in ("", "0"):
        return None
    host, sep, port_s = address.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ValueError(f"bind address must be HOST:PORT, :PORT or 0, got {address!r}")
    port = int(port_s)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in bind address {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"IPv6 host must be in brackets: {address!r}")
    return host, port


class ListenError(OSError):
    """A listener could not be opened: what it serves, where, and the system's reason."""

    def __init__(self, serves: str, address: tuple[str, int], cause: OSError) -> None:
        host, port = address
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = cause.strerror or str(cause)
        super().__init__(f"cannot serve {serves} on {where}: {reason}")
        self.serves = serves


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Restarting the process must not fail on a port still in TIME_WAIT.
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    # Set per listener by OpsServer (a subclass per listener).
    probes: Probes | None = None
    metrics: Exposition | None = None
    # A stuck client must not hold a handler thread for ever.
    timeout = 10
    server_version = "konnector-ops"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = parse_qs(url.query, keep_blank_values=True)
        if self.metrics is not None and path == METRICS_PATH:
            body, ctype = self.metrics.render_for(self.headers.get("Accept"))
            self._reply(HTTPStatus.OK, body, ctype, head)
            return
        if self.probes is not None:
            for base, kind in (*((p, "livez") for p in HEALTH_PATHS), (READY_PATH, "readyz")):
                if path == base or path.startswith(base + "/"):
                    self._probe(kind, path[len(base) + 1 :], query, head)
                    return
        self._reply(HTTPStatus.NOT_FOUND, b"404 page not found\n", "text/plain", head)

    def _probe(self, kind: str, single: str, query: dict[str, list[str]], head: bool) -> None:
        assert self.probes is not None
        names = self.probes.names(kind)
        if single:
            if single not in names:
                self._reply(HTTPStatus.NOT_FOUND, b"404 page not found\n", "text/plain", head)
                return
            exclude = frozenset(n for n in names if n != single)
        else:
            exclude = frozenset(query.get("exclude", ()))
        result = (
            self.probes.liveness(exclude) if kind == "livez" else self.probes.readiness(exclude)
        )
        status = HTTPStatus.OK if result.ok else HTTPStatus.SERVICE_UNAVAILABLE
        body = result.body(verbose="verbose" in query).encode()
        self._reply(status, body, "text/plain; charset=utf-8", head)

    def _reply(self, status: HTTPStatus, body: bytes, ctype: str, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # kubelet probes every few seconds; access logs would drown the controller's own logs.
        pass


class OpsServer:
    """Serves probes on `health_address` and metrics on `metrics_address` until `shutdown()`.

    Listeners are bound in the constructor, so a port already in use fails at start-up, and the
    bound ports are known before `start()`. Without `metrics` no metrics listener is opened.
    A host-less address (":8081") binds every IPv4 interface; use "[::]:8081" for IPv6.
    """

    POLL_INTERVAL = 0.05  # how often serve_forever looks at the shutdown flag

    def __init__(
        self,
        *,
        probes: Probes,
        metrics: Exposition | None = None,
        health_address: str = ":8081",
        metrics_address: str | None = ":8085",
    ) -> None:
        """`metrics_address` None: the metrics on the probes' listener (also on port 0)."""
        health = parse_bind_address(health_address)
        shared = metrics is not None and metrics_address is None and health is not None
        scrape = (
            parse_bind_address(metrics_address)
            if metrics is not None and metrics_address is not None
            else None
        )
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.health_port: int | None = None
        self.metrics_port: int | None = None
        try:
            if shared or (health is not None and health == scrape and health[1] != 0):
                assert health is not None
                srv = self._bind(health, probes, metrics)
                self.health_port = self.metrics_port = srv.server_address[1]
            else:
                if health is not None:
                    self.health_port = self._bind(health, probes, None).server_address[1]
                if scrape is not None:
                    self.metrics_port = self._bind(scrape, None, metrics).server_address[1]
        except BaseException:
            self._close()
            raise

    def _bind(
        self, addr: tuple[str, int], probes: Probes | None, metrics: Exposition | None
    ) -> _Server:
        handler = type("OpsHandler", (_Handler,), {"probes": probes, "metrics": metrics})
        cls = _Server6 if ":" in addr[0] else _Server
        try:
            srv = cls(addr, handler)
        except OSError as err:
            serves = " and ".join(x for x, on in (("probes", probes), ("metrics", metrics)) if on)
            raise ListenError(serves, addr, err) from err
        self._servers.append(srv)
        return srv

    def start(self) -> OpsServer:
        for srv in self._servers:
            t = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": self.POLL_INTERVAL},
                name=f"ops-http-{srv.server_address[1]}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)
        return self

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting requests and close the sockets; returns within about POLL_INTERVAL
        (in-flight handler threads are daemons and are not waited for)."""
        if self._threads:
            for srv in self._servers:
                srv.shutdown()
            for t in self._threads:
                t.join(timeout)
            self._threads.clear()
        self._close()

    def _close(self) -> None:
        for srv in self._servers:
            srv.server_close()
        self._servers.clear()

    def __enter__(self) -> OpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
