"""The konnector on real clusters: reflectors, worker threads and API clients around kbcore.

Every decision comes from kbcore, exactly as in kbsim's konnector: `kbcore.runtime.worker.work`
handles a key, `control_keys`/`instance_key`/`provider_key` say which keys an event wakes,
`engagements`/`sync_targets` which APIs are synced through which provider, `settle` what the
queue does next. This module keeps the caches (one reflector per watched resource), runs the
workers, answers the worker's reads and requests with one `KubeClient` per cluster (provider
clients are made from the credentials the kernel hands out, one per fingerprint), starts and
stops syncers, and reports to logs and metrics.

Threads: each reflector has one; `workers` threads take keys from the shared queue (a key is
never handled by two at once); one ticker enqueues the periodic resyncs. Workers only run
while `leading()` says so (leader election).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from kbcore import objects as o
from kbcore.actions import CONSUMER, PROVIDER, cluster_of
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CRDS, SECRETS
from kbcore.control.binding import RESYNC_INTERVAL_SECONDS
from kbcore.control.engagement import Engagement, SyncTarget, sync_targets
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime import state
from kbcore.runtime.enqueue import (
    control_resync_keys,
    current_fingerprints,
    engagements,
    instance_key,
    provider_key,
)
from kbcore.runtime.keys import (
    ENGAGE,
    BindingKey,
    ConnectionKey,
    InstanceKey,
    WorkKey,
    describe_key,
)
from kbcore.runtime.observe import CONTROL_KINDS, Planner
from kbcore.runtime.trace import recorded
from kbcore.runtime.worker import BACKSTOP_SECONDS, Ask, Outcome, Send, drive, work
from kbcore.sync.instance import plan_instance
from kbshell.client import KubeClient
from kbshell.ops import Metrics, log_context, obj_ref
from kbshell.queue import SharedQueue
from kbshell.reflector import Reflector

log = logging.getLogger("konnector")

Recorder = Callable[[dict[str, Any]], None]


class Syncer:
    """One bound API: a consumer reflector over all namespaces and a provider reflector over our
    managed copies per provider scope: all namespaces, or each namespace a tenant was granted
    (`kbcore.runtime.observe.Syncer`)."""

    def __init__(self, konnector: Konnector, target: SyncTarget, provider: KubeClient) -> None:
        self.target = target
        gvr = target.gvr
        self.consumer = Reflector(
            konnector.consumer,
            gvr,
            name=f"consumer/{gvr.group_resource}",
            on_event=lambda _t, old, new: konnector.consumer_changed(instance_key(gvr, old, new)),
            on_relist=konnector.relisted(gvr, CONSUMER),
        )
        self.providers = {
            scope: Reflector(
                provider,
                gvr,
                namespace=scope,
                name=f"provider/{gvr.group_resource}" + (f"/{scope}" if scope else ""),
                label_selector=f"{keys.LABEL_MANAGED}=true",
                on_event=lambda _t, old, new: konnector.enqueue(provider_key(target, new or old)),
                on_relist=konnector.relisted(gvr, PROVIDER),
            )
            for scope in target.engagement.provider_scopes
        }

    def reflectors(self) -> list[Reflector]:
        return [self.consumer, *self.providers.values()]

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self.reflectors())

    def consumer_get(self, key: ObjectKey) -> o.Obj | None:
        return self.consumer.get(key)

    def provider_get(self, key: ObjectKey) -> o.Obj | None:
        r = self.providers.get("") or self.providers.get(key.namespace)
        return r.get(key) if r is not None else None

    def start(self) -> None:
        for r in self.reflectors():
            r.start()

    def stop(self) -> None:
        for r in self.reflectors():
            r.stop()


class Konnector(state.Konnector[Syncer]):
    """`kbcore.runtime.state.Konnector` over reflector caches, run by worker threads."""

    def __init__(
        self,
        consumer: KubeClient,
        namespace: str,
        *,
        workers: int = 2,
        metrics: Metrics | None = None,
        leading: Callable[[], bool] = lambda: True,
        recorder: Recorder | None = None,
        planner: Planner = plan_instance,
        provider_client: Callable[[Credentials], KubeClient] = KubeClient.from_credentials,
        resync_period: float = BACKSTOP_SECONDS,
    ) -> None:
        self.resync_period = resync_period
        self.consumer = consumer
        self.namespace = namespace
        self.planner = planner
        self.metrics = metrics
        self.leading = leading
        self.recorder = recorder
        self.workers = workers
        self.queue: SharedQueue[WorkKey] = SharedQueue(metrics)
        self.control: dict[GVR, Reflector] = {
            gvr: Reflector(
                consumer,
                gvr,
                # Only kubeconfig Secrets in our namespace are ever used (kbcore.control.kubeconfig
                # rule 1): caching every Secret of the cluster would need the RBAC and the
                # memory for nothing.
                namespace=namespace if gvr == SECRETS else "",
                name=f"consumer/{gvr.group_resource}",
                on_event=self.control_handler(kind),
                on_relist=self.relisted(gvr, CONSUMER),
            )
            for gvr, kind in CONTROL_KINDS.items()
        }
        self.syncers: dict[GVR, Syncer] = {}
        self.engaged: dict[str, Engagement] = {}
        self.verified_credentials: dict[str, str | None] = {}
        self._provider_client = provider_client
        self._providers: dict[str, KubeClient] = {}
        self._providers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy: dict[str, float] = {}
        self._changed: dict[WorkKey, float] = {}
        """When each instance's unsynced consumer change was first seen (sync lag)."""
        if metrics is not None:
            metrics.controller("konnector", workers)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        for r in self.control.values():
            r.start()
        self.queue.add(ENGAGE)
        for i in range(self.workers):
            self._spawn(f"worker-{i}", self._work_loop)
        self._spawn("ticker", self._ticker)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish in-flight work, then stop every thread; False if some did not end in time."""
        self._stopping.set()
        self.queue.close()
        deadline = time.monotonic() + timeout
        ok = True
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not t.is_alive()
        for s in list(self.syncers.values()):
            s.stop()
        for r in self.control.values():
            r.stop()
        with self._providers_lock:
            for client in self._providers.values():
                client.close()
            self._providers.clear()
        return ok

    def _ticker(self) -> None:
        """The periodic resyncs: control plane every 30 s (re-discovery, heartbeat, conflict
        counts), every cached instance every `resync_period` (the backstop, 10 min)."""
        next_control = time.monotonic() + RESYNC_INTERVAL_SECONDS
        next_backstop = time.monotonic() + self.resync_period
        while not self._stopping.wait(1.0):
            now = time.monotonic()
            if now >= next_control:
                next_control = now + RESYNC_INTERVAL_SECONDS
                self.control_resync()
            if now >= next_backstop:
                next_backstop = now + self.resync_period
                self.resync()
            self._report_gauges()

    def control_resync(self) -> None:
        for key in control_resync_keys(self):
            self.queue.add(key)

    def resync(self) -> None:
        """The backstop: look at every cached instance again."""
        for gvr, s in list(self.syncers.items()):
            for key in s.consumer.keys():  # noqa: SIM118 - a reflector, not a dict
                self.queue.add(InstanceKey(gvr, key))

    # -- health ------------------------------------------------------------------------------
    def unsynced(self) -> list[str]:
        """Caches that have not finished their first list (readiness)."""
        out = [r.name for r in self.control.values() if not r.synced.is_set()]
        for s in list(self.syncers.values()):
            out += [r.name for r in s.reflectors() if not r.synced.is_set()]
        return out

    def stuck(self, limit: float) -> list[str]:
        """Workers busy with one key for longer than `limit` seconds (liveness)."""
        now = time.monotonic()
        return [w for w, since in list(self._busy.items()) if now - since > limit]

    def _report_gauges(self) -> None:
        if self.metrics is None:
            return
        self.metrics.engaged_providers(len(self.engaged))
        for r in self.control.values():
            self.metrics.cache_synced(r.gvr, CONSUMER, r.synced.is_set())
        for gvr, s in list(self.syncers.items()):
            self.metrics.synced_objects(gvr, len(s.consumer.keys()))
            self.metrics.cache_synced(gvr, CONSUMER, s.consumer.synced.is_set())
            self.metrics.cache_synced(
                gvr, PROVIDER, all(r.synced.is_set() for r in s.providers.values())
            )
        # Stuck-worker gauges; the queue's start times are on the monotonic clock.
        self.metrics.queue_in_flight(
            self.queue.name, self.queue.in_flight().values(), time.monotonic()
        )

    def relisted(self, gvr: GVR, cluster: str) -> Callable[[], None] | None:
        """The relist counter of one reflector (a watch expired with 410 and it listed again)."""
        metrics = self.metrics
        if metrics is None:
            return None
        return lambda: metrics.relist(gvr, cluster)

    # -- events ------------------------------------------------------------------------------
    def consumer_changed(self, key: WorkKey | None) -> None:
        """A consumer instance changed: the sync lag is measured from now."""
        if key is not None:
            self._changed.setdefault(key, time.monotonic())
            self.queue.add(key)

    # -- work --------------------------------------------------------------------------------
    def _work_loop(self) -> None:
        name = threading.current_thread().name
        while not self._stopping.is_set():
            if not self.leading():
                self._stopping.wait(0.5)
                continue
            item = self.queue.get(timeout=1.0)
            if item is None:
                continue
            self._busy[name] = time.monotonic()
            active = self.metrics.active_worker("konnector") if self.metrics else nullcontext()
            try:
                with active:
                    self.process(item)
            finally:
                self._busy.pop(name, None)

    def process(self, item: WorkKey) -> None:
        """Handle one key taken from the queue, and mark it done."""
        started = time.monotonic()
        with log_context(controller="konnector", key=describe_key(item)):
            try:
                if self.recorder is not None:
                    outcome, record = recorded(item, self, time.time(), self._answer, self._send)
                    self.recorder(record)
                else:
                    outcome = drive(work(item, self, time.time()), self._answer, self._send)
                if outcome.engage:
                    self._engage()
            except Exception:
                log.exception("handling a key failed")  # the key is in the log context
                self.queue.retry(item)
                self._reconciled("error", started)
                return
            self._report(item, outcome)
            self.queue.settle(item, outcome, self.verified_credentials)
            result = (
                "error"
                if outcome.verdict is not None
                else "requeue_after"
                if outcome.requeue_after is not None
                else "success"
            )
            self._reconciled(result, started)

    def _reconciled(self, result: Any, started: float) -> None:
        if self.metrics is not None:
            self.metrics.reconcile("konnector", result, time.monotonic() - started)

    def _report(self, item: WorkKey, outcome: Outcome) -> None:
        if isinstance(item, BindingKey) and self.metrics is not None:
            self._report_conflicts(item)
        if isinstance(item, InstanceKey) and outcome.complete:
            changed = self._changed.pop(item, None)
            writes = outcome.plan.writes if outcome.plan else ()
            provider_writes = [a for a in writes if cluster_of(a) == PROVIDER]
            if changed is not None and provider_writes and self.metrics and outcome.binding:
                self.metrics.sync_lag(outcome.binding, time.monotonic() - changed)
        for f in outcome.failures:
            log.info(
                "action failed",
                extra={
                    **_ref(item),
                    "action": type(f.action).__name__,
                    "error": f.error,
                    "next": f.verdict.next.value,
                    "why": f.verdict.why,
                },
            )

    def _report_conflicts(self, item: BindingKey) -> None:
        """The binding's conflict count, as its status says (the next event brings the
        status this reconcile wrote)."""
        assert self.metrics is not None
        kind, namespace, name = item.kind, item.namespace, item.name
        label = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
        gvr = CLUSTERBINDINGS if kind == "ClusterBinding" else BINDINGS
        binding = self.cached_get(gvr, ObjectKey(namespace, name))
        if binding is None:
            self.metrics.forget_binding(label)
            return
        apis = (binding.get("status") or {}).get("boundAPIs") or []
        count = sum(
            int(a.get("conflictCount") or 0)
            for a in apis
            if isinstance(a, dict) and isinstance(a.get("conflictCount"), int)
        )
        self.metrics.conflicts(label, count)

    def provider_client(self, creds: Credentials) -> KubeClient:
        with self._providers_lock:
            client = self._providers.get(creds.fingerprint)
            if client is None:
                client = self._provider_client(creds)
                self._providers[creds.fingerprint] = client
            return client

    def _client(self, role: str, creds: Credentials | None) -> KubeClient:
        if role == CONSUMER or creds is None:
            return self.consumer
        return self.provider_client(creds)

    def _answer(self, ask: Ask) -> Any:
        cluster = CONSUMER if ask.read.cluster == CONSUMER else "provider"
        if self.metrics is not None:
            self.metrics.read(cluster)
        return self._client(ask.read.cluster, ask.credentials).read(ask.read)

    def _send(self, send: Send) -> ApiError | None:
        cluster = CONSUMER if send.request.cluster == CONSUMER else "provider"
        kind = type(send.action).__name__
        try:
            self._client(send.request.cluster, send.credentials).perform(send.request)
        except ApiError as err:
            if self.metrics is not None:
                self.metrics.action(kind, cluster, err.code)
            return err
        finally:
            if self.metrics is not None:
                self.metrics.write(cluster)
        if self.metrics is not None:
            self.metrics.action(kind, cluster)
        return None

    def _engage(self) -> None:
        """Stop-on-disengage: (re)build the syncers the kernel says should run."""
        self.engaged = engagements(self)
        bindings = self.cached(CLUSTERBINDINGS) + self.cached(BINDINGS)
        desired = sync_targets(self.cached(CRDS), self.engaged, bindings)
        for gvr in list(self.syncers):
            if gvr not in desired or self.syncers[gvr].target != desired[gvr]:
                log.info("stopping sync", extra={"resource": gvr.group_resource})
                self.syncers.pop(gvr).stop()
                if self.metrics is not None and gvr not in desired:
                    self.metrics.forget_resource(gvr)
        for gvr, target in desired.items():
            if gvr not in self.syncers:
                log.info(
                    "starting sync",
                    extra={
                        "resource": gvr.group_resource,
                        "connection": target.engagement.connection,
                    },
                )
                syncer = Syncer(self, target, self.provider_client(target.engagement.credentials))
                self.syncers[gvr] = syncer
                syncer.start()
        self._close_rotated_clients()
        self.resync()

    def _close_rotated_clients(self) -> None:
        """Close provider clients no Connection's Secret holds credentials for any more (their
        connection pools would otherwise live as long as the process)."""
        live = current_fingerprints(self)
        live |= {s.target.engagement.credentials.fingerprint for s in self.syncers.values()}
        with self._providers_lock:
            stale = [fp for fp in self._providers if fp not in live]
            for fp in stale:
                self._providers.pop(fp).close()
        if stale:
            log.info("closed clients of rotated provider credentials", extra={"count": len(stale)})


def _ref(item: WorkKey) -> dict[str, Any]:
    match item:
        case InstanceKey(gvr, key):
            return obj_ref(gvr.group_resource, key.namespace, key.name)
        case ConnectionKey(name):
            return obj_ref("Connection", "", name)
        case BindingKey(kind, namespace, name):
            return obj_ref(kind, namespace, name)
    return {}
