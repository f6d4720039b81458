"""Order independence of the one-apply bundle (issue 4; docs/design.md, "Decisions").

The bundle — kubeconfig Secret, Connection, ClusterBinding, namespaced Binding — is applied in
a random order with random pauses, under random faults; everything must become Ready and an
object must sync. Then the same objects are deleted in another random order (one synced object
marked Orphan, one not): everything must go, leaving nothing of ours behind on either side
except the Orphan copy — and the consumer CRD when a namespaced Binding was the last to go,
since a Binding never deletes a cluster-wide CRD (its objects stay, unsynced). The safety invariants are checked on every write throughout.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS, LEASES, NAMESPACES, SECRETS
from kbcore.objects import GVR, ObjectKey
from kbsim import scenario
from kbsim.konnector import SimKonnector
from kbsim.world import World
from tests.property.machine import base_world
from tests.unit.bindworld import get

WIDGETS = GVR("example.org", "v1", "widgets")

BUNDLE: list[tuple[GVR, dict[str, Any]]] = [
    (SECRETS, scenario.kubeconfig_secret("kube-bind", "provider-kubeconfig", "provider")),
    (
        CONNECTIONS,
        {
            "apiVersion": keys.API_VERSION,
            "kind": "Connection",
            "metadata": {"name": "p"},
            "spec": {
                "kubeconfigSecretRef": {"namespace": "kube-bind", "name": "provider-kubeconfig"}
            },
        },
    ),
    (
        CLUSTERBINDINGS,
        {
            "apiVersion": keys.API_VERSION,
            "kind": "ClusterBinding",
            "metadata": {"name": "w"},
            "spec": {"connectionRef": {"name": "p"}, "apis": [{"name": "widgets.example.org"}]},
        },
    ),
    (
        BINDINGS,
        {
            "apiVersion": keys.API_VERSION,
            "kind": "Binding",
            "metadata": {"namespace": "team-x", "name": "w"},
            "spec": {"connectionRef": {"name": "p"}, "apis": [{"name": "widgets.example.org"}]},
        },
    ),
]

FAULTS = st.sampled_from(
    [
        None,
        {"kind": "drop-watch-events", "cluster": "consumer", "duration": "3s"},
        {"kind": "api-errors", "cluster": "provider", "duration": "4s", "rate": 0.5, "code": 503},
        {"kind": "api-errors", "cluster": "consumer", "duration": "4s", "rate": 0.5, "code": 500},
        {"kind": "crash-konnector", "after_actions": 2, "restart_after": "2s"},
        {"kind": "delay-watch-events", "cluster": "consumer", "duration": "4s", "by": "2s"},
    ]
)
steps_st = st.lists(st.tuples(FAULTS, st.sampled_from([0.0, 0.5, 3.0])), min_size=4, max_size=4)


def _world(seed: int) -> World:
    world = base_world(seed)
    world.start_konnector(lambda: SimKonnector(world, "consumer", "kube-bind"))
    return world


def _ready(obj: dict[str, Any] | None) -> bool:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _run(world: World, gvrobjs: list[tuple[GVR, dict[str, Any]]], steps: Any, verb: str) -> None:
    consumer = world.clusters["consumer"]
    for (gvr, obj), (fault, pause) in zip(gvrobjs, steps, strict=True):
        if fault is not None:
            world.inject(fault["kind"], {k: v for k, v in fault.items() if k != "kind"})
        key = o.key_of(obj)
        if verb == "create":
            world.user_call(lambda gvr=gvr, obj=obj: consumer.create(gvr, o.deepcopy(obj)))
        else:
            world.user_call(lambda gvr=gvr, key=key: consumer.delete(gvr, key))
        world.advance(pause)


# Each example runs a whole bundle lifetime (~4 s): a tenth of the profile's examples.
@settings(report_multiple_bugs=False, max_examples=max(settings.default.max_examples // 10, 3))
@given(
    seed=st.integers(0, 2**16),
    apply_order=st.permutations(range(len(BUNDLE))),
    delete_order=st.permutations(range(len(BUNDLE))),
    apply_steps=steps_st,
    delete_steps=steps_st,
)
def test_bundle_converges_in_any_order_and_tears_down_completely(
    seed: int, apply_order: list[int], delete_order: list[int], apply_steps: Any, delete_steps: Any
) -> None:
    world = _world(seed)
    consumer = world.clusters["consumer"]
    _run(world, [BUNDLE[i] for i in apply_order], apply_steps, "create")
    assert world.settle(300), "apply did not settle"
    for gvr, obj in BUNDLE[1:]:
        assert _ready(get(world, "consumer", gvr, o.key_of(obj))), f"{obj['kind']} not Ready"

    keep = ObjectKey("team-x", "kept")
    gone = ObjectKey("default", "gone")
    for key, orphan in ((keep, True), (gone, False)):
        meta: dict[str, Any] = {"namespace": key.namespace, "name": key.name}
        if orphan:
            meta["annotations"] = {keys.ANNOTATION_DELETION_POLICY: "Orphan"}
        world.user_call(
            lambda meta=meta: consumer.create(
                WIDGETS,
                {
                    "apiVersion": "example.org/v1",
                    "kind": "Widget",
                    "metadata": meta,
                    "spec": {"size": "large"},
                },
            )
        )
    assert world.settle(300), "sync did not settle"
    for key in (keep, gone):
        assert get(world, "provider", WIDGETS, key) is not None, f"{key} not synced"

    _run(world, [BUNDLE[i] for i in delete_order], delete_steps, "delete")
    assert world.settle(600), "teardown did not settle"
    for gvr, obj in BUNDLE:
        assert get(world, "consumer", gvr, o.key_of(obj)) is None, f"{obj['kind']} left behind"
    crd = get(world, "consumer", scenario.CRDS, ObjectKey("", "widgets.example.org"))
    if delete_order.index(2) > delete_order.index(3):
        # The ClusterBinding went last: it deletes the CRD it installed.
        assert crd is None, "consumer CRD left behind by the last ClusterBinding"
    elif crd is not None:
        # A namespaced Binding never deletes the cluster-wide CRD; what stays is unsynced.
        for w in consumer.list(WIDGETS)[0]:
            assert keys.FINALIZER_SYNCER not in o.finalizers(w), o.key_of(w)
    provider = world.clusters["provider"]
    widgets = {o.key_of(w) for w in provider.list(WIDGETS)[0]}
    # The unbinding deleted the non-Orphan copy; the Orphan copy stays, as the user asked.
    assert widgets == {keep}, widgets
    assert provider.list(LEASES)[0] == [], "heartbeat Lease left behind"
    ours = {
        o.name(ns)
        for ns in provider.list(NAMESPACES, label_selector="core.kube-bind.io/managed=true")[0]
        if not o.is_deleting(ns)
    }
    # Namespaces the konnector created go once empty; team-x still holds the Orphan copy.
    assert ours <= {"team-x"}, ours
    assert world.monitor.held() == {name: "held" for name in world.monitor.held()}
