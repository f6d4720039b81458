"""The related-resources kernel: Secrets and ConfigMaps copied alongside a binding's instances.

Theory of operation. A binding's `relatedResources` rules name, per direction, which Secrets or
ConfigMaps on the *source* side (the consumer for `FromConsumer`, the provider for
`FromProvider`) are mirrored at the same namespace/name on the *target* side. `plan_related`
lists the sources and the managed targets in the binding's scope, selects, and returns the writes
that move the target side one step toward "every selected source the trust boundary admits has an
identical copy made by this binding, and this binding has no other copies", plus the conflicts
and refusals it reports instead of writing. It is level-based and follows the sans-I/O read
protocol of `kbcore.reads`: it raises `Missing` naming the reads it still needs, and the caller
calls it again with their results.

The trust boundary. One principle: **a related copy is data placed next to the binding's own
objects, asked for by the consumer; it never lands where the cluster's own components live, and
never carries meaning to the target cluster's API server.** A provider chooses its own labels, so
a label selector is no consent: without these rules a provider could place Secrets in the
consumer's `kube-system`, hand it working bootstrap tokens, replace a namespace's
`kube-root-ca.crt`, or have namespaces created; and a FromConsumer rule without a selector would
upload every consumer Secret (other Connections' kubeconfigs included). The rules, the same in
both directions unless stated (tests refer to them as T1-T7):

 T1. Namespaces: a copy, and the source it comes from, only in namespaces the binding syncs
     objects in (`synced_namespace`): a Binding's own namespace; for a ClusterBinding the
     consumer namespaces that hold at least one consumer object, not being deleted, of one of
     its bound namespaced APIs (the binding planner's conflict-count lists, `synced_namespaces`).
     Why: that is where the consumer put the objects the related data serves; anywhere else no
     one asked for it. When the last such object goes, the copies there are garbage-collected by
     rule 5. A provider source elsewhere is reported as waiting for an object there.
 T2. Never in a `kube-*` namespace or the konnector's own namespace, on either side, for either
     direction, even when instances live there (`reserved_namespace`). Why: those namespaces
     are the cluster's own components' (and hold every Connection's kubeconfig Secret); a copy
     there is read by them, and an upload from there hands over the cluster's credentials.
 T3. Never an object whose name starts with `kube-` (`reserved_name`). Why: those are
     Kubernetes' own per-namespace objects (`kube-root-ca.crt` is the CA pods trust).
 T4. Secrets: only data types are copied (`data_secret_type`, `DATA_SECRET_TYPES`: `Opaque`
     or none, `kubernetes.io/basic-auth`, `ssh-auth`, `tls`, `dockercfg`, `dockerconfigjson`).
     Why: an allow-list, because any other type may be acted on by a component of the target
     cluster (service-account tokens, bootstrap tokens, and types we cannot know). Anything
     else is refused, never re-typed.
 T5. Never create a namespace on the consumer (`may_create_namespace`). By T1 the consumer
     namespace exists; a missing or terminating one is "nothing to do yet". On the provider a
     FromConsumer copy's namespace is still created when missing: it lies inside the consumer's
     provider-side boundary and the provider's RBAC decides it.
 T6. A FromConsumer rule needs an explicit selector (`explicit_selector`): a labelSelector with
     at least one requirement, or non-empty names. A rule without one is invalid (rule 8: its
     channel is frozen) with a message saying why. Why: uploading is the consumer giving data
     away; "everything" is never what was meant.
 T7. Every selected source not copied because of T1-T4 is reported, never silently skipped:
     `RelatedPlan.refused` names the object, the `relatedResources` entry and the rule, and the
     binding's `RelatedResources` condition says it (`summary`). A refused object does not make
     the binding unready: instance sync is unaffected.
FromConsumer sources are listed per allowed namespace (T1 minus T2), so the kernel never reads
consumer Secrets in `kube-*`, in the konnector's namespace or in namespaces the binding does not
sync; a synced namespace that T2 excludes is reported as a whole (its objects were never read).
That costs one LIST per allowed namespace and channel per pass (a pass every 30 s), against one
cluster-wide LIST that would bring every `kube-system` Secret into the konnector's memory and
into a `--record` trace. FromProvider sources are listed in the binding's scope (one LIST), so
refused and waiting provider objects can be named.

Reads, per (direction, resource) "channel" named by some valid rule, in at most three rounds:
  1. the sources: `List(PROVIDER, gvr, scope)` for FromProvider, `List(CONSUMER, gvr, ns)` for
     each allowed namespace for FromConsumer (selection is done here), and
     `List(target, gvr, scope, "core.kube-bind.io/managed=true")`;
  2. `Get(target, gvr, key)` for each admitted source whose key is not in the managed list (is a
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
    everything, FromProvider only: T6) AND, when `names` is non-empty, exact-name membership;
    rules of the same channel are OR-ed. A source that is itself one of this binding's copies is
    never selected (no loops when a binding has rules in both directions). A selected source is
    then admitted or refused by T2, T3, T4, T1 (in that order; the first that refuses names it).
 2. Target absent (confirmed by the `Get`): POST the copy with field manager
    `kube-bind-konnector-related`, never an apply: an apply would merge into a same-named object
    created after our read. Its namespace must exist and not be terminating; only on the
    provider is a missing one created first (label managed=true, label consumer-cluster-uid; T5).
 3. Target present and ours (`related-binding` == binding UID): if its payload (data,
    binaryData, type, immutable; empty maps and `immutable: false` count as absent) or markers
    differ from the copy: when the target is immutable, its type changed, or it holds data keys
    the copy no longer has (an apply cannot remove fields another field manager, including our
    own create, owns) -> `Delete` with its UID and recreate on a later pass; otherwise a forced
    server-side apply of the copy carrying the target's UID. Equal -> no write.
 4. Target present and not ours (no `related-binding`, or another binding's UID): never written,
    reported as a `RelatedConflict`.
 5. GC: each of this binding's copies in a channel's managed list whose key is not an admitted
    source of that channel is deleted with its UID: its source stopped matching, went away, or
    the trust boundary no longer admits it (T1's last object gone; a copy an older konnector
    made in `kube-system`). Copies of other bindings are never touched.
 6. Unbinding: every copy this binding owns in scope (both directions, both kinds) is deleted with
    its UID; `draining` stays True while any exists, including ones already deleting (not deleted
    twice). A kind no rule names may be unreadable (403/404 on a restricted provider): it is
    treated as holding no copies.
 7. `deletionTimestamp`: a deleting source is not selected; a deleting own target is waited for
    (no write; it counts for `draining`, not for `copies`).
 8. Invalid rules (non-core group, unparsable label selector, FromConsumer without an explicit
    selector: T6) freeze their channel: no reads, no writes, no GC there; the message is in
    `RelatedPlan.errors`.
 9. Whenever the plan waits on a deletion (recreate after delete, deleting own target, draining),
    it ends with `RequeueAfter(2 s)` so the binding is looked at again before its resync.

10. A tenant's binding (`tenant`, `kbcore.sync.tenancy`): every rule above is decided in
    consumer namespaces, and the provider side is addressed through the tenant's mapper
    (consumer namespace X is provider namespace `<home>-X`, names kept). The tenant may read and
    write only the provider namespaces granted to it and never reads or creates a namespace, so
    round 1 starts with `List(PROVIDER, boundnamespaces, <home>)`: the granted claims (`Claim.
    GRANTED`) are the consumer namespaces whose provider namespaces are listed, one LIST each
    (sources FromProvider, our copies FromConsumer, and when unbinding); a provider object
    outside `<home>-*` is never seen. A FromConsumer copy goes to provider namespace `<home>-X`
    only once X's claim is granted (the instance sync claims it; until then the copy waits) and
    round 3 is not read for the provider: a granted namespace exists. Law
    (tests/property/test_related_tenant_laws.py): on the provider a tenant's plan reads its
    claims and, like every write, stays inside its granted `<home>-X`; never a namespace.

Output is deterministic: per cluster (consumer, then provider) namespace creations first, then
object writes sorted by (gvr, key); conflicts sorted by (cluster, kind, key); refusals with T2-T4
before T1's waits, each sorted by (cluster, kind, key); errors in rule order.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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
from kbcore.api import conditions as c
from kbcore.api import keys
from kbcore.api.resources import BOUND_NAMESPACES, CONFIGMAPS, NAMESPACES, SECRETS
from kbcore.api.types import (
    LabelSelector,
    RelatedResource,
    RelatedResourceSelector,
    SyncDirection,
)
from kbcore.objects import GVR, ObjectKey, ObjectRef
from kbcore.reads import Failed, Get, List, Observed, get_obj, list_items, need_all
from kbcore.sync.mapper import IDENTITY, Mapper
from kbcore.sync.namespaces import owned_namespace
from kbcore.sync.tenancy import Claim, Tenant, claim_state

__all__ = [
    "CONFIGMAPS",
    "DATA_SECRET_TYPES",
    "EMPTY",
    "MANAGED_SELECTOR",
    "NAMESPACES",
    "SECRETS",
    "RelatedConflict",
    "RelatedPlan",
    "RelatedRefusal",
    "data_secret_type",
    "desired_copy",
    "explicit_selector",
    "may_create_namespace",
    "plan_related",
    "reserved_name",
    "reserved_namespace",
    "summary",
    "synced_namespace",
]

MANAGED_SELECTOR = f"{keys.LABEL_MANAGED}=true"
WAIT_SECONDS = 2.0
RESERVED_PREFIX = "kube-"
DATA_SECRET_TYPES = frozenset(
    {
        "Opaque",
        "kubernetes.io/basic-auth",
        "kubernetes.io/ssh-auth",
        "kubernetes.io/tls",
        "kubernetes.io/dockercfg",
        "kubernetes.io/dockerconfigjson",
    }
)
"""T4: the Secret types that are only data to the cluster that holds them."""
LISTED_REFUSALS = 5
"""T7: how many refused objects a condition message names before it only counts the rest."""

_KINDS = {"secrets": "Secret", "configmaps": "ConfigMap"}
_CLUSTERS = (CONSUMER, PROVIDER)
_MAPS = ("data", "binaryData")
WAITING = "T1"


# -- the trust boundary, one function per rule ------------------------------------------------


def synced_namespace(namespace: str, synced: Collection[str]) -> bool:
    """T1: `namespace` is one the binding syncs objects in."""
    return namespace in synced


def reserved_namespace(namespace: str, konnector_namespace: str) -> bool:
    """T2: a namespace of the cluster's own components (`kube-*`) or of the konnector."""
    return namespace.startswith(RESERVED_PREFIX) or (
        bool(konnector_namespace) and namespace == konnector_namespace
    )


def reserved_name(name: str) -> bool:
    """T3: Kubernetes' own per-namespace objects (`kube-root-ca.crt`, ...)."""
    return name.startswith(RESERVED_PREFIX)


def data_secret_type(value: Any) -> bool:
    """T4: a Secret type that is only data (absent or empty is `Opaque`, as the server says)."""
    if value is None or value == "":
        return True
    return isinstance(value, str) and value in DATA_SECRET_TYPES


def explicit_selector(selector: RelatedResourceSelector | None) -> bool:
    """T6: a labelSelector with at least one requirement, or non-empty names."""
    if selector is None:
        return False
    if selector.names:
        return True
    ls = selector.label_selector
    return ls is not None and bool(ls.match_labels or ls.match_expressions)


def may_create_namespace(cluster: str) -> bool:
    """T5: only on the provider may a copy's missing namespace be created."""
    return cluster == PROVIDER


# -- values -------------------------------------------------------------------------------------


@attrs.frozen
class RelatedConflict:
    """A same-named target this binding did not create: never overwritten (rule 4)."""

    cluster: str
    kind: str
    key: ObjectKey
    message: str


@attrs.frozen
class RelatedRefusal:
    """A selected source not copied because of the trust boundary (T7).

    `key` names the source; for a FromConsumer namespace excluded as a whole (T2) its name is
    empty, since nothing there was read. `trust_rule` is "T1" for a source that waits for an
    object of a bound API in its namespace, "T2"-"T4" for a refusal."""

    cluster: str
    """Where the source lives."""
    kind: str
    key: ObjectKey
    rule: str
    """The `relatedResources[i]` entry that selected it."""
    trust_rule: str
    message: str

    @property
    def waiting(self) -> bool:
        return self.trust_rule == WAITING


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
    """Rules that could not be understood or are not allowed (rule 8, T6)."""
    refused: tuple[RelatedRefusal, ...] = ()
    """Selected sources the trust boundary did not admit (T7)."""


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
    rule: str
    """Which `relatedResources[i]` this is, for messages."""

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
    """Selections per valid channel, and the messages of invalid rules (rule 8, T6)."""
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
        if ch.direction == SyncDirection.FROM_CONSUMER and not explicit_selector(sel):
            errors.append(
                f"{where}: FromConsumer needs an explicit selector (a labelSelector with at "
                "least one requirement, or names); without one it would upload every "
                f"{ch.kind} of the namespaces the binding syncs to the provider (rule T6)"
            )
            frozen.add(ch)
            continue
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
        channels.setdefault(ch, []).append(_Selection(parsed, names, where))
    valid = {ch: sels for ch, sels in channels.items() if ch not in frozen}
    return dict(sorted(valid.items())), tuple(errors)


def _in_scope(obj: Mapping[str, Any], scope_namespace: str) -> bool:
    ns = o.namespace(obj)
    return bool(ns) and (not scope_namespace or ns == scope_namespace)


def _is_ours(obj: Mapping[str, Any], binding_uid: str) -> bool:
    return bool(binding_uid) and (
        o.annotations_of(obj).get(keys.ANNOTATION_RELATED_BINDING) == binding_uid
    )


def _boundary(
    ch: _Channel, source: Mapping[str, Any], synced: Collection[str], konnector_namespace: str
) -> tuple[str, str] | None:
    """The trust rule that does not admit `source`, with why (T2, T3, T4, then T1), or None."""
    ns, name = o.namespace(source), o.name(source)
    if reserved_namespace(ns, konnector_namespace):
        return "T2", _reserved_namespace_reason(ns, konnector_namespace)
    if reserved_name(name):
        return "T3", "names starting with kube- are Kubernetes' own objects; never copied"
    if ch.kind == "Secret" and not data_secret_type(source.get("type")):
        return "T4", (
            f"Secret type {source.get('type')!r} may be acted on by the "
            f"{ch.target} cluster; only data types are copied "
            f"({', '.join(sorted(DATA_SECRET_TYPES))})"
        )
    if not synced_namespace(ns, synced):
        return WAITING, f"waits for an object of a bound API in namespace {ns}"
    return None


def _reserved_namespace_reason(ns: str, konnector_namespace: str) -> str:
    if ns == konnector_namespace:
        return f"namespace {ns} is the konnector's own; related resources never go there"
    return f"namespace {ns} belongs to the cluster's own components (kube-*); never used"


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


def _refusal(ch: _Channel, key: ObjectKey, rule: str, trust_rule: str, why: str) -> RelatedRefusal:
    what = f"{ch.kind} {key}" if key.name else f"{ch.kind}s of namespace {key.namespace}"
    message = f"{what} on the {ch.source} ({rule}, rule {trust_rule}): {why}"
    return RelatedRefusal(ch.source, ch.kind, key, rule, trust_rule, message)


_Sortable = tuple[tuple[str, int, GVR, ObjectKey], Action]


def _ordered(actions: list[_Sortable], wait: bool) -> tuple[Action, ...]:
    out = [a for _, a in sorted(actions, key=lambda pair: pair[0])]
    if wait:
        out.append(RequeueAfter(WAIT_SECONDS))
    return tuple(out)


def _source_reads(
    ch: _Channel, scope_namespace: str, allowed: list[str], sides: _Sides
) -> tuple[List, ...]:
    """Round 1's source lists: FromConsumer only in the allowed namespaces (T1, T2);
    FromProvider in the scope (a tenant's: per granted namespace, rule 10)."""
    if ch.source == CONSUMER:
        return tuple(List(CONSUMER, ch.gvr, ns) for ns in allowed)
    return sides.lists(PROVIDER, ch.gvr, scope_namespace)


def plan_related(
    rules: tuple[RelatedResource, ...],
    *,
    binding_uid: str,
    scope_namespace: str,
    local_cluster_uid: str,
    observed: Observed,
    konnector_namespace: str,
    synced_namespaces: Collection[str] = frozenset(),
    unbinding: bool = False,
    tenant: Tenant | None = None,
) -> RelatedPlan:
    """Plan one pass of related-resource sync (or drain, when `unbinding`) for one binding.

    `synced_namespaces` are the namespaces T1 admits (for a Binding, its own); the default
    admits none; `tenant` is the Connection's boundary (rule 10). Raises `kbcore.reads.Missing`
    for reads not observed yet, and the `ApiError` of a needed read that `Failed`.
    """
    if not binding_uid:
        return EMPTY
    if unbinding:
        sides = _sides(tenant, observed)
        return _plan_unbind(rules, binding_uid, scope_namespace, observed, sides)
    if not local_cluster_uid:
        return EMPTY
    channels, errors = _compile(rules)
    # A tenant's claims are read only when some channel will list the provider (rule 10).
    sides = _sides(tenant, observed) if channels else _Sides()
    synced = sorted(set(synced_namespaces))
    allowed = [ns for ns in synced if not reserved_namespace(ns, konnector_namespace)]

    # Round 1: sources and managed targets.
    source_reads = {ch: _source_reads(ch, scope_namespace, allowed, sides) for ch in channels}
    target_reads = {
        ch: sides.lists(ch.target, ch.gvr, scope_namespace, MANAGED_SELECTOR) for ch in channels
    }
    need_all(
        observed,
        tuple(r for ch in channels for r in (*source_reads[ch], *target_reads[ch])),
    )
    selected: dict[_Channel, dict[ObjectKey, o.Obj]] = {}
    managed: dict[_Channel, dict[ObjectKey, o.Obj]] = {}
    refused: list[RelatedRefusal] = []
    for ch, sels in channels.items():
        selected[ch] = {}
        if ch.source == CONSUMER:
            # T2, T7: a synced namespace excluded as a whole is named; nothing in it was read.
            for ns in synced:
                if reserved_namespace(ns, konnector_namespace):
                    why = _reserved_namespace_reason(ns, konnector_namespace)
                    refused.append(_refusal(ch, ObjectKey(ns, ""), sels[0].rule, "T2", why))
        for read in source_reads[ch]:
            for s in sides.items(observed, read):
                if (
                    not _in_scope(s, scope_namespace)
                    or o.is_deleting(s)
                    or _is_ours(s, binding_uid)
                ):
                    continue
                by = next((sel for sel in sels if sel.matches(s)), None)
                if by is None:
                    continue
                boundary = _boundary(ch, s, allowed, konnector_namespace)
                if boundary is None and not sides.may_write(ch.target, o.namespace(s)):
                    boundary = (
                        WAITING,
                        (
                            f"waits for namespace {o.namespace(s)}'s claim on the provider "
                            "to be granted"
                        ),
                    )
                if boundary is not None:
                    refused.append(_refusal(ch, o.key_of(s), by.rule, *boundary))
                    continue
                selected[ch][o.key_of(s)] = s
        managed[ch] = {
            o.key_of(t): t
            for read in target_reads[ch]
            for t in sides.items(observed, read)
            if _in_scope(t, scope_namespace)
        }

    # Round 2: is a same-named target there that the managed list does not show?
    gets = {
        (ch, key): Get(ch.target, ch.gvr, sides.key(ch.target, ch.gvr, key))
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
                target = sides.seen(ch.target, ch.gvr, get_obj(observed, gets[(ch, key)]))
            want = desired_copy(
                source, ch.kind, binding_uid=binding_uid, local_cluster_uid=local_cluster_uid
            )
            ref = sides.ref(ch.target, ch.gvr, key)
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
                body = sides.body(ch.target, ch.gvr, want)
                apply = Apply(ref, body, keys.FIELD_MANAGER_RELATED, force=True)
                actions.append(((ch.target, 1, ch.gvr, key), apply))
                copies += 1
        # Rule 5: GC of our copies no rule of this channel selects (or T1-T4 admits) any more.
        for key, target in sorted(managed[ch].items()):
            if key in selected[ch] or not _is_ours(target, binding_uid):
                continue
            if not o.is_deleting(target) and o.uid(target):
                ref = sides.ref(ch.target, ch.gvr, key)
                actions.append(((ch.target, 1, ch.gvr, key), Delete(ref, o.uid(target))))

    # Rule 10: a tenant's provider copy goes only to a granted namespace (selection made sure),
    # which exists: its namespace is neither read nor created.
    if sides.granted is not None:
        for ch, key, want in [x for x in creates if x[0].target == PROVIDER]:
            ref = sides.ref(ch.target, ch.gvr, key)
            create = Create(ref, sides.body(ch.target, ch.gvr, want), keys.FIELD_MANAGER_RELATED)
            actions.append(((ch.target, 1, ch.gvr, key), create))
            copies += 1
        creates = [x for x in creates if x[0].target != PROVIDER]
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
        namespace = namespaces[where]
        if namespace is not None and o.is_deleting(namespace):
            continue
        if namespace is None and not may_create_namespace(ch.target):
            continue  # T5: the namespace T1 saw is gone; nothing to do there any more
        if namespace is None and where not in created_ns:
            created_ns.add(where)
            create_ns = owned_namespace(ch.target, key.namespace, local_cluster_uid)
            actions.append(((ch.target, 0, NAMESPACES, ObjectKey("", key.namespace)), create_ns))
        ref = ObjectRef(ch.target, ch.gvr, key)
        actions.append(((ch.target, 1, ch.gvr, key), Create(ref, want, keys.FIELD_MANAGER_RELATED)))
        copies += 1

    conflicts.sort(key=lambda x: (x.cluster, x.kind, x.key))
    refused.sort(key=lambda x: (x.waiting, x.cluster, x.kind, x.key))
    return RelatedPlan(
        _ordered(actions, wait), tuple(conflicts), copies, False, errors, tuple(refused)
    )


@attrs.frozen
class _Sides:
    """How each cluster is read and written (rule 10): the consumer as it is; the provider
    through `mapper`, listed per namespace of `granted` (consumer namespaces) when it is a
    tenant's (`granted` is None otherwise: one LIST of the scope, as before)."""

    mapper: Mapper = IDENTITY
    granted: tuple[str, ...] | None = None

    def lists(self, cluster: str, gvr: GVR, scope: str, selector: str = "") -> tuple[List, ...]:
        if cluster != PROVIDER or self.granted is None:
            return (List(cluster, gvr, self._ns(cluster, gvr, scope), selector),)
        spaces = [n for n in self.granted if not scope or n == scope]
        return tuple(List(PROVIDER, gvr, self._ns(cluster, gvr, n), selector) for n in spaces)

    def _ns(self, cluster: str, gvr: GVR, namespace: str) -> str:
        if cluster != PROVIDER or not namespace:
            return namespace
        return self.mapper.to_provider(gvr, ObjectKey(namespace, "")).namespace

    def may_write(self, cluster: str, namespace: str) -> bool:
        """Whether a copy may be read or written in (consumer) `namespace` on `cluster`."""
        return cluster != PROVIDER or self.granted is None or namespace in self.granted

    def key(self, cluster: str, gvr: GVR, key: ObjectKey) -> ObjectKey:
        """A consumer-terms key as `cluster` names it."""
        return self.mapper.to_provider(gvr, key) if cluster == PROVIDER else key

    def ref(self, cluster: str, gvr: GVR, key: ObjectKey) -> ObjectRef:
        return ObjectRef(cluster, gvr, self.key(cluster, gvr, key))

    def body(self, cluster: str, gvr: GVR, body: o.Obj) -> o.Obj:
        """A consumer-terms body as `cluster` stores it."""
        if cluster == PROVIDER and o.namespace(body):
            ns = self.key(cluster, gvr, o.key_of(body)).namespace
            body["metadata"]["namespace"] = ns
        return body

    def seen(self, cluster: str, gvr: GVR, obj: o.Obj | None) -> o.Obj | None:
        """`obj` as read on `cluster`, in consumer terms (None: outside the tenant's boundary)."""
        if obj is None or cluster != PROVIDER or self.mapper is IDENTITY:
            return obj
        key = self.mapper.to_consumer(gvr, o.key_of(obj))
        if key is None:
            return None
        meta = obj.get("metadata")
        return {**obj, "metadata": {**(meta if isinstance(meta, Mapping) else {}),
                                    "namespace": key.namespace}}  # fmt: skip

    def items(self, observed: Observed, read: List) -> list[o.Obj]:
        out = [self.seen(read.cluster, read.gvr, x) for x in list_items(observed, read)]
        return [x for x in out if x is not None]


def _sides(tenant: Tenant | None, observed: Observed) -> _Sides:
    """Rule 10: the tenant's granted consumer namespaces, from its claims."""
    if tenant is None:
        return _Sides()
    claims = List(PROVIDER, BOUND_NAMESPACES, tenant.namespace)
    need_all(observed, (claims,))
    granted = sorted(
        o.name(x)
        for x in list_items(observed, claims)
        if claim_state(tenant, o.name(x), x) is Claim.GRANTED
    )
    return _Sides(tenant.mapper, tuple(granted))


def _plan_unbind(
    rules: tuple[RelatedResource, ...],
    binding_uid: str,
    scope_namespace: str,
    observed: Observed,
    sides: _Sides,
) -> RelatedPlan:
    """Rule 6: delete every copy of this binding, on both sides, of both kinds."""
    named = {(ch.target, ch.gvr) for ch in map(_channel_of, rules)}
    reads = [
        ((cluster, gvr), read)
        for cluster in _CLUSTERS
        for gvr in (CONFIGMAPS, SECRETS)
        for read in sides.lists(cluster, gvr, scope_namespace, MANAGED_SELECTOR)
    ]
    need_all(observed, tuple(read for _, read in reads))
    actions: list[_Sortable] = []
    draining = False
    for (cluster, gvr), read in reads:
        result = observed[read]
        unreadable = isinstance(result, Failed) and (
            result.error.is_forbidden or result.error.is_not_found
        )
        if unreadable and (cluster, gvr) not in named:
            continue
        for target in sides.items(observed, read):
            if not _in_scope(target, scope_namespace) or not _is_ours(target, binding_uid):
                continue
            draining = True
            if o.is_deleting(target) or not o.uid(target):
                continue
            key = o.key_of(target)
            delete = Delete(sides.ref(cluster, gvr, key), o.uid(target))
            actions.append(((cluster, 1, gvr, key), delete))
    return RelatedPlan(_ordered(actions, draining), (), 0, draining)


def summary(plan: RelatedPlan) -> tuple[bool, str, str]:
    """T7: the binding's `RelatedResources` condition (status, reason, message) for `plan`.

    Invalid rules first (`InvalidRule`), then refusals (`RelatedRefused`), then sources that
    wait for an object in their namespace (`Pending`); the message names the first
    `LISTED_REFUSALS` objects not copied, with their rule, and counts the rest."""
    parts = list(plan.errors)
    if plan.refused:
        n = len(plan.refused)
        listed = "; ".join(r.message for r in plan.refused[:LISTED_REFUSALS])
        more = f"; and {n - LISTED_REFUSALS} more" if n > LISTED_REFUSALS else ""
        parts.append(f"{n} selected object(s) not copied: {listed}{more}")
    if plan.errors:
        return False, c.INVALID_RULE, "; ".join(parts)
    if any(not r.waiting for r in plan.refused):
        return False, c.RELATED_REFUSED, "; ".join(parts)
    if plan.refused:
        return False, c.PENDING, "; ".join(parts)
    copies = f"{plan.copies} related cop{'y' if plan.copies == 1 else 'ies'} in sync"
    if plan.conflicts:
        copies += f"; {len(plan.conflicts)} target(s) in conflict (see Conflicts)"
    return True, c.AS_EXPECTED, copies
