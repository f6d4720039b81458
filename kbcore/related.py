"""The related-resources kernel: Secrets and ConfigMaps copied alongside a binding's instances.

Theory of operation. A binding's `relatedResources` rules name, per direction, which Secrets or
ConfigMaps on the *source* side (the consumer for `FromConsumer`, the provider for
`FromProvider`) are mirrored at the same namespace/name on the *target* side. `plan_related`
lists the sources and the managed targets in the binding's scope, selects, and returns the writes
that move the target side one step toward "every selected source has an identical copy made by
this binding, and this binding has no other copies", plus the conflicts it refuses to resolve.
It is level-based and follows the sans-I/O read protocol of `kbcore.reads`: it raises `Missing`
naming the reads it still needs, and the caller calls it again with their results.

Reads, per (direction, resource) "channel" named by some rule, in at most three rounds:
  1. `List(source, gvr, scope)` (every object: selection is done here) and
     `List(target, gvr, scope, "core.kube-bind.io/managed=true")`;
  2. `Get(target, gvr, key)` for each selected source whose key is not in the managed list (is a
     foreign same-named object there?);
  3. `Get(target, namespaces, ns)` for each namespace a copy must be created in.
When unbinding, only round 1's managed target lists are read, for all four (cluster, kind) pairs.
A read that `Failed` is raised as its `ApiError`.

Rules (numbers are referenced in tests):

 0. Without the binding's UID nothing can be recognised as a copy of ours, and without the local
    cluster UID no copy can be marked: nothing is read or written (unbinding needs only the
    binding's UID).
 1. The target copy of a source is exactly: apiVersion v1, its kind, metadata {name, namespace,
    labels {managed: "true"}, annotations {consumer-cluster-uid: <local cluster UID>,
    related-binding: <binding UID>}}, and the source's `data`, `binaryData`, `immutable` and (for
    Secrets) `type` (`Opaque` when the source has none, as the API server defaults it). Source
    labels and annotations are not copied. Selection: the rule's label selector (absent selects
    everything) AND, when `names` is non-empty, exact-name membership; rules of the same channel
    are OR-ed. A source that is itself one of this binding's copies is never selected (no loops
    when a binding has rules in both directions).
 2. Target absent (confirmed by the `Get`): create its namespace if the `Get` of it says absent
    (label managed=true, annotation consumer-cluster-uid), then POST the copy with field manager
    `kube-bind-konnector-related`, never an apply: an apply would merge into a same-named object
    created after our read. Nothing is created into a terminating namespace.
 3. Target present and ours (`related-binding` == binding UID): if its payload (data,
    binaryData, type, immutable; empty maps and `immutable: false` count as absent) or markers
    differ from the copy: when the target is immutable, its type changed, or it holds data keys
    the copy no longer has (an apply cannot remove fields another field manager, including our
    own create, owns) -> `Delete` with its UID and recreate on a later pass; otherwise a forced
    server-side apply of the copy carrying the target's UID. Equal -> no write.
 4. Target present and not ours (no `related-binding`, or another binding's UID): never written,
    reported as a `RelatedConflict`.
 5. GC: each of this binding's copies in a channel's managed list whose key is not selected by
    any rule of that channel is deleted with its UID. Copies of other bindings are never touched.
 6. Unbinding: every copy this binding owns in scope (both directions, both kinds) is deleted with
    its UID; `draining` stays True while any exists, including ones already deleting (not deleted
    twice). A kind no rule names may be unreadable (403/404 on a restricted provider): it is
    treated as holding no copies.
 7. `deletionTimestamp`: a deleting source is not selected; a deleting own target is waited for
    (no write; it counts for `draining`, not for `copies`).
 8. Invalid rules (non-core group, unparsable label selector) freeze their channel: no reads, no
    writes, no GC there; the message is in `RelatedPlan.errors`.
 9. Whenever the plan waits on a deletion (recreate after delete, deleting own target, draining),
    it ends with `RequeueAfter(2 s)` so the binding is looked at again before its resync.

Output is deterministic: per cluster (consumer, then provider) namespace creations first, then
object writes sorted by (gvr, key); conflicts sorted by (cluster, kind, key); errors in rule order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore import selectors
from kbcore.actions import (
    CONSUMER,
    PROVIDER,
    Action,
    Apply,
    Create,
    Delete,
    RequeueAfter,
)
from kbcore.api import keys
from kbcore.api.types import LabelSelector, RelatedResource, SyncDirection
from kbcore.namespaces import owned_namespace
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List, Observed, get_obj, list_items, need_all

__all__ = [
    "CONFIGMAPS",
    "MANAGED_SELECTOR",
    "NAMESPACES",
    "SECRETS",
    "RelatedConflict",
    "RelatedPlan",
    "desired_copy",
    "plan_related",
]

SECRETS = GVR("", "v1", "secrets")
CONFIGMAPS = GVR("", "v1", "configmaps")
NAMESPACES = GVR("", "v1", "namespaces")
MANAGED_SELECTOR = f"{keys.LABEL_MANAGED}=true"
WAIT_SECONDS = 2.0

_KINDS = {"secrets": "Secret", "configmaps": "ConfigMap"}
_CLUSTERS = (CONSUMER, PROVIDER)
_MAPS = ("data", "binaryData")


@attrs.frozen
class RelatedConflict:
    """A same-named target this binding did not create: never overwritten (rule 4)."""

    cluster: str
    kind: str
    key: ObjectKey
    message: str


@attrs.frozen
class RelatedPlan:
    """The writes for one pass, what was refused, and the status facts."""

    actions: tuple[Action, ...]
    conflicts: tuple[RelatedConflict, ...]
    copies: int
    """Copies this binding owns on target sides once the plan's writes are done."""
    draining: bool
    """Unbinding and copies of this binding still exist: keep the binding's finalizer."""
    errors: tuple[str, ...] = ()
    """Rules that could not be understood (rule 8)."""


EMPTY = RelatedPlan((), (), 0, False)


@attrs.frozen(order=True)
class _Channel:
    """One (direction, resource) pair: where sources are read and copies written."""

    direction: str
    gvr: GVR

    @property
    def source(self) -> str:
        return CONSUMER if self.direction == SyncDirection.FROM_CONSUMER else PROVIDER

    @property
    def target(self) -> str:
        return PROVIDER if self.direction == SyncDirection.FROM_CONSUMER else CONSUMER

    @property
    def kind(self) -> str:
        return _KINDS.get(self.gvr.resource, self.gvr.resource)


@attrs.frozen
class _Selection:
    selector: selectors.Selector
    names: frozenset[str]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self.names and o.name(obj) not in self.names:
            return False
        return self.selector.matches(o.labels_of(obj))


def _channel_of(rule: RelatedResource) -> _Channel:
    return _Channel(str(rule.direction), GVR(rule.group, "v1", str(rule.resource)))


def _selector_dict(ls: LabelSelector) -> dict[str, Any]:
    return {
        "matchLabels": dict(ls.match_labels),
        "matchExpressions": [
            {"key": e.key, "operator": e.operator, "values": list(e.values)}
            for e in ls.match_expressions
        ],
    }


def _compile(
    rules: tuple[RelatedResource, ...],
) -> tuple[dict[_Channel, list[_Selection]], tuple[str, ...]]:
    """Selections per valid channel, and the messages of invalid rules (rule 8)."""
    channels: dict[_Channel, list[_Selection]] = {}
    frozen: set[_Channel] = set()
    errors: list[str] = []
    for i, rule in enumerate(rules):
        ch = _channel_of(rule)
        where = f"relatedResources[{i}]"
        if ch.gvr.group:
            errors.append(f"{where}: group must be empty (core), got {ch.gvr.group!r}")
            frozen.add(ch)
            continue
        if ch.gvr.resource not in _KINDS:
            errors.append(f"{where}: resource must be secrets or configmaps")
            frozen.add(ch)
            continue
        sel = rule.selector
        try:
            if sel is None or sel.label_selector is None:
                parsed = selectors.EVERYTHING
            else:
                parsed = selectors.from_label_selector(_selector_dict(sel.label_selector))
        except ValueError as exc:
            errors.append(f"{where}: invalid labelSelector: {exc}")
            frozen.add(ch)
            continue
        names = frozenset(sel.names) if sel is not None else frozenset()
        channels.setdefault(ch, []).append(_Selection(parsed, names))
    valid = {ch: sels for ch, sels in channels.items() if ch not in frozen}
    return dict(sorted(valid.items())), tuple(errors)


def _in_scope(obj: Mapping[str, Any], scope_namespace: str) -> bool:
    ns = o.namespace(obj)
    return bool(ns) and (not scope_namespace or ns == scope_namespace)


def _is_ours(obj: Mapping[str, Any], binding_uid: str) -> bool:
    return bool(binding_uid) and (
        o.annotations_of(obj).get(keys.ANNOTATION_RELATED_BINDING) == binding_uid
    )


def desired_copy(
    source: Mapping[str, Any],
    kind: str,
    *,
    binding_uid: str,
    local_cluster_uid: str,
) -> o.Obj:
    """The target copy of `source` (rule 1): markers and payload, nothing else."""
    body: o.Obj = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": o.name(source),
            "namespace": o.namespace(source),
            "labels": {keys.LABEL_MANAGED: "true"},
            "annotations": {
                keys.ANNOTATION_CONSUMER_CLUSTER_UID: local_cluster_uid,
                keys.ANNOTATION_RELATED_BINDING: binding_uid,
            },
        },
    }
    for field in _MAPS:
        if field in source:
            body[field] = o.deepcopy(source[field])
    if kind == "Secret":
        t = source.get("type")
        body["type"] = t if isinstance(t, str) and t else "Opaque"
    if "immutable" in source:
        body["immutable"] = source["immutable"]
    return body


def _payload(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The compared fields, normalized: empty maps and `immutable: false` are absent."""
    out: dict[str, Any] = {}
    for field in _MAPS:
        v = obj.get(field)
        if v is not None and v != {}:
            out[field] = v
    if kind == "Secret":
        t = obj.get("type")
        out["type"] = t if isinstance(t, str) and t else "Opaque"
    if obj.get("immutable") is True:
        out["immutable"] = True
    return out


def _markers_ok(target: Mapping[str, Any], local_cluster_uid: str) -> bool:
    return (
        o.labels_of(target).get(keys.LABEL_MANAGED) == "true"
        and o.annotations_of(target).get(keys.ANNOTATION_CONSUMER_CLUSTER_UID) == local_cluster_uid
    )


def _in_sync(live: Mapping[str, Any], want: Mapping[str, Any], kind: str, local_uid: str) -> bool:
    """Rule 3's equality: same payload and our markers in place (then nothing is written)."""
    return o.json_equal(_payload(live, kind), _payload(want, kind)) and _markers_ok(live, local_uid)


def _needs_recreate(live: Mapping[str, Any], want: Mapping[str, Any], kind: str) -> bool:
    """An apply cannot get from `live` to `want` (rule 3)."""
    if live.get("immutable") is True:
        return True
    if kind == "Secret" and _payload(live, kind)["type"] != _payload(want, kind)["type"]:
        return True
    for field in _MAPS:
        have, wanted = live.get(field), want.get(field)
        have_keys = set(have) if isinstance(have, dict) else set()
        wanted_keys = set(wanted) if isinstance(wanted, dict) else set()
        if have_keys - wanted_keys:
            return True
    return False


def _conflict(ch: _Channel, key: ObjectKey) -> RelatedConflict:
    message = (
        f"{ch.kind} {key} on the {ch.target} already exists and was not created by this "
        "binding; not overwriting it"
    )
    return RelatedConflict(ch.target, ch.kind, key, message)


_Sortable = tuple[tuple[str, int, GVR, ObjectKey], Action]


def _ordered(actions: list[_Sortable], wait: bool) -> tuple[Action, ...]:
    out = [a for _, a in sorted(actions, key=lambda pair: pair[0])]
    if wait:
        out.append(RequeueAfter(WAIT_SECONDS))
    return tuple(out)


def plan_related(
    rules: tuple[RelatedResource, ...],
    *,
    binding_uid: str,
    scope_namespace: str,
    local_cluster_uid: str,
    observed: Observed,
    unbinding: bool = False,
) -> RelatedPlan:
    """Plan one pass of related-resource sync (or drain, when `unbinding`) for one binding.

    Raises `kbcore.reads.Missing` for reads not observed yet, and the `ApiError` of a needed
    read that `Failed`.
    """
    if not binding_uid:
        return EMPTY
    if unbinding:
        return _plan_unbind(rules, binding_uid, scope_namespace, observed)
    if not local_cluster_uid:
        return EMPTY
    channels, errors = _compile(rules)

    # Round 1: sources and managed targets.
    lists = {
        ch: (
            List(ch.source, ch.gvr, scope_namespace),
            List(ch.target, ch.gvr, scope_namespace, MANAGED_SELECTOR),
        )
        for ch in channels
    }
    need_all(observed, tuple(r for pair in lists.values() for r in pair))
    selected: dict[_Channel, dict[ObjectKey, o.Obj]] = {}
    managed: dict[_Channel, dict[ObjectKey, o.Obj]] = {}
    for ch, (src_read, tgt_read) in lists.items():
        sels = channels[ch]
        selected[ch] = {
            o.key_of(s): s
            for s in list_items(observed, src_read)
            if _in_scope(s, scope_namespace)
            and not o.is_deleting(s)
            and not _is_ours(s, binding_uid)
            and any(sel.matches(s) for sel in sels)
        }
        managed[ch] = {
            o.key_of(t): t for t in list_items(observed, tgt_read) if _in_scope(t, scope_namespace)
        }

    # Round 2: is a same-named target there that the managed list does not show?
    gets = {
        (ch, key): Get(ch.target, ch.gvr, key)
        for ch in channels
        for key in sorted(selected[ch])
        if key not in managed[ch]
    }
    need_all(observed, tuple(gets.values()))

    actions: list[_Sortable] = []
    conflicts: list[RelatedConflict] = []
    creates: list[tuple[_Channel, ObjectKey, o.Obj]] = []
    copies = 0
    wait = False
    for ch in channels:
        for key, source in sorted(selected[ch].items()):
            target = managed[ch].get(key)
            if target is None:
                target = get_obj(observed, gets[(ch, key)])
            want = desired_copy(
                source, ch.kind, binding_uid=binding_uid, local_cluster_uid=local_cluster_uid
            )
            ref = ObjectRef(ch.target, ch.gvr, key)
            if target is None:
                creates.append((ch, key, want))
            elif not _is_ours(target, binding_uid):
                conflicts.append(_conflict(ch, key))
            elif o.is_deleting(target):
                wait = True
            elif _in_sync(target, want, ch.kind, local_cluster_uid):
                copies += 1
            elif _needs_recreate(target, want, ch.kind):
                if o.uid(target):
                    actions.append(((ch.target, 1, ch.gvr, key), Delete(ref, o.uid(target))))
                wait = True
            else:
                if o.uid(target):
                    # The UID makes the apply fail instead of writing to a same-named replacement.
                    want["metadata"]["uid"] = o.uid(target)
                apply = Apply(ref, want, keys.FIELD_MANAGER_RELATED, force=True)
                actions.append(((ch.target, 1, ch.gvr, key), apply))
                copies += 1
        # Rule 5: GC of our copies no rule of this channel selects any more.
        for key, target in sorted(managed[ch].items()):
            if key in selected[ch] or not _is_ours(target, binding_uid):
                continue
            if not o.is_deleting(target) and o.uid(target):
                ref = ObjectRef(ch.target, ch.gvr, key)
                actions.append(((ch.target, 1, ch.gvr, key), Delete(ref, o.uid(target))))

    # Round 3: the namespaces copies are created in.
    ns_reads = {
        (ch.target, key.namespace): Get(ch.target, NAMESPACES, ObjectKey("", key.namespace))
        for ch, key, _ in creates
    }
    need_all(observed, tuple(ns_reads.values()))
    namespaces = {where: get_obj(observed, read) for where, read in ns_reads.items()}
    created_ns: set[tuple[str, str]] = set()
    for ch, key, want in creates:
        where = (ch.target, key.namespace)
        ns = namespaces[where]
        if ns is not None and o.is_deleting(ns):
            continue
        if ns is None and where not in created_ns:
            created_ns.add(where)
            create_ns = owned_namespace(ch.target, key.namespace, local_cluster_uid)
            actions.append(((ch.target, 0, NAMESPACES, ObjectKey("", key.namespace)), create_ns))
        ref = ObjectRef(ch.target, ch.gvr, key)
        actions.append(((ch.target, 1, ch.gvr, key), Create(ref, want, keys.FIELD_MANAGER_RELATED)))
        copies += 1

    conflicts.sort(key=lambda c: (c.cluster, c.kind, c.key))
    return RelatedPlan(_ordered(actions, wait), tuple(conflicts), copies, False, errors)


def _plan_unbind(
    rules: tuple[RelatedResource, ...],
    binding_uid: str,
    scope_namespace: str,
    observed: Observed,
) -> RelatedPlan:
    """Rule 6: delete every copy of this binding, on both sides, of both kinds."""
    named = {(ch.target, ch.gvr) for ch in map(_channel_of, rules)}
    reads = {
        (cluster, gvr): List(cluster, gvr, scope_namespace, MANAGED_SELECTOR)
        for cluster in _CLUSTERS
        for gvr in (CONFIGMAPS, SECRETS)
    }
    need_all(observed, tuple(reads.values()))
    actions: list[_Sortable] = []
    draining = False
    for (cluster, gvr), read in reads.items():
        result = observed[read]
        unreadable = isinstance(result, Failed) and (
            result.error.is_forbidden or result.error.is_not_found
        )
        if unreadable and (cluster, gvr) not in named:
            continue
        for target in list_items(observed, read):
            if not _in_scope(target, scope_namespace) or not _is_ours(target, binding_uid):
                continue
            draining = True
            if o.is_deleting(target) or not o.uid(target):
                continue
            key = o.key_of(target)
            delete = Delete(ObjectRef(cluster, gvr, key), o.uid(target))
            actions.append(((cluster, 1, gvr, key), delete))
    return RelatedPlan(_ordered(actions, draining), (), 0, draining)
