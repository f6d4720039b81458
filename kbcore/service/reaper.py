"""The reaper: Grants whose konnector stopped heart-beating.

A tenant's konnector renews a Lease in its home namespace (`kbcore.control.connection` rule
12: named `consumer-<localClusterUID>-<connection>`, annotated with the consumer cluster's UID,
`spec.renewTime` a MicroTime). `plan_reap` looks at every Grant and those Leases. Rules:

 1. A Grant's heartbeat is the newest `renewTime` of the Leases in its home namespace annotated
    with its `spec.consumerClusterUID` (a Lease of another cluster is not its heartbeat).
 2. A Grant is stale when its heartbeat is older than `ttl_seconds`, or, with no heartbeat at
    all, when it was issued (`status.issuedAt`) more than `ttl_seconds` ago. A Grant being
    deleted, never issued, or already revoked (for Revoke) is left alone.
 3. Mode `DryRun`: the stale Grants as `ReapDecision`s (the Grant, its home namespace, the
    heartbeat's age and why) and no writes at all.
    `Revoke`: each stale Grant gets `Stale=True/HeartbeatExpired` and `Revoked=True/
    HeartbeatExpired` in one status write (`kbcore.service.issuer` rule 4 then deletes its
    credentials). `Delete`: each stale Grant is deleted (uid precondition), which removes what
    it minted (issuer rule 2).
 4. Outside DryRun, a Grant with a fresh heartbeat and `Stale=True` has Stale removed; Revoked
    stays (re-issuing is explicit: `kbcore.service.issuer.reissue`).

Laws (tests/property/test_reaper_laws.py): a dry run never writes; a Grant with a fresh heartbeat
is never reaped.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import PROVIDER, Action, Delete, Plan
from kbcore.api import keys
from kbcore.api.resources import GRANTS
from kbcore.api.service_conditions import ServiceConditionType as T
from kbcore.api.service_conditions import ServiceReason as R
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.service.issuer import revoked_conditions
from kbcore.status import Conditions, status_update
from kbcore.timestamps import parse_rfc3339, rfc3339


class ReapMode(enum.Enum):
    DRY_RUN = "DryRun"
    REVOKE = "Revoke"
    DELETE = "Delete"


@attrs.frozen
class ReapView:
    """Every Grant and every Lease on the provider (from caches), and the policy."""

    grants: tuple[o.Obj, ...]
    leases: tuple[o.Obj, ...]
    now: float
    ttl_seconds: float
    mode: ReapMode


@attrs.frozen
class ReapDecision:
    """Grant `grant` (home namespace `namespace`) is stale, and why; `heartbeat_age` is how long
    ago its Lease was last renewed, None when it has no Lease."""

    grant: str
    why: str
    namespace: str = ""
    heartbeat_age: float | None = None


@attrs.frozen
class Reaped:
    """What the reaper found (`decisions`) and what it does about it (`plan`)."""

    decisions: tuple[ReapDecision, ...]
    plan: Plan


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def heartbeat(grant: Mapping[str, Any], leases: Iterable[Mapping[str, Any]]) -> float | None:
    """When the Grant's konnector last renewed its Lease (rule 1), None if never."""
    home = o.name(grant)
    cluster = _mapping(grant.get("spec")).get("consumerClusterUID")
    newest: float | None = None
    for lease in leases:
        if o.namespace(lease) != home or not home:
            continue
        if o.annotations_of(lease).get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) != cluster:
            continue
        renewed = _mapping(lease.get("spec")).get("renewTime")
        at = parse_rfc3339(renewed) if isinstance(renewed, str) else None
        if at is not None and (newest is None or at > newest):
            newest = at
    return newest


def staleness(grant: Mapping[str, Any], leases: Iterable[Mapping[str, Any]], now: float,
              ttl_seconds: float) -> str:  # fmt: skip
    """Why the Grant is stale (rule 2), "" when it is not (or was never issued)."""
    beat = heartbeat(grant, leases)
    if beat is not None:
        age = now - beat
        return f"no heartbeat for {age:.0f}s (TTL {ttl_seconds:.0f}s)" if age > ttl_seconds else ""
    issued = _mapping(grant.get("status")).get("issuedAt")
    at = parse_rfc3339(issued) if isinstance(issued, str) else None
    if at is None or now - at <= ttl_seconds:
        return ""
    return f"no heartbeat since it was issued {now - at:.0f}s ago (TTL {ttl_seconds:.0f}s)"


def plan_reap(view: ReapView) -> Reaped:
    decisions: list[ReapDecision] = []
    actions: list[Action] = []
    for grant in view.grants:
        if o.is_deleting(grant) or not o.name(grant):
            continue
        status = _mapping(grant.get("status"))
        conds = Conditions(status.get("conditions"), o.generation(grant), rfc3339(view.now))
        ref = ObjectRef(PROVIDER, GRANTS, ObjectKey("", o.name(grant)))
        why = staleness(grant, view.leases, view.now, view.ttl_seconds)
        if not why:
            if view.mode is not ReapMode.DRY_RUN and conds.is_true(T.STALE):
                conds.remove(T.STALE)
                update = status_update(grant, ref, {**status, "conditions": conds.to_json()})
                actions.extend([update] if update else [])
            continue
        if view.mode is ReapMode.REVOKE and conds.is_true(T.REVOKED):
            continue
        beat = heartbeat(grant, view.leases)
        age = None if beat is None else view.now - beat
        decisions.append(ReapDecision(o.name(grant), why, o.name(grant), age))
        if view.mode is ReapMode.REVOKE:
            conds.set(T.STALE, True, R.HEARTBEAT_EXPIRED, why)
            revoked_conditions(conds, R.HEARTBEAT_EXPIRED, why)
            update = status_update(grant, ref, {**status, "conditions": conds.to_json()})
            actions.extend([update] if update else [])
        elif view.mode is ReapMode.DELETE:
            actions.append(Delete(ref, o.uid(grant)))
    return Reaped(tuple(decisions), Plan(tuple(actions), why=f"reaper ({view.mode.value})"))
