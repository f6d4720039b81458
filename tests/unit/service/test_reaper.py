"""Grants whose konnector stopped heart-beating (kbcore/service/reaper.py), per rule."""

from __future__ import annotations

from typing import Any

from kbcore.actions import Delete, UpdateStatus
from kbcore.api import keys
from kbcore.service.issuer import grant_for
from kbcore.service.reaper import ReapDecision, ReapMode, ReapView, heartbeat, plan_reap
from kbcore.timestamps import rfc3339
from tests.unit.service.provider import CLUSTER_UID, IDENTITY, NOW

TTL = 300.0
OTHER_UID = "6f1c0f6e-0000-4000-8000-000000000002"


def issued_grant(issued_at: float = NOW - 1000, **conds: str) -> dict[str, Any]:
    g = grant_for(IDENTITY, "widgets", CLUSTER_UID)
    g["metadata"]["uid"] = "u-1"
    g["status"] = {
        "namespace": g["metadata"]["name"],
        "issuedAt": rfc3339(issued_at),
        "conditions": [
            {"type": t, "status": s, "reason": "X", "message": "", "lastTransitionTime":
             rfc3339(issued_at)} for t, s in conds.items()
        ],
    }  # fmt: skip
    return g


def lease(grant: dict[str, Any], renewed: float, cluster: str = CLUSTER_UID) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"consumer-{cluster}-provider",
            "namespace": grant["metadata"]["name"],
            "annotations": {keys.ANNOTATION_CONSUMER_CLUSTER_UID: cluster},
        },
        "spec": {"renewTime": rfc3339(renewed)[:-1] + ".000000Z"},
    }


def reap(grants: list[dict[str, Any]], leases: list[dict[str, Any]], mode: ReapMode) -> Any:
    return plan_reap(ReapView(tuple(grants), tuple(leases), NOW, TTL, mode))


def test_rule1_the_heartbeat_is_the_newest_lease_of_the_grants_cluster() -> None:
    g = issued_grant()
    leases = [lease(g, NOW - 50), lease(g, NOW - 10), lease(g, NOW - 1, cluster=OTHER_UID)]
    assert heartbeat(g, leases) == NOW - 10


def test_rule2_an_old_lease_is_stale_a_fresh_one_is_not() -> None:
    g = issued_grant()
    (decision,) = reap([g], [lease(g, NOW - 400)], ReapMode.DRY_RUN).decisions
    home = g["metadata"]["name"]
    assert decision == ReapDecision(home, "no heartbeat for 400s (TTL 300s)", home, 400.0)
    assert reap([g], [lease(g, NOW - 100)], ReapMode.REVOKE).decisions == ()


def test_rule2_no_lease_counts_from_issued_at() -> None:
    assert reap([issued_grant(NOW - 100)], [], ReapMode.REVOKE).decisions == ()
    assert len(reap([issued_grant(NOW - 301)], [], ReapMode.REVOKE).decisions) == 1
    never = issued_grant()
    del never["status"]["issuedAt"]
    assert reap([never], [], ReapMode.DELETE).decisions == ()


def test_rule2_another_clusters_lease_is_no_heartbeat() -> None:
    g = issued_grant()
    assert len(reap([g], [lease(g, NOW, cluster=OTHER_UID)], ReapMode.DRY_RUN).decisions) == 1


def test_rule3_dry_run_writes_nothing() -> None:
    g = issued_grant()
    out = reap([g], [], ReapMode.DRY_RUN)
    assert len(out.decisions) == 1 and out.plan.actions == ()


def test_rule3_revoke_sets_stale_and_revoked_in_one_write() -> None:
    g = issued_grant()
    out = reap([g], [], ReapMode.REVOKE)
    (update,) = out.plan.actions
    assert isinstance(update, UpdateStatus)
    got = {c["type"]: (c["status"], c["reason"]) for c in update.body["status"]["conditions"]}
    assert got == {"Stale": ("True", "HeartbeatExpired"), "Revoked": ("True", "HeartbeatExpired"),
                   "Ready": ("False", "Revoked")}  # fmt: skip
    again = reap([update.body], [], ReapMode.REVOKE)
    assert again.plan.actions == () and again.decisions == ()


def test_rule3_delete_deletes_the_grant_with_its_uid() -> None:
    g = issued_grant()
    (delete,) = reap([g], [], ReapMode.DELETE).plan.actions
    assert isinstance(delete, Delete) and delete.uid == "u-1"
    assert delete.target.key.name == g["metadata"]["name"]


def test_rule4_a_fresh_lease_clears_stale_but_not_revoked() -> None:
    g = issued_grant(Stale="True", Revoked="True")
    (update,) = reap([g], [lease(g, NOW - 5)], ReapMode.REVOKE).plan.actions
    assert isinstance(update, UpdateStatus)
    assert [c["type"] for c in update.body["status"]["conditions"]] == ["Revoked"]
    assert reap([g], [lease(g, NOW - 5)], ReapMode.DRY_RUN).plan.actions == ()
