"""kbcore.runtime.leader: the Lease decision, rule by rule, and the law that two replicas never lead
at the same time."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from kbcore.actions import Create, Update
from kbcore.objects import ObjectKey
from kbcore.runtime.leader import (
    LEASE_DURATION_SECONDS,
    LeaderView,
    micro_time,
    plan_leadership,
)
from kbcore.timestamps import parse_rfc3339

KEY = ObjectKey("kube-bind", "konnector.kube-bind.io")
T0 = 1_767_225_600.0


def lease(holder: str | None, renewed: float | None, rv: str = "5", transitions: int = 0) -> Any:
    spec: dict[str, Any] = {
        "holderIdentity": holder,
        "leaseDurationSeconds": 15,
        "leaseTransitions": transitions,
    }
    if renewed is not None:
        spec["renewTime"] = micro_time(renewed)
    return {
        "metadata": {"name": KEY.name, "namespace": KEY.namespace, "resourceVersion": rv},
        "spec": spec,
    }


def view(lease_obj: Any, me: str = "a", now: float = T0, release: bool = False) -> LeaderView:
    return LeaderView("consumer", KEY, lease_obj, me, now, release)


def test_no_lease_creates_it_and_does_not_lead_before_the_create_lands() -> None:
    d = plan_leadership(view(None))
    assert not d.leader and isinstance(d.write, Create)
    assert d.write.body["spec"]["holderIdentity"] == "a"


def test_our_lease_is_renewed_after_a_retry_period_and_we_lead() -> None:
    d = plan_leadership(view(lease("a", T0 - 3)))
    assert d.leader and isinstance(d.write, Update)
    assert parse_rfc3339(d.write.body["spec"]["renewTime"]) == T0
    assert plan_leadership(view(lease("a", T0 - 1))).write is None


def test_another_holders_live_lease_is_respected_and_an_expired_one_taken_over() -> None:
    live = plan_leadership(view(lease("b", T0 - 5)))
    assert not live.leader and live.write is None
    expired = plan_leadership(view(lease("b", T0 - 20, transitions=2)))
    assert not expired.leader and isinstance(expired.write, Update)
    assert expired.write.body["spec"]["holderIdentity"] == "a"
    assert expired.write.body["spec"]["leaseTransitions"] == 3
    assert expired.write.body["metadata"]["resourceVersion"] == "5"


def test_an_unreadable_renew_time_is_never_taken_for_expiry() -> None:
    odd = lease("b", None)
    odd["spec"]["renewTime"] = "yesterday"
    assert plan_leadership(view(odd)).write is None


def test_release_clears_the_holder_so_a_standby_takes_over_at_once() -> None:
    d = plan_leadership(view(lease("a", T0 - 1), release=True))
    assert not d.leader and isinstance(d.write, Update)
    assert d.write.body["spec"]["holderIdentity"] is None
    assert isinstance(plan_leadership(view(d.write.body, me="b")).write, Update)


@attrs.define
class Store:
    """A linearizable Lease store: writes carry the resourceVersion they were planned from."""

    obj: Any = None
    rv: int = 0
    last: Any = None
    """The Lease as it was before the latest step: what a stale reader sees."""

    def write(self, action: Any) -> bool:
        if isinstance(action, Create):
            if self.obj is not None:
                return False
        elif self.obj is None or action.body["metadata"]["resourceVersion"] != str(self.rv):
            return False
        self.rv += 1
        self.obj = {
            **action.body,
            "metadata": {**action.body["metadata"], "resourceVersion": str(self.rv)},
        }
        return True


@given(
    steps=st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 9), st.booleans()), max_size=60)
)
def test_two_replicas_never_lead_at_once(steps: list[tuple[str, float, bool]]) -> None:
    store, now = Store(), T0
    lead_until: dict[str, float] = {}
    for who, dt, stale in steps:
        now += dt
        # A replica may act on the Lease as it read it a moment ago (a stale read).
        seen = store.last if stale else store.obj
        d = plan_leadership(view(seen, me=who, now=now))
        before = store.obj
        ok = d.write is None or store.write(d.write)
        store.last = before
        if d.leader and ok:
            renewed = parse_rfc3339(seen["spec"]["renewTime"]) if d.write is None else now
            assert renewed is not None
            lead_until[who] = renewed + LEASE_DURATION_SECONDS
        else:
            lead_until.pop(who, None)
        leaders = [w for w, until in lead_until.items() if until > now]
        assert len(leaders) <= 1, (leaders, steps)
