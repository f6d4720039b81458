"""A tenant of a shared provider stays inside its boundary (kbcore/sync/tenancy.py).

The konnector runs in kbsim as the ServiceAccount an issuer would mint, holding only
`rbac.tenant_rules` (cluster-wide by name, its home namespace) plus the Role the issuer's claim
planner writes in each namespace it grants (`kbcore.service.claims`, run by kbsim's issuer). Every
provider request it makes is recorded; a test fails on any request the RBAC denies, so "stays
inside the boundary" is checked by the same authorizer a real API server applies.
"""

from __future__ import annotations

from typing import Any

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES, CRDS, GRANTS, NAMESPACES
from kbcore.objects import GVR, ObjectKey
from kbcore.schema import crdgen
from kbcore.sync.tenancy import Claim, Tenant, claim_state, home_namespace, namespace_problem
from kbcore.views import bundle as kb
from kbcore.views import rbac
from kbsim.rbac import Attributes, User
from kbsim.world import World
from tests.unit import bindworld as bw
from tests.unit.test_rbac import allowed

HOME = home_namespace(
    "https://dex.example", "alice", "6f1c0f6e-0000-4000-8000-000000000001", "widgets"
)
SA = "konnector"
USER = f"system:serviceaccount:{HOME}:{SA}"
TENANT = Tenant(HOME, ("widgets.example.org",))


def tenant_world(tenant: Tenant = TENANT) -> tuple[World, list[Attributes]]:
    """A provider with an issued Grant for `tenant`, the tenant's base RBAC, and its issuer."""
    rules = rbac.tenant_rules(tenant)
    objs = rbac.rbac_objects(
        rules, name="kb-tenant", subject=rbac.Subject("ServiceAccount", SA, HOME)
    )
    w = bw.world(provider_objects=objs)
    provider = w.clusters["provider"]
    for c in crdgen.service_crds():
        provider.create(CRDS, o.deepcopy(dict(c)))
    w.settle(5)
    spec = {
        "identity": {"issuer": "https://dex.example", "subject": "alice"},
        "export": "widgets",
        "consumerClusterUID": "6f1c0f6e-0000-4000-8000-000000000001",
    }
    provider.create(GRANTS, {"apiVersion": "iam.kube-bind.io/v1alpha1", "kind": "Grant",
                             "metadata": {"name": HOME}, "spec": spec})  # fmt: skip
    issued = {"namespace": HOME, "serviceAccountName": SA, "apis": list(tenant.apis)}
    provider.patch(GRANTS, ObjectKey("", HOME), {"status": issued}, "merge", subresource="status")
    seen: list[Attributes] = []

    def hook(verb: str, gvr: GVR, key: ObjectKey, user: User) -> None:
        if user.name == USER:
            namespace = key.name if gvr == NAMESPACES and key.name else key.namespace
            seen.append(Attributes(user, verb, gvr.group, gvr.resource, "", namespace,
                                   "" if verb == "create" else key.name))  # fmt: skip

    provider.add_request_hook(hook)
    w.start_issuer("provider")
    return w, seen


def denied(w: World, seen: list[Attributes]) -> list[tuple[str, ...]]:
    """Requests of the tenant the provider's RBAC objects (as they are now) do not allow."""
    provider = w.clusters["provider"]
    objs = []
    for kind, gvr in bw.RBAC_RESOURCES.items():
        if kind != "Namespace":
            objs += [{**x, "kind": kind} for x in provider.list(gvr)[0]]
    bound = {(b["metadata"].get("namespace", ""), b["roleRef"]["name"])
             for b in objs if b["kind"].endswith("Binding")
             and any(s.get("name") == SA for s in b.get("subjects", []))}  # fmt: skip
    roles = [r for r in objs if r["kind"] in ("Role", "ClusterRole")
             and (r["metadata"].get("namespace", ""), r["metadata"]["name"]) in bound]  # fmt: skip
    return sorted({(a.verb, a.group, a.resource, a.namespace, a.name)
                   for a in seen if not allowed(roles, a)})  # fmt: skip


def bind(w: World, apis: list[str]) -> None:
    bundle = bw.the_bundle(apis, token=USER)
    bundle[1]["spec"]["tenant"] = {"namespace": HOME, "apis": list(TENANT.apis)}
    bw.start(w)
    bw.apply_bundle(w, bundle)
    assert w.settle(60)


def claim(w: World, namespace: str) -> dict[str, Any] | None:
    return bw.get(w, "provider", BOUND_NAMESPACES, ObjectKey(HOME, namespace))


def test_a_tenant_syncs_into_its_own_namespaces_and_nowhere_else() -> None:
    w, seen = tenant_world()
    bind(w, ["widgets.example.org"])
    consumer, provider = w.clusters["consumer"], w.clusters["provider"]
    conn = bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    assert bw.ready(conn) == "True/AsExpected", conn
    for ns in ("team-x", "team-y"):
        if ns != "team-x":
            consumer.create(NAMESPACES, bw.namespace(ns))
        w.user_call(lambda ns=ns: consumer.create(bw.WIDGETS, bw.widget("a", ns)))
    assert w.settle(60)
    for ns in ("team-x", "team-y"):
        copy = bw.get(w, "provider", bw.WIDGETS, ObjectKey(f"{HOME}-{ns}", "a"))
        assert copy is not None and copy["spec"] == {"size": "a"}
        assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(ns, "a")) is None
        assert claim_state(TENANT, ns, claim(w, ns)) is Claim.GRANTED
    conn = bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    assert conn["status"]["tenantNamespaces"] == [f"{HOME}-team-x", f"{HOME}-team-y"]
    # Status comes back through the per-namespace watch of the granted namespace.
    w.user_call(lambda: provider.patch(bw.WIDGETS, ObjectKey(f"{HOME}-team-y", "a"),
                                       {"status": {"phase": "Up"}}, "merge", subresource="status"))  # fmt: skip
    assert w.settle(60)
    a = bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-y", "a"))
    assert a is not None and a.get("status") == {"phase": "Up"}
    lease = provider.list(bw.LEASES, HOME)[0]
    assert len(lease) == 1, "the heartbeat Lease lives in the home namespace"
    # A delete reaches the copy; then the whole life was inside the RBAC the issuer granted.
    w.user_call(lambda: consumer.delete(bw.WIDGETS, ObjectKey("team-x", "a")))
    assert w.settle(60)
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(f"{HOME}-team-x", "a")) is None
    assert bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "a")) is None
    assert seen, "nothing was asked of the provider as the tenant"
    assert denied(w, seen) == []
    assert not [x for x in seen if x.resource == "namespaces" and x.verb != "get"]


def test_a_namespace_the_provider_did_not_make_for_the_tenant_is_refused() -> None:
    w, seen = tenant_world()
    taken = f"{HOME}-team-x"
    w.clusters["provider"].create(NAMESPACES, bw.namespace(taken))  # someone else's
    bind(w, ["widgets.example.org"])
    consumer = w.clusters["consumer"]
    w.user_call(lambda: consumer.create(bw.WIDGETS, bw.widget("a")))
    assert w.settle(60)
    c = claim(w, "team-x")
    assert c is not None and c["status"]["conditions"][0]["reason"] == "NamespaceTaken"
    a = bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "a"))
    assert a is not None
    assert o.annotations_of(a)[keys.ANNOTATION_SYNC_LIMIT] == "NamespaceNotGranted"
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(taken, "a")) is None
    # Deleting it needs nothing from the provider: no copy of ours can be in that namespace.
    w.user_call(lambda: consumer.delete(bw.WIDGETS, ObjectKey("team-x", "a")))
    assert w.settle(60)
    assert bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "a")) is None
    assert denied(w, seen) == []


def test_a_namespace_too_long_for_the_boundary_is_not_synced() -> None:
    w, seen = tenant_world()
    bind(w, ["widgets.example.org"])
    long_ns = "n" * 55
    assert namespace_problem(TENANT, long_ns)
    consumer = w.clusters["consumer"]
    consumer.create(NAMESPACES, bw.namespace(long_ns))
    w.user_call(lambda: consumer.create(bw.WIDGETS, bw.widget("a", long_ns)))
    assert w.settle(60)
    a = bw.get(w, "consumer", bw.WIDGETS, ObjectKey(long_ns, "a"))
    assert a is not None
    assert o.annotations_of(a)[keys.ANNOTATION_SYNC_LIMIT] == "NamespaceNotGranted"
    assert claim(w, long_ns) is None
    assert denied(w, seen) == []


def test_a_tenant_cannot_bind_a_cluster_scoped_api() -> None:
    w, seen = tenant_world(Tenant(HOME, ("gadgets.example.org",)))
    bundle = bw.the_bundle(["gadgets.example.org"], token=USER)
    bundle[1]["spec"]["tenant"] = {"namespace": HOME, "apis": ["gadgets.example.org"]}
    bw.start(w)
    bw.apply_bundle(w, bundle)
    assert w.settle(60)
    binding = bw.get(w, "consumer", bw.CLUSTERBINDINGS, ObjectKey("", "provider"))
    assert bw.ready(binding) == "False/ClusterScopedAPI", binding
    (entry,) = binding["status"]["boundAPIs"]
    assert "shared by several consumers" in entry["conditions"][0]["message"]
    assert bw.get(w, "consumer", CRDS, ObjectKey("", "gadgets.example.org")) is None
    assert denied(w, seen) == []


def test_home_namespaces_are_stable_distinct_and_leave_room() -> None:
    key = ("https://dex.example", "alice", "6f1c0f6e-0000-4000-8000-000000000001", "widgets")
    assert home_namespace(*key) == HOME
    assert home_namespace(*key[:3], "gadgets") != HOME
    assert home_namespace(key[0], "bob", *key[2:]) != HOME
    assert len(HOME) == 13 and HOME.startswith("kb-")
    assert not namespace_problem(TENANT, "n" * 49)
    assert isinstance(
        kb.bundle(connection="p", kubeconfig_text="x", apis=["a.b"], tenant=TENANT)[1]["spec"][
            "tenant"
        ],
        dict,
    )
