"""The simulated konnector: the same kernel entry points the real shell calls, on kbsim clusters.

It keeps nothing the real konnector would not keep in memory (caches, a work queue, which
syncers run), so a crash fault simply drops the object and a restart builds a new one from
lists. Every decision comes from kbcore: `plan_instance` decides what to write,
`resolve_coverage` which binding covers an object, `consumer_key_for_provider` which key a
provider event wakes, `to_request` how an action becomes a request, `judge` what a failure means.

Until the Connection/binding control plane exists in the kernel, the Connection's identity and
readiness are taken as given: a Connection is engaged when its kubeconfig Secret names a
simulated cluster (`https://<name>.kbsim`), the local cluster UID is the consumer's kube-system
UID, and a binding is ready when its Connection is engaged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import yaml

from kbcore import objects as o
from kbcore.actions import PROVIDER, Plan
from kbcore.api import keys
from kbcore.coverage import resolve_coverage
from kbcore.crds import served_resource
from kbcore.errors import ApiError
from kbcore.instance import (
    NAMESPACES,
    InstanceView,
    ProviderView,
    consumer_key_for_provider,
    plan_instance,
)
from kbcore.mapper import IDENTITY, Mapper
from kbcore.objects import GVR, ObjectKey
from kbcore.requests import Next, judge, to_request
from kbcore.workqueue import WorkQueue
from kbsim.reflector import Reflector

if TYPE_CHECKING:
    from kbsim.world import World

CONNECTIONS = GVR(keys.GROUP, keys.VERSION, "connections")
CLUSTERBINDINGS = GVR(keys.GROUP, keys.VERSION, "clusterbindings")
BINDINGS = GVR(keys.GROUP, keys.VERSION, "bindings")
CRDS = GVR("apiextensions.k8s.io", "v1", "customresourcedefinitions")
SECRETS = GVR("", "v1", "secrets")

CONTROL = ("control",)
BACKSTOP_SECONDS = 600.0
"""Every cached object is looked at again this often even without events (upstream: 10 min)."""

Planner = Callable[[InstanceView], Plan]


@attrs.frozen
class Engagement:
    """A Connection the konnector syncs through: which provider, as whom, with which identity."""

    connection: str
    provider: str
    user: Any
    local_cluster_uid: str


@attrs.frozen
class SyncTarget:
    gvr: GVR
    namespaced: bool
    engagement: Engagement


class Syncer:
    """One bound API: a consumer reflector over all namespaces and a provider reflector over our
    managed copies."""

    def __init__(self, konnector: SimKonnector, target: SyncTarget) -> None:
        self.target = target
        gvr, world = target.gvr, konnector.world
        self.consumer = Reflector(
            konnector.consumer,
            gvr,
            user=konnector.user,
            on_event=lambda _t, old, new: konnector.enqueue_instance(gvr, old, new),
        )
        self.provider = Reflector(
            world.clusters[target.engagement.provider],
            gvr,
            user=target.engagement.user,
            label_selector=f"{keys.LABEL_MANAGED}=true",
            on_event=lambda _t, old, new: konnector.enqueue_provider(self, old, new),
        )
        world.attach(konnector.cluster, self.consumer)
        world.attach(target.engagement.provider, self.provider)

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
        self.stopped = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        for gvr in (CONNECTIONS, CLUSTERBINDINGS, BINDINGS, CRDS, SECRETS):
            r = Reflector(
                self.consumer,
                gvr,
                user=self.user,
                on_event=lambda _t, _old, _new: self.queue.add(CONTROL),
            )
            self.control[gvr] = r
            self.world.attach(self.cluster, r)
        self.queue.add(CONTROL)
        self.world.schedule(BACKSTOP_SECONDS, "backstop", self._backstop)

    def _backstop(self) -> None:
        if self.stopped:
            return
        self.resync()
        self.world.schedule(BACKSTOP_SECONDS, "backstop", self._backstop)

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
        try:
            if item == CONTROL:
                self._reconcile_control()
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

    def _engagements(self) -> dict[str, Engagement]:
        secrets = {o.key_of(s): s for s in self._cached(SECRETS)}
        kube_system = self.consumer.get(NAMESPACES, ObjectKey("", "kube-system"), user=self.user)
        local_uid = o.uid(kube_system)
        out: dict[str, Engagement] = {}
        for conn in self._cached(CONNECTIONS):
            if o.is_deleting(conn):
                continue
            ref = (conn.get("spec") or {}).get("kubeconfigSecretRef") or {}
            secret = secrets.get(ObjectKey(ref.get("namespace", ""), ref.get("name", "")))
            if secret is None:
                continue
            target = self.world.resolve_kubeconfig(secret, ref.get("key") or "kubeconfig")
            if target is None:
                continue
            provider, user = target
            out[o.name(conn)] = Engagement(o.name(conn), provider, user, local_uid)
        return out

    def _binding_ready(self, engaged: dict[str, Engagement]) -> Callable[[Any], bool]:
        def ready(binding: Any) -> bool:
            ref = (binding.get("spec") or {}).get("connectionRef") or {}
            return ref.get("name", "") in engaged

        return ready

    def _reconcile_control(self) -> None:
        engaged = self.engaged = self._engagements()
        crds = {o.name(c): c for c in self._cached(CRDS)}
        desired: dict[GVR, SyncTarget] = {}
        bindings = sorted(self._cached(CLUSTERBINDINGS), key=o.name) + sorted(
            self._cached(BINDINGS), key=lambda b: (o.namespace(b), o.name(b))
        )
        for b in bindings:
            if o.is_deleting(b):
                continue
            spec = b.get("spec") or {}
            eng = engaged.get((spec.get("connectionRef") or {}).get("name", ""))
            if eng is None:
                continue
            for api in spec.get("apis") or []:
                crd = crds.get(api.get("name", "")) if isinstance(api, dict) else None
                served = served_resource(crd) if crd else None
                if served is not None and served.gvr not in desired:
                    desired[served.gvr] = SyncTarget(served.gvr, served.namespaced, eng)
        for gvr in list(self.syncers):
            if gvr not in desired or self.syncers[gvr].target != desired[gvr]:
                self.syncers.pop(gvr).stop(self.world)
        for gvr, target in desired.items():
            if gvr not in self.syncers:
                syncer = Syncer(self, target)
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
        engaged = self.engaged
        coverage = resolve_coverage(
            gvr.group_resource,
            key.namespace,
            self._cached(CLUSTERBINDINGS),
            self._cached(BINDINGS),
            self._binding_ready(engaged),
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
        provider = self.world.clusters[t.engagement.provider]
        for _ in range(3):
            plan = self.planner(view)
            if not plan.needs:
                break
            for need in plan.needs:
                obj = self.world.read_fresh(t.engagement.provider, need.target, t.engagement.user)
                if need.target.gvr == NAMESPACES:
                    pv = attrs.evolve(view.provider, namespace_exists=obj is not None)
                else:
                    pv = ProviderView(
                        obj, fresh=True, namespace_exists=view.provider.namespace_exists
                    )
                view = attrs.evolve(view, provider=pv)
        else:  # pragma: no cover - the kernel asks for at most two reads
            raise RuntimeError(f"kernel kept asking for reads: {plan.needs}")
        self.world.record_plan(item, plan)
        servers = {PROVIDER: (provider, t.engagement.user), "consumer": (self.consumer, self.user)}
        for action in plan.actions:
            request = to_request(action, self.world.now)
            if request is None:
                continue
            server, user = servers[request.cluster]
            try:
                self.world.perform(request, server, user, action)
            except ApiError as err:
                verdict = judge(action, err)
                self.world.log(f"konnector: {type(action).__name__} {item[2]}: {err}")
                if verdict.next is Next.CONTINUE:
                    continue
                if verdict.next is Next.REPLAN:
                    self.queue.add(item)
                elif verdict.next is Next.WAIT:
                    self.queue.add_after(item, verdict.after, self.world.now)
                else:
                    self.queue.add_rate_limited(item, self.world.now)
                return
        self.queue.forget(item)
        if plan.requeue_after is not None:
            self.queue.add_after(item, plan.requeue_after, self.world.now)


def parse_kubeconfig(text: str) -> tuple[str, str] | None:
    """(server URL, bearer token) of the current context, or None when unusable."""
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(cfg, dict):
        return None
    ctx_name = cfg.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in cfg.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster") or {} for c in cfg.get("clusters") or []}
    users = {u.get("name"): u.get("user") or {} for u in cfg.get("users") or []}
    ctx = contexts.get(ctx_name)
    if ctx is None:
        return None
    server = clusters.get(ctx.get("cluster"), {}).get("server", "")
    token = users.get(ctx.get("user"), {}).get("token", "")
    return (server, token) if server else None
