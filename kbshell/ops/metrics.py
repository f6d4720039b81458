"""Prometheus metrics of the konnector process.

`Metrics` owns one private `CollectorRegistry` (never prometheus_client's global one, so several
instances and tests never clash; `PrivateRegistry`, which kube-bind-backend's gateway metrics
build on too) and exposes small typed methods the shell calls at the points
where things happen. The names reuse client-go's workqueue and controller-runtime's reconcile
metrics so existing dashboards work unchanged; kube-bind's own metrics carry the `kubebind_`
prefix.

Cardinality rule: no label value is ever an object name, namespace or UID. Labels are queue and
controller names (fixed at start), cluster roles (`consumer`/`provider`), action kinds (class
names), HTTP codes, resources (GVR strings) and binding names (one per APIServiceBinding).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Literal, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.exposition import choose_encoder

from kbcore.objects import GVR

ReconcileResult = Literal["success", "error", "requeue", "requeue_after"]
RECONCILE_RESULTS: tuple[ReconcileResult, ...] = get_args(ReconcileResult)

Cluster = Literal["consumer", "provider"]
CLUSTERS: tuple[Cluster, ...] = get_args(Cluster)

# client-go's workqueue buckets: ExponentialBuckets(10e-9, 10, 12), 10ns .. 1000s.
WORKQUEUE_BUCKETS: tuple[float, ...] = tuple(1e-8 * 10**i for i in range(12))
# controller-runtime's reconcile_time_seconds buckets (v0.15+).
RECONCILE_BUCKETS: tuple[float, ...] = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    *(6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0),
)
# Sync lag spans a fast path (tens of ms) to backoff after provider errors (minutes).
SYNC_LAG_BUCKETS: tuple[float, ...] = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)

Resource = str | GVR
"""A resource label: a GVR (rendered as `widgets.example.org/v1`) or that string already."""


def _resource(resource: Resource) -> str:
    return str(resource)


def _cluster(cluster: str) -> str:
    # Fail loudly on anything but a role: a cluster *name* or URL here would be unbounded.
    if cluster not in CLUSTERS:
        raise ValueError(f"cluster label must be one of {CLUSTERS}, got {cluster!r}")
    return cluster


class PrivateRegistry:
    """A process's metrics in a `CollectorRegistry` of its own, with the build `Info` metric
    (`version`, `python`) every kube-bind process exports, and the exposition of both.
    Subclasses register their metrics on `self.registry`."""

    def __init__(self, build_metric: str, build_help: str, version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        build = Info(build_metric, build_help, registry=self.registry)
        build.info({"version": version or "unknown", "python": platform.python_version()})

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)

    def render_for(self, accept: str | None) -> tuple[bytes, str]:
        """Exposition negotiated on an HTTP Accept header (OpenMetrics when a scraper asks for
        it); returns (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class Metrics(PrivateRegistry):
    """Every metric the konnector exports, in a private registry.

    `controllers` and `queues` name the controllers/queues known at start; their series are
    created at 0 right away so dashboards and `rate()` see them before the first event.
    """

    def __init__(
        self,
        *,
        controllers: Iterable[str] = (),
        queues: Iterable[str] = (),
        version: str = "",
    ) -> None:
        super().__init__("kubebind_build", "Build information of the konnector", version)
        r = self.registry

        # --- client-go workqueue ---
        self._q_depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=r)
        self._q_adds = Counter(
            "workqueue_adds_total",
            "Total number of adds handled by workqueue",
            ["name"],
            registry=r,
        )
        self._q_latency = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["name"],
            buckets=WORKQUEUE_BUCKETS,
            registry=r,
        )
        self._q_work = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            ["name"],
            buckets=WORKQUEUE_BUCKETS,
            registry=r,
        )
        self._q_retries = Counter(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            ["name"],
            registry=r,
        )
        self._q_unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed "
            "by work_duration. Large values indicate stuck threads.",
            ["name"],
            registry=r,
        )
        self._q_longest = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            ["name"],
            registry=r,
        )

        # --- controller-runtime reconcile ---
        self._rec_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ["controller", "result"],
            registry=r,
        )
        self._rec_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ["controller"],
            registry=r,
        )
        self._rec_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ["controller"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )
        self._rec_max = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ["controller"],
            registry=r,
        )
        self._rec_active = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ["controller"],
            registry=r,
        )

        # --- kube-bind ---
        self._actions = Counter(
            "kubebind_actions_total",
            "Kernel actions executed, by action kind and cluster role",
            ["kind", "cluster"],
            registry=r,
        )
        self._action_errors = Counter(
            "kubebind_action_errors_total",
            "Kernel actions that failed, by action kind, cluster role and HTTP code",
            ["kind", "cluster", "code"],
            registry=r,
        )
        self._writes = Counter(
            "kubebind_writes_total", "Mutating API requests sent", ["cluster"], registry=r
        )
        self._reads = Counter(
            "kubebind_reads_total", "Non-watch read API requests sent", ["cluster"], registry=r
        )
        self._sync_lag = Histogram(
            "kubebind_sync_lag_seconds",
            "Time from observing a consumer object's change to writing its provider copy",
            ["binding"],
            buckets=SYNC_LAG_BUCKETS,
            registry=r,
        )
        self._conflicts = Gauge(
            "kubebind_conflicts",
            "Objects of a binding currently in conflict (not synced because of ownership)",
            ["binding"],
            registry=r,
        )
        self._relists = Counter(
            "kubebind_watch_relists_total",
            "Full relists by reflectors (initial list, expired watch, or error)",
            ["resource", "cluster"],
            registry=r,
        )
        self._cache_synced = Gauge(
            "kubebind_cache_synced",
            "1 when the reflector cache of a resource has completed its initial list",
            ["resource", "cluster"],
            registry=r,
        )
        self._engaged = Gauge(
            "kubebind_engaged_providers", "Provider clusters currently engaged", registry=r
        )
        self._leader = Gauge(
            "kubebind_leader", "1 when this replica holds the leader lease", registry=r
        )
        self._synced_objects = Gauge(
            "kubebind_synced_objects",
            "Objects currently kept in sync between consumer and provider",
            ["resource"],
            registry=r,
        )
        for c in controllers:
            self.controller(c)
        for q in queues:
            self.queue(q)

    # ---------------------------------------------------------------- registration

    def controller(self, controller: str, max_concurrent: int = 1) -> None:
        """Declare a controller: its series exist at 0 from now on."""
        for result in RECONCILE_RESULTS:
            self._rec_total.labels(controller, result)
        self._rec_errors.labels(controller)
        self._rec_time.labels(controller)
        self._rec_active.labels(controller).set(0)
        self._rec_max.labels(controller).set(max_concurrent)

    def queue(self, name: str) -> None:
        """Declare a work queue: its series exist at 0 from now on."""
        for m in (self._q_depth, self._q_adds, self._q_latency, self._q_work, self._q_retries):
            m.labels(name)
        self._q_unfinished.labels(name).set(0)
        self._q_longest.labels(name).set(0)

    # ---------------------------------------------------------------- workqueue

    def queue_add(self, name: str, depth: int | None = None) -> None:
        """A key was added. Pass the queue's `depth` after the add: the kernel's queue dedupes,
        so only it knows whether the depth grew."""
        self._q_adds.labels(name).inc()
        if depth is not None:
            self._q_depth.labels(name).set(depth)

    def queue_depth(self, name: str, depth: int) -> None:
        self._q_depth.labels(name).set(depth)

    def queue_get(self, name: str, waited: float, depth: int | None = None) -> None:
        """A worker took a key that had `waited` seconds in the queue."""
        self._q_latency.labels(name).observe(max(waited, 0.0))
        if depth is not None:
            self._q_depth.labels(name).set(depth)

    def queue_done(self, name: str, seconds: float) -> None:
        """A worker finished a key after `seconds` of processing."""
        self._q_work.labels(name).observe(max(seconds, 0.0))

    def queue_retry(self, name: str) -> None:
        """A key was re-added rate limited (after an error)."""
        self._q_retries.labels(name).inc()

    def queue_in_flight(self, name: str, started: Iterable[float], now: float) -> None:
        """Refresh the stuck-thread gauges from the start times of keys being processed (same
        clock as `now`); client-go does this every 500 ms, so should the caller."""
        ages = [max(now - s, 0.0) for s in started]
        self._q_unfinished.labels(name).set(sum(ages))
        self._q_longest.labels(name).set(max(ages, default=0.0))

    # ---------------------------------------------------------------- reconcile

    def reconcile(self, controller: str, result: ReconcileResult, seconds: float) -> None:
        """One reconcile finished with `result` after `seconds`."""
        if result not in RECONCILE_RESULTS:
            raise ValueError(f"result must be one of {RECONCILE_RESULTS}, got {result!r}")
        self._rec_total.labels(controller, result).inc()
        if result == "error":
            self._rec_errors.labels(controller).inc()
        self._rec_time.labels(controller).observe(max(seconds, 0.0))

    def max_concurrent(self, controller: str, n: int) -> None:
        self._rec_max.labels(controller).set(n)

    @contextmanager
    def active_worker(self, controller: str) -> Iterator[None]:
        """Count a worker as busy for the duration of the block (also when it raises)."""
        with self._rec_active.labels(controller).track_inprogress():
            yield

    @contextmanager
    def timed_reconcile(self, controller: str) -> Iterator[list[ReconcileResult]]:
        """Time a reconcile and count it as active. Set `box[0]` to the result inside the block;
        it stays "error" if the block raises or does not set it."""
        box: list[ReconcileResult] = ["error"]
        start = time.monotonic()
        with self.active_worker(controller):
            try:
                yield box
            finally:
                self.reconcile(controller, box[0], time.monotonic() - start)

    # ---------------------------------------------------------------- kube-bind

    def action(self, kind: str, cluster: str, error_code: int | str | None = None) -> None:
        """One kernel action (class name `kind`, e.g. "Apply") executed against `cluster`; on
        failure pass the HTTP status code (or a short word such as "timeout")."""
        c = _cluster(cluster)
        self._actions.labels(kind, c).inc()
        if error_code is not None:
            self._action_errors.labels(kind, c, str(error_code)).inc()

    def write(self, cluster: str) -> None:
        """One mutating request (create/update/patch/apply/delete) was sent."""
        self._writes.labels(_cluster(cluster)).inc()

    def read(self, cluster: str) -> None:
        """One non-watch read (get/list/discovery/openapi) was sent."""
        self._reads.labels(_cluster(cluster)).inc()

    def sync_lag(self, binding: str, seconds: float) -> None:
        """A provider copy was written `seconds` after its consumer change was observed."""
        self._sync_lag.labels(binding).observe(max(seconds, 0.0))

    def conflicts(self, binding: str, n: int) -> None:
        self._conflicts.labels(binding).set(n)

    def forget_binding(self, binding: str) -> None:
        """Drop a deleted binding's series, so removed bindings do not accumulate."""
        for m in (self._sync_lag, self._conflicts):
            with suppress(KeyError):
                m.remove(binding)

    def relist(self, resource: Resource, cluster: str) -> None:
        self._relists.labels(_resource(resource), _cluster(cluster)).inc()

    def cache_synced(self, resource: Resource, cluster: str, synced: bool) -> None:
        self._cache_synced.labels(_resource(resource), _cluster(cluster)).set(1 if synced else 0)

    def engaged_providers(self, n: int) -> None:
        self._engaged.set(n)

    def leader(self, is_leader: bool) -> None:
        self._leader.set(1 if is_leader else 0)

    def synced_objects(self, resource: Resource, n: int) -> None:
        self._synced_objects.labels(_resource(resource)).set(n)

    def forget_resource(self, resource: Resource) -> None:
        """Drop an unbound resource's series."""
        res = _resource(resource)
        for c in CLUSTERS:
            for m in (self._relists, self._cache_synced):
                with suppress(KeyError):
                    m.remove(res, c)
        with suppress(KeyError):
            self._synced_objects.remove(res)
