"""The reaper in kbsim (kbsim.issuer.SimReaper, kbcore/service/reaper.py): a konnector that
stops heart-beating loses its credentials in Revoke mode, and a dry run only reports it.

The Grant, its credentials and the bundle are the issuer's (tests/unit/sim/test_issued_tenant.py
`Tenant`); the konnector's heartbeat Lease is its own; nothing here writes a Lease or a Grant's
status by hand.
"""

from __future__ import annotations

from kbcore.api.resources import GRANTS, LEASES, SECRETS, SERVICE_ACCOUNTS
from kbcore.objects import ObjectKey
from kbcore.service import issuer as iss
from kbcore.service.reaper import ReapMode
from kbsim.issuer import SimReaper
from kbsim.konnector import SimKonnector
from tests.unit import bindworld as bw
from tests.unit.sim.test_issued_tenant import Tenant, conditions

TTL = 300.0


def bound(mode: ReapMode) -> tuple[Tenant, SimReaper]:
    t = Tenant()
    t.bind()
    assert t.world.settle(120)
    leases = t.provider.list(LEASES, namespace=t.home)[0]
    assert leases, "the konnector heart-beats in its home namespace"
    reaper = t.world.start_reaper("provider", mode, TTL, interval_seconds=30)
    return t, reaper


def stop_konnector(t: Tenant) -> None:
    w = t.world
    assert w.konnector is not None
    w.konnector.stop()
    w.konnector = None


def test_revoke_mode_cuts_off_a_konnector_that_stopped() -> None:
    t, _ = bound(ReapMode.REVOKE)
    w = t.world
    w.advance(2 * TTL)  # the konnector keeps its Lease fresh: nothing is reaped
    grant = t.provider.get(GRANTS, ObjectKey("", t.home))
    assert conditions(grant)["Ready"][:2] == ("True", "Issued"), grant
    assert "Revoked" not in conditions(grant)

    stop_konnector(t)
    w.advance(TTL + 120)
    conds = conditions(t.provider.get(GRANTS, ObjectKey("", t.home)))
    assert conds["Revoked"][:2] == ("True", "HeartbeatExpired"), conds
    assert conds["Stale"][:2] == ("True", "HeartbeatExpired"), conds
    assert conds["Ready"][:2] == ("False", "Revoked"), conds
    assert bw.get(w, "provider", SECRETS, ObjectKey(t.home, iss.TOKEN_SECRET)) is None
    assert bw.get(w, "provider", SERVICE_ACCOUNTS, ObjectKey(t.home, iss.SERVICE_ACCOUNT)) is None

    # The konnector comes back with the same bundle: its token no longer authenticates.
    before = len(t.seen)
    w.start_konnector(lambda: SimKonnector(w, "consumer", "kube-bind"))
    w.advance(120)
    assert len(t.seen) == before
    conn = conditions(bw.get(w, "consumer", bw.CONNECTIONS, ObjectKey("", "provider")))
    assert "401 Unauthorized" in conn["Connected"][2], conn


def test_dry_run_reports_the_stale_grant_and_writes_nothing() -> None:
    t, reaper = bound(ReapMode.DRY_RUN)
    w = t.world
    stop_konnector(t)
    grant_before = t.provider.get(GRANTS, ObjectKey("", t.home))
    w.advance(TTL + 120)
    grant = t.provider.get(GRANTS, ObjectKey("", t.home))
    assert grant["metadata"]["resourceVersion"] == grant_before["metadata"]["resourceVersion"]
    assert bw.get(w, "provider", SECRETS, ObjectKey(t.home, iss.TOKEN_SECRET)) is not None
    last = reaper.passes[-1]
    assert [d.grant for d in last.decisions] == [t.home]
    age = last.decisions[0].heartbeat_age
    assert age is not None and age > TTL
    assert last.plan.writes == ()  # a dry run plans no write at all
