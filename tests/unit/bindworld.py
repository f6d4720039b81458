"""kbsim worlds for the `kubectl bind` kernels: a provider exporting Widgets, a consumer with the
core CRDs, the bundle `kbcore.views.bundle` writes, and the konnector kbsim runs.

The provider user is named by its token (kbsim: `admin` is cluster-admin, anyone else is
authorized by the provider's RBAC objects), so a test can bind as a user holding exactly the
rules `kbcore.views.rbac` derives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from kbcore import objects as o
from kbcore.actions import CONSUMER
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CONNECTIONS, CRDS, NAMESPACES, SECRETS
from kbcore.api.resources import CONFIGMAPS as CONFIGMAPS
from kbcore.api.resources import LEASES as LEASES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.worker import Ask
from kbcore.schema import crdgen
from kbcore.views import bundle as kb
from kbsim.konnector import SimKonnector
from kbsim.world import World
from tests import crds

WIDGETS = GVR("example.org", "v1", "widgets")
GADGETS = GVR("example.org", "v1", "gadgets")
RBAC_RESOURCES = {
    "ClusterRole": GVR("rbac.authorization.k8s.io", "v1", "clusterroles"),
    "ClusterRoleBinding": GVR("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    "Role": GVR("rbac.authorization.k8s.io", "v1", "roles"),
    "RoleBinding": GVR("rbac.authorization.k8s.io", "v1", "rolebindings"),
    "Namespace": NAMESPACES,
}
KINDS = {
    "Secret": SECRETS,
    "Connection": CONNECTIONS,
    "ClusterBinding": CLUSTERBINDINGS,
    "Binding": BINDINGS,
}


def crd(
    plural: str, kind: str, *, scope: str = "Namespaced", exported: bool = True
) -> dict[str, Any]:
    return crds.crd(
        plural,
        kind,
        scope=scope,
        labels={keys.LABEL_EXPORTED: "true"} if exported else {},
        singular=kind.lower(),
        list_kind=f"{kind}List",
        versions=[crds.version(schema=crds.widget_schema())],
    )


def provider_kubeconfig(token: str = "admin") -> dict[str, Any]:
    """A kubeconfig for simulated cluster `provider` as user `token`, with a second context for
    another cluster that must never reach the bundle."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "provider",
        "clusters": [
            {"name": "provider", "cluster": {"server": "https://provider.kbsim"}},
            {"name": "elsewhere", "cluster": {"server": "https://elsewhere.example.com"}},
        ],
        "users": [
            {"name": "p-user", "user": {"token": token}},
            {"name": "other-user", "user": {"token": "other-secret-token"}},
        ],
        "contexts": [
            {"name": "provider", "context": {"cluster": "provider", "user": "p-user"}},
            {"name": "other", "context": {"cluster": "elsewhere", "user": "other-user"}},
        ],
    }


def world(seed: int = 1, *, provider_objects: Iterable[dict[str, Any]] = ()) -> World:
    """Core CRDs and namespaces `kube-bind`, `team-x` on the consumer; Widgets (namespaced) and
    Gadgets (cluster-scoped) exported by the provider, plus `provider_objects` (RBAC)."""
    w = World(["provider", "consumer"], seed=seed)
    w.monitor.consumer_cluster = "consumer"
    consumer, provider = w.clusters["consumer"], w.clusters["provider"]
    for c in crdgen.all_crds():
        consumer.create(CRDS, o.deepcopy(dict(c)))
    provider.create(CRDS, crd("widgets", "Widget"))
    provider.create(CRDS, crd("gadgets", "Gadget", scope="Cluster"))
    for ns in ("kube-bind", "team-x"):
        consumer.create(NAMESPACES, namespace(ns))
    for obj in provider_objects:
        gvr = RBAC_RESOURCES[obj["kind"]]
        if obj["kind"] == "Namespace" and _exists(w, "provider", gvr, ObjectKey("", o.name(obj))):
            continue
        provider.create(gvr, o.deepcopy(obj))
    w.settle(5)
    return w


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _exists(w: World, cluster: str, gvr: GVR, key: ObjectKey) -> bool:
    try:
        w.clusters[cluster].get(gvr, key)
    except ApiError:
        return False
    return True


def the_bundle(
    apis: Iterable[str], *, token: str = "admin", binding: kb.BindingRef | None = None
) -> list[dict[str, Any]]:
    single = kb.single_context(provider_kubeconfig(token))
    assert isinstance(single, dict), single
    return kb.bundle(
        connection="provider",
        kubeconfig_text=yaml.safe_dump(single),
        apis=list(apis),
        binding=binding,
    )


def apply_bundle(w: World, objects: Iterable[dict[str, Any]]) -> None:
    consumer = w.clusters["consumer"]
    for obj in objects:
        w.user_call(lambda obj=obj: consumer.create(KINDS[obj["kind"]], o.deepcopy(obj)))


def start(w: World) -> None:
    w.start_konnector(lambda: SimKonnector(w, "consumer", "kube-bind"))


def stop(w: World) -> None:
    w.konnector.stop()
    w.konnector = None


def get(w: World, cluster: str, gvr: GVR, key: ObjectKey) -> dict[str, Any] | None:
    try:
        return w.clusters[cluster].get(gvr, key)
    except ApiError:
        return None


def ready(obj: dict[str, Any] | None) -> str:
    """`status/reason` of the Ready condition, or "" without one."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return f"{cond['status']}/{cond['reason']}"
    return ""


def widget(name: str, namespace: str = "team-x", **fields: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"size": name},
    }
    obj.update(fields)
    return obj


def answer(w: World):  # type: ignore[no-untyped-def]
    """Answer a dry run's reads on the simulated clusters, as `kubectl bind plan` does live."""

    def read(ask: Ask) -> Any:
        if ask.read.cluster == CONSUMER:
            return w.read(("consumer", w.konnector_user), ask.read)
        target = w.resolve_credentials(ask.credentials) if ask.credentials else None
        return w.read(target, ask.read)

    return read
