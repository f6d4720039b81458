"""Several consumers of one provider's Export never read, write or see each other's objects.

The property (kbcore/sync/tenancy.py, docs/service-layer.md "Tenancy"): two or three consumer
clusters, each a tenant with exactly the RBAC an issuer mints, bind the same Widgets on one kbsim
provider; hypothesis drives creates, updates, deletes and provider-side status writes with
colliding names and namespaces across them. Once the world settles:

 - every consumer Widget has its copy at `<its home>-<namespace>/<name>`, with its spec and its
   cluster's ownership marker, and nothing else of it exists on the provider;
 - every provider Widget belongs to the tenant whose namespace it is in (no copy is misplaced or
   left behind);
 - a status written on a tenant's copy reached that tenant's object, and no other's;
 - no request of any tenant was denied by the provider's RBAC, and none named a namespace of
   another tenant.
"""

from __future__ import annotations

from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.api import keys
from kbcore.api.resources import NAMESPACES
from kbcore.objects import ObjectKey
from tests.tenants import SharedProvider
from tests.unit import bindworld as bw

CONSUMERS = ["alice", "bob", "carol"]
NAMES = ["a", "b"]
SPACES = ["default", "team-x"]

ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["create", "update", "delete", "status"]),
        st.sampled_from(SPACES),
        st.sampled_from(NAMES),
        st.sampled_from(["S", "M", "L"]),
    ),
    min_size=1,
    max_size=12,
)


# Each example runs whole worlds of three clusters: bounded so `make test` stays quick (the
# nightly profile still runs its thousands).
@settings(max_examples=min(settings().max_examples, 60) if settings().max_examples < 5000 else 5000)
@given(st.integers(2, 3), ops, st.booleans())
def test_tenants_of_one_provider_are_isolated(
    n: int, steps: list[tuple[int, str, str, str, str]], settle_each: bool
) -> None:
    consumers = CONSUMERS[:n]
    sp = SharedProvider(consumers)
    w = sp.world
    for c in consumers:
        sp.bind(c)
    assert w.settle(120)
    statuses: dict[tuple[str, str, str], str] = {}
    for index, op, ns, name, size in steps:
        c = consumers[index % n]
        t, consumer = sp.tenants[c], w.clusters[c]
        key = ObjectKey(ns, name)
        live = sp.get(c, bw.WIDGETS, key)
        if op == "create" and live is None:
            body = bw.widget(name, ns, spec={"size": size})
            w.user_call(partial(consumer.create, bw.WIDGETS, body))
        elif op == "update" and live is not None and not o.is_deleting(live):
            w.user_call(partial(consumer.patch, bw.WIDGETS, key, {"spec": {"size": size}}, "merge"))
        elif op == "delete" and live is not None:
            w.user_call(partial(consumer.delete, bw.WIDGETS, key))
        elif op == "status":
            pkey = ObjectKey(f"{t.home}-{ns}", name)
            copy = sp.get("provider", bw.WIDGETS, pkey)
            if copy is not None and not o.is_deleting(copy):
                provider = w.clusters["provider"]
                patch = {"status": {"phase": size}}
                w.user_call(
                    partial(provider.patch, bw.WIDGETS, pkey, patch, "merge", subresource="status")
                )
                statuses[(c, ns, name)] = size
        if settle_each:
            assert w.settle(120)
    assert w.settle(300), "the world did not settle"

    homes = {c: sp.tenants[c].home for c in consumers}
    uids = {
        c: o.uid(w.clusters[c].get(NAMESPACES, ObjectKey("", "kube-system"))) for c in consumers
    }
    for c in consumers:
        for obj in w.clusters[c].list(bw.WIDGETS)[0]:
            ns, name = o.namespace(obj), o.name(obj)
            copy = sp.get("provider", bw.WIDGETS, ObjectKey(f"{homes[c]}-{ns}", name))
            assert copy is not None, f"{c}'s {ns}/{name} has no copy in its boundary"
            assert copy["spec"] == obj["spec"]
            assert o.annotations_of(copy)[keys.ANNOTATION_CONSUMER_CLUSTER_UID] == uids[c]
            if (c, ns, name) in statuses and copy.get("status"):
                assert obj.get("status") == copy["status"], f"{c}'s {ns}/{name} status"
    for copy in w.clusters["provider"].list(bw.WIDGETS)[0]:
        ns = o.namespace(copy)
        owner = [c for c in consumers if ns.startswith(f"{homes[c]}-")]
        assert len(owner) == 1, f"provider Widget {ns}/{o.name(copy)} is in no tenant's boundary"
        c = owner[0]
        consumer_ns = ns[len(homes[c]) + 1 :]
        mine = sp.get(c, bw.WIDGETS, ObjectKey(consumer_ns, o.name(copy)))
        assert mine is not None, f"{ns}/{o.name(copy)} was left behind for {c}"
        assert o.annotations_of(copy)[keys.ANNOTATION_CONSUMER_CLUSTER_UID] == uids[c]
    for c in consumers:
        assert sp.denied(c) == [], f"{c}'s requests the provider's RBAC denies"
        others = {homes[x] for x in consumers if x != c}
        touched = sp.touched_namespaces(c)
        assert not {ns for ns in touched for h in others if ns == h or ns.startswith(f"{h}-")}
