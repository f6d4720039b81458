"""Laws of the reaper (kbcore/service/reaper.py): a dry run never writes; a Grant whose konnector
renewed its Lease within the TTL is never reaped, whatever else is stored."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kbcore.actions import Delete, UpdateStatus
from kbcore.api import keys
from kbcore.api.iam import OIDCIdentity
from kbcore.service.issuer import grant_for
from kbcore.service.reaper import ReapMode, ReapView, plan_reap
from kbcore.timestamps import rfc3339
from tests.property.strategies import json_objects, json_values

NOW = 1_800_000_000.0
modes = st.sampled_from(list(ReapMode))
ttls = st.integers(1, 10_000).map(float)  # Lease times are whole seconds (rfc3339 floors)
ages = st.floats(0, 20_000)
junk = st.one_of(json_values(6), json_objects(6))


@st.composite
def grants(draw: st.DrawFn) -> dict[str, Any]:
    uid = str(draw(st.uuids()))
    g = grant_for(OIDCIdentity(issuer="i", subject=draw(st.text(max_size=4))), "widgets", uid)
    g["metadata"]["uid"] = "u"
    status: Any = {"issuedAt": rfc3339(NOW - draw(ages)),
                   "conditions": draw(st.lists(st.fixed_dictionaries({
                       "type": st.sampled_from(["Ready", "Stale", "Revoked"]),
                       "status": st.sampled_from(["True", "False"]),
                       "reason": st.just("X"), "message": st.just(""),
                       "lastTransitionTime": st.just("2026-01-01T00:00:00Z")}), max_size=3))}  # fmt: skip
    g["status"] = draw(st.one_of(st.just(status), junk))
    return g


def lease_of(grant: dict[str, Any], age: float) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "consumer-x-provider",
            "namespace": grant["metadata"]["name"],
            "annotations": {
                keys.ANNOTATION_CONSUMER_CLUSTER_UID: grant["spec"]["consumerClusterUID"]
            },
        },
        "spec": {"renewTime": rfc3339(NOW - age)},
    }


@given(st.lists(grants(), max_size=4), st.lists(json_objects(6), max_size=3), ttls, st.data())
def test_a_dry_run_never_writes(
    gs: list[dict[str, Any]], junk_leases: list[dict[str, Any]], ttl: float, data: st.DataObject
) -> None:
    leases = [lease_of(g, data.draw(ages)) for g in gs if data.draw(st.booleans())]
    out = plan_reap(ReapView(tuple(gs), (*leases, *junk_leases), NOW, ttl, ReapMode.DRY_RUN))
    assert out.plan.actions == ()


@given(st.lists(grants(), min_size=1, max_size=4), ttls, modes, st.data())
def test_fresh_leases_are_never_reaped(
    gs: list[dict[str, Any]], ttl: float, mode: ReapMode, data: st.DataObject
) -> None:
    leases = [lease_of(g, data.draw(st.integers(0, int(ttl)))) for g in gs]
    out = plan_reap(ReapView(tuple(gs), tuple(leases), NOW, ttl, mode))
    assert out.decisions == ()
    for action in out.plan.actions:
        assert not isinstance(action, Delete)
        assert isinstance(action, UpdateStatus)
        types = {c["type"]: c["status"] for c in action.body["status"]["conditions"]}
        assert types.get("Stale") != "True"
