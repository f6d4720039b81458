"""End-to-end numbers for the real konnector process on two real clusters.

Starts a provider and a consumer (real etcd + kube-apiserver + kube-controller-manager from
hack/k8s), applies the quickstart bundle, runs `konnector` as a separate process, and a small
"provider controller" thread that writes a status on every provider copy (as a service
provider's operator would). Prints:

 1. time to sync N created objects end to end: from the first create on the consumer until all
    N have their provider copy and the provider's status back on the consumer;
 2. spec-propagation latency under a steady update rate: median and p99 from a consumer
    update to the provider copy carrying it (seen through a provider watch);
 3. konnector RSS with N synced objects;
 4. writes per resync at rest: every object looked at again (a forced resync, counted by
    reconciles) and the writes it made, heartbeat Lease renewals listed apart; counted twice,
    from the konnector's metrics and from each apiserver's own `apiserver_request_total`.

Then, on fresh clusters each, the limit (bench/limit.py): the same requests for the same N
objects from a plain client with no watches or decisions, with and without the apply the
konnector sends right after a create; the konnector's end-to-end time is printed as a ratio to
each, with the API servers' and etcd's CPU per object and how busy the machine was.

Run: .venv/bin/python bench/konnector_bench.py [--objects 1000] [--rate 20] [--seconds 30]
(about three minutes at the defaults; progress goes to stderr, results to stdout.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbshell.client import KubeClient
from tests.harness.clusters import build_binaries, start_clusters
from tests.harness.konnector import WIDGETS, Pair, eventually

sys.path.insert(0, str(Path(__file__).resolve().parent))
from limit import CpuMeter, LimitResult, limit_clusters, run_limit


def served_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {r: v - before.get(r, 0.0) for r, v in after.items() if v != before.get(r, 0.0)}


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class ProviderController(threading.Thread):
    """Writes `status.observedSize` on every provider copy whose spec it has not seen yet."""

    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(name="provider-controller", daemon=True)
        self.client = KubeClient.from_kubeconfig_file(kubeconfig)
        self.stopping = threading.Event()
        self.stream: Any = None

    def run(self) -> None:
        rv = ""
        while not self.stopping.is_set():
            try:
                if not rv:
                    items, rv = self.client.list(WIDGETS)
                    for w in items:
                        self._reconcile(w)
                self.stream = self.client.watch(WIDGETS, resource_version=rv, timeout_seconds=60)
                for event in self.stream:
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        rv = ""
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._reconcile(obj)
            except ApiError as err:
                if not self.stopping.is_set():
                    say(f"provider controller: {err}")
                    rv = ""
                    time.sleep(0.5)

    def _reconcile(self, w: dict[str, Any]) -> None:
        size = (w.get("spec") or {}).get("size")
        if (w.get("status") or {}).get("observedSize") == size:
            return
        meta = w["metadata"]
        try:
            self.client.patch(
                WIDGETS,
                ObjectKey(meta["namespace"], meta["name"]),
                {"status": {"observedSize": size}},
                "merge",
                "provider-controller",
                False,
                "status",
            )
        except ApiError as err:
            if err.code != 404:
                raise

    def stop(self) -> None:
        self.stopping.set()
        if self.stream is not None:
            self.stream.close()


class ArrivalWatch(threading.Thread):
    """Timestamps when each provider copy first carries a given spec.size."""

    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(name="arrivals", daemon=True)
        self.client = KubeClient.from_kubeconfig_file(kubeconfig)
        self.seen: dict[tuple[str, str], float] = {}
        self.stopping = threading.Event()
        self.stream: Any = None
        self.rv = self.client.list(WIDGETS)[1]

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.stream = self.client.watch(WIDGETS, resource_version=self.rv)
                for event in self.stream:
                    obj = event.get("object") or {}
                    self.rv = (obj.get("metadata") or {}).get("resourceVersion", self.rv)
                    size = (obj.get("spec") or {}).get("size")
                    name = (obj.get("metadata") or {}).get("name")
                    if name and size:
                        self.seen.setdefault((name, size), time.monotonic())
            except ApiError:
                time.sleep(0.2)

    def stop(self) -> None:
        self.stopping.set()
        if self.stream is not None:
            self.stream.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=20.0, help="updates per second (latency)")
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of the update run")
    ap.add_argument("--resync", type=float, default=20.0, help="--resync-period for the run")
    ap.add_argument("--workers", type=int, default=8, help="konnector --workers")
    ap.add_argument(
        "--no-limit",
        dest="limit",
        action="store_false",
        help="skip the plain-client runs the konnector's time is compared with",
    )
    args = ap.parse_args()

    say("building/starting real clusters ...")
    bin_dir = build_binaries()
    clusters = start_clusters(["provider", "consumer"], bin_dir=bin_dir)
    meter = CpuMeter(clusters)
    tmp = Path(tempfile.mkdtemp(prefix="kbind-bench-"))
    pair = Pair(clusters, tmp)
    controller = ProviderController(clusters.provider.kubeconfig)
    try:
        pair.install()
        k = pair.konnector(
            "--resync-period", str(args.resync), "--workers", str(args.workers)
        ).wait_ready()
        pair.wait_bound()
        controller.start()
        n = args.objects
        names = [f"b{i:05d}" for i in range(n)]

        # 1. N creates, end to end.
        say(f"creating {n} widgets on the consumer ...")
        cpu_before = k.cpu_seconds()
        meter.start()
        started = time.monotonic()
        pair.create_widgets(names)
        created = time.monotonic() - started

        def statuses_back() -> bool:
            items = pair.consumer.list(WIDGETS)[0]
            done = sum(1 for w in items if (w.get("status") or {}).get("observedSize"))
            return done == n

        eventually(statuses_back, 600, "all statuses back", interval=0.5)
        end_to_end = time.monotonic() - started
        meter.stop()
        cpu_sync = k.cpu_seconds() - cpu_before
        assert len(pair.provider_widgets()) == n
        k.quiet(timeout=120)
        rss = k.rss_kib()
        sync_writes = k.writes()
        sync_reconciles = k.metric("controller_runtime_reconcile_total")

        # 2. Spec-propagation latency under a steady update rate.
        say(f"updating at {args.rate:g}/s for {args.seconds:g}s ...")
        arrivals = ArrivalWatch(clusters.provider.kubeconfig)
        arrivals.start()
        sent: dict[tuple[str, str], float] = {}
        interval = 1.0 / args.rate
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < args.seconds:
            due = t0 + i * interval
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)  # pacing the load generator, not waiting for a result
            name = names[i % n]
            size = f"u{i}"
            pair.consumer.patch(
                WIDGETS, ObjectKey("default", name), {"spec": {"size": size}}, "merge", "bench"
            )
            sent[(name, size)] = time.monotonic()
            i += 1
        eventually(lambda: all(key in arrivals.seen for key in sent), 120, "all updates arrived")
        arrivals.stop()
        latencies = [arrivals.seen[key] - t for key, t in sent.items()]
        k.quiet(timeout=120)

        # 4. Writes per resync at rest (the resync period is short for this run).
        say("waiting for a resync at rest ...")
        before_writes = k.writes()
        before_served = {c: clusters[c].write_requests() for c in ("provider", "consumer")}
        before_reconciles = k.metric("controller_runtime_reconcile_total")
        eventually(
            lambda: k.metric("controller_runtime_reconcile_total") - before_reconciles >= n,
            args.resync * 3 + 30,
            "a resync of every object",
            interval=0.5,
        )
        k.quiet(timeout=120)
        after_writes = k.writes()
        served = {
            c: served_delta(before_served[c], clusters[c].write_requests())
            for c in ("provider", "consumer")
        }
        reconciles = k.metric("controller_runtime_reconcile_total") - before_reconciles
        delta = {
            kind: after_writes.get(kind, 0) - before_writes.get(kind, 0)
            for kind in after_writes
            if after_writes.get(kind, 0) != before_writes.get(kind, 0)
        }
        rss_after = k.rss_kib()
    finally:
        controller.stop()
        pair.close()
        clusters.stop()

    limits: list[LimitResult] = []
    for redundant in (False, True) if args.limit else ():
        variant = "4 writes, the apply after the create too" if redundant else "3 writes"
        say(f"limit: the konnector's requests from a plain client ({variant}), fresh clusters ...")
        fresh = limit_clusters(bin_dir)
        try:
            limits.append(run_limit(fresh, names, workers=args.workers, redundant_apply=redundant))
        finally:
            fresh.stop()

    print(f"objects: {n}")
    print(f"create {n} on the consumer (client side): {created:.1f} s")
    print(f"sync {n} end to end (create -> copy on provider -> status back): {end_to_end:.1f} s")
    print(f"  = {n / end_to_end:.0f} objects/s with {args.workers} workers")
    print(f"  servers: {meter.line(n)}")
    for limit in limits:
        print(
            f"limit, the same requests from a plain client ({limit.writes_per_object} konnector "
            f"writes per object + the provider's status): {limit.seconds:.1f} s; konnector/limit "
            f"= {end_to_end / limit.seconds:.2f}"
        )
        print(f"  servers: {limit.cpu.line(n)}")
    print(f"  konnector CPU for it: {cpu_sync:.1f} s ({cpu_sync / n * 1000:.1f} ms per object)")
    print(
        f"  per object: {sync_reconciles / n:.1f} reconciles, writes "
        + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(sync_writes.items()) if v >= n / 10)
    )
    print(
        f"spec propagation under {args.rate:g} updates/s for {args.seconds:g} s "
        f"({len(latencies)} updates): median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    print(f"konnector RSS at {n} synced objects: {rss / 1024:.0f} MiB (after the runs: "
          f"{rss_after / 1024:.0f} MiB)")  # fmt: skip
    print(
        f"resync at rest: {reconciles:.0f} reconciles, writes: "
        + (", ".join(f"{k} {v:.0f}" for k, v in sorted(delta.items())) or "none")
    )
    non_heartbeat = {k: v for k, v in delta.items() if not k.startswith("Update/provider")}
    print(f"writes per resync at rest, heartbeat Lease excluded: {sum(non_heartbeat.values()):.0f}")
    for c, delta_served in served.items():
        # Leases are renewed by the apiserver, the controller manager and our heartbeat alike.
        others = {r: v for r, v in delta_served.items() if not r.startswith("leases.")}
        leases = sum(v for r, v in delta_served.items() if r.startswith("leases."))
        print(
            f"  {c} apiserver, write requests served meanwhile: "
            + (", ".join(f"{r} {v:.0f}" for r, v in sorted(others.items())) or "none")
            + f" (+ {leases:.0f} Lease renewals by all its clients)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
