"""kbsim worlds where several consumer clusters are tenants of one provider (kbcore.sync.tenancy).

Each tenant is issued as production issues it: the provider's administrator offers an Export
"widgets" of the given APIs, a request for (identity, consumer cluster, Export) runs the
issuer's `plan_issue`, and kbsim's issuer (`kbsim.issuer`, the kernel's `plan_export`,
`plan_grant` and `plan_claim`) makes the Export Ready and mints the Grant's namespace,
ServiceAccount, token Secret and RBAC; kbsim's token controller fills the token. The bundle is
`issued_bundle`'s, so the konnector authenticates with the ServiceAccount's token and kbsim's
authorizer judges every provider request by the RBAC objects the issuer wrote, as a real API
server would. Every provider request of a tenant is recorded, for `denied` and `touched`.
"""

from __future__ import annotations

import base64
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.api.iam import OIDCIdentity
from kbcore.api.resources import CRDS, EXPORTS, GRANTS, NAMESPACES, SECRETS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.cluster import carry_out, planned
from kbcore.schema import crdgen
from kbcore.service import issuer as iss
from kbcore.sync.tenancy import Tenant
from kbsim.konnector import SimKonnector
from kbsim.rbac import Attributes, User
from kbsim.serverapi import ServerAPI
from kbsim.world import World
from tests.unit import bindworld as bw
from tests.unit.test_rbac import allowed

ISSUER = "https://dex.example"
SA = iss.SERVICE_ACCOUNT
WIDGETS_API = "widgets.example.org"
EXPORT = "widgets"


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


def export_body(apis: tuple[str, ...], **spec: Any) -> dict[str, Any]:
    """The Export the provider's administrator offers: `apis` by CRD name."""
    listed = [{"group": n.partition(".")[2], "resource": n.partition(".")[0]} for n in apis]
    return {"apiVersion": EXPORTS.api_version, "kind": "Export", "metadata": {"name": EXPORT},
            "spec": {"title": "Widgets", "apis": listed, **spec}}  # fmt: skip


class SharedProvider:
    """A provider and consumer clusters `consumers`, each a tenant for `apis`."""

    def __init__(
        self,
        consumers: list[str],
        apis: tuple[str, ...] = (WIDGETS_API,),
        seed: int = 1,
        **export_spec: Any,
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
        w.settle(5)  # the CRDs are established
        provider.create(EXPORTS, export_body(apis, **export_spec))
        w.start_issuer("provider")
        w.settle(10)
        self.tenants = {name: self._issue(name, apis) for name in consumers}
        provider.add_request_hook(self._record)

    def _issue(self, name: str, apis: tuple[str, ...]) -> TenantSetup:
        """A bind request of identity `name` from cluster `name`: `plan_issue`, then kbsim's
        issuer mints the Grant (it stays unissued for an Export that is not Ready)."""
        w = self.world
        admin = ServerAPI(w.clusters["provider"])
        uid = o.uid(w.clusters[name].get(NAMESPACES, ObjectKey("", "kube-system")))
        view = iss.IssueView(OIDCIdentity(issuer=ISSUER, subject=name), EXPORT, uid, {}, w.now)
        carry_out(admin, planned(admin, iss.plan_issue, view), w.now)
        w.settle(10)
        home = o.name(iss.grant_for(OIDCIdentity(issuer=ISSUER, subject=name), EXPORT, uid))
        issued = iss.issued_tenant(self.grant(name, home))
        return TenantSetup(name, issued if isinstance(issued, Tenant) else Tenant(home, apis))

    def grant(self, consumer: str, home: str = "") -> dict[str, Any]:
        home = home or self.tenants[consumer].home
        return self.world.clusters["provider"].get(GRANTS, ObjectKey("", home))

    def bundle(self, consumer: str, apis: list[str] | None = None) -> list[dict[str, Any]]:
        """The tenant's bundle, as the issuer hands it out (`issued_bundle`)."""
        provider, home = self.world.clusters["provider"], self.tenants[consumer].home
        secret = provider.get(SECRETS, ObjectKey(home, iss.TOKEN_SECRET))
        ca = base64.b64decode(secret["data"]["ca.crt"]).decode()
        export = provider.get(EXPORTS, ObjectKey("", EXPORT))
        out = iss.issued_bundle(self.grant(consumer), export, secret, "https://provider.kbsim",
                                ca, apis=apis or ())  # fmt: skip
        assert not isinstance(out, iss.NotIssued), out
        return out

    def _record(self, verb: str, gvr: GVR, key: ObjectKey, user: User) -> None:
        for t in self.tenants.values():
            if user.name == t.user:
                namespace = key.name if gvr == NAMESPACES and key.name else key.namespace
                name = "" if verb == "create" else key.name
                t.seen.append(Attributes(user, verb, gvr.group, gvr.resource, "", namespace, name))

    def bind(self, consumer: str, apis: list[str] | None = None) -> None:
        """Apply the tenant's bundle on `consumer` and start its konnector."""
        w = self.world
        for obj in self.bundle(consumer, apis):
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
