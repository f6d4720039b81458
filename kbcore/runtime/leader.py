"""Leader election on a coordination.k8s.io Lease: the decision, as a pure function.

Several konnector replicas may run; only the one holding the Lease reconciles (as upstream,
with client-go `leaderelection` semantics). `plan_leadership` looks at the Lease as last read and
the time, and says whether this replica leads and which write, if any, keeps or takes the
Lease. Every write carries the resourceVersion it was decided from (or is a create), so when
two replicas race, the API server lets exactly one win; the loser reads again and stands by.

Rules:
 1. No Lease: create it, holding it from now (`leaseTransitions: 0`).
 2. Held by us: renew (`renewTime = now`) once a retry period has passed; we lead while our
    own renewTime is younger than the lease duration.
 3. Held by another replica whose renewTime is younger than the lease duration (or whose
    renewTime cannot be read: never assume it expired): stand by, no write.
 4. Held by another replica and expired, or held by nobody: take it over (`holderIdentity`,
    `acquireTime`, `renewTime`, `leaseTransitions + 1`), guarded by its resourceVersion.
 5. Releasing on shutdown (`release=True`): if we hold it, clear the holder so a standby
    takes over at once instead of after the lease duration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import Action, Create, Update
from kbcore.api.resources import LEASES
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.timestamps import parse_rfc3339, rfc3339

LEASE_DURATION_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10.0
RETRY_PERIOD_SECONDS = 2.0
FIELD_MANAGER = "kube-bind-konnector-leader"


@attrs.frozen
class LeaderView:
    cluster: str
    key: ObjectKey
    lease: o.Obj | None
    identity: str
    now: float
    release: bool = False


@attrs.frozen
class Leadership:
    """Whether we lead now, the write that keeps or takes the Lease, when to look again."""

    leader: bool
    write: Action | None
    next_check: float


def micro_time(t: float) -> str:
    """A MicroTime, as Lease timestamps are written."""
    return rfc3339(t)[:-1] + f".{int((t % 1) * 1e6):06d}Z"


def _spec(lease: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = lease.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def plan_leadership(view: LeaderView) -> Leadership:
    """The rules in the module docstring."""
    ref = ObjectRef(view.cluster, LEASES, view.key)
    now = micro_time(view.now)
    mine = {"holderIdentity": view.identity, "leaseDurationSeconds": LEASE_DURATION_SECONDS}
    lease = view.lease
    if lease is None:
        if view.release:
            return Leadership(False, None, view.now)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": view.key.name, "namespace": view.key.namespace},
            "spec": {**mine, "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
        }
        return Leadership(False, Create(ref, body, FIELD_MANAGER), view.now + RETRY_PERIOD_SECONDS)
    spec = _spec(lease)
    holder = spec.get("holderIdentity")
    duration = spec.get("leaseDurationSeconds")
    duration = duration if isinstance(duration, int) and duration > 0 else LEASE_DURATION_SECONDS
    renewed = parse_rfc3339(str(spec.get("renewTime") or ""))
    valid = renewed is not None and view.now < renewed + duration
    if holder == view.identity:
        if view.release:
            body = o.deepcopy(dict(lease))
            body["spec"] = {**spec, "holderIdentity": None, "renewTime": None}
            return Leadership(False, Update(ref, body, FIELD_MANAGER), view.now)
        due = renewed is None or view.now >= renewed + RETRY_PERIOD_SECONDS
        write = None
        if due:
            body = o.deepcopy(dict(lease))
            body["spec"] = {**spec, **mine, "renewTime": now}
            write = Update(ref, body, FIELD_MANAGER)
        return Leadership(valid, write, view.now + RETRY_PERIOD_SECONDS)
    if view.release or (holder and (valid or renewed is None)):
        return Leadership(False, None, view.now + RETRY_PERIOD_SECONDS)
    transitions = spec.get("leaseTransitions")
    transitions = transitions if isinstance(transitions, int) and transitions >= 0 else 0
    body = o.deepcopy(dict(lease))
    body["spec"] = {
        **spec,
        **mine,
        "acquireTime": now,
        "renewTime": now,
        "leaseTransitions": transitions + 1,
    }
    return Leadership(False, Update(ref, body, FIELD_MANAGER), view.now + RETRY_PERIOD_SECONDS)
