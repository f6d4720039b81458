"""kbsim worlds where several consumer clusters are tenants of one provider (kbcore.sync.tenancy).

Each tenant gets what an issuer mints for its boundary: a Grant named after its home namespace
(issued: namespace, ServiceAccount, APIs), exactly `rbac.tenant_rules` bound to the
ServiceAccount, and a bundle whose Connection carries `spec.tenant`; its konnector authenticates
as that ServiceAccount, so kbsim's authorizer judges every provider request by the RBAC objects
as a real API server would. kbsim's issuer (`kbsim.issuer`) grants namespace claims. Every
provider request of a tenant is recorded, for `denied` and `touched`.
"""

from __future__ import annotations

from typing import Any

import attrs

from kbcore import objects as o
from kbcore.api.resources import CRDS, GRANTS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.schema import crdgen
from kbcore.sync.tenancy import Tenant, home_namespace
from kbcore.views import rbac
from kbsim.konnector import SimKonnector
from kbsim.rbac import Attributes, User
from kbsim.world import World
from tests.unit import bindworld as bw
from tests.unit.test_rbac import allowed

ISSUER = "https://dex.example"
SA = "konnector"
WIDGETS_API = "widgets.example.org"


@attrs.define
class TenantSetup:
    consumer: str
    tenant: Tenant
    seen: list[Attributes] = attrs.field(factory=list)

    @property
    def home(self) -> str:
        return self.tenant.namespace

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.home}:{SA}"


class SharedProvider:
    """A provider and consumer clusters `consumers`, each a tenant for `apis`."""

    def __init__(
        self, consumers: list[str], apis: tuple[str, ...] = (WIDGETS_API,), seed: int = 1
    ) -> None:
        self.world = w = World(["provider", *consumers], seed=seed)
        w.monitor.consumer_cluster = consumers[0]
        provider = w.clusters["provider"]
        provider.create(CRDS, bw.crd("widgets", "Widget"))
        provider.create(CRDS, bw.crd("gadgets", "Gadget", scope="Cluster"))
        for c in crdgen.service_crds():
            provider.create(CRDS, o.deepcopy(dict(c)))
        for name in consumers:
            consumer = w.clusters[name]
            for c in crdgen.all_crds():
                consumer.create(CRDS, o.deepcopy(dict(c)))
            for ns in ("kube-bind", "team-x"):
                consumer.create(NAMESPACES, bw.namespace(ns))
        w.settle(5)
        self.tenants = {name: self._issue(name, apis) for name in consumers}
        provider.add_request_hook(self._record)
        w.start_issuer("provider")

    def _issue(self, name: str, apis: tuple[str, ...]) -> TenantSetup:
        w, provider = self.world, self.world.clusters["provider"]
        uid = o.uid(w.clusters[name].get(NAMESPACES, ObjectKey("", "kube-system")))
        home = home_namespace(ISSUER, name, uid, "widgets")
        t = TenantSetup(name, Tenant(home, apis))
        subject = rbac.Subject("ServiceAccount", SA, home)
        for obj in rbac.rbac_objects(rbac.tenant_rules(t.tenant), name=home, subject=subject):
            provider.create(bw.RBAC_RESOURCES[obj["kind"]], o.deepcopy(obj))
        spec = {"identity": {"issuer": ISSUER, "subject": name}, "export": "widgets",
                "consumerClusterUID": uid}  # fmt: skip
        provider.create(GRANTS, {"apiVersion": "iam.kube-bind.io/v1alpha1", "kind": "Grant",
                                 "metadata": {"name": home}, "spec": spec})  # fmt: skip
        issued = {"namespace": home, "serviceAccountName": SA, "apis": list(apis)}
        provider.patch(
            GRANTS, ObjectKey("", home), {"status": issued}, "merge", subresource="status"
        )
        return t

    def _record(self, verb: str, gvr: GVR, key: ObjectKey, user: User) -> None:
        for t in self.tenants.values():
            if user.name == t.user:
                namespace = key.name if gvr == NAMESPACES and key.name else key.namespace
                name = "" if verb == "create" else key.name
                t.seen.append(Attributes(user, verb, gvr.group, gvr.resource, "", namespace, name))

    def bind(self, consumer: str, apis: list[str] | None = None) -> None:
        """Apply the tenant's bundle on `consumer` and start its konnector."""
        t, w = self.tenants[consumer], self.world
        bundle = bw.the_bundle(apis or list(t.tenant.apis), token=t.user)
        bundle[1]["spec"]["tenant"] = {"namespace": t.home, "apis": list(t.tenant.apis)}
        for obj in bundle:
            kind = bw.KINDS[obj["kind"]]
            w.user_call(
                lambda obj=obj, kind=kind: w.clusters[consumer].create(kind, o.deepcopy(obj))
            )
        factory = lambda: SimKonnector(w, consumer, "kube-bind")  # noqa: E731
        if w.konnector is None and not w.other_konnectors:
            w.start_konnector(factory)
        else:
            w.add_konnector(factory)

    def get(self, cluster: str, gvr: GVR, key: ObjectKey) -> dict[str, Any] | None:
        try:
            return self.world.clusters[cluster].get(gvr, key)
        except ApiError:
            return None

    def denied(self, consumer: str) -> list[tuple[str, ...]]:
        """The tenant's provider requests that the RBAC objects (as they are now) deny."""
        t, provider = self.tenants[consumer], self.world.clusters["provider"]
        objs = []
        for kind, gvr in bw.RBAC_RESOURCES.items():
            if kind != "Namespace":
                objs += [{**x, "kind": kind} for x in provider.list(gvr)[0]]
        bound = {(b["metadata"].get("namespace", ""), b["roleRef"]["name"])
                 for b in objs if b["kind"].endswith("Binding")
                 and any(s.get("name") == SA and s.get("namespace") == t.home
                         for s in b.get("subjects", []))}  # fmt: skip
        roles = [r for r in objs if r["kind"] in ("Role", "ClusterRole")
                 and (r["metadata"].get("namespace", ""), r["metadata"]["name"]) in bound]  # fmt: skip
        return sorted({(a.verb, a.group, a.resource, a.namespace, a.name)
                       for a in t.seen if not allowed(roles, a)})  # fmt: skip

    def touched_namespaces(self, consumer: str) -> set[str]:
        return {a.namespace for a in self.tenants[consumer].seen if a.namespace}
