"""The convergence state machine: user edits, foreign actors and faults against kbsim.

Rules are the vocabulary of "What to absorb" item 6: user edits on the consumer, status writes
and foreign writes on the provider, watch faults, request faults, stale reads, compaction,
konnector crashes (also mid-plan), and the passage of time. After every step the safety
invariants of `kbsim.invariants` must hold. At the end faults stop and the world must converge
within a bounded virtual time (one backstop period), after which one more full round of the
kernel over every object plans no writes.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.sync.instance import InstanceView, Ownership, classify, plan_instance
from kbsim import scenario
from kbsim.apiserver import ADMIN
from kbsim.konnector import BACKSTOP_SECONDS, SimKonnector
from kbsim.world import World
from tests.property.strategies import with_reads
from tests.unit import bindworld

WIDGETS = GVR("example.org", "v1", "widgets")
NAMES = ("a", "b", "c")
NAMESPACES_USED = ("default", "team-x")
SIZES = ("s", "m", "l")
PROVIDER_FINALIZER = "provider.example.org/cleanup"
OTHER_CLUSTER_UID = "00000000-0000-0000-0000-00000000beef"

WIDGET_CRD: dict[str, Any] = bindworld.crd("widgets", "Widget")

DEEP_STATUS = 2_000
"""Twice Python's recursion budget, a fifth of what an API server stores: deep enough to find a
recursive walk, cheap enough to write in every run."""


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"step": value}
    return value


keys_st = st.tuples(st.sampled_from(NAMESPACES_USED), st.sampled_from(NAMES)).map(
    lambda t: ObjectKey(*t)
)


def widget(key: ObjectKey, **fields: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": key.namespace, "name": key.name},
    }
    obj.update(fields)
    return obj


def base_world(seed: int) -> World:
    """Two clusters: the core CRDs and namespaces on the consumer, widgets exported."""
    world = World(["provider", "consumer"], seed=seed)
    world.monitor.consumer_cluster = "consumer"
    consumer, provider = world.clusters["consumer"], world.clusters["provider"]
    from kbcore.schema import crdgen

    for crd in crdgen.all_crds():
        consumer.create(scenario.CRDS, o.deepcopy(dict(crd)))
    provider.create(scenario.CRDS, o.deepcopy(WIDGET_CRD))
    for ns in ("kube-bind", "team-x"):
        consumer.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
    world.settle(5)
    return world


def bind_world(world: World, spec: dict[str, Any], planner: Any = plan_instance) -> World:
    """The consumer side every machine starts from: the provider kubeconfig Secret, Connection
    `p`, ClusterBinding `w` with `spec` (plus its connectionRef), and a konnector, settled."""
    consumer = world.clusters["consumer"]
    consumer.create(
        GVR("", "v1", "secrets"),
        scenario.kubeconfig_secret("kube-bind", "provider-kubeconfig", "provider"),
    )
    consumer.create(
        GVR(keys.GROUP, keys.VERSION, "connections"),
        {
            "apiVersion": keys.API_VERSION,
            "kind": "Connection",
            "metadata": {"name": "p"},
            "spec": {
                "kubeconfigSecretRef": {"namespace": "kube-bind", "name": "provider-kubeconfig"}
            },
        },
    )
    consumer.create(
        GVR(keys.GROUP, keys.VERSION, "clusterbindings"),
        {
            "apiVersion": keys.API_VERSION,
            "kind": "ClusterBinding",
            "metadata": {"name": "w"},
            "spec": {"connectionRef": {"name": "p"}, **spec},
        },
    )
    world.start_konnector(lambda: SimKonnector(world, "consumer", "kube-bind", planner=planner))
    world.settle(10)
    return world


def build_world(
    seed: int, policy: str, planner: Any, related: tuple[dict[str, Any], ...] = ()
) -> World:
    spec: dict[str, Any] = {"apis": [{"name": "widgets.example.org"}], "conflictPolicy": policy}
    if related:
        spec["relatedResources"] = list(related)
    return bind_world(base_world(seed), spec, planner)


class WorldMachine(RuleBasedStateMachine):
    """What every machine here shares: a kbsim world, users whose requests may fail, watch
    faults and konnector crashes, and the safety invariants of `kbsim.invariants` after every
    step. Each machine adds its own edits, request faults and passage of time."""

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    def _user(self, fn: Any) -> None:
        # A user's request can fail (conflict, not found, terminating): that is fine.
        with contextlib.suppress(ApiError):
            self.w.user_call(fn)

    @rule(
        kind=st.sampled_from(["drop-watch-events", "delay-watch-events", "stale-reads"]),
        cluster=st.sampled_from(["provider", "consumer"]),
        seconds=st.floats(0.1, 10),
    )
    def watch_fault(self, kind: str, cluster: str, seconds: float) -> None:
        self.w.inject(kind, {"cluster": cluster, "duration": seconds})

    @rule(after=st.none() | st.integers(0, 3))
    def crash(self, after: int | None) -> None:
        params: dict[str, Any] = {"restart_after": 0.5}
        if after is not None:
            params["after_actions"] = after
        self.w.inject("crash-konnector", params)

    @invariant()
    def safety(self) -> None:
        if self.world is not None:
            assert not self.w.monitor.violations, self.w.monitor.violations


class ConvergenceMachine(WorldMachine):
    planner: Any = staticmethod(plan_instance)

    @initialize(seed=st.integers(0, 2**16), policy=st.sampled_from(["Fail", "Adopt"]))
    def setup(self, seed: int, policy: str) -> None:
        self.world = build_world(seed, policy, type(self).planner)

    # -- helpers ------------------------------------------------------------------------------
    def _server(self, cluster: str) -> Any:
        return self.w.clusters[cluster]

    def _get(self, cluster: str, key: ObjectKey) -> dict[str, Any] | None:
        try:
            return self._server(cluster).get(WIDGETS, key)
        except ApiError:
            return None

    # -- user edits on the consumer ----------------------------------------------------------
    @rule(key=keys_st, size=st.sampled_from(SIZES), orphan=st.booleans())
    def consumer_create(self, key: ObjectKey, size: str, orphan: bool) -> None:
        meta_extra = {"annotations": {keys.ANNOTATION_DELETION_POLICY: "Orphan"}} if orphan else {}
        obj = widget(key, spec={"size": size})
        obj["metadata"].update(meta_extra)
        self._user(lambda: self._server("consumer").create(WIDGETS, obj, user=ADMIN))

    @rule(key=keys_st, size=st.sampled_from(SIZES))
    def consumer_update(self, key: ObjectKey, size: str) -> None:
        self._user(
            lambda: self._server("consumer").patch(
                WIDGETS, key, {"spec": {"size": size}}, "merge", user=ADMIN
            )
        )

    @rule(key=keys_st)
    def consumer_delete(self, key: ObjectKey) -> None:
        self._user(lambda: self._server("consumer").delete(WIDGETS, key, user=ADMIN))

    # -- the provider's own actors -------------------------------------------------------------
    @rule(
        key=keys_st,
        phase=st.sampled_from(["Pending", "Running", "Failed"]),
        depth=st.sampled_from([0, 0, DEEP_STATUS]),
    )
    def provider_status(self, key: ObjectKey, phase: str, depth: int) -> None:
        """The provider's controller writes a status; sometimes nested deeper than Python
        recurses (a real server stores up to 10,000 levels), which must sync all the same."""
        status: dict[str, Any] = {"phase": phase}
        if depth:
            status["trace"] = nested(depth, phase)
        self._user(
            lambda: self._server("provider").patch(
                WIDGETS,
                key,
                {"status": status},
                "merge",
                subresource="status",
                user=ADMIN,
                field_manager="provider-controller",
            )
        )

    def _synced_keys(self) -> list[ObjectKey]:
        """Keys of provider copies the konnector made (they carry our cluster marker)."""
        if self.world is None:
            return []
        copies = self._server("provider").list(WIDGETS)[0]
        return sorted(
            o.key_of(p)
            for p in copies
            if keys.ANNOTATION_CONSUMER_CLUSTER_UID in o.annotations_of(p)
        )

    @precondition(lambda self: bool(self._synced_keys()))
    @rule(data=st.data())
    def provider_deep_status(self, data: st.DataObject) -> None:
        """The provider's controller writes a deep status on a copy the konnector syncs, which
        the konnector must mirror (a recursive walk in the kernel raises here)."""
        key = data.draw(st.sampled_from(self._synced_keys()))
        self.provider_status(key, "Deep", DEEP_STATUS)

    @rule(key=keys_st, size=st.sampled_from(SIZES), marked=st.booleans())
    def foreign_create(self, key: ObjectKey, size: str, marked: bool) -> None:
        """Someone else creates a provider object: unmarked, or another consumer's copy."""
        obj = widget(key, spec={"size": "foreign-" + size})
        if marked:
            obj["metadata"]["annotations"] = {
                keys.ANNOTATION_CONSUMER_CLUSTER_UID: OTHER_CLUSTER_UID,
                keys.ANNOTATION_CONSUMER_OBJECT_UID: "someone-elses-object",
            }
        self._user(
            lambda: self._server("provider").create(
                WIDGETS, obj, user=ADMIN, field_manager="foreign"
            )
        )

    @rule(key=keys_st, size=st.sampled_from(SIZES), marked=st.booleans())
    def conflict(self, key: ObjectKey, size: str, marked: bool) -> None:
        """A provider object exists before the consumer creates its namesake (upstream's e2e step 7)."""
        self.foreign_create(key, size, marked)
        self.consumer_create(key, size, orphan=False)
        self.w.advance(1.0)  # long enough for the konnector to notice the conflict

    @rule(key=keys_st, size=st.sampled_from(SIZES))
    def foreign_edit(self, key: ObjectKey, size: str) -> None:
        self._user(
            lambda: self._server("provider").patch(
                WIDGETS,
                key,
                {"spec": {"size": "edited-" + size}},
                "merge",
                user=ADMIN,
                field_manager="foreign",
            )
        )

    @rule(key=keys_st)
    def foreign_delete(self, key: ObjectKey) -> None:
        self._user(lambda: self._server("provider").delete(WIDGETS, key, user=ADMIN))

    @rule(key=keys_st, hold=st.booleans())
    def provider_finalizer(self, key: ObjectKey, hold: bool) -> None:
        """A provider-side controller holds (or releases) its own finalizer on an object."""
        fins = [PROVIDER_FINALIZER] if hold else []
        self._user(
            lambda: self._server("provider").patch(
                WIDGETS,
                key,
                {"metadata": {"finalizers": fins}},
                "merge",
                user=ADMIN,
                field_manager="provider-controller",
            )
        )

    @rule()
    def bind_to_itself(self) -> None:
        """A user applies a kubeconfig that points back at the consumer cluster itself."""
        consumer = self._server("consumer")
        secret = scenario.kubeconfig_secret("kube-bind", "self-kubeconfig", "consumer")
        self._user(lambda: consumer.create(GVR("", "v1", "secrets"), secret, user=ADMIN))
        conn = {
            "apiVersion": keys.API_VERSION,
            "kind": "Connection",
            "metadata": {"name": "myself"},
            "spec": {
                "kubeconfigSecretRef": {"namespace": "kube-bind", "name": "self-kubeconfig"},
                "schema": {"pullPolicy": "All"},
            },
        }
        self._user(
            lambda: consumer.create(GVR(keys.GROUP, keys.VERSION, "connections"), conn, user=ADMIN)
        )

    # -- faults and time (crashes: WorldMachine) ----------------------------------------------
    @rule(  # WorldMachine's watch faults, and duplicated events
        kind=st.sampled_from(
            ["drop-watch-events", "delay-watch-events", "duplicate-watch-events", "stale-reads"]
        ),
        cluster=st.sampled_from(["provider", "consumer"]),
        seconds=st.floats(0.1, 10),
    )
    def watch_fault(self, kind: str, cluster: str, seconds: float) -> None:
        self.w.inject(kind, {"cluster": cluster, "duration": seconds})

    @rule(
        cluster=st.sampled_from(["provider", "consumer"]),
        code=st.sampled_from([500, 429, 504]),
        after_write=st.booleans(),
        seconds=st.floats(0.1, 10),
    )
    def api_errors(self, cluster: str, code: int, after_write: bool, seconds: float) -> None:
        self.w.inject(
            "api-errors",
            {
                "cluster": cluster,
                "code": code,
                "rate": 0.5,
                "after_write": after_write,
                "duration": seconds,
                "retry_after": 1,
            },
        )

    @rule(cluster=st.sampled_from(["provider", "consumer"]))
    def compact(self, cluster: str) -> None:
        self.w.inject("compact", {"cluster": cluster})

    @rule(seconds=st.floats(0.001, 5))
    def run(self, seconds: float) -> None:
        self.w.advance(seconds)

    # -- properties (the safety invariant: WorldMachine) -------------------------------------
    def teardown(self) -> None:
        if self.world is None:
            return
        check_liveness(self.w, type(self).planner)


def check_liveness(world: World, planner: Any = plan_instance) -> None:
    """Once faults stop: converge within one backstop period, then a full round plans no writes."""
    end_faults(world)
    release_provider_finalizers(world)
    assert_settles(world, 120)
    world.advance(BACKSTOP_SECONDS + 1)
    assert_settles(world, 120, " after backstop")

    consumer = world.clusters["consumer"]
    local_uid = o.uid(consumer.get(NAMESPACES, ObjectKey("", "kube-system")))
    for c in consumer.list(WIDGETS)[0]:
        key = o.key_of(c)
        p = provider_copy(world, WIDGETS, c)
        ownership = classify(p, local_uid, o.uid(c))
        ann = o.annotations_of(c)
        if ownership is Ownership.OURS:
            assert o.json_equal(p.get("spec"), c.get("spec")), f"{key}: spec not synced"
            assert o.json_equal(c.get("status"), p.get("status")), f"{key}: status not mirrored"
            assert keys.ANNOTATION_CONFLICT not in ann, f"{key}: stale conflict annotation"
        else:
            assert ann.get(keys.ANNOTATION_CONFLICT), f"{key}: {ownership} but no conflict mark"
    for c in consumer.list(WIDGETS)[0]:
        plan = full_round_plan(world, c, local_uid, planner)
        assert plan.writes == (), f"{o.key_of(c)}: converged world still plans {plan}"


def end_faults(world: World) -> None:
    """Liveness's premise: every fault ends now and the konnector stops crashing."""
    for f in world.faults:
        f.end = min(f.end, world.now)
    world.crash_after = None


def assert_settles(world: World, limit: float, when: str = "") -> None:
    # Safety first: a write the monitor flagged while settling is the failure to report, not
    # the loop it may have started.
    settled = world.settle(limit)
    assert not world.monitor.violations, world.monitor.violations
    assert settled, f"did not settle{when}: {world.logs[-5:]}"


def provider_copy(world: World, gvr: GVR, c: dict[str, Any]) -> dict[str, Any]:
    """The provider copy of consumer object `c`, which a settled world must have synced."""
    key = o.key_of(c)
    assert not o.is_deleting(c), f"{gvr.resource} {key} still deleting: {c['metadata']}"
    try:
        p = world.clusters["provider"].get(gvr, key)
    except ApiError:
        p = None
    assert p is not None, f"{gvr.resource} {key}: no provider copy"
    return p


def release_provider_finalizers(world: World) -> None:
    """Fairness: the provider's own controllers eventually finish their cleanup. Without this a
    finalizer held forever on the provider would (rightly) keep a deletion waiting forever."""
    provider = world.clusters["provider"]
    for p in provider.list(WIDGETS)[0]:
        if PROVIDER_FINALIZER in o.finalizers(p):
            rest = [f for f in o.finalizers(p) if f != PROVIDER_FINALIZER]
            world.user_call(
                lambda p=p, rest=rest: provider.patch(
                    WIDGETS,
                    o.key_of(p),
                    {"metadata": {"finalizers": rest}},
                    "merge",
                    user=ADMIN,
                    field_manager="provider-controller",
                )
            )


def full_round_plan(world: World, c: dict[str, Any], local_uid: str, planner: Any) -> Any:
    """The plan the (real) kernel makes for `c` from fresh reads of everything."""
    provider = world.clusters["provider"]
    key = o.key_of(c)
    try:
        p = provider.get(WIDGETS, key)
    except ApiError:
        p = None
    try:
        provider.get(NAMESPACES, ObjectKey("", key.namespace))
        ns_exists = True
    except ApiError:
        ns_exists = False
    from kbcore.sync.coverage import Coverage

    bindings = world.clusters["consumer"].list(GVR(keys.GROUP, keys.VERSION, "clusterbindings"))[0]
    policy = (bindings[0].get("spec") or {}).get("conflictPolicy", "Fail")
    view = InstanceView(WIDGETS, True, c, Coverage(True, policy), p, local_uid)
    view = with_reads(view, fresh=True, namespace_exists=ns_exists)
    plan = planner(view)
    assert not plan.needs
    return plan


__all__ = ["ConvergenceMachine", "ObjectRef", "check_liveness", "precondition"]


# -- provider schema changes (issue 12) --------------------------------------------------------

GADGETS = GVR("example.org", "v1", "gadgets")
GADGET_CRD: dict[str, Any] = o.deepcopy(WIDGET_CRD)
GADGET_CRD["metadata"]["name"] = "gadgets.example.org"
GADGET_CRD["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget",
                               "listKind": "GadgetList"}  # fmt: skip
CRDS = scenario.CRDS
WIDGETS_API, GADGETS_API = "widgets.example.org", "gadgets.example.org"
SCHEMA_CHANGES = (
    "add-field", "add-version", "move-storage", "drop-version", "unserve-version",
    "restore-singular", "no-webhook", "restore",
)  # fmt: skip
HOSTILE_SCHEMA_CHANGES = ("flip-scope", "migrate-version", "singular", "webhook")
WEBHOOK = {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
           "clientConfig": {"url": "https://converter.provider.example/convert"}}}  # fmt: skip


def build_schema_world(seed: int) -> World:
    """Widgets (whose schema the provider changes) and gadgets (never changed), both listed by
    one ClusterBinding."""
    world = base_world(seed)
    provider = world.clusters["provider"]
    provider.create(CRDS, o.deepcopy(GADGET_CRD))
    return bind_world(world, {"apis": [{"name": WIDGETS_API}, {"name": GADGETS_API}]})


def _version(name: str, storage: bool) -> dict[str, Any]:
    v = o.deepcopy(WIDGET_CRD["spec"]["versions"][0])
    v.update(name=name, storage=storage)
    return v


def addressing(crd: dict[str, Any]) -> tuple[Any, ...]:
    """The fields a consumer CRD can never change once installed, server defaults applied."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    kind = names.get("kind", "")
    return (spec.get("group"), spec.get("scope"), names.get("plural"), kind,
            names.get("singular") or kind.lower(), names.get("listKind") or kind + "List")  # fmt: skip


class SchemaChangeMachine(WorldMachine):
    """The provider changes a bound API's schema at any time, compatibly or not, while users
    edit objects of it and of a second API of the same binding, under faults. Safety: every
    invariant of `kbsim.invariants` after every step (no consumer CRD write changes what cannot
    change, no hash recorded that was not written, no write at a scope the consumer does not
    have). Liveness, once faults stop: the world settles (a refused API pauses, never loops);
    the API is bound exactly when the provider's schema is one the consumer CRD can follow,
    and then its CRD follows it and its objects sync; the other API syncs throughout."""

    @initialize(seed=st.integers(0, 2**16))
    def setup(self, seed: int) -> None:
        self.world = build_schema_world(seed)
        # Objects of both APIs are synced before the provider changes anything.
        for api, key in ((WIDGETS_API, ObjectKey("default", "a")),
                         (WIDGETS_API, ObjectKey("team-x", "b")),
                         (GADGETS_API, ObjectKey("default", "a"))):  # fmt: skip
            self.consumer_create(api, key, "s")
        self.w.settle(30)

    def _gvr(self, api: str, cluster: str = "consumer") -> GVR:
        """The GVR objects of `api` are served at now (widgets may have moved version)."""
        with contextlib.suppress(ApiError):
            crd = self.w.clusters[cluster].get(CRDS, ObjectKey("", api))
            storage = next(v["name"] for v in crd["spec"]["versions"] if v["storage"])
            return GVR("example.org", storage, api.split(".")[0])
        return GVR("example.org", "v1", api.split(".")[0])

    # -- users, on both APIs -------------------------------------------------------------------
    @rule(api=st.sampled_from([WIDGETS_API, GADGETS_API]), key=keys_st,
          size=st.sampled_from(SIZES))  # fmt: skip
    def consumer_create(self, api: str, key: ObjectKey, size: str) -> None:
        gvr = self._gvr(api)
        obj = {"apiVersion": gvr.api_version, "kind": api.split(".")[0][:-1].title(),
               "metadata": {"namespace": key.namespace, "name": key.name},
               "spec": {"size": size}}  # fmt: skip
        self._user(lambda: self.w.clusters["consumer"].create(gvr, obj, user=ADMIN))

    @rule(api=st.sampled_from([WIDGETS_API, GADGETS_API]), key=keys_st,
          size=st.sampled_from(SIZES))  # fmt: skip
    def consumer_update(self, api: str, key: ObjectKey, size: str) -> None:
        gvr = self._gvr(api)
        self._user(
            lambda: self.w.clusters["consumer"].patch(
                gvr, key, {"spec": {"size": size}}, "merge", user=ADMIN
            )
        )

    @rule(api=st.sampled_from([WIDGETS_API, GADGETS_API]), key=keys_st)
    def consumer_delete(self, api: str, key: ObjectKey) -> None:
        gvr = self._gvr(api)
        self._user(lambda: self.w.clusters["consumer"].delete(gvr, key, user=ADMIN))

    # -- the provider changes the widgets schema ---------------------------------------------
    @rule(change=st.sampled_from(HOSTILE_SCHEMA_CHANGES))
    def hostile_schema_change(self, change: str) -> None:
        """A change the consumer CRD cannot follow (or a conversion webhook)."""
        self.schema_change(change)

    @rule(change=st.sampled_from(SCHEMA_CHANGES))
    def schema_change(self, change: str) -> None:
        provider = self.w.clusters["provider"]
        key = ObjectKey("", WIDGETS_API)
        try:
            crd = provider.get(CRDS, key)
        except ApiError:
            crd = None
        if change in ("flip-scope", "migrate-version", "restore") or crd is None:
            new = o.deepcopy(WIDGET_CRD)
            if change == "flip-scope" and crd is not None:
                new = {**new, "spec": {**o.deepcopy(crd["spec"]),
                                       "scope": "Cluster" if crd["spec"]["scope"] == "Namespaced"
                                       else "Namespaced"}}  # fmt: skip
            elif change == "migrate-version" and crd is not None:
                # Straight to the next version, the old one gone (a provider that re-creates).
                last = max(int(v["name"][1:]) for v in crd["spec"]["versions"])
                new["spec"] = {
                    **o.deepcopy(crd["spec"]),
                    "versions": [_version(f"v{last + 1}", True)],
                }
            # A CRD's scope cannot be updated: the provider deletes it (its objects go with
            # it) and creates it anew.
            self._user(lambda: provider.delete(CRDS, key, user=ADMIN))
            for _ in range(30):  # the CRD's objects are deleted first
                self.w.advance(1.0)
                try:
                    provider.get(CRDS, key)
                except ApiError:
                    break
            self._user(lambda: provider.create(CRDS, new, user=ADMIN))
            return
        spec = crd["spec"]
        versions = spec["versions"]
        names = [v["name"] for v in versions]
        storage = next(v["name"] for v in versions if v["storage"])
        if change == "add-field":
            for v in versions:
                props = v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                props["colour"] = {"type": "string"}
        elif change == "add-version" and "v2" not in names:
            versions.append(_version("v2", storage=False))
        elif change == "move-storage":
            served = [v for v in versions if v["served"] and v["name"] != storage]
            if served:
                for v in versions:
                    v["storage"] = v is served[0]
        elif change in ("drop-version", "unserve-version"):
            others = [v for v in versions if not v["storage"] and v["served"]]
            if not others:
                return
            if change == "unserve-version":
                others[0]["served"] = False
            else:
                # The provider migrated its own objects first: only then may it drop one.
                self._user(
                    lambda: provider.patch(
                        CRDS,
                        key,
                        {"status": {"storedVersions": [storage]}},
                        "merge",
                        subresource="status",
                        user=ADMIN,
                    )
                )
                versions.remove(others[0])
        elif change in ("singular", "restore-singular"):
            spec["names"]["singular"] = "wdgt" if change == "singular" else "widget"
        elif change == "webhook":  # refused (R3), but the provider still serves the API
            spec["conversion"] = o.deepcopy(WEBHOOK)
        elif change == "no-webhook":
            spec["conversion"] = {"strategy": "None"}
        self._user(lambda: provider.update(CRDS, crd, user=ADMIN))

    # -- faults and time (watch faults and crashes: WorldMachine) ------------------------------
    @rule(cluster=st.sampled_from(["provider", "consumer"]), seconds=st.floats(0.1, 10))
    def api_errors(self, cluster: str, seconds: float) -> None:
        self.w.inject(
            "api-errors",
            {
                "cluster": cluster,
                "code": 500,
                "rate": 0.5,
                "after_write": False,
                "duration": seconds,
            },
        )

    @rule(seconds=st.floats(0.001, 40))
    def run(self, seconds: float) -> None:
        self.w.advance(seconds)

    def teardown(self) -> None:
        if self.world is not None:
            check_schema_liveness(self.w)


def _entry(binding: dict[str, Any], api: str) -> dict[str, Any]:
    return next(e for e in binding["status"]["boundAPIs"] if e["name"] == api)


def _api_ready(entry: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in entry.get("conditions", []))


def _synced(world: World, gvr: GVR, local_uid: str) -> None:
    for c in world.clusters["consumer"].list(gvr)[0]:
        key = o.key_of(c)
        p = provider_copy(world, gvr, c)
        assert classify(p, local_uid, o.uid(c)) is Ownership.OURS, f"{key}: copy not ours"
        assert p.get("spec") == c.get("spec"), f"{key}: spec {p.get('spec')} != {c.get('spec')}"


def check_schema_liveness(world: World) -> None:
    from kbcore.schema import policy as kschema

    end_faults(world)
    assert_settles(world, 300)
    world.advance(31.0)  # one resync: the binding has seen the provider's last schema
    assert_settles(world, 300, " after a resync")
    consumer, provider = world.clusters["consumer"], world.clusters["provider"]
    local_uid = o.uid(consumer.get(NAMESPACES, ObjectKey("", "kube-system")))
    binding = consumer.get(GVR(keys.GROUP, keys.VERSION, "clusterbindings"), ObjectKey("", "w"))
    # The other API of the binding syncs whatever happens to widgets.
    assert _api_ready(_entry(binding, GADGETS_API)), _entry(binding, GADGETS_API)
    _synced(world, GADGETS, local_uid)

    live = consumer.get(CRDS, ObjectKey("", WIDGETS_API))
    try:
        theirs = provider.get(CRDS, ObjectKey("", WIDGETS_API))
    except ApiError:
        theirs = None
    entry = _entry(binding, WIDGETS_API)
    # What the consumer CRD can follow, stated independently of the kernel's gate.
    webhook = (
        theirs is not None and (theirs["spec"].get("conversion") or {}).get("strategy") == "Webhook"
    )
    followable = theirs is not None and not webhook
    if followable:
        assert theirs is not None
        desired = kschema.for_consumer(theirs, "p")
        served = {v["name"] for v in desired["spec"]["versions"]}
        followable = (
            addressing(desired) == addressing(live)
            and set(live["status"]["storedVersions"]) <= served
        )
    assert _api_ready(entry) == followable, (followable, entry, theirs and theirs["spec"])
    ready = any(c["type"] == "Ready" and c["status"] == "True"
                for c in binding["status"]["conditions"])  # fmt: skip
    assert ready == followable, binding["status"]["conditions"]
    # The recorded hash is the one the live CRD carries, refused or not.
    assert entry.get("crdHash") == o.annotations_of(live)[keys.ANNOTATION_SCHEMA_HASH], entry
    if followable:
        assert theirs is not None
        assert live["spec"] == kschema.for_consumer(theirs, "p")["spec"], "CRD not followed"
        storage = next(v["name"] for v in live["spec"]["versions"] if v["storage"])
        _synced(world, GVR("example.org", storage, "widgets"), local_uid)
    else:
        reasons = {c["reason"] for c in entry["conditions"] if c["type"] == "Ready"}
        assert reasons <= {"IncompatibleSchemaChange", "APINotExported", "ConversionWebhook"}, entry
        # Paused: a new object and an edit of the refused API are not synced (nor tried).
        storage = next(v["name"] for v in live["spec"]["versions"] if v["storage"])
        gvr = GVR("example.org", storage, "widgets")
        fresh = {"apiVersion": gvr.api_version, "kind": "Widget",
                 "metadata": {"namespace": "default", "name": "paused"}, "spec": {"size": "s"}}  # fmt: skip
        with contextlib.suppress(ApiError):
            world.user_call(lambda: consumer.create(gvr, fresh, user=ADMIN))
        for c in consumer.list(gvr)[0]:
            with contextlib.suppress(ApiError):
                world.user_call(
                    lambda c=c: consumer.patch(
                        gvr, o.key_of(c), {"spec": {"size": "edited"}}, "merge", user=ADMIN
                    )
                )
        before = world.writes[("provider", WIDGETS_API)]
        world.advance(60.0)
        tried = world.writes[("provider", WIDGETS_API)] - before
        assert tried == 0, f"refused API still synced: {tried} write(s) to provider widgets"
