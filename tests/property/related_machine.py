"""The convergence machine with related resources and a hostile provider (kbcore.control.related T1-T7).

`RelatedMachine` is `ConvergenceMachine` with a ClusterBinding whose `relatedResources` rules are
drawn from `RULES` (including a FromConsumer rule without a selector, which T6 makes invalid),
and more actors: the provider publishes Secrets and ConfigMaps anywhere it likes — labelled to
match or not, in `kube-system`, `kube-public`, `kube-node-lease`, the konnector's namespace, a
namespace the consumer lacks, named `kube-root-ca.crt` or `cluster-info`, typed as
service-account or bootstrap tokens; the consumer keeps Secrets in its own namespaces
(`kube-system` and the konnector's among them) and has Widgets there too. Every write is judged
by `kbsim.invariants` (`related-within-trust-boundary` among them), so the suite can hunt for a
copy outside the trust boundary under faults; at the end, `check_related_liveness` checks the
settled world is the desired one: every admitted, selected source has its copy (unless a
foreign object holds the name) and every copy has an admitted, selected source.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import CONFIGMAPS, SECRETS
from kbcore.control.related import DATA_SECRET_TYPES  # its literal is pinned in test_related
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import ADMIN
from kbsim.world import World
from tests.property.machine import (
    NAMES,
    NAMESPACES,
    SIZES,
    ConvergenceMachine,
    build_world,
    check_liveness,
    widget,
)

WIDGETS = GVR("example.org", "v1", "widgets")
KONNECTOR_NAMESPACE = "kube-bind"
APP = {"app": "widget"}
SHARE = {"share": "up"}

RULES: dict[str, dict[str, Any]] = {
    "secrets-down": {
        "resource": "secrets",
        "direction": "FromProvider",
        "selector": {"labelSelector": {"matchLabels": APP}},
    },
    "configmaps-down-all": {"resource": "configmaps", "direction": "FromProvider"},
    "secrets-up": {
        "resource": "secrets",
        "direction": "FromConsumer",
        "selector": {"labelSelector": {"matchLabels": SHARE}},
    },
    "secrets-up-all": {"resource": "secrets", "direction": "FromConsumer"},  # invalid: T6
    "configmaps-up-names": {
        "resource": "configmaps",
        "direction": "FromConsumer",
        "selector": {"names": ["settings", "kube-root-ca.crt"]},
    },
}

PROFILES = (
    ("secrets-down", "configmaps-down-all", "secrets-up", "configmaps-up-names"),
    ("secrets-down", "configmaps-down-all", "secrets-up-all", "configmaps-up-names"),
)
"""Rule sets that exercise every channel at once (with the valid or the invalid upload rule)."""

PROVIDER_NAMESPACES = (
    "default",
    "team-x",
    "team-new",  # the consumer has no such namespace
    "kube-system",
    "kube-public",
    "kube-node-lease",
    KONNECTOR_NAMESPACE,
)
CONSUMER_NAMESPACES = ("default", "team-x", "kube-system", KONNECTOR_NAMESPACE)
RESERVED_WIDGET_NAMESPACES = ("kube-system", KONNECTOR_NAMESPACE)
SOURCE_NAMES = ("creds", "settings", "kube-root-ca.crt", "cluster-info")
SECRET_TYPES = (
    None,
    "kubernetes.io/tls",
    "kubernetes.io/service-account-token",
    "bootstrap.kubernetes.io/token",
)


def source(
    gvr: GVR, key: ObjectKey, value: str, labels: dict[str, str], secret_type: str | None
) -> dict[str, Any]:
    kind = "Secret" if gvr == SECRETS else "ConfigMap"
    meta = {"namespace": key.namespace, "name": key.name, "labels": labels}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if gvr == SECRETS:
        obj["data"] = {"v": base64.b64encode(value.encode()).decode()}
        if secret_type is not None:
            obj["type"] = secret_type
    else:
        obj["data"] = {"v": value}
    return obj


class RelatedMachine(ConvergenceMachine):
    """The convergence machine with related resources and a hostile provider."""

    @initialize(
        seed=st.integers(0, 2**16),
        policy=st.sampled_from(["Fail", "Adopt"]),
        related=st.one_of(
            st.sampled_from(PROFILES), st.sets(st.sampled_from(sorted(RULES)), min_size=1)
        ),
    )
    def setup(self, seed: int, policy: str, related: Any) -> None:  # type: ignore[override]
        rules = tuple(RULES[name] for name in sorted(related))
        self.world = build_world(seed, policy, type(self).planner, rules)
        # Instances from the start next to which related data may go (default), and where it
        # may never go although instances live there (kube-system); users may delete them.
        for namespace in ("default", "kube-system"):
            obj = widget(ObjectKey(namespace, NAMES[0]), spec={"size": SIZES[0]})
            self._user(lambda obj=obj: self._server("consumer").create(WIDGETS, obj, user=ADMIN))

    def _namespace(self, cluster: str, name: str) -> None:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self._user(lambda: self._server(cluster).create(NAMESPACES, ns, user=ADMIN))

    def _apply(self, cluster: str, gvr: GVR, obj: dict[str, Any], manager: str) -> None:
        key = o.key_of(obj)
        self._user(
            lambda: self._server(cluster).patch(
                gvr, key, obj, "apply", field_manager=manager, force=True, user=ADMIN
            )
        )

    # -- the hostile provider ----------------------------------------------------------------
    @rule(
        gvr=st.sampled_from([SECRETS, CONFIGMAPS]),
        namespace=st.sampled_from(PROVIDER_NAMESPACES),
        name=st.sampled_from(SOURCE_NAMES),
        value=st.sampled_from(["one", "two"]),
        labelled=st.booleans(),
        secret_type=st.sampled_from(SECRET_TYPES),
    )
    def provider_source(
        self,
        gvr: GVR,
        namespace: str,
        name: str,
        value: str,
        labelled: bool,
        secret_type: str | None,
    ) -> None:
        """The provider publishes (or changes) a Secret or ConfigMap wherever it likes."""
        self._namespace("provider", namespace)
        labels = APP if labelled else {}
        obj = source(gvr, ObjectKey(namespace, name), value, labels, secret_type)
        self._apply("provider", gvr, obj, "provider")

    @rule(
        gvr=st.sampled_from([SECRETS, CONFIGMAPS]),
        name=st.sampled_from(SOURCE_NAMES),
        secret_type=st.sampled_from(SECRET_TYPES),
    )
    def provider_sprays(self, gvr: GVR, name: str, secret_type: str | None) -> None:
        """The provider publishes the same matching object in every namespace it can think of."""
        for namespace in PROVIDER_NAMESPACES:
            self.provider_source(gvr, namespace, name, "one", True, secret_type)

    @rule(
        gvr=st.sampled_from([SECRETS, CONFIGMAPS]),
        namespace=st.sampled_from(PROVIDER_NAMESPACES),
        name=st.sampled_from(SOURCE_NAMES),
    )
    def provider_source_delete(self, gvr: GVR, namespace: str, name: str) -> None:
        key = ObjectKey(namespace, name)
        self._user(lambda: self._server("provider").delete(gvr, key, user=ADMIN))

    # -- the consumer's own Secrets and Widgets ----------------------------------------------
    @rule(
        gvr=st.sampled_from([SECRETS, CONFIGMAPS]),
        namespace=st.sampled_from(CONSUMER_NAMESPACES),
        name=st.sampled_from(SOURCE_NAMES),
        value=st.sampled_from(["mine", "ours"]),
        shared=st.booleans(),
        secret_type=st.sampled_from(SECRET_TYPES),
    )
    def consumer_source(
        self,
        gvr: GVR,
        namespace: str,
        name: str,
        value: str,
        shared: bool,
        secret_type: str | None,
    ) -> None:
        """The consumer keeps a Secret or ConfigMap (shared by label, or not)."""
        labels = SHARE if shared else {}
        obj = source(gvr, ObjectKey(namespace, name), value, labels, secret_type)
        self._apply("consumer", gvr, obj, "kubectl")

    @rule(
        gvr=st.sampled_from([SECRETS, CONFIGMAPS]),
        name=st.sampled_from(SOURCE_NAMES),
        shared=st.booleans(),
        secret_type=st.sampled_from(SECRET_TYPES),
    )
    def consumer_keeps_everywhere(
        self, gvr: GVR, name: str, shared: bool, secret_type: str | None
    ) -> None:
        """The consumer has an object of that name in each of its namespaces."""
        for namespace in CONSUMER_NAMESPACES:
            self.consumer_source(gvr, namespace, name, "mine", shared, secret_type)

    @rule(namespace=st.sampled_from(RESERVED_WIDGET_NAMESPACES), name=st.sampled_from(NAMES),
          size=st.sampled_from(SIZES))  # fmt: skip
    def reserved_namespace_widget(self, namespace: str, name: str, size: str) -> None:
        """Instances live in kube-system and the konnector's namespace too (T2 still holds)."""
        obj = widget(ObjectKey(namespace, name), spec={"size": size})
        self._user(lambda: self._server("consumer").create(WIDGETS, obj, user=ADMIN))

    @rule(namespace=st.sampled_from(RESERVED_WIDGET_NAMESPACES), name=st.sampled_from(NAMES))
    def reserved_namespace_widget_delete(self, namespace: str, name: str) -> None:
        key = ObjectKey(namespace, name)
        self._user(lambda: self._server("consumer").delete(WIDGETS, key, user=ADMIN))

    @rule()
    def binding_resync(self) -> None:
        """Long enough for the binding's periodic pass, where related resources are planned."""
        self.w.advance(31.0)

    def teardown(self) -> None:
        if self.world is None:
            return
        check_liveness(self.w, type(self).planner)
        check_related_liveness(self.w)


# -- the settled world, restated from the rules -----------------------------------------------


def _items(world: World, cluster: str, gvr: GVR) -> list[dict[str, Any]]:
    try:
        return world.clusters[cluster].list(gvr)[0]
    except ApiError:
        return []


def _admitted(obj: dict[str, Any], gvr: GVR, synced: set[str]) -> bool:
    ns, name = o.namespace(obj), o.name(obj)
    return (
        ns in synced
        and not ns.startswith("kube-")
        and ns != KONNECTOR_NAMESPACE
        and not name.startswith("kube-")
        and (gvr != SECRETS or (obj.get("type") or "Opaque") in DATA_SECRET_TYPES)
    )


def _explicit(rule_: dict[str, Any]) -> bool:
    """T6, restated: names, or a labelSelector with a requirement (RULES use matchLabels)."""
    sel = rule_.get("selector") or {}
    return bool(sel.get("names") or (sel.get("labelSelector") or {}).get("matchLabels"))


def _selects(rule_: dict[str, Any], obj: dict[str, Any]) -> bool:
    sel = rule_.get("selector") or {}
    names = sel.get("names") or []
    match = (sel.get("labelSelector") or {}).get("matchLabels") or {}
    if names and o.name(obj) not in names:
        return False
    return all(o.labels_of(obj).get(k) == v for k, v in match.items())


def check_related_liveness(world: World) -> None:
    """After convergence: each admitted, selected source has an equal copy (unless a foreign
    object holds its name) and each copy of the binding's has an admitted, selected source."""
    consumer = world.clusters["consumer"]
    binding = consumer.get(GVR(keys.GROUP, keys.VERSION, "clusterbindings"), ObjectKey("", "w"))
    rules = (binding.get("spec") or {}).get("relatedResources") or []
    uid = o.uid(binding)
    synced = {o.namespace(w) for w in _items(world, "consumer", WIDGETS) if not o.is_deleting(w)}
    sides = {"FromProvider": ("provider", "consumer"), "FromConsumer": ("consumer", "provider")}
    for direction, (src_side, dst_side) in sides.items():
        for gvr in (SECRETS, CONFIGMAPS):
            channel = [
                r for r in rules if r["direction"] == direction and r["resource"] == gvr.resource
            ]
            if direction == "FromConsumer" and not all(map(_explicit, channel)):
                continue  # an invalid rule (T6) freezes its channel: nothing to check there
            targets = {o.key_of(t): t for t in _items(world, dst_side, gvr)}
            sources = {
                o.key_of(s): s
                for s in _items(world, src_side, gvr)
                if o.annotations_of(s).get(keys.ANNOTATION_RELATED_BINDING) != uid
            }
            wanted = {
                k: s
                for k, s in sources.items()
                if any(_selects(r, s) for r in channel) and _admitted(s, gvr, synced)
            }
            for k, s in wanted.items():
                t = targets.get(k)
                mine = t is not None and o.annotations_of(t).get(
                    keys.ANNOTATION_RELATED_BINDING) == uid  # fmt: skip
                if t is not None and not mine:
                    continue  # a foreign object holds the name: a conflict, never written
                assert t is not None, f"{direction} {gvr.resource} {k}: no copy after convergence"
                assert t.get("data") == s.get("data"), (
                    f"{k}: copy {t.get('data')} != {s.get('data')}"
                )
                assert t.get("type") == s.get("type"), f"{k}: copy re-typed to {t.get('type')}"
            for k, t in targets.items():
                if o.annotations_of(t).get(keys.ANNOTATION_RELATED_BINDING) != uid:
                    continue
                assert k in wanted, (
                    f"{direction} {gvr.resource} {k}: a copy without an admitted source"
                )


__all__ = ["RULES", "RelatedMachine", "check_related_liveness"]
