"""The simulated konnector: the same kernel entry points the real shell calls, on kbsim clusters.

It keeps nothing the real konnector would not keep in memory (caches, a work queue, which
syncers run), so a crash fault simply drops the object and a restart builds a new one from
lists. Every decision comes from kbcore: `plan_connection` and `plan_binding` run the control
plane, `keys_for_event` says which keys an event wakes, `engagement`/`sync_targets` which APIs
are synced through which provider, `plan_instance` what to write for one object,
`resolve_coverage` which binding covers it, `to_request` how an action becomes a request and
`judge` what a failure means. This module only answers the kernels' reads and carries out their
actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import yaml

from kbcore import objects as o
from kbcore.actions import CONSUMER, PROVIDER, Plan, ReadFresh
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.binding import RESYNC_INTERVAL_SECONDS, BindingView, plan_binding
from kbcore.connection import (
    BINDINGS,
    CLUSTERBINDINGS,
    CONNECTIONS,
    SECRETS,
    ConnectionView,
    plan_connection,
)
from kbcore.coverage import connection_name, resolve_coverage
from kbcore.engagement import (
    Engagement,
    SyncTarget,
    engagement,
    sync_targets,
    verified_fingerprint,
)
from kbcore.errors import ApiError
from kbcore.events import ENGAGE, keys_for_event
from kbcore.instance import (
    NAMESPACES,
    InstanceView,
    ProviderView,
    consumer_key_for_provider,
    plan_instance,
)
from kbcore.kubeconfig import Credentials, SecretProblem, credentials_for, secret_ref
from kbcore.mapper import IDENTITY, Mapper
from kbcore.objects import GVR, ObjectKey
from kbcore.reads import Read
from kbcore.requests import Next, judge, to_request
from kbcore.status import condition_is_true
from kbcore.workqueue import WorkQueue
from kbsim.apierrors import unreachable
from kbsim.reflector import Reflector

if TYPE_CHECKING:
    from kbsim.world import World

CRDS = GVR("apiextensions.k8s.io", "v1", "customresourcedefinitions")
KINDS = {
    CONNECTIONS: "Connection",
    CLUSTERBINDINGS: "ClusterBinding",
    BINDINGS: "Binding",
    CRDS: "CustomResourceDefinition",
    SECRETS: "Secret",
}

BACKSTOP_SECONDS = 600.0
"""Every cached object is looked at again this often even without events (upstream: 10 min)."""
MAX_READ_ROUNDS = 32
"""A planner asks in rounds (an unbind with namespace cleanup takes about a dozen)."""

Planner = Callable[[InstanceView], Plan]


class Syncer:
    """One bound API: a consumer reflector over all namespaces and a provider reflector over our
    managed copies."""

    def __init__(self, konnector: SimKonnector, target: SyncTarget, provider: str, user: Any):
        self.target = target
        self.provider_cluster = provider
        self.provider_user = user
        gvr, world = target.gvr, konnector.world
        self.consumer = Reflector(
            konnector.consumer,
            gvr,
            user=konnector.user,
            on_event=lambda _t, old, new: konnector.enqueue_instance(gvr, old, new),
        )
        self.provider = Reflector(
            world.clusters[provider],
            gvr,
            user=user,
            label_selector=f"{keys.LABEL_MANAGED}=true",
            on_event=lambda _t, old, new: konnector.enqueue_provider(self, old, new),
        )
        world.attach(konnector.cluster, self.consumer)
        world.attach(provider, self.provider)

    def stop(self, world: World) -> None:
        for r in (self.consumer, self.provider):
            world.detach(r)
            r.stop()


class SimKonnector:
    def __init__(
        self,
        world: World,
        cluster: str,
        namespace: str,
        *,
        planner: Planner = plan_instance,
        mapper: Mapper = IDENTITY,
    ) -> None:
        self.world = world
        self.cluster = cluster
        self.namespace = namespace
        self.consumer = world.clusters[cluster]
        self.user = world.konnector_user
        self.planner = planner
        self.mapper = mapper
        self.queue: WorkQueue[tuple[Any, ...]] = WorkQueue()
        self.syncers: dict[GVR, Syncer] = {}
        self.control: dict[GVR, Reflector] = {}
        self.engaged: dict[str, Engagement] = {}
        self.verified: dict[str, str | None] = {}
        """Per Connection, the credentials its last completed reconcile found Ready with."""
        self.stopped = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for gvr, kind in KINDS.items():
            r = Reflector(
                self.consumer,
                gvr,
                user=self.user,
                on_event=lambda _t, old, new, kind=kind: self._control_event(kind, old, new),
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
        for conn in self._cached(CONNECTIONS):
            self.queue.add(("connection", o.name(conn)))
        for gvr in (CLUSTERBINDINGS, BINDINGS):
            for b in self._cached(gvr):
                self.queue.add(("binding", KINDS[gvr], o.namespace(b), o.name(b)))
        self.queue.add(ENGAGE)
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
                self.queue.add(("instance", gvr, key))

    # -- event handlers --------------------------------------------------------------------
    def _control_event(self, kind: str, old: o.Obj | None, new: o.Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        bindings = self._cached(CLUSTERBINDINGS) + self._cached(BINDINGS)
        for key in keys_for_event(
            kind, obj, connections=self._cached(CONNECTIONS), bindings=bindings
        ):
            self.queue.add(key)

    def enqueue_instance(self, gvr: GVR, old: o.Obj | None, new: o.Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(("instance", gvr, o.key_of(obj)))

    def enqueue_provider(self, syncer: Syncer, old: o.Obj | None, new: o.Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        t = syncer.target
        key = consumer_key_for_provider(obj, t.gvr, t.engagement.local_cluster_uid, self.mapper)
        if key is not None:
            self.queue.add(("instance", t.gvr, key))

    # -- work --------------------------------------------------------------------------------
    def process_one(self) -> bool:
        """Handle one ready key; False when none was ready."""
        now = self.world.now
        item = self.queue.get(now)
        if item is None:
            return False
        if item[0] != "instance" and not all(r.synced for r in self.control.values()):
            # As controllers wait for their caches to sync before the first reconcile.
            self.queue.done(item)
            self.queue.add_after(item, 1.0, now)
            return True
        try:
            if item == ENGAGE:
                self._engage()
            elif item[0] == "connection":
                self._reconcile_connection(item)
            elif item[0] == "binding":
                self._reconcile_binding(item)
            else:
                self._reconcile_instance(item)
        except ApiError as err:
            self.world.log(f"konnector: {item} failed: {err}")
            self.queue.add_rate_limited(item, now)
        finally:
            self.queue.done(item)
        return True

    def _cached(self, gvr: GVR) -> list[o.Obj]:
        r = self.control.get(gvr)
        return list(r.cache.values()) if r else []

    def _cached_get(self, gvr: GVR, key: ObjectKey) -> o.Obj | None:
        r = self.control.get(gvr)
        return r.cache.get(key) if r else None

    def _secret(self, conn: o.Obj) -> o.Obj | None:
        namespace, name, _ = secret_ref(conn)
        return self._cached_get(SECRETS, ObjectKey(namespace, name))

    def _credentials(self, conn: o.Obj, secret: o.Obj | None = None) -> Credentials | SecretProblem:
        secret = secret if secret is not None else self._secret(conn)
        return credentials_for(conn, secret, self.namespace, yaml.safe_load)

    def _provider(self, creds: Credentials | SecretProblem | None) -> tuple[str, Any] | None:
        if not isinstance(creds, Credentials):
            return None
        return self.world.resolve_credentials(creds)

    def _plan_with_reads(
        self, plan_fn: Callable[[Any], Plan], view: Any, provider: tuple[str, Any] | None
    ) -> Plan:
        """Call a control-plane planner until it needs no more reads, answering them."""
        observed: dict[Read, Any] = {}
        for _ in range(MAX_READ_ROUNDS):
            plan = plan_fn(attrs.evolve(view, observed=dict(observed)))
            if not plan.needs:
                return plan
            for need in plan.needs:
                assert not isinstance(need, ReadFresh), need
                target = (self.cluster, self.user) if need.cluster == CONSUMER else provider
                observed[need] = self.world.read(target, need)
        raise RuntimeError(f"planner kept asking for reads: {plan.needs}")  # pragma: no cover

    def _reconcile_connection(self, item: tuple[Any, ...]) -> None:
        conn = self._cached_get(CONNECTIONS, ObjectKey("", item[1]))
        if conn is None:
            return
        secret = self._secret(conn)
        creds = self._credentials(conn, secret)
        view = ConnectionView(
            connection=conn,
            konnector_namespace=self.namespace,
            secret=secret,
            credentials=creds,
            observed={},
            now=self.world.now,
        )
        provider = self._provider(creds)
        plan = self._plan_with_reads(plan_connection, view, provider)
        if not self._execute(item, plan, provider):
            return
        verified = verified_fingerprint(conn, creds, plan)
        if verified != self.verified.get(item[1]):
            self.verified[item[1]] = verified
            self.queue.add(ENGAGE)

    def _reconcile_binding(self, item: tuple[Any, ...]) -> None:
        _, kind, namespace, name = item
        gvr = CLUSTERBINDINGS if kind == "ClusterBinding" else BINDINGS
        binding = self._cached_get(gvr, ObjectKey(namespace, name))
        if binding is None:
            return
        conn_name = connection_name(binding)
        conn = self._cached_get(CONNECTIONS, ObjectKey("", conn_name)) if conn_name else None
        creds = self._credentials(conn) if conn is not None else None
        view = BindingView(
            binding={**binding, "kind": kind},
            connection=conn,
            credentials=creds,
            observed={},
            now=self.world.now,
            mapper=self.mapper,
        )
        provider = self._provider(creds)
        plan = self._plan_with_reads(plan_binding, view, provider)
        self._execute(item, plan, provider)

    def _engage(self) -> None:
        """Stop-on-disengage: (re)build the syncers the kernel says should run."""
        engaged: dict[str, Engagement] = {}
        for conn in self._cached(CONNECTIONS):
            eng = engagement(conn, self._credentials(conn), self.verified.get(o.name(conn)))
            if eng is not None and self._provider(eng.credentials) is not None:
                engaged[eng.connection] = eng
        self.engaged = engaged
        desired = sync_targets(self._cached(CRDS), engaged)
        for gvr in list(self.syncers):
            if gvr not in desired or self.syncers[gvr].target != desired[gvr]:
                self.syncers.pop(gvr).stop(self.world)
        for gvr, target in desired.items():
            if gvr not in self.syncers:
                provider = self._provider(target.engagement.credentials)
                assert provider is not None
                syncer = Syncer(self, target, *provider)
                self.syncers[gvr] = syncer
                self.world.start_reflector(syncer.consumer)
                self.world.start_reflector(syncer.provider)
        self.resync()

    def _reconcile_instance(self, item: tuple[Any, ...]) -> None:
        _, gvr, key = item
        syncer = self.syncers.get(gvr)
        if syncer is None or not syncer.consumer.synced:
            return
        t = syncer.target
        coverage = resolve_coverage(
            gvr.group_resource,
            key.namespace,
            self._cached(CLUSTERBINDINGS),
            self._cached(BINDINGS),
            lambda b: condition_is_true(b, c.READY),
        )
        pkey = self.mapper.to_provider(gvr, key)
        view = InstanceView(
            gvr=gvr,
            namespaced=t.namespaced,
            consumer=syncer.consumer.cache.get(key),
            coverage=coverage,
            provider=ProviderView(syncer.provider.cache.get(pkey), fresh=False),
            local_cluster_uid=t.engagement.local_cluster_uid,
            mapper=self.mapper,
        )
        for _ in range(3):
            plan = self.planner(view)
            if not plan.needs:
                break
            for need in plan.needs:
                ref = need.target  # type: ignore[union-attr]
                obj = self.world.read_fresh(syncer.provider_cluster, ref, syncer.provider_user)
                if ref.gvr == NAMESPACES:
                    pv = attrs.evolve(view.provider, namespace_exists=obj is not None)
                else:
                    pv = ProviderView(
                        obj, fresh=True, namespace_exists=view.provider.namespace_exists
                    )
                view = attrs.evolve(view, provider=pv)
        else:  # pragma: no cover - the kernel asks for at most two reads
            raise RuntimeError(f"kernel kept asking for reads: {plan.needs}")
        self._execute(item, plan, (syncer.provider_cluster, syncer.provider_user))

    def _execute(self, item: tuple[Any, ...], plan: Plan, provider: tuple[str, Any] | None) -> bool:
        """Carry out a plan's actions in order; the first failure decides the requeue.
        True when every action was carried out (or its failure was harmless)."""
        self.world.record_plan(item, plan)
        for action in plan.actions:
            request = to_request(action, self.world.now)
            if request is None:
                continue
            try:
                if request.cluster == PROVIDER:
                    if provider is None:
                        raise unreachable()
                    server, user = self.world.clusters[provider[0]], provider[1]
                else:
                    server, user = self.consumer, self.user
                self.world.perform(request, server, user, action)
            except ApiError as err:
                verdict = judge(action, err)
                self.world.log(f"konnector: {type(action).__name__} {item[1:]}: {err}")
                if verdict.next is Next.CONTINUE:
                    continue
                if verdict.next is Next.REPLAN:
                    self.queue.add(item)
                elif verdict.next is Next.WAIT:
                    self.queue.add_after(item, verdict.after, self.world.now)
                else:
                    self.queue.add_rate_limited(item, self.world.now)
                return False
        self.queue.forget(item)
        if plan.requeue_after is not None:
            self.queue.add_after(item, plan.requeue_after, self.world.now)
        return True
