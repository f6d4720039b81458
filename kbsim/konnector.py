"""The simulated konnector: the same worker the real shell runs, on kbsim clusters.

It keeps nothing the real konnector would not keep in memory (caches, a work queue, which
syncers run), so a crash fault simply drops the object and a restart builds a new one from
lists. Every decision comes from kbcore: `kbcore.runtime.worker.work` handles a key (views from the
caches, the planners, their reads, their actions, the requeue), `control_keys`/`instance_key`/
`provider_key` say which keys an event wakes, `engagements`/`sync_targets` which APIs are
synced through which provider. This module answers the worker's reads and requests on the
simulated API servers and starts and stops reflectors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kbcore import objects as o
from kbcore.actions import CONSUMER
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CRDS
from kbcore.control.binding import RESYNC_INTERVAL_SECONDS
from kbcore.control.engagement import Engagement, SyncTarget, sync_targets
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime import state
from kbcore.runtime.enqueue import (
    control_resync_keys,
    engagements,
    instance_key,
    provider_key,
)
from kbcore.runtime.keys import ENGAGE, InstanceKey, WorkKey, describe_key, to_tuple
from kbcore.runtime.observe import CONTROL_KINDS, Planner
from kbcore.runtime.trace import recorded
from kbcore.runtime.worker import BACKSTOP_SECONDS, Ask, Send, drive, settle, work
from kbcore.runtime.workqueue import WorkQueue
from kbcore.sync.instance import plan_instance
from kbsim.apierrors import unreachable
from kbsim.reflector import Reflector

if TYPE_CHECKING:
    from kbsim.world import World


class Syncer:
    """One bound API: a consumer reflector over all namespaces and a provider reflector over our
    managed copies per provider scope (all namespaces, or a tenant's granted ones)."""

    def __init__(self, konnector: SimKonnector, target: SyncTarget, provider: str, user: Any):
        self.target = target
        self.provider_cluster = provider
        self.provider_user = user
        gvr, world = target.gvr, konnector.world
        self.consumer = Reflector(
            konnector.consumer,
            gvr,
            user=konnector.user,
            on_event=lambda _t, old, new: konnector.enqueue(instance_key(gvr, old, new)),
        )
        self.providers = {
            scope: Reflector(
                world.clusters[provider],
                gvr,
                user=user,
                namespace=scope,
                label_selector=f"{keys.LABEL_MANAGED}=true",
                on_event=lambda _t, old, new: konnector.enqueue(provider_key(target, new or old)),
            )
            for scope in target.engagement.provider_scopes
        }
        world.attach(konnector.cluster, self.consumer)
        for r in self.providers.values():
            world.attach(provider, r)

    @property
    def synced(self) -> bool:
        return self.consumer.synced

    def consumer_get(self, key: ObjectKey) -> o.Obj | None:
        return self.consumer.cache.get(key)

    def provider_get(self, key: ObjectKey) -> o.Obj | None:
        r = self.providers.get("") or self.providers.get(key.namespace)
        return r.cache.get(key) if r is not None else None

    def reflectors(self) -> list[Reflector]:
        return [self.consumer, *self.providers.values()]

    def stop(self, world: World) -> None:
        for r in self.reflectors():
            world.detach(r)
            r.stop()


class SimKonnector(state.Konnector["Syncer"]):
    """The konnector on kbsim clusters: `kbcore.runtime.state.Konnector` over its reflectors."""

    def __init__(
        self,
        world: World,
        cluster: str,
        namespace: str,
        *,
        planner: Planner = plan_instance,
        recorder: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.world = world
        self.recorder = recorder
        self.cluster = cluster
        self.namespace = namespace
        self.consumer = world.clusters[cluster]
        self.user = world.konnector_user
        self.planner = planner
        self.queue: WorkQueue[WorkKey] = WorkQueue()
        self.syncers: dict[GVR, Syncer] = {}
        self.control: dict[GVR, Reflector] = {}
        self.engaged: dict[str, Engagement] = {}
        self.verified_credentials: dict[str, str | None] = {}
        """Per Connection, the credentials its last completed reconcile found Ready with."""
        self.stopped = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for gvr, kind in CONTROL_KINDS.items():
            r = Reflector(
                self.consumer,
                gvr,
                user=self.user,
                on_event=self.control_handler(kind),
            )
            self.control[gvr] = r
            self.world.attach(self.cluster, r)
        self.queue.add(ENGAGE)
        self.world.schedule(BACKSTOP_SECONDS, "backstop", self._backstop)
        self.world.schedule(RESYNC_INTERVAL_SECONDS, "control-resync", self._control_resync)

    def _backstop(self) -> None:
        if self.stopped:
            return
        self.resync()
        self.world.schedule(BACKSTOP_SECONDS, "backstop", self._backstop)

    def _control_resync(self) -> None:
        """Re-discovery, heartbeat, conflict counts: every Connection and binding, periodically."""
        if self.stopped:
            return
        for key in control_resync_keys(self):
            self.queue.add(key)
        self.world.schedule(RESYNC_INTERVAL_SECONDS, "control-resync", self._control_resync)

    def stop(self) -> None:
        self.stopped = True
        for r in self.control.values():
            self.world.detach(r)
            r.stop()
        for s in self.syncers.values():
            s.stop(self.world)
        self.syncers.clear()

    def resync(self) -> None:
        """The backstop: look at every cached object again."""
        for gvr, s in self.syncers.items():
            for key in list(s.consumer.cache):
                self.queue.add(InstanceKey(gvr, key))

    # -- work --------------------------------------------------------------------------------
    def process_one(self) -> bool:
        """Handle one ready key; False when none was ready."""
        now = self.world.now
        item = self.queue.get(now)
        if item is None:
            return False
        try:
            try:
                if self.recorder is not None:
                    outcome, record = recorded(item, self, now, self._answer, self._send)
                    self.recorder(record)
                else:
                    outcome = drive(work(item, self, now), self._answer, self._send)
                if outcome.engage:
                    self._engage()
            except Exception as err:
                # As kbshell does: log, retry with backoff, keep running; the invariant
                # `kernel-never-raises` fails the run.
                self.world.monitor.on_worker_exception(describe_key(item), err)
                self.world.log(f"konnector: handling {describe_key(item)} raised {err!r}")
                self.queue.add_rate_limited(item, now)
                return True
            if outcome.plan is not None:
                self.world.record_plan(item, outcome.plan)
            for f in outcome.failures:
                self.world.log(
                    f"konnector: {type(f.action).__name__} {to_tuple(item)[1:]}: {f.error}"
                )
            settle(self.queue, item, outcome, now, self.verified_credentials)
        finally:
            self.queue.done(item)
        return True

    def _provider(self, creds: Credentials | None) -> tuple[str, Any] | None:
        return self.world.resolve_credentials(creds) if creds is not None else None

    def _target(self, role: str, creds: Credentials | None) -> tuple[str, Any] | None:
        return (self.cluster, self.user) if role == CONSUMER else self._provider(creds)

    def _answer(self, ask: Ask) -> Any:
        return self.world.read(self._target(ask.read.cluster, ask.credentials), ask.read)

    def _send(self, send: Send) -> ApiError | None:
        target = self._target(send.request.cluster, send.credentials)
        try:
            if target is None:
                raise unreachable()
            self.world.perform(send.request, self.world.clusters[target[0]], target[1], send.action)
        except ApiError as err:
            if target is not None:
                r = send.request
                what = f"{r.verb} {r.gvr.group_resource} {r.key}"
                self.world.monitor.on_refused_request(target[0], what, err)
            return err
        return None

    def _engage(self) -> None:
        """Stop-on-disengage: (re)build the syncers the kernel says should run."""
        self.engaged = engagements(self, lambda creds: self._provider(creds) is not None)
        bindings = self.cached(CLUSTERBINDINGS) + self.cached(BINDINGS)
        desired = sync_targets(self.cached(CRDS), self.engaged, bindings)
        for gvr in list(self.syncers):
            if gvr not in desired or self.syncers[gvr].target != desired[gvr]:
                self.syncers.pop(gvr).stop(self.world)
        for gvr, target in desired.items():
            if gvr not in self.syncers:
                provider = self._provider(target.engagement.credentials)
                assert provider is not None
                syncer = Syncer(self, target, *provider)
                self.syncers[gvr] = syncer
                for r in syncer.reflectors():
                    self.world.start_reflector(r)
        self.resync()
