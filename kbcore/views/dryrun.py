"""`kubectl bind plan`: what the konnector would do right now, decided by the kernel, written
nowhere.

Theory of operation. The konnector's per-key work is `kbcore.runtime.worker.work`, a generator that
asks for reads (`Ask`) and requests (`Send`). A dry run is the same worker over a *snapshot*: one
LIST of every control-plane resource the konnector caches (Connections, ClusterBindings,
Bindings, CRDs, the kubeconfig Secrets of its namespace), then, for every API the engagement
pass would sync, one LIST of its consumer objects and one of the provider copies (label
`managed=true`, as the syncer's cache). `Snapshot` serves those lists to the worker as its
caches; the worker's reads are passed on to the shell to answer live (the same fresh reads the
konnector would do); its requests are *recorded and never sent*: `dry_run` yields only `Ask`,
so no shell driving it can be handed a write.

Rules:
 1. Keys in the order a freshly started konnector handles them (`control_resync_keys`): every
    Connection, every binding, the engagement pass, then every instance key: each consumer
    object of a synced API and each provider copy carrying our cluster marker
    (`instance_key`, `provider_key`), sorted.
 2. A request is answered as if it succeeded, so a plan is followed to its end as the
    konnector would follow it; one that could not even be sent (no usable provider
    credentials) is reported as failing, as the konnector would report it.
 3. A Connection whose plan vouches for its credentials (`Outcome.verified`) is engaged from
    then on, as in the konnector after its first Connection reconcile; nothing else carries
    over between keys: each is planned from the snapshot, not from the writes planned before
    it. So the dry run is one step of the konnector, not its fixed point.
 4. A failed snapshot LIST is reported and leaves out what depends on it (no control LIST: no
    plan at all; no cache of one API: none of its instance keys).
 5. Renewing the heartbeat Lease is routine: the konnector does it every resync even at rest,
    so it does not count as work to do (`routine`).
 6. Each update, status update, apply and merge patch of an object the worker saw (in the
    snapshot or by a fresh read) shows the fields it would change, `path: old -> new`
    (`kbcore.diff`, which never shows a Secret's data). An apply sets the fields of its body and
    removes the fields its field manager owns that the body no longer sets, as the API server
    does; fields the server writes itself (resourceVersion, managedFields, ...) are left out.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import attrs

from kbcore import actions, diff
from kbcore import objects as o
from kbcore.actions import CONSUMER, PROVIDER, Action
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.api.resources import BINDINGS, CLUSTERBINDINGS, CRDS, LEASES, SECRETS
from kbcore.control.engagement import SyncTarget, sync_targets
from kbcore.objects import GVR, Obj, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List
from kbcore.redaction import redacted_repr
from kbcore.runtime.enqueue import control_resync_keys, engagements, instance_key, provider_key
from kbcore.runtime.keys import ENGAGE, InstanceKey, WorkKey, describe_key
from kbcore.runtime.observe import CONTROL_KINDS, Planner
from kbcore.runtime.state import CachedState
from kbcore.runtime.worker import Ask, Failure, Outcome, work
from kbcore.sync.instance import plan_instance

MANAGED_SELECTOR = f"{keys.LABEL_MANAGED}=true"


@attrs.frozen(hash=False)
class SnapshotSyncer:
    """A bound API's two caches, from one LIST each (`kbcore.runtime.observe.Syncer`)."""

    target: SyncTarget
    consumer: Mapping[ObjectKey, Obj]
    provider: Mapping[ObjectKey, Obj]
    synced: bool = True

    def consumer_get(self, key: ObjectKey) -> Obj | None:
        return self.consumer.get(key)

    def provider_get(self, key: ObjectKey) -> Obj | None:
        return self.provider.get(key)


@attrs.frozen(hash=False)
class Listed:
    """One snapshot LIST as a cache (`kbcore.runtime.state.Cache`): complete, never changing."""

    # Secrets among them: masked in the repr.
    objects: Mapping[ObjectKey, Obj] = attrs.field(repr=redacted_repr)

    def get(self, key: ObjectKey) -> Obj | None:
        return self.objects.get(key)

    def items(self) -> list[Obj]:
        return list(self.objects.values())

    def has_synced(self) -> bool:
        return True


@attrs.frozen(hash=False)
class Snapshot(CachedState[SnapshotSyncer]):
    """A `KonnectorState` from one-shot LISTs: caches that are complete and never change."""

    namespace: str
    planner: Planner
    # The kubeconfig Secrets too: masked in the repr.
    control: Mapping[GVR, Listed] = attrs.field(repr=redacted_repr)
    syncers: Mapping[GVR, SnapshotSyncer] = attrs.field(factory=dict)
    verified_credentials: Mapping[str, str | None] = attrs.field(factory=dict)


def routine(action: Action) -> bool:
    """Rule 5: renewing the heartbeat Lease, which the konnector does at rest too."""
    return isinstance(action, actions.Update) and action.target.gvr == LEASES


@attrs.frozen(hash=False)
class KeyPlan:
    """What handling one key would do."""

    key: WorkKey
    actions: tuple[Action, ...]
    """The requests it would send, in order (rule 2), actions.RequeueAfter excluded."""
    failing: tuple[Failure, ...] = ()
    """Requests that would fail without being sent (no usable provider credentials)."""
    why: str = ""
    blocked: str = ""
    """Why handling would end early (a read that failed), or ""."""
    requeue_after: float | None = None
    before: tuple[Obj | None, ...] = ()
    """Per action, the object it writes as the worker saw it (None: not seen, or not there)."""

    @property
    def work(self) -> tuple[Action, ...]:
        """The actions that are not routine (rule 5)."""
        return tuple(a for a in self.actions if not routine(a))

    @property
    def pending(self) -> bool:
        return bool(self.work or self.failing or self.blocked)


@attrs.frozen(hash=False)
class DryRun:
    """Every key the konnector would handle now, and the snapshot LISTs that failed."""

    keys: tuple[KeyPlan, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def pending(self) -> tuple[KeyPlan, ...]:
        return tuple(k for k in self.keys if k.pending)

    @property
    def routine(self) -> tuple[Action, ...]:
        return tuple(a for k in self.keys for a in k.actions if routine(a))

    @property
    def converged(self) -> bool:
        return not self.pending and not self.problems


Dry = Generator[Ask, Any, DryRun]


def dry_run(
    namespace: str,
    now: float,
    *,
    planner: Planner = plan_instance,
) -> Dry:
    """The konnector's next step for every key (module rules); yields only reads."""
    control: dict[GVR, Listed] = {}
    problems: list[str] = []
    for gvr in CONTROL_KINDS:
        read = List(CONSUMER, gvr, namespace if gvr == SECRETS else "")
        result = yield Ask(read)
        if isinstance(result, Failed):
            problems.append(f"cannot list {_plural(gvr)} on the consumer: {result.error}")
            continue
        control[gvr] = Listed(_keyed(result))
    if problems:
        return DryRun((), tuple(problems))
    state = Snapshot(namespace, planner, control)
    plans: list[KeyPlan] = []
    for item in control_resync_keys(state):
        if item == ENGAGE:
            state = yield from _engage(state, problems)
            continue
        plan, outcome = yield from _handle(item, state, now)
        plans.append(plan)
        if outcome.verified is not None:
            name, fingerprint = outcome.verified
            verified = {**state.verified_credentials, name: fingerprint}
            state = attrs.evolve(state, verified_credentials=verified)
    for item in instance_keys(state):
        plan, _ = yield from _handle(item, state, now)
        plans.append(plan)
    return DryRun(tuple(plans), tuple(problems))


def _keyed(items: Any) -> dict[ObjectKey, Obj]:
    return {o.key_of(i): i for i in items if isinstance(i, dict)} if isinstance(items, list) else {}


def _plural(gvr: GVR) -> str:
    return gvr.group_resource


def _engage(state: Snapshot, problems: list[str]) -> Generator[Ask, Any, Snapshot]:
    """The engagement pass: which APIs are synced, and their caches (rule 4)."""
    engaged = engagements(state)
    syncers: dict[GVR, SnapshotSyncer] = {}
    bindings = state.cached(CLUSTERBINDINGS) + state.cached(BINDINGS)
    for gvr, target in sync_targets(state.cached(CRDS), engaged, bindings).items():
        consumer = yield Ask(List(CONSUMER, gvr))
        creds = target.engagement.credentials
        provider = yield Ask(List(PROVIDER, gvr, label_selector=MANAGED_SELECTOR), creds)
        failed = [(side, r) for side, r in (("consumer", consumer), ("provider", provider))
                  if isinstance(r, Failed)]  # fmt: skip
        if failed:
            for side, r in failed:
                problems.append(f"cannot list {_plural(gvr)} on the {side}: {r.error}")
            continue
        syncers[gvr] = SnapshotSyncer(target, _keyed(consumer), _keyed(provider))
    return attrs.evolve(state, syncers=syncers)


def instance_keys(state: Snapshot) -> list[WorkKey]:
    """Rule 1's instance keys: consumer objects and our provider copies of every synced API."""
    out: set[tuple[GVR, ObjectKey]] = set()
    for gvr, s in state.syncers.items():
        for obj in s.consumer.values():
            k = instance_key(gvr, None, obj)
            if k is not None:
                out.add((k.gvr, k.key))
        for obj in s.provider.values():
            k = provider_key(s.target, obj)
            if k is not None:
                out.add((k.gvr, k.key))
    return [InstanceKey(gvr, key) for gvr, key in sorted(out)]


def _handle(
    item: WorkKey, state: Snapshot, now: float
) -> Generator[Ask, Any, tuple[KeyPlan, Outcome]]:
    """Run the worker on one key: reads passed on, requests recorded (rule 2)."""
    gen = work(item, state, now)
    sent: list[Action] = []
    before: list[Obj | None] = []
    read: dict[ObjectRef, Obj] = {}
    try:
        effect = next(gen)
        while True:
            if isinstance(effect, Ask):
                answer = yield effect
                _note_read(read, effect, answer)
            else:
                sent.append(effect.action)
                before.append(_seen(state, read, effect.action))
                answer = None
            effect = gen.send(answer)
    except StopIteration as stop:
        outcome: Outcome = stop.value
    plan = outcome.plan
    # Every request sent was answered as a success: what failed was never sent (rule 2).
    failing = outcome.failures
    blocked = outcome.verdict.why if outcome.verdict is not None and not failing else ""
    return (
        KeyPlan(
            item,
            tuple(sent),
            failing,
            why=plan.why if plan is not None else "",
            blocked=blocked,
            requeue_after=outcome.requeue_after,
            before=tuple(before),
        ),
        outcome,
    )


def _note_read(read: dict[ObjectRef, Obj], ask: Ask, answer: Any) -> None:
    """Remember the objects a fresh read returned (rule 6)."""
    match ask.read:
        case Get(cluster=cluster, gvr=gvr, key=key) if isinstance(answer, dict):
            read[ObjectRef(cluster, gvr, key)] = answer
        case List(cluster=cluster, gvr=gvr) if isinstance(answer, list):
            for obj in answer:
                if isinstance(obj, dict):
                    read[ObjectRef(cluster, gvr, o.key_of(obj))] = obj


def _seen(state: Snapshot, read: Mapping[ObjectRef, Obj], action: Action) -> Obj | None:
    """The object `action` writes, as the worker last saw it: read fresh, else from a cache."""
    if not isinstance(
        action, actions.Update | actions.UpdateStatus | actions.Apply | actions.MergePatch
    ):
        return None
    ref = action.target
    if ref in read:
        return read[ref]
    if ref.cluster == CONSUMER and ref.gvr in state.control:
        return state.cached_get(ref.gvr, ref.key)
    syncer = state.syncer(ref.gvr)
    if syncer is None:
        return None
    return syncer.consumer_get(ref.key) if ref.cluster == CONSUMER else syncer.provider_get(ref.key)


# -- presentation --------------------------------------------------------------------------------

_KIND_NAMES = {**CONTROL_KINDS, LEASES: "Lease", GVR("", "v1", "namespaces"): "Namespace"}


def what(ref: ObjectRef) -> str:
    """An object as a person names it: `Connection demo`, `widgets.example.org default/w1`."""
    kind = _KIND_NAMES.get(ref.gvr, ref.gvr.group_resource)
    return f"{kind} {ref.key} on the {ref.cluster}"


def _ready(body: Mapping[str, Any]) -> str:
    status = body.get("status")
    for cond in o.list_at(status, "conditions") if isinstance(status, Mapping) else []:
        if isinstance(cond, Mapping) and cond.get("type") == c.READY:
            return f" (Ready={cond.get('status')} {cond.get('reason')})"
    return ""


def _short(value: Any, limit: int = 80) -> str:
    text = o.canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_action(action: Action) -> str:
    """One line per action, naming the object and the cluster."""
    match action:
        case actions.AddFinalizer(target=t, finalizer=f):
            return f"add finalizer {f} to {what(t)}"
        case actions.RemoveFinalizer(target=t, finalizer=f):
            return f"remove finalizer {f} from {what(t)}"
        case actions.Apply(target=t):
            return f"apply {what(t)}"
        case actions.Create(target=t):
            return f"create {what(t)}"
        case actions.CreateNamespace(cluster=cluster, name=name):
            return f"create Namespace {name} on the {cluster}"
        case actions.Delete(target=t, best_effort=best_effort):
            return f"delete {what(t)}" + (" (best effort)" if best_effort else "")
        case actions.MergePatch(target=t, patch=patch):
            return f"patch {what(t)}: {_short(patch)}"
        case actions.Update(target=t):
            if routine(action):
                return f"renew the heartbeat {what(t)}"
            return f"update {what(t)}"
        case actions.UpdateStatus(target=t, body=body):
            return f"update the status of {what(t)}{_ready(body)}"
        case actions.EmitEvent(target=t, type=type_, reason=reason):
            return f"record a {type_} event {reason} on {what(t)}"
        case actions.RequeueAfter(seconds=seconds):
            return f"look again in {seconds:g}s"
    raise TypeError(f"not an action: {action!r}")  # pragma: no cover - exhaustive above


# Written by the API server, never by a request: shown, they would only be noise.
_SERVER_FIELDS = ("managedFields", "resourceVersion", "generation", "creationTimestamp", "uid")


def _without_server_fields(obj: Mapping[str, Any], *, status: bool) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if status or k != "status"}
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _SERVER_FIELDS}
    return out


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 (JSON merge patch); the kernel's patches are a few levels deep."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


def _applied(live: Mapping[str, Any], body: Mapping[str, Any], manager: str) -> dict[str, Any]:
    """`live` after a server-side apply of `body` by `manager` (rule 6): the body's fields set,
    and those `manager` applied before, that the body drops and that no other managedFields
    entry owns, removed. Lists are set whole."""
    after = o.deepcopy(dict(live))
    owned: Any = {}
    others: list[Any] = []
    for entry in o.list_at(o.metadata(live), "managedFields"):
        if not isinstance(entry, Mapping):
            continue
        ours = entry.get("manager") == manager and entry.get("operation") == "Apply"
        if ours and not entry.get("subresource"):
            owned = entry.get("fieldsV1") or {}
        elif not entry.get("subresource"):
            others.append(entry.get("fieldsV1"))
    stack: list[tuple[Any, list[Any], Mapping[str, Any], dict[str, Any]]] = [
        (owned, others, body, after)
    ]
    while stack:
        tree, rest, want, have = stack.pop()
        for k, v in want.items():
            if isinstance(v, Mapping) and isinstance(have.get(k), dict):
                stack.append((_sub(tree, k), [_sub(t, k) for t in rest], v, have[k]))
            else:
                have[k] = o.deepcopy(v)
        for k in tree if isinstance(tree, Mapping) else ():
            name = k[2:]
            if k.startswith("f:") and name not in want and all(_sub(t, name) is None for t in rest):
                have.pop(name, None)
    return after


def _sub(tree: Any, field: str) -> Any:
    return tree.get(f"f:{field}") if isinstance(tree, Mapping) else None


def changed(action: Action, before: Obj | None) -> list[str]:
    """Rule 6: the fields `action` would change on `before`, `path: old -> new`."""
    if before is None:
        return []
    match action:
        case actions.Update(body=body):
            old = _without_server_fields(before, status=False)
            new = _without_server_fields(body, status=False)
        case actions.UpdateStatus(body=body):
            old, new = {"status": before.get("status")}, {"status": body.get("status")}
        case actions.Apply(body=body, field_manager=fm):
            old = _without_server_fields(before, status=False)
            new = _without_server_fields(_applied(before, body, fm), status=False)
        case actions.MergePatch(patch=patch):
            old = _without_server_fields(before, status=True)
            new = _without_server_fields(_merge_patch(before, patch), status=True)
        case _:
            return []
    secret = action.target.gvr == SECRETS
    return diff.render(diff.changes(old, new), old, new, secret=secret)


def report(dry: DryRun) -> list[str]:
    """The plan as text: each key with work, its actions in order, each with the fields it would
    change, then a summary line."""
    lines: list[str] = [f"problem: {p}" for p in dry.problems]
    for k in dry.pending:
        lines.append(f"{describe_key(k.key)}  ({k.why})" if k.why else describe_key(k.key))
        for a, before in zip(k.actions, k.before or [None] * len(k.actions), strict=True):
            if not routine(a):
                lines.append(f"  - {describe_action(a)}")
                lines += [f"      {line}" for line in changed(a, before)]
        lines += [
            f"  - would fail: {describe_action(f.action)}: {f.error.message}" for f in k.failing
        ]
        if k.blocked:
            lines.append(f"  - stops: {k.blocked}")
    routine_count = len(dry.routine)
    tail = f" (besides renewing {routine_count} heartbeat Lease(s))" if routine_count else ""
    if dry.converged:
        lines.append(f"nothing to do: {len(dry.keys)} key(s) looked at, all converged{tail}")
    else:
        lines.append(f"{len(dry.pending)} of {len(dry.keys)} key(s) have work to do{tail}")
    return lines


def to_json(dry: DryRun) -> dict[str, Any]:
    """The plan as data (`kubectl bind plan -o json`)."""
    return {
        "converged": dry.converged,
        "problems": list(dry.problems),
        "keys": [
            {
                "key": describe_key(k.key),
                "why": k.why,
                "pending": k.pending,
                "actions": [describe_action(a) for a in k.actions],
                "changes": [
                    changed(a, b)
                    for a, b in zip(k.actions, k.before or [None] * len(k.actions), strict=True)
                ],
                "routine": [describe_action(a) for a in k.actions if routine(a)],
                "failing": [
                    {"action": describe_action(f.action), "error": str(f.error)} for f in k.failing
                ],
                "blocked": k.blocked,
            }
            for k in dry.keys
        ],
    }
