"""Actions: what the kernel asks a shell to do, as frozen values compared by `==`.

A shell executes a plan's actions in order and stops at the first failure (the rest were planned
on the assumption that earlier ones succeeded). Every write names its target precisely and
carries the preconditions that make it safe to retry on stale information: deletes carry the UID
of the object the kernel decided to delete, consumer updates carry the resourceVersion the
decision was made from, provider applies of an existing copy carry its UID (an SSA body whose
`metadata.uid` differs from the live object is rejected by the API server).

Bodies are plain dicts built fresh by the kernel; shells must not mutate them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from kbcore.objects import Obj, ObjectRef
from kbcore.reads import Missing, Read
from kbcore.redaction import redacted_repr

CONSUMER = "consumer"
PROVIDER = "provider"
"""Cluster roles used in `ObjectRef.cluster` by the instance kernel: the shell knows which real
cluster plays each role for the Connection being reconciled."""


@attrs.frozen
class AddFinalizer:
    """Add `finalizer`; `finalizers` is the whole resulting list, written as a merge patch guarded
    by `resource_version` so a concurrent finalizer change by someone else is never clobbered."""

    target: ObjectRef
    finalizer: str
    resource_version: str
    finalizers: tuple[str, ...]


@attrs.frozen
class RemoveFinalizer:
    """Remove `finalizer`; same shape and guarantees as `AddFinalizer`."""

    target: ObjectRef
    finalizer: str
    resource_version: str
    finalizers: tuple[str, ...]


@attrs.frozen(hash=False)
class Apply:
    """Server-side apply of `body` (apply-patch content type) with `field_manager`."""

    target: ObjectRef
    body: Obj = attrs.field(repr=redacted_repr)  # a related Secret's copy carries its data
    field_manager: str
    force: bool = True


@attrs.frozen(hash=False)
class Create:
    """Create `body` (POST): fails with AlreadyExists instead of touching an existing object.

    Used for a provider copy the kernel believes absent, because a server-side apply would
    silently merge into a same-named object created meanwhile by someone else.
    """

    target: ObjectRef
    body: Obj = attrs.field(repr=redacted_repr)  # a related Secret's copy carries its data
    field_manager: str


@attrs.frozen(hash=False)
class CreateNamespace:
    """Create namespace `name` in `cluster`; AlreadyExists counts as success."""

    cluster: str
    name: str
    labels: dict[str, str]
    annotations: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Delete:
    """Delete with a UID precondition, so a same-named replacement is never deleted."""

    target: ObjectRef
    uid: str
    best_effort: bool = False
    """A refusal (403) is accepted and the plan goes on: used for housekeeping (the heartbeat
    Lease) that must never block teardown; transient failures are still retried."""


@attrs.frozen(hash=False)
class MergePatch:
    """JSON merge patch (RFC 7386); guarded by `resource_version` unless it is empty (used for
    informational patches, such as the conflict annotation, that are safe on any version)."""

    target: ObjectRef
    patch: Obj = attrs.field(repr=redacted_repr)
    resource_version: str = ""


@attrs.frozen(hash=False)
class Update:
    """PUT `body`, the whole object, carrying the resourceVersion it was planned from (a
    replace, not a merge: fields absent from `body` are removed)."""

    target: ObjectRef
    body: Obj = attrs.field(repr=redacted_repr)  # a related Secret's copy carries its data
    field_manager: str = "kube-bind-konnector"


@attrs.frozen(hash=False)
class UpdateStatus:
    """PUT to the /status subresource; `body` is the whole object with the new status (or none),
    carrying the resourceVersion it was planned from."""

    target: ObjectRef
    body: Obj = attrs.field(repr=redacted_repr)  # a related Secret's copy carries its data


@attrs.frozen
class EmitEvent:
    """A core/v1 Event about `target` (of `kind`, whose UID is `uid`) in the target's cluster."""

    target: ObjectRef
    kind: str
    uid: str
    type: str
    reason: str
    message: str


@attrs.frozen
class RequeueAfter:
    """Look at this key again after `seconds` even if nothing changes (waiting on another actor)."""

    seconds: float


Action = (
    AddFinalizer
    | RemoveFinalizer
    | Apply
    | Create
    | CreateNamespace
    | Delete
    | MergePatch
    | Update
    | UpdateStatus
    | EmitEvent
    | RequeueAfter
)

WRITES: tuple[type[Any], ...] = (
    AddFinalizer,
    RemoveFinalizer,
    Apply,
    Create,
    CreateNamespace,
    Delete,
    MergePatch,
    Update,
    UpdateStatus,
    EmitEvent,
)


def is_write(action: Action) -> bool:
    return isinstance(action, WRITES)


def cluster_of(action: Action) -> str:
    """The cluster role an action is carried out on ("" for RequeueAfter)."""
    if isinstance(action, CreateNamespace):
        return action.cluster
    target = getattr(action, "target", None)
    return target.cluster if isinstance(target, ObjectRef) else ""


@attrs.frozen
class Plan:
    """An ordered tuple of actions, or the reads needed before planning (`kbcore.reads`), plus
    why."""

    actions: tuple[Action, ...] = ()
    needs: tuple[Read, ...] = ()
    why: str = ""

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if is_write(a))

    @property
    def requeue_after(self) -> float | None:
        delays = [a.seconds for a in self.actions if isinstance(a, RequeueAfter)]
        return min(delays) if delays else None


def plan_or_ask(decide: Callable[[], Plan]) -> Plan:
    """A planner's entry point: `decide()`, or, when it raised `Missing` (`kbcore.reads.need`)
    for reads not done yet, the Plan that asks for them."""
    try:
        return decide()
    except Missing as m:
        return Plan(needs=m.reads, why=m.why)
