"""What a konnector worker does with one work-queue key, for both shells.

A key names a Connection, a binding, one instance of a bound API, or the engagement pass
(`kbcore.runtime.keys`). Handling it means: build the kernel's view from the shell's caches
(`kbcore.runtime.observe`), call the planner, answer the reads it asks for, carry out its
actions in order, and decide from the first failure what the queue does with the key next. kbsim
and kbshell did this in two copies; it is written once here, sans-I/O (as h11 is): `work` is a
generator that *yields* the I/O it needs and *receives* the answers, and returns an `Outcome`.

 - `Ask(read, credentials)`: answer a kernel read (`kbcore.reads`) on the consumer, or on the
   provider the credentials reach. The answer is the read's result, or `Failed(error)`.
 - `Send(request, action, credentials)`: carry out one request. The answer is None when it
   succeeded, or the `ApiError` it failed with.

The shell supplies the caches through `KonnectorState` and runs the generator with `drive`.
`settle` then applies the outcome to the work queue. Time comes in as `now`.

Rules (the same as client-go controllers and upstream's konnector):
 1. Control-plane keys wait until the control caches have synced (retried after 1 s).
 2. A planner is re-called with every read it asked for, until it asks for none (bounded).
 3. Actions run in order; the first failure that `judge` does not call harmless ends the plan,
    and its verdict decides the requeue (now, after a delay, or with backoff).
 4. A fully carried-out plan forgets the key's backoff and honours its RequeueAfter.
 5. A Connection whose reconcile changed the credentials it vouches for wakes the engagement
    pass, so syncers never use credentials the Connection reconcile has not verified.
 6. An instance plan that claimed a tenant's provider namespace (`kbcore.sync.tenancy` rule 4)
    wakes its Connection, which watches the claim until it is granted and then records the
    namespace, so the namespace is watched without waiting for the next resync.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

import attrs

from kbcore.actions import CONSUMER, Action, Create, Plan
from kbcore.api.resources import BOUND_NAMESPACES
from kbcore.control.binding import plan_binding
from kbcore.control.connection import plan_connection
from kbcore.control.engagement import verified_fingerprint
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import UNREACHABLE, UNREACHABLE_CODE, ApiError
from kbcore.reads import Failed, Read
from kbcore.runtime.keys import (
    ENGAGE,
    BindingKey,
    ConnectionKey,
    EngageKey,
    InstanceKey,
    WorkKey,
)
from kbcore.runtime.observe import (
    KonnectorState,
    binding_view,
    connection_view,
    instance_view,
    usable,
)
from kbcore.runtime.requests import Next, Request, Verdict, judge, throttled, to_request
from kbcore.runtime.workqueue import WorkQueue

BACKSTOP_SECONDS = 600.0
"""Every cached instance is looked at again this often even without events (upstream: 10 min)."""
MAX_READ_ROUNDS = 32
"""A planner asks in rounds (an unbind with namespace cleanup takes about a dozen)."""
CACHE_WAIT_SECONDS = 1.0


@attrs.frozen
class Ask:
    """Answer `read`; `credentials` reach the provider (unused for consumer reads)."""

    read: Read
    credentials: Credentials | None = None


@attrs.frozen(hash=False)
class Send:
    """Carry out `request` (made from `action`) on the consumer or the provider."""

    request: Request
    action: Action
    credentials: Credentials | None = None


Effect = Ask | Send


@attrs.frozen(hash=False)
class Failure:
    """An action that failed, what the server said, and what that means."""

    action: Action
    error: ApiError
    verdict: Verdict


@attrs.frozen(hash=False)
class Outcome:
    """How handling a key ended.

    `plan` is what the kernel planned (None when nothing was planned); `failures` every failed
    action, harmless ones included, for logs and metrics; `verdict` the failure that ended the
    plan, if any; `requeue_after` a delay asked for by a complete plan; `verified` is
    (connection, fingerprint) when a Connection reconcile changed the credentials it vouches
    for; `engage` asks the shell to run the engagement pass now (see
    `kbcore.runtime.enqueue.engagements`)."""

    plan: Plan | None = None
    failures: tuple[Failure, ...] = ()
    verdict: Verdict | None = None
    requeue_after: float | None = None
    verified: tuple[str, str | None] | None = None
    engage: bool = False
    binding: str = ""
    wake: tuple[WorkKey, ...] = ()
    """Other keys to handle now (rule 6)."""

    @property
    def complete(self) -> bool:
        return self.verdict is None


Work = Generator[Effect, Any, Outcome]


def unreachable(why: str = "no usable provider credentials") -> ApiError:
    return ApiError(UNREACHABLE_CODE, UNREACHABLE, why)


def work(item: WorkKey, state: KonnectorState, now: float) -> Work:
    """Handle one key (rules 1-5). For ENGAGE the shell itself starts and stops syncers, once
    the caches have synced (`Outcome.engage`, `kbcore.runtime.enqueue.engagements`)."""
    if not isinstance(item, InstanceKey) and not state.control_synced():
        # As controllers wait for their caches to sync before the first reconcile.
        return Outcome(requeue_after=CACHE_WAIT_SECONDS)
    match item:
        case InstanceKey():
            return (yield from _instance(item, state, now))
        case EngageKey():
            return Outcome(engage=True)
        case ConnectionKey():
            return (yield from _connection(item, state, now))
        case BindingKey():
            return (yield from _binding(item, state, now))


def _plan_with_reads(
    plan_fn: Callable[[Any], Plan], view: Any, provider: Credentials | None
) -> Generator[Effect, Any, Plan | Verdict]:
    """Rule 2: call the planner with every read it asked for so far, until it asks for none.
    A planner that gives up on a read it cannot do without (`reads.get_obj` raises the read's
    error) ends in the verdict on that error."""
    observed: dict[Read, Any] = {}
    for _ in range(MAX_READ_ROUNDS):
        try:
            plan = plan_fn(attrs.evolve(view, observed=dict(observed)))
        except ApiError as err:
            return judge_read(err)
        if not plan.needs:
            return plan
        for read in plan.needs:
            if read.cluster != CONSUMER and provider is None:
                observed[read] = Failed(unreachable())
            else:
                observed[read] = yield Ask(read, provider)
    raise RuntimeError(f"planner kept asking for reads: {plan.needs}")


def _connection(item: ConnectionKey, state: KonnectorState, now: float) -> Work:
    view = connection_view(state, item.name, now)
    if view is None:
        return Outcome()
    creds = view.credentials
    plan = yield from _plan_with_reads(plan_connection, view, usable(creds))
    if isinstance(plan, Verdict):
        return Outcome(verdict=plan)
    outcome = yield from execute(plan, usable(creds), now)
    if not outcome.complete:
        return outcome
    fingerprint = verified_fingerprint(view.connection, creds, plan)
    if fingerprint != state.verified(item.name):
        return attrs.evolve(outcome, verified=(item.name, fingerprint))
    return outcome


def _binding(item: BindingKey, state: KonnectorState, now: float) -> Work:
    view = binding_view(state, item, now)
    if view is None:
        return Outcome()
    creds = usable(view.credentials)
    plan = yield from _plan_with_reads(plan_binding, view, creds)
    if isinstance(plan, Verdict):
        return Outcome(verdict=plan)
    return (yield from execute(plan, creds, now))


def _instance(item: InstanceKey, state: KonnectorState, now: float) -> Work:
    syncer = state.syncer(item.gvr)
    if syncer is None:  # not engaged (any more): nothing of this API is synced
        return Outcome()
    if not syncer.synced:  # its caches are filling: look again once they hold everything
        return Outcome(requeue_after=CACHE_WAIT_SECONDS)
    view = instance_view(syncer, state, item)
    binding = view.coverage.binding
    provider = syncer.target.engagement.credentials
    plan = yield from _plan_with_reads(state.planner, view, provider)
    if isinstance(plan, Verdict):
        return Outcome(verdict=plan, binding=binding)
    outcome = yield from execute(plan, provider, now)
    claimed = any(isinstance(a, Create) and a.target.gvr == BOUND_NAMESPACES for a in plan.actions)
    wake = (ConnectionKey(syncer.target.engagement.connection),) if claimed else ()
    return attrs.evolve(outcome, binding=binding, wake=wake)


def judge_read(error: ApiError) -> Verdict:
    """A failed fresh read: throttling is waited out, anything else backs off."""
    return throttled(error) or Verdict(
        Next.BACKOFF, why=f"read failed: {error.code} {error.reason}"
    )


def execute(plan: Plan, provider: Credentials | None, now: float) -> Work:
    """Rules 3 and 4: carry out `plan`'s actions in order."""
    failures: list[Failure] = []
    for action in plan.actions:
        request = to_request(action, now)
        if request is None:
            continue
        if request.cluster != CONSUMER and provider is None:
            error: ApiError | None = unreachable()
        else:
            error = yield Send(request, action, provider if request.cluster != CONSUMER else None)
        if error is None:
            continue
        verdict = judge(action, error)
        failures.append(Failure(action, error, verdict))
        if verdict.next is not Next.CONTINUE:
            return Outcome(plan, tuple(failures), verdict)
    return Outcome(plan, tuple(failures), requeue_after=plan.requeue_after)


T = TypeVar("T")


def drive(
    gen: Generator[Effect, Any, T],
    answer: Callable[[Ask], Any],
    send: Callable[[Send], ApiError | None],
) -> T:
    """Run a worker generator with the shell's I/O: the one place kbcore hands control to a
    shell's functions, and only those passed in."""
    try:
        effect = next(gen)
        while True:
            effect = gen.send(answer(effect) if isinstance(effect, Ask) else send(effect))
    except StopIteration as stop:
        result: T = stop.value
        return result


def settle(
    queue: WorkQueue[WorkKey],
    item: WorkKey,
    outcome: Outcome,
    now: float,
    verified: dict[str, str | None],
) -> None:
    """Apply an outcome to the queue (rules 3-5); the caller then marks the key done."""
    if outcome.verified is not None:
        name, fingerprint = outcome.verified
        verified[name] = fingerprint
        queue.add(ENGAGE)
    for key in outcome.wake:
        queue.add(key)
    verdict = outcome.verdict
    if verdict is None:
        queue.forget(item)
        if outcome.requeue_after is not None:
            queue.add_after(item, outcome.requeue_after, now)
    elif verdict.next is Next.REPLAN:
        # The world moved: plan again almost at once (5 ms). A replan that keeps failing is not
        # the world moving (a status write to a CRD without the status subresource answers 404
        # every time), so the per-key backoff grows; the shared token bucket is left alone.
        queue.add_rate_limited(item, now, bucket=False)
    elif verdict.next is Next.WAIT:
        queue.add_after(item, verdict.after, now)
    else:
        queue.add_rate_limited(item, now)
