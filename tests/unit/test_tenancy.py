"""A tenant of a shared provider stays inside its boundary (kbcore/sync/tenancy.py).

The konnector runs in kbsim as the ServiceAccount the issuer mints (`tests.tenants`: the Grant is
issued through `plan_issue`, `plan_grant` and `plan_claim`, run by kbsim's issuer), holding only
`rbac.tenant_rules` plus the Role the claim planner writes in each namespace it grants. Every provider request it makes is
recorded; a test fails on any request the RBAC denies, so "stays inside the boundary" is checked
by the same authorizer a real API server applies.
"""

from __future__ import annotations

from typing import Any

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES, EXPORTS, NAMESPACES, SECRETS
from kbcore.objects import ObjectKey
from kbcore.sync.tenancy import Claim, Tenant, claim_state, home_namespace, namespace_problem
from kbcore.views import bundle as kb
from tests.tenants import SharedProvider
from tests.unit import bindworld as bw

HOME = home_namespace(
    "https://dex.example", "alice", "6f1c0f6e-0000-4000-8000-000000000001", "widgets"
)
TENANT = Tenant(HOME, ("widgets.example.org",))


def bound(apis: tuple[str, ...] = ("widgets.example.org",)) -> tuple[SharedProvider, str]:
    """One tenant, cluster `consumer`, bound through its boundary; its home namespace."""
    sp = SharedProvider(["consumer"], apis)
    sp.bind("consumer")
    assert sp.world.settle(60)
    return sp, sp.tenants["consumer"].home


def claim(sp: SharedProvider, home: str, namespace: str) -> dict[str, Any] | None:
    return sp.get("provider", BOUND_NAMESPACES, ObjectKey(home, namespace))


def test_a_tenant_syncs_into_its_own_namespaces_and_nowhere_else() -> None:
    sp, home = bound()
    w, tenant = sp.world, sp.tenants["consumer"].tenant
    consumer, provider = w.clusters["consumer"], w.clusters["provider"]
    conn = bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    assert bw.ready(conn) == "True/AsExpected", conn
    for ns in ("team-x", "team-y"):
        if ns != "team-x":
            consumer.create(NAMESPACES, bw.namespace(ns))
        w.user_call(lambda ns=ns: consumer.create(bw.WIDGETS, bw.widget("a", ns)))
    assert w.settle(60)
    for ns in ("team-x", "team-y"):
        copy = bw.get(w, "provider", bw.WIDGETS, ObjectKey(f"{home}-{ns}", "a"))
        assert copy is not None and copy["spec"] == {"size": "a"}
        assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(ns, "a")) is None
        assert claim_state(tenant, ns, claim(sp, home, ns)) is Claim.GRANTED
    conn = bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider"))
    assert conn["status"]["tenantNamespaces"] == [f"{home}-team-x", f"{home}-team-y"]
    # Status comes back through the per-namespace watch of the granted namespace.
    w.user_call(lambda: provider.patch(bw.WIDGETS, ObjectKey(f"{home}-team-y", "a"),
                                       {"status": {"phase": "Up"}}, "merge", subresource="status"))  # fmt: skip
    assert w.settle(60)
    a = bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-y", "a"))
    assert a is not None and a.get("status") == {"phase": "Up"}
    lease = provider.list(bw.LEASES, home)[0]
    assert len(lease) == 1, "the heartbeat Lease lives in the home namespace"
    # A delete reaches the copy; then the whole life was inside the RBAC the issuer granted.
    w.user_call(lambda: consumer.delete(bw.WIDGETS, ObjectKey("team-x", "a")))
    assert w.settle(60)
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(f"{home}-team-x", "a")) is None
    assert bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "a")) is None
    seen = sp.tenants["consumer"].seen
    assert seen, "nothing was asked of the provider as the tenant"
    assert sp.denied("consumer") == []
    assert not [x for x in seen if x.resource == "namespaces" and x.verb != "get"]


def test_a_namespace_the_provider_did_not_make_for_the_tenant_is_refused() -> None:
    sp = SharedProvider(["consumer"])
    w, home = sp.world, sp.tenants["consumer"].home
    taken = f"{home}-team-x"
    w.clusters["provider"].create(NAMESPACES, bw.namespace(taken))  # someone else's
    sp.bind("consumer")
    assert w.settle(60)
    consumer = w.clusters["consumer"]
    w.user_call(lambda: consumer.create(bw.WIDGETS, bw.widget("a")))
    assert w.settle(60)
    c = claim(sp, home, "team-x")
    assert c is not None and c["status"]["conditions"][0]["reason"] == "NamespaceTaken"
    a = bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "a"))
    assert a is not None
    assert o.annotations_of(a)[keys.ANNOTATION_SYNC_LIMIT] == "NamespaceNotGranted"
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey(taken, "a")) is None
    # Deleting it needs nothing from the provider: no copy of ours can be in that namespace.
    w.user_call(lambda: consumer.delete(bw.WIDGETS, ObjectKey("team-x", "a")))
    assert w.settle(60)
    assert bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "a")) is None
    assert sp.denied("consumer") == []


def test_a_namespace_too_long_for_the_boundary_is_not_synced() -> None:
    sp, home = bound()
    w = sp.world
    long_ns = "n" * 55
    assert namespace_problem(sp.tenants["consumer"].tenant, long_ns)
    consumer = w.clusters["consumer"]
    consumer.create(NAMESPACES, bw.namespace(long_ns))
    w.user_call(lambda: consumer.create(bw.WIDGETS, bw.widget("a", long_ns)))
    assert w.settle(60)
    a = bw.get(w, "consumer", bw.WIDGETS, ObjectKey(long_ns, "a"))
    assert a is not None
    assert o.annotations_of(a)[keys.ANNOTATION_SYNC_LIMIT] == "NamespaceNotGranted"
    assert claim(sp, home, long_ns) is None
    assert sp.denied("consumer") == []


def test_a_tenant_is_never_issued_a_cluster_scoped_api() -> None:
    """A tenant's konnector refuses cluster-scoped APIs, so the catalog does not offer them: the
    Export is not Ready and its Grant mints nothing (no ServiceAccount, no token, no bundle)."""
    sp = SharedProvider(["consumer"], ("gadgets.example.org",))
    w, home = sp.world, sp.tenants["consumer"].home
    export = bw.get(w, "provider", EXPORTS, ObjectKey("", "widgets"))
    assert bw.ready(export) == "False/ClusterScopedAPI", export
    grant = sp.grant("consumer")
    assert bw.ready(grant) == "False/APINotExported", grant
    assert bw.get(w, "provider", NAMESPACES, ObjectKey("", home)) is None
    assert bw.get(w, "provider", SECRETS, ObjectKey(home, "konnector-token")) is None


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
