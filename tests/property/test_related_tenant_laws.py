"""Law of kbcore/control/related.py rule 10: whatever is on either cluster, a tenant's related
plan reads and writes on the provider only its claims (in its home namespace) and inside its
granted namespaces `<home>-X`; it never reads or creates a provider namespace."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kbcore.actions import PROVIDER
from kbcore.api.resources import BOUND_NAMESPACES, NAMESPACES, SECRETS
from kbcore.reads import Get, List, Read
from tests.unit.test_related import (
    APP,
    HOME,
    SECRETS_DOWN,
    SECRETS_UP,
    TENANT,
    World,
    granted_claim,
    plan,
    run,
)

CONSUMER_NS = ["team", "a", "kube-system"]
PROVIDER_NS = ["team", "a", f"{HOME}-team", f"{HOME}-a", "kb-zzzzzzzzzz-team"]
UP_LABELS = {"upload": "yes", **APP}


@given(
    st.sets(st.sampled_from(CONSUMER_NS)),
    st.sets(st.sampled_from(CONSUMER_NS)),
    st.lists(st.tuples(st.sampled_from(CONSUMER_NS), st.sampled_from("xy")), max_size=4),
    st.lists(st.tuples(st.sampled_from(PROVIDER_NS), st.sampled_from("xy")), max_size=4),
    st.booleans(),
)
def test_a_tenants_provider_side_stays_in_its_boundary(
    granted: set[str],
    synced: set[str],
    consumer_secrets: list[tuple[str, str]],
    provider_secrets: list[tuple[str, str]],
    unbinding: bool,
) -> None:
    w = World()
    for ns in CONSUMER_NS:
        w.ns("consumer", ns)
    for ns in PROVIDER_NS:
        w.ns(PROVIDER, ns)
    for ns in granted:
        granted_claim(w, ns)
    for ns, name in consumer_secrets:
        w.put("consumer", SECRETS, f"{ns}/{name}", labels=UP_LABELS, data={"k": "dg=="})
    for ns, name in provider_secrets:
        w.put(PROVIDER, SECRETS, f"{ns}/{name}", labels=APP, data={"k": "dg=="})
    rounds: list[tuple[Read, ...]] = []
    inside = tuple(f"{HOME}-{ns}" for ns in granted)
    for _ in range(3):
        p = plan(w, (SECRETS_UP, SECRETS_DOWN), tenant=TENANT, rounds=rounds, synced=synced,
                 unbinding=unbinding)  # fmt: skip
        for action in p.actions:
            target = getattr(action, "target", None)
            if target is not None and target.cluster == PROVIDER:
                assert target.gvr != NAMESPACES, action
                assert target.key.namespace in inside, action
        run(w, p)
    for read in (r for rs in rounds for r in rs if r.cluster == PROVIDER):
        assert isinstance(read, List | Get)
        assert read.gvr != NAMESPACES, read
        where = read.namespace if isinstance(read, List) else read.key.namespace
        if read.gvr == BOUND_NAMESPACES:
            assert where == HOME, read
        else:
            assert where in inside, read
