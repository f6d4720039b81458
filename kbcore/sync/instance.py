"""The instance-sync kernel: one consumer object under a binding, spec up and status down.

Theory of operation. The consumer object is the source of truth for `spec`; the provider copy is
the source of truth for `status`. `plan_instance` looks at both (the consumer object from the
consumer cache, the provider copy from a cache or a fresh read) and returns the writes that move
the world one step toward "provider spec == consumer spec and consumer status == provider
status", or nothing when it is already there. It is level-based: it never asks what changed,
only what is, so a dropped or duplicated event cannot mislead it.

Rules, in the order `plan_instance` applies them (numbers are referenced in tests and docs):

 1. No consumer object: nothing to do (the key was deleted and its finalizer released).
 2. Consumer object deleting (deletionTimestamp set) — this runs whether or not a binding still
    covers it, so a finalizer we added is always released (`release_or_delete`, which a
    binding's drain uses too):
    a. without our `syncer` finalizer: nothing to do;
    b. annotated `deletion-policy: Orphan`: release the finalizer, leave the provider copy;
    c. provider copy is ours and not yet deleting: delete it with a UID precondition, keep the
       finalizer and look again shortly;
    d. provider copy is ours and deleting (provider-side finalizers): wait, keep the finalizer;
    e. provider copy absent, or present but not ours (a conflict we never wrote): release the
       finalizer — but only on a *fresh* read, never on a cache that may not have seen it. For
       a tenant whose claim on the namespace is not granted (read fresh), no copy can be ours
       to delete there: release.
 3. Not covered by a ready binding: nothing is written (no finalizer, no copy). Nor when the
    provider is the consumer itself (`provider_cluster_uid == local_cluster_uid`, which
    `kbcore.control.connection` rule 6a already refuses): the "copy" would be the object itself; a
    deleting object only has our finalizer released, since no separate copy can exist.
 4. Our `syncer` finalizer is added before anything is written on the provider, so no provider
    copy can exist that the consumer object is not holding on to.
 5. Provider copy absent (confirmed by a fresh read): create the provider namespace if it is
    missing, then create the copy with a POST, never an apply: an apply would merge into a
    same-named object someone created after our read (found by the property suite under stale
    reads). The next pass re-applies it once, which gives our field manager server-side-apply
    ownership of every field (so a field later dropped from the consumer spec is removed).
    For a tenant (`kbcore.sync.tenancy`) the namespace is claimed instead of created, before
    anything is read there: claim it when unclaimed, wait while the claim is pending, and
    annotate the object (`sync-limit`) when the namespace cannot be had (too long a name, a
    claim refused); the copy is created once the claim is granted.
 6. Provider copy present, classified by its ownership markers (`classify`):
    a. ours: re-apply only if the copy differs from what we would apply (zero no-op writes);
       mirror its status onto the consumer exactly, clearing the consumer status when the copy
       has none; if the copy is deleting (someone deleted it out of band) wait for it to go and
       recreate it then;
    b. foreign-unmanaged and the binding's conflictPolicy is Adopt: apply (which stamps our
       markers), status follows on the next pass once the copy is ours;
    c. anything else (foreign with Fail, or owned by another consumer or object): a conflict —
       annotate the consumer object with the reason and emit one Warning event, never touch the
       provider object. A conflict annotation is removed once the object syncs cleanly.
 7. Limits (`kbcore.limits` rule 3): a create or apply of the provider copy, or a status
    mirror, whose body an API server would refuse (nested deeper than `MAX_JSON_DEPTH`, or
    larger than `MAX_REQUEST_BODY_BYTES` as JSON) is never sent. The consumer object is
    annotated `sync-limit: SpecExceedsLimits` (or `StatusExceedsLimits`) and one Warning event
    names the provider object and the limit; the rest of the plan goes ahead (a status too
    large to mirror does not stop spec sync). Like a conflict it costs no writes while it
    stands, and the annotation is removed once the object syncs within the limits.

Only `spec` and our markers travel up; consumer labels, annotations, finalizers and status never
do. The apply uses field manager `kube-bind-konnector` with force, so a direct spec edit on the
provider is overwritten (drift repair) while fields other managers own outside our applied set
are left alone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.actions import (
    PROVIDER,
    Action,
    AddFinalizer,
    Apply,
    Create,
    CreateNamespace,
    Delete,
    EmitEvent,
    MergePatch,
    Plan,
    RemoveFinalizer,
    RequeueAfter,
    UpdateStatus,
    plan_or_ask,
)
from kbcore.api import conditions, keys
from kbcore.api.resources import NAMESPACES
from kbcore.api.types import ConflictPolicy
from kbcore.identity import reaches_itself
from kbcore.limits import body_problem
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Get, Observed, get_obj
from kbcore.sync.coverage import Coverage
from kbcore.sync.mapper import IDENTITY, Mapper
from kbcore.sync.namespaces import owned_namespace
from kbcore.sync.tenancy import (
    CLAIM_WAIT_SECONDS,
    Claim,
    Tenant,
    claim_body,
    claim_message,
    claim_ref,
    claim_state,
    namespace_problem,
)

CONSUMER = "consumer"

WAIT_FOR_PROVIDER_DELETE_SECONDS = 2.0
"""How soon to look again while a provider copy finishes deleting (upstream: 2 s)."""


class Ownership(enum.Enum):
    OURS = "ours"
    FOREIGN_UNMANAGED = "foreign-unmanaged"
    OWNED_BY_ANOTHER = "owned-by-another"


def classify(
    provider_obj: Mapping[str, Any], local_cluster_uid: str, consumer_uid: str
) -> Ownership:
    """Three-way classification by the ownership markers (docs/design.md, "Decisions").

    No markers at all is foreign-unmanaged; both markers ours is ours; anything else — another
    consumer cluster, or our cluster with a different object UID (a recreated consumer object
    whose predecessor was orphaned) — is owned by another.
    """
    cluster = o.annotation(provider_obj, keys.ANNOTATION_CONSUMER_CLUSTER_UID) or ""
    obj_uid = o.annotation(provider_obj, keys.ANNOTATION_CONSUMER_OBJECT_UID) or ""
    if not cluster and not obj_uid:
        return Ownership.FOREIGN_UNMANAGED
    if cluster == local_cluster_uid and obj_uid == consumer_uid and local_cluster_uid:
        return Ownership.OURS
    return Ownership.OWNED_BY_ANOTHER


CONFLICT_REASON = {
    Ownership.FOREIGN_UNMANAGED: "ForeignObjectExists",
    Ownership.OWNED_BY_ANOTHER: "OwnedByAnother",
}


@attrs.frozen(hash=False)
class InstanceView:
    """Everything `plan_instance` decides from."""

    gvr: GVR
    namespaced: bool
    consumer: o.Obj | None
    coverage: Coverage
    provider: o.Obj | None
    """The provider copy at the mapped key as the shell's cache holds it (None: not seen)."""
    local_cluster_uid: str
    mapper: Mapper = IDENTITY
    provider_cluster_uid: str = ""
    """The provider's identity, when the shell knows it (from the Connection's pin)."""
    observed: Observed = attrs.field(factory=dict)
    """The reads asked for so far and their results (`kbcore.reads`): the copy read fresh
    (`fresh_read`) and, on the create path, its namespace (or a tenant's claim on it)."""
    tenant: Tenant | None = None
    """The Connection's boundary on a shared provider; its mapper is then `mapper`."""

    def __attrs_post_init__(self) -> None:
        if self.tenant is not None and self.mapper != self.tenant.mapper:
            raise ValueError("a tenant's instances are mapped by the tenant's mapper")


def fresh_read(view: InstanceView) -> Get | None:
    """The read that fetches the provider copy of `view.consumer` from the API server.

    Asked for before any decision taken on *absence* (create, finalizer release), because a
    cache that has not seen an object is not evidence that it does not exist."""
    if view.consumer is None:
        return None
    return _read(provider_ref(view.gvr, o.key_of(view.consumer), view.mapper))


def namespace_read(name: str) -> Get:
    """The read that says whether provider namespace `name` exists."""
    return Get(PROVIDER, NAMESPACES, ObjectKey("", name))


def provider_copy(view: InstanceView) -> o.Obj | None:
    """The provider copy the kernel decides on: as read fresh if it was, else as cached. A
    failed fresh read is raised as its ApiError (`reads.get_obj`)."""
    read = fresh_read(view)
    if read is not None and read in view.observed:
        return get_obj(view.observed, read)
    return view.provider


def read_fresh(view: InstanceView) -> bool:
    """Whether the provider copy was read from the API server rather than a cache."""
    read = fresh_read(view)
    return read is not None and read in view.observed


def provider_ref(view_gvr: GVR, consumer_key: ObjectKey, mapper: Mapper) -> ObjectRef:
    return ObjectRef(PROVIDER, view_gvr, mapper.to_provider(view_gvr, consumer_key))


def consumer_key_for_provider(
    provider_obj: Mapping[str, Any], gvr: GVR, local_cluster_uid: str, mapper: Mapper
) -> ObjectKey | None:
    """Which consumer key a provider event should wake, if any: only copies carrying our cluster
    marker, mapped back through the Mapper."""
    ann = o.annotations_of(provider_obj)
    if not local_cluster_uid or ann.get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) != local_cluster_uid:
        return None
    return mapper.to_consumer(gvr, o.key_of(provider_obj))


def desired_provider_body(
    consumer: Mapping[str, Any], target: ObjectKey, local_cluster_uid: str, *, copy: bool = True
) -> o.Obj:
    """The applied configuration: markers and `spec`, nothing else of the consumer object."""
    meta: dict[str, Any] = {
        "name": target.name,
        "labels": {keys.LABEL_MANAGED: "true"},
        "annotations": {
            keys.ANNOTATION_CONSUMER_CLUSTER_UID: local_cluster_uid,
            keys.ANNOTATION_CONSUMER_OBJECT_UID: o.uid(consumer),
        },
    }
    if target.namespace:
        meta["namespace"] = target.namespace
    body: o.Obj = {
        "apiVersion": consumer.get("apiVersion", ""),
        "kind": consumer.get("kind", ""),
        "metadata": meta,
    }
    if "spec" in consumer:
        # Comparisons read the consumer's spec in place; only a body that leaves the kernel in
        # an action is copied, so the shell can never alias the cache.
        body["spec"] = o.deepcopy(consumer["spec"]) if copy else consumer["spec"]
    return body


def apply_is_noop(body: Mapping[str, Any], live: Mapping[str, Any], manager: str) -> bool:
    """Would applying `body` as `manager` leave `live` unchanged?

    True when every field of the body already has its value in `live`, `manager` owns no field
    the body no longer sets (an apply that drops a field removes it), and the body sets no field
    the server would record that `manager` does not own yet. The server decides the same way, so
    skipping the request loses nothing.

    The three checks are made in one walk of the body beside `live` and the owned fieldsV1 tree,
    since this runs for every object on every pass (the resync's whole cost when nothing
    changed). What each one checks, level by level:

    - *contained*: every key of a body map is in `live`'s map; maps are walked, lists and
      scalars must be equal as JSON values.
    - *owned within the body*: every `f:` key of the owned tree names a key the body sets (the
      tree's keys at a level are counted against the body keys they match). List-element keys
      (`k:`/`v:`/`i:`) below a list are not looked at: *contained* has already checked the live
      list equals the body's, so the elements we own are exactly the body's (answering False
      there would re-apply on every pass, never reaching zero writes).
    - *recorded within the tree*: as the server records, a scalar, null or empty map is a field
      of its own and must be owned; a non-empty list records itself or its elements (owned); an
      empty list of a keyed kind records nothing (an empty atomic list, which does, is not told
      apart without the schema: accepted, so a pass never re-applies forever); a non-empty map
      records only what its members record; `apiVersion`, `kind`, `status` and the metadata the
      server strips are never recorded.

    Iterative: the body is as deep as the spec, which may be deeper than Python recurses.
    """
    owned = _applied_fields_v1(live, manager)
    if owned is None:
        return False
    # (body map, live value, owned tree, keys never recorded or None: not checked, owned-check)
    stack: list[tuple[Mapping[str, Any], Any, Any, frozenset[str] | None, bool]] = [
        (body, live, owned, _UNRECORDED, True)
    ]
    while stack:
        value, have, tree, skip, check_owned = stack.pop()
        if not isinstance(have, dict) or not value.keys() <= have.keys():
            return False
        if not isinstance(tree, dict):
            if check_owned:
                return False  # not a fieldsV1 tree: we cannot show we own nothing more
            tree = _NO_FIELDS
        matched = 0
        for k, v in value.items():
            fk = "f:" + k
            if fk in tree:
                matched += 1
                sub = tree[fk]
            else:
                sub = None
            # metadata itself is stripped; its members (labels, annotations) are not.
            meta = k == "metadata" and skip is _UNRECORDED
            recorded = skip is not None and k not in skip and not meta
            if isinstance(v, dict):
                if recorded and not v and sub is None:
                    return False
                child_skip = _UNRECORDED_META if meta else _NOTHING if recorded else None
                stack.append((v, have[k], sub, child_skip, check_owned and bool(sub)))
                continue
            hv = have[k]
            if type(v) is str and type(hv) is str:
                if v != hv:
                    return False
            elif not o.json_equal(hv, v):
                return False
            if isinstance(v, list):
                if v and recorded and sub is None:
                    return False
            else:
                if recorded and sub is None:
                    return False
                if (
                    check_owned
                    and sub
                    and (not isinstance(sub, dict) or any(f != "." for f in sub))
                ):
                    return False  # fields owned below a scalar the body sets
        if check_owned and matched != len(tree) - ("." in tree):
            return False
    return True


def _applied_fields_v1(live: Mapping[str, Any], manager: str) -> dict[str, Any] | None:
    """The fieldsV1 tree `manager` owns through Apply on the main resource, or None."""
    entries = o.metadata(live).get("managedFields")
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if (
            isinstance(entry, dict)
            and entry.get("manager") == manager
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else None
    return None


_NO_FIELDS: dict[str, Any] = {}
_NOTHING: frozenset[str] = frozenset()
# What the server never records as owned (its stripped metadata), so these say nothing about
# what an apply of the body would claim.
_UNRECORDED = frozenset({"apiVersion", "kind", "status"})
_UNRECORDED_META = frozenset(
    {
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
    }
)


def _status(obj: Mapping[str, Any]) -> Any:
    return obj.get("status")


def _with_status(consumer: Mapping[str, Any], status: Any) -> o.Obj:
    body = o.deepcopy({k: v for k, v in consumer.items() if k != "status"})
    if status is not None:
        body["status"] = o.deepcopy(status)
    return body


def plan_instance(view: InstanceView) -> Plan:
    """Plan the next step for one consumer object. Pure and total: never raises on odd input.

    It asks for reads as the control planners do (`kbcore.reads`): a Plan whose `needs` lists
    them; a read that failed is raised as its ApiError (the shell backs off and retries)."""
    return plan_or_ask(lambda: _plan(view))


def _plan(view: InstanceView) -> Plan:
    c = view.consumer
    if c is None:
        return Plan(why="rule 1: consumer object gone")
    ckey = o.key_of(c)
    cref = ObjectRef(CONSUMER, view.gvr, ckey)
    pref = provider_ref(view.gvr, ckey, view.mapper)
    rv = o.resource_version(c)
    holds_finalizer = keys.FINALIZER_SYNCER in o.finalizers(c)

    if reaches_itself(view.provider_cluster_uid, view.local_cluster_uid):
        if o.is_deleting(c) and holds_finalizer:
            rest = tuple(f for f in o.finalizers(c) if f != keys.FINALIZER_SYNCER)
            release = RemoveFinalizer(cref, keys.FINALIZER_SYNCER, rv, rest)
            return Plan((release,), why="rule 3: self-binding; no copy can exist, releasing")
        return Plan(why="rule 3: the provider is this cluster itself; nothing is synced")

    if o.is_deleting(c):
        return _plan_delete(view, c, cref, pref, holds_finalizer)
    # provider_copy(view), from the ref already made: this runs for every object on every pass.
    p = view.provider
    if view.observed and (read := _read(pref)) in view.observed:
        p = get_obj(view.observed, read)

    if not view.coverage.bound:
        return Plan(why="rule 3: not covered by a ready binding")
    if not o.uid(c) or not view.local_cluster_uid:
        # Without both UIDs the ownership markers would be ambiguous; wait for identity.
        return Plan(why="rule 3: identity not known yet")

    actions: list[Action] = []
    if not holds_finalizer:
        fins = (*o.finalizers(c), keys.FINALIZER_SYNCER)
        actions.append(AddFinalizer(cref, keys.FINALIZER_SYNCER, rv, fins))

    if p is None:
        if view.tenant is not None and view.namespaced:
            waiting = _claim_namespace(view, c, cref, actions)
            if waiting is not None:
                return waiting
        get_obj(view.observed, _read(pref), "rule 5: confirm absence before creating")
        body = desired_provider_body(c, pref.key, view.local_cluster_uid)
        too_large = body_problem(body)
        if too_large:
            actions.extend(_limit_annotation(c, cref, _spec_limit(pref, too_large)))
            return Plan(tuple(actions), why="rule 7: provider copy would exceed API limits")
        if view.namespaced and pref.key.namespace and view.tenant is None:
            ns_read = namespace_read(pref.key.namespace)
            ns = get_obj(view.observed, ns_read, "rule 5: does the namespace exist")
            if ns is None:
                actions.append(_create_namespace(pref.key.namespace, view.local_cluster_uid))
        actions.append(Create(pref, body, keys.FIELD_MANAGER))
        actions.extend(_clear_conflict(c, cref))
        actions.extend(_limit_annotation(c, cref, None))
        return Plan(tuple(actions), why="rule 5: create provider copy")

    ownership = classify(p, view.local_cluster_uid, o.uid(c))
    adopting = (
        ownership is Ownership.FOREIGN_UNMANAGED
        and view.coverage.conflict_policy == ConflictPolicy.ADOPT
    )
    if ownership is not Ownership.OURS and not adopting:
        return _plan_conflict(view, c, cref, pref, ownership, actions)

    if o.is_deleting(p):
        actions.append(RequeueAfter(WAIT_FOR_PROVIDER_DELETE_SECONDS))
        return Plan(tuple(actions), why="rule 6a: provider copy deleting; recreate once gone")

    limit: _Limit | None = None
    wanted = desired_provider_body(c, pref.key, view.local_cluster_uid, copy=False)
    if adopting or not apply_is_noop(wanted, p, keys.FIELD_MANAGER):
        apply = _apply(c, pref, view.local_cluster_uid, p)
        too_large = body_problem(apply.body)
        if too_large:
            limit = _spec_limit(pref, too_large)
        else:
            actions.append(apply)
    actions.extend(_clear_conflict(c, cref))
    if ownership is Ownership.OURS and holds_finalizer and not o.json_equal(_status(c), _status(p)):
        # Status is only mirrored once our finalizer is in place, from the rv it was planned on;
        # when the finalizer is added in this same plan the next pass mirrors it.
        update = UpdateStatus(cref, _with_status(c, _status(p)))
        too_large = body_problem(update.body)
        if not too_large:
            actions.append(update)
        elif limit is None:
            limit = _Limit(
                conditions.STATUS_EXCEEDS_LIMITS,
                f"status of provider object {pref.key} not mirrored: {too_large}",
            )
    actions.extend(_limit_annotation(c, cref, limit))
    why = "rule 6b: adopt foreign-unmanaged copy" if adopting else "rule 6a: in sync"
    if limit is not None:
        why = f"rule 7: {limit.reason}"
    elif any(not isinstance(a, RequeueAfter) for a in actions):
        why = why.replace("in sync", "sync ours")
    return Plan(tuple(actions), why=why)


def _plan_delete(
    view: InstanceView,
    c: o.Obj,
    cref: ObjectRef,
    pref: ObjectRef,
    holds_finalizer: bool,
) -> Plan:
    if not holds_finalizer:
        return Plan(why="rule 2a: deleting, not holding our finalizer")
    orphan = is_orphaned(c)
    if not orphan and not view.local_cluster_uid:
        # Without our identity no copy can be recognised as ours; releasing now could leave
        # one behind. Hold the finalizer until the Connection's identity is known.
        return Plan(why="rule 2: identity not known yet; keeping the finalizer")
    if not orphan and view.tenant is not None and view.namespaced:
        claim = _claim(view, o.namespace(c))
        if claim is not Claim.GRANTED:
            rest = tuple(f for f in o.finalizers(c) if f != keys.FINALIZER_SYNCER)
            release = RemoveFinalizer(cref, keys.FINALIZER_SYNCER, o.resource_version(c), rest)
            return Plan((release,), why="rule 2e: namespace not granted; no copy of ours there")
    p = None if orphan else provider_copy(view)
    step = release_or_delete(c, cref, p, pref, view.local_cluster_uid)
    wait = RequeueAfter(WAIT_FOR_PROVIDER_DELETE_SECONDS)
    if step is None:
        return Plan((wait,), why="rule 2d: provider copy finishing deletion")
    if isinstance(step, Delete):
        return Plan((step, wait), why="rule 2c: delete our provider copy")
    if orphan:
        return Plan((step,), why="rule 2b: Orphan, provider copy kept")
    get_obj(view.observed, _read(pref), "rule 2e: confirm before releasing finalizer")
    return Plan((step,), why="rule 2e: no provider copy of ours; release finalizer")


def is_orphaned(obj: Mapping[str, Any]) -> bool:
    """The object asks to keep its provider copy when it is released (`deletion-policy`)."""
    return o.annotation(obj, keys.ANNOTATION_DELETION_POLICY) == keys.DELETION_POLICY_ORPHAN


def release_or_delete(
    consumer: Mapping[str, Any],
    cref: ObjectRef,
    copy: Mapping[str, Any] | None,
    copy_ref: ObjectRef,
    local_cluster_uid: str,
) -> RemoveFinalizer | Delete | None:
    """The one decision that lets a consumer object holding our `syncer` finalizer go, for its
    deletion (rule 2) and for a binding's drain (`kbcore.control.binding` rule 1a). `copy` is
    the provider copy at `copy_ref` as last seen (None: none seen, or none looked for); the
    caller makes sure a release on absence was decided on a fresh read.

    Orphan, or no copy of ours: release the finalizer (RemoveFinalizer, guarded by the
    resourceVersion it was decided on). Our copy: delete it with its UID as precondition and
    keep the finalizer (Delete). Our copy already deleting: keep waiting (None)."""
    if (
        not is_orphaned(consumer)
        and copy is not None
        and classify(copy, local_cluster_uid, o.uid(consumer)) is Ownership.OURS
    ):
        return None if o.is_deleting(copy) else Delete(copy_ref, o.uid(copy))
    rest = tuple(f for f in o.finalizers(consumer) if f != keys.FINALIZER_SYNCER)
    return RemoveFinalizer(cref, keys.FINALIZER_SYNCER, o.resource_version(consumer), rest)


def _read(pref: ObjectRef) -> Get:
    return Get(pref.cluster, pref.gvr, pref.key)


def _plan_conflict(
    view: InstanceView,
    c: o.Obj,
    cref: ObjectRef,
    pref: ObjectRef,
    ownership: Ownership,
    actions: list[Action],
) -> Plan:
    reason = CONFLICT_REASON[ownership]
    if o.annotation(c, keys.ANNOTATION_CONFLICT) != reason:
        # Only on a change of the annotation, so a standing conflict costs no writes or events.
        patch = {"metadata": {"annotations": {keys.ANNOTATION_CONFLICT: reason}}}
        actions.append(MergePatch(cref, patch))
        message = (
            f"provider object {pref.key} already exists and is {ownership.value}; not "
            f"overwriting (conflictPolicy: {view.coverage.conflict_policy})"
        )
        actions.append(
            EmitEvent(cref, str(c.get("kind", "")), o.uid(c), "Warning", reason, message)
        )
    return Plan(tuple(actions), why=f"rule 6c: conflict {reason}")


def _apply(c: o.Obj, pref: ObjectRef, local_uid: str, live: o.Obj | None) -> Apply:
    body = desired_provider_body(c, pref.key, local_uid)
    if live is not None and o.uid(live):
        # The UID makes the apply fail instead of writing to a same-named replacement.
        body["metadata"]["uid"] = o.uid(live)
    return Apply(pref, body, keys.FIELD_MANAGER, force=True)


def _claim(view: InstanceView, consumer_namespace: str) -> Claim:
    assert view.tenant is not None
    read = _read(claim_ref(view.tenant, consumer_namespace))
    return claim_state(view.tenant, consumer_namespace, get_obj(view.observed, read, "rule 5"))


def _claim_namespace(
    view: InstanceView, c: o.Obj, cref: ObjectRef, actions: list[Action]
) -> Plan | None:
    """Rule 5 for a tenant: None once the provider namespace is granted, else the plan that
    claims it or waits for it (after `actions`, which hold the finalizer when it is new)."""
    tenant, namespace = view.tenant, o.namespace(c)
    assert tenant is not None
    problem = namespace_problem(tenant, namespace)
    if problem:
        limit = _Limit(conditions.NAMESPACE_NOT_GRANTED, problem)
        actions.extend(_limit_annotation(c, cref, limit))
        return Plan(tuple(actions), why="rule 5: namespace name too long for the tenant")
    ref = claim_ref(tenant, namespace)
    claim = get_obj(view.observed, _read(ref), "rule 5: is the namespace granted")
    state = claim_state(tenant, namespace, claim)
    if state is Claim.GRANTED:
        return None
    if state is Claim.ABSENT:
        body = claim_body(tenant, namespace, view.local_cluster_uid)
        actions.extend((Create(ref, body, keys.FIELD_MANAGER), RequeueAfter(CLAIM_WAIT_SECONDS)))
        return Plan(tuple(actions), why="rule 5: claim the provider namespace")
    if state is Claim.REFUSED:
        why = claim_message(claim) or f"the provider did not grant {ref.key.name!r} as asked"
        message = f"provider namespace for {namespace!r} not granted: {why}"
        # No retry loop: a grant changes the Connection's namespaces, which rebuilds the
        # syncer and so looks at every object again.
        actions.extend(
            _limit_annotation(c, cref, _Limit(conditions.NAMESPACE_NOT_GRANTED, message))
        )
        return Plan(tuple(actions), why="rule 5: provider refused the namespace claim")
    actions.append(RequeueAfter(CLAIM_WAIT_SECONDS))
    return Plan(tuple(actions), why="rule 5: waiting for the provider to grant the namespace")


def _create_namespace(name: str, local_uid: str) -> CreateNamespace:
    return owned_namespace(PROVIDER, name, local_uid)


@attrs.frozen
class _Limit:
    """Rule 7: which write exceeded the API server's limits, and the message saying how."""

    reason: str
    message: str


def _spec_limit(pref: ObjectRef, problem: str) -> _Limit:
    return _Limit(
        conditions.SPEC_EXCEEDS_LIMITS, f"spec not synced to provider object {pref.key}: {problem}"
    )


def _limit_annotation(c: o.Obj, cref: ObjectRef, limit: _Limit | None) -> list[Action]:
    """Rule 7: annotate (and tell, once) or clear; nothing while the annotation is right."""
    have = o.annotation(c, keys.ANNOTATION_SYNC_LIMIT)
    if limit is None:
        if have is None:
            return []
        return [MergePatch(cref, {"metadata": {"annotations": {keys.ANNOTATION_SYNC_LIMIT: None}}})]
    if have == limit.reason:
        return []
    patch = {"metadata": {"annotations": {keys.ANNOTATION_SYNC_LIMIT: limit.reason}}}
    kind, uid = str(c.get("kind", "")), o.uid(c)
    event = EmitEvent(cref, kind, uid, "Warning", limit.reason, limit.message)
    return [MergePatch(cref, patch), event]


def _clear_conflict(c: o.Obj, cref: ObjectRef) -> list[Action]:
    if o.annotation(c, keys.ANNOTATION_CONFLICT) is None:
        return []
    return [MergePatch(cref, {"metadata": {"annotations": {keys.ANNOTATION_CONFLICT: None}}})]
