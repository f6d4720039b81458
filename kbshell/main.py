"""The `konnector` command: wires the consumer client, the konnector, leader election, probes,
metrics and logs together, and stops gracefully on SIGTERM.

Exit status: 0 after a graceful stop, 1 when leadership was lost or the process could not run
(an address in use, no in-cluster service account), 2 for bad flags: a malformed bind address,
no consumer cluster given, or a consumer kubeconfig (`--kubeconfig`, else `$KUBECONFIG`) that
is missing or cannot be used; the message names the flag or file (and line and column for a
YAML error).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from typing import IO, Any

from kbcore import objects as o
from kbcore.runtime.worker import BACKSTOP_SECONDS
from kbshell.client import KubeClient
from kbshell.konnector import Konnector
from kbshell.kubeconfig_file import KubeconfigFileError, load_kubeconfig_file
from kbshell.leader import LeaderElector
from kbshell.ops import (
    ListenError,
    Metrics,
    OpsServer,
    Probes,
    configure_logging,
    parse_bind_address,
    ready_when_synced,
)

log = logging.getLogger("konnector")

STUCK_WORKER_SECONDS = 300.0
"""A worker busy with one key this long is wedged: /healthz fails and the kubelet restarts us."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="konnector",
        description="Bind APIs exported by provider clusters into this (consumer) cluster.",
    )
    p.add_argument("--kubeconfig", default=None, help="consumer kubeconfig (default: in-cluster)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    p.add_argument("--namespace", default="kube-bind", help="the konnector's namespace")
    p.add_argument(
        "--metrics-bind-address", default=":8085", type=_bind_address, help='"0" disables'
    )
    p.add_argument(
        "--health-probe-bind-address", default=":8081", type=_bind_address, help='"0" disables'
    )
    p.add_argument("--leader-elect", action="store_true")
    p.add_argument("--leader-election-id", default="konnector.kube-bind.io")
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error"))
    p.add_argument("--workers", type=int, default=8, help="concurrent reconciles")
    p.add_argument(
        "--resync-period",
        type=float,
        default=BACKSTOP_SECONDS,
        metavar="SECONDS",
        help="look at every synced object again this often, even without events "
        f"(default {BACKSTOP_SECONDS:g}, as upstream)",
    )
    p.add_argument(
        "--record",
        metavar="TRACE.jsonl",
        default=None,
        help="write what the konnector observed and planned, for `kbsim replay` "
        "(the trace holds the kubeconfig Secrets it read: it is created mode 0600)",
    )
    return p


def _bind_address(value: str) -> str:
    """An argparse type: the address as given, once `parse_bind_address` accepts it."""
    try:
        parse_bind_address(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (e.g. :8081, 127.0.0.1:8081, [::1]:8081)") from err
    return value


class UsageError(ValueError):
    """How the konnector was invoked cannot work; exit status 2."""


def _consumer_kubeconfig(args: argparse.Namespace) -> str | None:
    """The consumer kubeconfig file, checked (`load_kubeconfig_file`), or None in a Pod."""
    if args.kubeconfig:
        path, source = args.kubeconfig, "--kubeconfig"
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    elif os.environ.get("KUBECONFIG"):
        path, source = os.environ["KUBECONFIG"].split(os.pathsep)[0], "$KUBECONFIG"
    else:
        raise UsageError("no consumer cluster: pass --kubeconfig, set KUBECONFIG, or run in a Pod")
    try:
        load_kubeconfig_file(path)
    except KubeconfigFileError as err:
        raise UsageError(f"{source}: {err}") from err
    return str(path)


def _consumer_client(args: argparse.Namespace, kubeconfig: str) -> KubeClient:
    """A client from the checked kubeconfig file (its context must exist, and so on)."""
    try:
        return KubeClient.from_kubeconfig_file(kubeconfig, context=args.context)
    except Exception as err:  # the kubernetes loader raises its own types for bad content
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"cannot use the consumer kubeconfig {kubeconfig}: {first}") from err


class Recorder:
    """Appends one JSON line per record, from any thread."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file: IO[str] = os.fdopen(fd, "w")
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        try:
            line = o.canonical_json(record)  # at any depth (a status may nest 10,000 levels)
        except (TypeError, ValueError):
            line = json.dumps(record, sort_keys=True, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _version() -> str:
    try:
        return importlib.metadata.version("kube-bind")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print("konnector: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.resync_period < 1:
        print("konnector: --resync-period must be at least 1 second", file=sys.stderr)
        return 2
    try:
        kubeconfig = _consumer_kubeconfig(args)
        consumer = _consumer_client(args, kubeconfig) if kubeconfig is not None else None
    except UsageError as err:
        print(f"konnector: error: {err}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, args.log_level)
    if consumer is None:
        try:
            consumer = KubeClient.in_cluster()
        except Exception as err:  # the kubernetes loader raises its own types
            log.error("cannot use the in-cluster service account", extra={"error": err})
            return 1

    metrics = Metrics(controllers=("konnector",), version=_version())
    stop = threading.Event()
    lost = threading.Event()
    elector: LeaderElector | None = None

    def leadership_lost() -> None:
        lost.set()
        stop.set()

    if args.leader_elect:
        identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        elector = LeaderElector(
            consumer,
            args.namespace,
            args.leader_election_id,
            identity,
            on_lost=leadership_lost,
            on_change=metrics.leader,
        )
    else:
        metrics.leader(True)
    recorder = Recorder(args.record) if args.record else None
    konnector = Konnector(
        consumer,
        args.namespace,
        workers=args.workers,
        metrics=metrics,
        leading=elector.leading if elector else (lambda: True),
        recorder=recorder,
        resync_period=args.resync_period,
    )
    probes = Probes(
        liveness={"workers": lambda: _workers_ok(konnector)},
        readiness={
            "caches": ready_when_synced(konnector.unsynced, elector.leading if elector else None)
        },
    )
    try:
        server = OpsServer(
            probes=probes,
            metrics=metrics,
            health_address=args.health_probe_bind_address,
            metrics_address=args.metrics_bind_address,
        ).start()
    except ListenError as err:
        flag = (
            "--metrics-bind-address" if err.serves == "metrics" else ("--health-probe-bind-address")
        )
        log.error("cannot open a listener", extra={"error": err, "flag": flag})
        if recorder is not None:
            recorder.close()
        consumer.close()
        return 1

    def on_signal(signum: int, _frame: Any) -> None:
        log.info(
            "signal received: finishing in-flight work",
            extra={"signal": signal.Signals(signum).name},
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "konnector starting",
        extra={
            "namespace": args.namespace,
            "health": server.health_port,
            "metrics": server.metrics_port,
            "leaderElect": args.leader_elect,
        },
    )
    konnector.start()
    if elector is not None:
        elector.start()
    while not stop.wait(1.0):
        pass
    started = time.monotonic()
    clean = konnector.stop()
    if elector is not None:
        elector.stop(release=not lost.is_set())
    server.shutdown()
    if recorder is not None:
        recorder.close()
    consumer.close()
    log.info(
        "konnector stopped",
        extra={"seconds": round(time.monotonic() - started, 3), "clean": clean},
    )
    return 1 if lost.is_set() else 0


def _workers_ok(konnector: Konnector) -> tuple[bool, str]:
    stuck = konnector.stuck(STUCK_WORKER_SECONDS)
    return (not stuck, f"workers stuck on one key: {', '.join(stuck)}" if stuck else "ok")


if __name__ == "__main__":
    sys.exit(main())
