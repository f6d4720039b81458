"""End to end in kbsim: a provider's issuer mints a tenant's credentials, the konnector syncs as
that ServiceAccount, and deleting the Grant cuts it off (kbcore/service/issuer.py).

Nothing here mints RBAC or tokens by hand: the Export's Ready, the Grant's namespace,
ServiceAccount, token Secret and RBAC come from kbsim's issuer (`kbsim.issuer`, the kernel's
planners) and the token from kbsim's token controller; the bundle is `issued_bundle`'s.
"""

from __future__ import annotations

import base64
from typing import Any

from kbcore import objects as o
from kbcore.api.resources import CRDS, EXPORTS, GRANTS, NAMESPACES, SECRETS
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.cluster import carry_out, planned
from kbcore.schema import crdgen
from kbcore.service import issuer as iss
from kbcore.service.issuer import IssueView, NotIssued
from kbsim.konnector import SimKonnector
from kbsim.rbac import Attributes, User
from kbsim.serverapi import ServerAPI
from kbsim.world import World
from tests.unit import bindworld as bw
from tests.unit.service.provider import IDENTITY, export
from tests.unit.test_rbac import allowed


class Tenant:
    """A provider with Widgets and an Export, a consumer bound through an issued Grant."""

    def __init__(self, **export_spec: Any) -> None:
        self.world = w = World(["provider", "consumer"], seed=3)
        self.provider, self.consumer = w.clusters["provider"], w.clusters["consumer"]
        self.provider.create(CRDS, bw.crd("widgets", "Widget"))
        for crd in crdgen.service_crds():
            self.provider.create(CRDS, o.deepcopy(dict(crd)))
        for crd in crdgen.all_crds():
            self.consumer.create(CRDS, o.deepcopy(dict(crd)))
        for ns in ("kube-bind", "team-x"):
            self.consumer.create(NAMESPACES, bw.namespace(ns))
        w.start_issuer("provider")
        assert w.settle(10)
        uid = o.uid(self.consumer.get(NAMESPACES, ObjectKey("", "kube-system")))
        self.home = o.name(iss.grant_for(IDENTITY, "widgets", uid))
        self.seen: list[tuple[Attributes, bool]] = []
        self.provider.add_request_hook(self._record)
        self.provider.create(EXPORTS, export(**export_spec))
        admin = ServerAPI(self.provider)
        view = IssueView(IDENTITY, "widgets", uid, {}, w.now)
        carry_out(admin, planned(admin, iss.plan_issue, view), w.now)
        assert w.settle(10)

    def _record(self, verb: str, gvr: GVR, key: ObjectKey, user: User) -> None:
        if user.name.startswith(f"system:serviceaccount:{self.home}:"):
            namespace = key.name if gvr == NAMESPACES and key.name else key.namespace
            name = "" if verb == "create" else key.name
            a = Attributes(user, verb, gvr.group, gvr.resource, "", namespace, name)
            self.seen.append((a, "system:serviceaccounts" in user.groups))

    def bundle(self) -> list[dict[str, Any]] | NotIssued:
        grant = self.provider.get(GRANTS, ObjectKey("", self.home))
        secret = self.provider.get(SECRETS, ObjectKey(self.home, iss.TOKEN_SECRET))
        ca = base64.b64decode(secret["data"]["ca.crt"]).decode()
        exp = self.provider.get(EXPORTS, ObjectKey("", "widgets"))
        return iss.issued_bundle(grant, exp, secret, "https://provider.kbsim", ca)

    def bind(self) -> None:
        objects = self.bundle()
        assert not isinstance(objects, NotIssued), objects
        w = self.world
        for obj in objects:
            gvr = bw.KINDS[obj["kind"]]
            w.user_call(lambda obj=obj, gvr=gvr: self.consumer.create(gvr, o.deepcopy(obj)))
        w.start_konnector(lambda: SimKonnector(w, "consumer", "kube-bind"))

    def denied(self) -> list[Attributes]:
        """The tenant's provider requests the RBAC objects stored now deny."""
        roles = []
        for kind in ("Role", "ClusterRole"):
            roles += [{**r, "kind": kind} for r in self.provider.list(bw.RBAC_RESOURCES[kind])[0]]
        mine = [r for r in roles if o.name(r) in (self.home, "kube-bind-tenant")]
        return [a for a, _ in self.seen if not allowed(mine, a)]


def conditions(obj: dict[str, Any] | None) -> dict[str, tuple[str, str, str]]:
    conds = ((obj or {}).get("status") or {}).get("conditions") or []
    return {c["type"]: (c["status"], c["reason"], c.get("message", "")) for c in conds}


def test_an_issued_grant_binds_syncs_as_its_service_account_and_dies_with_the_grant() -> None:
    t = Tenant()
    w = t.world
    grant = t.provider.get(GRANTS, ObjectKey("", t.home))
    assert conditions(grant)["Ready"][:2] == ("True", "Issued"), grant
    t.bind()
    assert w.settle(120)
    conn = bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    assert bw.ready(conn) == "True/AsExpected", conn
    w.user_call(lambda: t.consumer.create(bw.WIDGETS, bw.widget("a", "team-x")))
    assert w.settle(120)
    copy = bw.get(w, "provider", bw.WIDGETS, ObjectKey(f"{t.home}-team-x", "a"))
    assert copy is not None and copy["spec"] == {"size": "a"}
    # Every provider request was the minted ServiceAccount's (authenticated by its token, not
    # named by it), and none was denied.
    assert t.seen and all(is_sa for _, is_sa in t.seen)
    assert t.denied() == []

    # Deleting the Grant revokes it: the GC removes what it minted, the token dies with them.
    t.provider.delete(GRANTS, ObjectKey("", t.home))
    before = len(t.seen)
    w.advance(120)
    assert bw.get(w, "provider", NAMESPACES, ObjectKey("", t.home)) is None
    assert bw.get(w, "provider", NAMESPACES, ObjectKey("", f"{t.home}-team-x")) is None
    assert len(t.seen) == before  # no request got past authentication any more
    conn = bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    conds = conditions(conn)
    assert conds["Ready"][0] == "False", conds
    assert "401 Unauthorized" in conds["Connected"][2], conds
