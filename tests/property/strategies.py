"""Shared hypothesis strategies (and a few oracles) for consumer objects and provider copies.

Everything here builds plain JSON-shaped dicts the way an API server returns them, so any test of
a kernel, a shell or kbsim can draw from it:

- `json_values` / `json_objects` / `malformed_objects`: arbitrary and deliberately broken input;
- `consumer_objects`: a consumer instance with random spec, status, labels, annotations,
  finalizers, deletionTimestamp and deletion policy (each of which can be pinned by a keyword);
- `provider_copies`: the provider object at the mapped key, of a chosen `Kind` of ownership
  (ours, foreign-unmanaged, owned-by-another), possibly deleting, possibly carrying the
  managedFields a real server records for our apply;
- `provider_views` / `instance_views`: what the shell hands to `plan_instance`, fresh or cached.

Helpers that tests use as oracles or as "the server side" live here too: `fields_v1` encodes the
field set a server-side apply records, `server_copy` is what an API server holds after applying a
body, `ownership_of` re-derives the three-way classification (docs/design.md, "Decisions") independently of
`kbcore.sync.instance.classify`, and `json_equal` is equality of JSON values (a boolean is not a
number, unlike Python's `True == 1`).
"""

from __future__ import annotations

import copy
import enum
import functools
import json
from collections.abc import Mapping
from typing import Any

import attrs
from hypothesis import strategies as st

from kbcore.actions import PROVIDER
from kbcore.api import keys
from kbcore.api.types import ConflictPolicy
from kbcore.objects import GVR, ObjectKey
from kbcore.reads import Get
from kbcore.sync.coverage import Coverage
from kbcore.sync.instance import InstanceView, fresh_read, namespace_read
from kbcore.sync.mapper import IDENTITY, Mapper, NamespacePrefix
from kbcore.sync.tenancy import Tenant, claim_ref

# --- fixed vocabulary -------------------------------------------------------------------------

LOCAL_CLUSTER_UID = "c0c0c0c0-0000-4000-8000-00000000000a"
"""The consumer cluster's identity (`Connection.status.localClusterUID`) in these tests."""
OTHER_CLUSTER_UID = "c0c0c0c0-0000-4000-8000-00000000000b"

WIDGETS = GVR("example.org", "v1", "widgets")
"""A namespaced bound API."""
GADGETS = GVR("example.org", "v1", "gadgets")
"""A cluster-scoped bound API."""

PREFIX_MAPPER = NamespacePrefix("consumer-7-")
MAPPERS: tuple[Mapper, ...] = (IDENTITY, PREFIX_MAPPER)
TENANT = Tenant("consumer-7", ("widgets.example.org",))
"""A tenant of a shared provider whose mapper is PREFIX_MAPPER (`kbcore.sync.tenancy`)."""

OTHER_MANAGER = "provider-controller"

# Small alphabets make collisions (same key on both sides, same uid twice) likely, which is where
# the interesting cases are.
_KEY_ALPHABET = "abcxyz-._/"

# --- JSON values ------------------------------------------------------------------------------

json_keys = st.one_of(
    st.sampled_from(["a", "b", "replicas", "items", "status", "spec", ".", "f:a", "k:{}"]),
    st.text(_KEY_ALPHABET, min_size=1, max_size=6),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)


@functools.cache
def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Any JSON value (no NaN or infinities: JSON has none)."""
    return st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(json_keys, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@functools.cache
def json_objects(max_leaves: int = 10) -> st.SearchStrategy[dict[str, Any]]:
    """Any JSON object (a dict with string keys)."""
    return st.dictionaries(json_keys, json_values(max_leaves), max_size=5)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: maps by keys and values, lists element-wise, and a boolean equals
    only a boolean (Python's `True == 1` does not hold in JSON). 1 and 1.0 are the same number,
    as they are for an API server."""
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            return False
        return all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        if not (isinstance(a, list | tuple) and isinstance(b, list | tuple)) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _is_lookalike_leaf(value: Any, path: tuple[Any, ...]) -> bool:
    leaf = _at(value, path)
    return type(leaf) in (bool, int) and leaf in (0, 1)


@st.composite
def variants_of(draw: st.DrawFn, value: Any) -> Any:
    """`value` itself (a copy), or a near miss: one place in it changed by dropping or adding a
    key, swapping a leaf for a lookalike (`true` for `1`), or replacing it with another value.

    Near misses find equality bugs that independent random values almost never hit.
    """
    out = copy.deepcopy(value)
    op = draw(st.sampled_from(["same", "same", "drop", "add", "lookalike", "replace"]))
    if op == "same":
        return out
    paths = _paths(out)
    # Aim each change where it can apply (falling back to a replacement where it cannot).
    if op == "lookalike":
        paths = [p for p in paths if _is_lookalike_leaf(out, p)] or paths
    elif op == "drop":
        paths = [p for p in paths if p] or paths
    elif op == "add":
        paths = [p for p in paths if isinstance(_at(out, p), dict | list)] or paths
    path = draw(st.sampled_from(paths))

    def put(p: tuple[Any, ...], new: Any) -> Any:
        nonlocal out
        if not p:
            out = new
        else:
            _at(out, p[:-1])[p[-1]] = new
        return out

    node = _at(out, path)
    if op == "drop" and path:
        del _at(out, path[:-1])[path[-1]]
    elif op == "add" and isinstance(node, dict):
        node[draw(json_keys)] = draw(json_scalars)
    elif op == "add" and isinstance(node, list):
        node.append(draw(json_scalars))
    elif op == "lookalike" and type(node) in (bool, int) and node in (0, 1):
        # Python-equal but JSON-different: what a lax equality check confuses.
        put(path, int(node) if type(node) is bool else bool(node))
    else:
        put(path, draw(json_values(4)))
    return out


def json_contains(haystack: Any, needle: Any) -> bool:
    """Every map key of `needle` is in `haystack` with a contained value; anything else (lists,
    scalars) must be `json_equal`. What "the live object already has every applied field" means
    for a server-side apply body."""
    if isinstance(needle, Mapping):
        return isinstance(haystack, Mapping) and all(
            k in haystack and json_contains(haystack[k], v) for k, v in needle.items()
        )
    return json_equal(haystack, needle)


# --- pieces of metadata -----------------------------------------------------------------------

names = st.one_of(
    st.sampled_from(["w1", "w2", "my-widget"]),
    st.text("abz09-", min_size=1, max_size=8),
)
namespaces = st.sampled_from(["team-a", "team-b", "default", "consumer-7-x"])
uids = st.one_of(
    st.sampled_from(["uid-1", "uid-2", "uid-3"]),
    st.uuids().map(str),
)
resource_versions = st.integers(1, 10**6).map(str)
timestamps = st.sampled_from(["2024-01-01T00:00:00Z", "2025-06-30T12:34:56Z"])

_OUR_ANNOTATION_KEYS = [
    keys.ANNOTATION_CONSUMER_CLUSTER_UID,
    keys.ANNOTATION_CONSUMER_OBJECT_UID,
    keys.ANNOTATION_CONFLICT,
    keys.ANNOTATION_DELETION_POLICY,
]
label_keys = st.one_of(
    st.sampled_from(["app", "team", keys.LABEL_MANAGED, *_OUR_ANNOTATION_KEYS]),
    st.text("abc./-", min_size=1, max_size=8),
)
string_maps = st.dictionaries(label_keys, st.text(max_size=8), max_size=4)
"""Labels or annotations as a server returns them."""
junk_maps = st.dictionaries(label_keys, st.one_of(st.text(max_size=8), json_values(4)), max_size=4)
"""Labels or annotations with values of the wrong type, as only a broken client would send."""

deletion_policies = st.sampled_from([None, keys.DELETION_POLICY_ORPHAN, "Delete", "orphan", ""])
conflict_annotations = st.sampled_from([None, "ForeignObjectExists", "OwnedByAnother", "x"])
other_finalizers = st.lists(
    st.sampled_from(["example.org/keep", "kubernetes", keys.FINALIZER_CLEANUP]), max_size=2
)


def _maybe(value: Any) -> st.SearchStrategy[Any]:
    """`value` if pinned (not None), else a boolean draw."""
    return st.just(value) if value is not None else st.booleans()


# --- consumer objects -------------------------------------------------------------------------


@st.composite
def consumer_objects(
    draw: st.DrawFn,
    *,
    namespaced: bool = True,
    deleting: bool | None = None,
    holds_finalizer: bool | None = None,
    deletion_policy: str | bool | None = False,
    conflict: str | bool | None = False,
    with_uid: bool | None = True,
    spec: Any = ...,
    status: Any = ...,
) -> dict[str, Any]:
    """A consumer instance of `WIDGETS` (namespaced) or `GADGETS` (cluster-scoped).

    Keywords pin a property; left alone (`None`, or `False` for the two annotations, `...` for
    spec and status) it is drawn. `deletion_policy`/`conflict` pinned to None mean "absent".
    A spec or status pinned to `...` is drawn, possibly absent.
    """
    gvr = WIDGETS if namespaced else GADGETS
    meta: dict[str, Any] = {
        "name": draw(names),
        "resourceVersion": draw(resource_versions),
        "generation": draw(st.integers(1, 5)),
        "creationTimestamp": "2024-01-01T00:00:00Z",
    }
    if namespaced:
        meta["namespace"] = draw(namespaces)
    if draw(_maybe(with_uid)):
        meta["uid"] = draw(uids)
    labels = draw(string_maps)
    if labels:
        meta["labels"] = labels
    annotations = dict(draw(string_maps))
    policy = draw(deletion_policies) if deletion_policy is False else deletion_policy
    annotations.pop(keys.ANNOTATION_DELETION_POLICY, None)
    if isinstance(policy, str):
        annotations[keys.ANNOTATION_DELETION_POLICY] = policy
    reason = draw(conflict_annotations) if conflict is False else conflict
    annotations.pop(keys.ANNOTATION_CONFLICT, None)
    if isinstance(reason, str):
        annotations[keys.ANNOTATION_CONFLICT] = reason
    if annotations:
        meta["annotations"] = annotations
    fins = [f for f in draw(other_finalizers) if f != keys.FINALIZER_SYNCER]
    if draw(_maybe(holds_finalizer)):
        fins.insert(draw(st.integers(0, len(fins))), keys.FINALIZER_SYNCER)
    if fins:
        meta["finalizers"] = fins
    if draw(_maybe(deleting)):
        meta["deletionTimestamp"] = draw(timestamps)
        meta["deletionGracePeriodSeconds"] = 0
    obj: dict[str, Any] = {
        "apiVersion": gvr.api_version,
        "kind": "Widget" if namespaced else "Gadget",
        "metadata": meta,
    }
    spec_value = draw(st.one_of(st.just(...), json_objects(8))) if spec is ... else spec
    if spec_value is not ...:
        obj["spec"] = spec_value
    status_value = draw(st.one_of(st.just(...), json_objects(6))) if status is ... else status
    if status_value is not ...:
        obj["status"] = status_value
    return obj


# --- provider copies --------------------------------------------------------------------------


class Kind(enum.Enum):
    """How a provider copy relates to the consumer object (its ownership markers), or that there is none."""

    OURS = "ours"
    FOREIGN_UNMANAGED = "foreign-unmanaged"
    OWNED_BY_ANOTHER = "owned-by-another"
    ABSENT = "absent"


def ownership_of(provider: Mapping[str, Any], local_cluster_uid: str, consumer_uid: str) -> Kind:
    """The three-way classification, written from its definition rather than from the kernel.

    Only string annotation values count (an API server stores no others).
    """
    meta = provider.get("metadata")
    ann = meta.get("annotations") if isinstance(meta, Mapping) else None
    ann = ann if isinstance(ann, Mapping) else {}

    def marker(key: str) -> str:
        v = ann.get(key)
        return v if isinstance(v, str) else ""

    cluster = marker(keys.ANNOTATION_CONSUMER_CLUSTER_UID)
    obj_uid = marker(keys.ANNOTATION_CONSUMER_OBJECT_UID)
    if cluster == "" and obj_uid == "":
        return Kind.FOREIGN_UNMANAGED
    if local_cluster_uid and cluster == local_cluster_uid and obj_uid == consumer_uid:
        return Kind.OURS
    return Kind.OWNED_BY_ANOTHER


def _fields_v1_node(value: Any, associative: bool) -> dict[str, Any]:
    if associative and isinstance(value, list) and value:
        # As for `x-kubernetes-list-type: set` (`v:<value>`) or `map` (`k:<keys>`) lists.
        node: dict[str, Any] = {}
        for i, x in enumerate(value):
            if isinstance(x, Mapping):
                node["k:" + json.dumps({"i": i})] = _fields_v1_node(x, associative) or {".": {}}
            else:
                node["v:" + json.dumps(x)] = {}
        return node
    if not isinstance(value, Mapping) or not value:
        return {}
    node = {".": {}}
    for k, v in value.items():
        node[f"f:{k}"] = _fields_v1_node(v, associative)
    return node


_SYSTEM_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation")


def fields_v1(body: Mapping[str, Any], *, associative_lists: bool = False) -> dict[str, Any]:
    """The `fieldsV1` set an API server records for an apply of `body`: every map path, without
    apiVersion/kind and the identifying metadata. Lists are atomic, or with `associative_lists`
    recorded element by element, as for `x-kubernetes-list-type: map`/`set` in the schema."""
    out: dict[str, Any] = {}
    for k, v in body.items():
        if k in ("apiVersion", "kind"):
            continue
        if k == "metadata" and isinstance(v, Mapping):
            meta = {mk: mv for mk, mv in v.items() if mk not in _SYSTEM_METADATA}
            out["f:metadata"] = {f"f:{mk}": _fields_v1_node(mv, False) for mk, mv in meta.items()}
            continue
        out[f"f:{k}"] = _fields_v1_node(v, associative_lists)
    return out


def managed_fields_entry(
    body: Mapping[str, Any],
    manager: str = keys.FIELD_MANAGER,
    operation: str = "Apply",
    *,
    associative_lists: bool = False,
) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": body.get("apiVersion", ""),
        "time": "2024-01-01T00:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(body, associative_lists=associative_lists),
    }


def _merge(into: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if isinstance(v, Mapping) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        elif isinstance(v, Mapping):
            into[k] = {}
            _merge(into[k], v)
        else:
            into[k] = v


def server_copy(
    body: Mapping[str, Any],
    *,
    uid: str,
    resource_version: str = "7",
    status: Any = ...,
    extra_labels: Mapping[str, str] | None = None,
    extra_annotations: Mapping[str, str] | None = None,
    finalizers: list[str] | None = None,
    deletion_timestamp: str | None = None,
    status_manager: bool = False,
    associative_lists: bool = False,
    operation: str = "Apply",
) -> dict[str, Any]:
    """What an API server holds after creating an object by server-side applying `body` as
    `kube-bind-konnector`: the body plus server-set metadata and a managedFields entry for the
    applied fields; optionally labels/annotations/finalizers set by other managers, a status (set
    through /status by the provider's controller) and a deletionTimestamp. `associative_lists`
    records list elements one by one, as the schema's list types make a server do; `operation`
    `Update` is what a server records for a create (POST) instead of an apply."""
    body = copy.deepcopy(dict(body))
    obj: dict[str, Any] = {}
    _merge(obj, {k: v for k, v in body.items() if k != "metadata"})
    meta: dict[str, Any] = {}
    _merge(meta, body.get("metadata", {}))
    meta["uid"] = uid
    meta["resourceVersion"] = resource_version
    meta["generation"] = 1
    meta["creationTimestamp"] = "2024-01-01T00:00:00Z"
    managed = [
        managed_fields_entry(
            body, keys.FIELD_MANAGER, operation, associative_lists=associative_lists
        )
    ]
    if extra_labels:
        meta.setdefault("labels", {}).update(extra_labels)
    if extra_annotations:
        meta.setdefault("annotations", {}).update(extra_annotations)
    if extra_labels or extra_annotations:
        other = {"metadata": {"labels": dict(extra_labels or {})}}
        other["metadata"]["annotations"] = dict(extra_annotations or {})
        managed.append(managed_fields_entry(other, OTHER_MANAGER, "Update"))
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deletion_timestamp:
        meta["deletionTimestamp"] = deletion_timestamp
    if status is not ...:
        obj["status"] = status
        if status_manager:
            entry = managed_fields_entry({"status": status}, OTHER_MANAGER, "Update")
            entry["subresource"] = "status"
            managed.append(entry)
    meta["managedFields"] = managed
    obj["metadata"] = meta
    return copy.deepcopy(obj)


def _consumer_uid(consumer: Mapping[str, Any]) -> str:
    meta = consumer.get("metadata")
    v = meta.get("uid") if isinstance(meta, Mapping) else None
    return v if isinstance(v, str) else ""


def _consumer_key(consumer: Mapping[str, Any]) -> ObjectKey:
    meta = consumer.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    ns, name = meta.get("namespace"), meta.get("name")
    return ObjectKey(ns if isinstance(ns, str) else "", name if isinstance(name, str) else "")


@st.composite
def marker_annotations(
    draw: st.DrawFn, kind: Kind, local_cluster_uid: str, consumer_uid: str
) -> dict[str, str]:
    """The two ownership markers for a copy of `kind` (absent or empty for foreign-unmanaged)."""
    if kind is Kind.OURS:
        return {
            keys.ANNOTATION_CONSUMER_CLUSTER_UID: local_cluster_uid,
            keys.ANNOTATION_CONSUMER_OBJECT_UID: consumer_uid,
        }
    if kind is Kind.FOREIGN_UNMANAGED:
        return draw(
            st.sampled_from(
                [
                    {},
                    {keys.ANNOTATION_CONSUMER_CLUSTER_UID: ""},
                    {
                        keys.ANNOTATION_CONSUMER_CLUSTER_UID: "",
                        keys.ANNOTATION_CONSUMER_OBJECT_UID: "",
                    },
                ]
            )
        )
    # Owned by another: another cluster, a stale object UID of ours, or half a marker.
    cluster, obj_uid = draw(
        st.sampled_from(
            [
                (OTHER_CLUSTER_UID, consumer_uid),
                (OTHER_CLUSTER_UID, "uid-other"),
                (local_cluster_uid, consumer_uid + "-old"),
                (local_cluster_uid, ""),
                ("", consumer_uid),
                (OTHER_CLUSTER_UID, ""),
            ]
        )
    )
    out = {}
    if cluster or draw(st.booleans()):
        out[keys.ANNOTATION_CONSUMER_CLUSTER_UID] = cluster
    if obj_uid or draw(st.booleans()):
        out[keys.ANNOTATION_CONSUMER_OBJECT_UID] = obj_uid
    return out


@st.composite
def provider_copies(
    draw: st.DrawFn,
    consumer: Mapping[str, Any],
    *,
    kind: Kind | None = None,
    local_cluster_uid: str = LOCAL_CLUSTER_UID,
    gvr: GVR = WIDGETS,
    mapper: Mapper = IDENTITY,
    deleting: bool | None = None,
    in_sync: bool | None = None,
) -> dict[str, Any] | None:
    """The provider object at the consumer object's mapped key, or None for `Kind.ABSENT`.

    `in_sync` (drawn when None) makes a copy exactly as the server holds it after our apply of
    the consumer's current spec (plus foreign metadata and a status); otherwise spec, labels,
    annotations and managedFields drift at random.
    """
    kind = draw(st.sampled_from(list(Kind))) if kind is None else kind
    if kind is Kind.ABSENT:
        return None
    cuid = _consumer_uid(consumer)
    target = mapper.to_provider(gvr, _consumer_key(consumer))
    markers = draw(marker_annotations(kind, local_cluster_uid, cuid))
    is_deleting = draw(_maybe(deleting))
    status = draw(st.one_of(st.just(...), json_objects(6)))
    puid = draw(uids.map(lambda u: "p-" + u))
    if draw(_maybe(in_sync)):
        meta: dict[str, Any] = {"name": target.name, "annotations": markers}
        if kind is Kind.OURS:
            meta["labels"] = {keys.LABEL_MANAGED: "true"}
        if target.namespace:
            meta["namespace"] = target.namespace
        body: dict[str, Any] = {
            "apiVersion": consumer.get("apiVersion", gvr.api_version),
            "kind": consumer.get("kind", "Widget"),
            "metadata": meta,
        }
        if "spec" in consumer:
            body["spec"] = consumer["spec"]
        return server_copy(
            body,
            uid=puid,
            status=status,
            extra_labels=draw(st.dictionaries(st.sampled_from(["app", "tier"]), st.text())),
            extra_annotations=draw(st.dictionaries(st.sampled_from(["note"]), st.text())),
            finalizers=draw(st.lists(st.just("provider.example.org/cleanup"), max_size=1)),
            deletion_timestamp="2024-01-02T00:00:00Z" if is_deleting else None,
            status_manager=draw(st.booleans()),
        )
    annotations = {**draw(string_maps), **markers}
    for k in (keys.ANNOTATION_CONSUMER_CLUSTER_UID, keys.ANNOTATION_CONSUMER_OBJECT_UID):
        if k not in markers:
            annotations.pop(k, None)
    meta = {
        "name": target.name,
        "uid": puid,
        "resourceVersion": draw(resource_versions),
        "labels": {
            **draw(string_maps),
            **draw(st.sampled_from([{}, {keys.LABEL_MANAGED: "true"}])),
        },
        "annotations": annotations,
    }
    if target.namespace:
        meta["namespace"] = target.namespace
    if is_deleting:
        meta["deletionTimestamp"] = draw(timestamps)
        meta["finalizers"] = ["provider.example.org/cleanup"]
    managed = draw(st.sampled_from(["none", "ours-for-spec", "ours-random", "update", "junk"]))
    spec = draw(
        st.one_of(
            st.just(consumer.get("spec", ...)),
            variants_of(consumer["spec"]) if "spec" in consumer else st.just(...),
            st.just(...),
            json_objects(6),
        )
    )
    obj: dict[str, Any] = {
        "apiVersion": consumer.get("apiVersion", gvr.api_version),
        "kind": consumer.get("kind", "Widget"),
        "metadata": meta,
    }
    if spec is not ...:
        obj["spec"] = spec
    if status is not ...:
        obj["status"] = status
    if managed == "ours-for-spec":
        meta["managedFields"] = [managed_fields_entry(obj)]
    elif managed == "ours-random":
        meta["managedFields"] = [
            {"manager": keys.FIELD_MANAGER, "operation": "Apply", "fieldsV1": draw(json_objects(6))}
        ]
    elif managed == "update":
        meta["managedFields"] = [managed_fields_entry(obj, operation="Update")]
    elif managed == "junk":
        meta["managedFields"] = draw(json_values(6))
    return obj


# --- views ------------------------------------------------------------------------------------

coverages = st.builds(
    Coverage,
    bound=st.sampled_from([True, True, False]),  # most interesting plans need coverage
    conflict_policy=st.sampled_from([ConflictPolicy.FAIL, ConflictPolicy.ADOPT, "adopt", ""]),
    binding=st.sampled_from(["", "ClusterBinding/widgets", "Binding/team-a/widgets"]),
)
bound_coverages = coverages.filter(lambda c: c.bound)


def with_reads(
    view: InstanceView, *, fresh: bool, namespace_exists: bool | None = None
) -> InstanceView:
    """`view` with the reads a worker answered: the provider copy read fresh (found as cached)
    when `fresh`, and its namespace (found when `namespace_exists`) unless that is None."""
    read = fresh_read(view)
    observed: dict[Get, Any] = {}
    if read is not None:
        if fresh:
            observed[read] = view.provider
        if namespace_exists is not None and read.key.namespace:
            ns = {"metadata": {"name": read.key.namespace}} if namespace_exists else None
            observed[namespace_read(read.key.namespace)] = ns
    return attrs.evolve(view, observed=observed)


def namespace_exists(view: InstanceView) -> bool | None:
    """What the read of the provider namespace found (None: not read)."""
    read = fresh_read(view)
    if read is None or namespace_read(read.key.namespace) not in view.observed:
        return None
    return view.observed[namespace_read(read.key.namespace)] is not None


@st.composite
def provider_views(
    draw: st.DrawFn,
    consumer: Mapping[str, Any],
    *,
    kind: Kind | None = None,
    fresh: bool | None = None,
    local_cluster_uid: str = LOCAL_CLUSTER_UID,
    gvr: GVR = WIDGETS,
    mapper: Mapper = IDENTITY,
    deleting: bool | None = None,
    in_sync: bool | None = None,
) -> tuple[dict[str, Any] | None, bool, bool | None]:
    """The provider side for `consumer`: the copy (or none), whether it was read fresh or only
    cached, and whether the provider namespace exists (None: not looked up yet)."""
    obj = draw(
        provider_copies(
            consumer,
            kind=kind,
            local_cluster_uid=local_cluster_uid,
            gvr=gvr,
            mapper=mapper,
            deleting=deleting,
            in_sync=in_sync,
        )
    )
    return obj, draw(_maybe(fresh)), draw(st.sampled_from([None, True, False]))


@st.composite
def instance_views(
    draw: st.DrawFn,
    *,
    namespaced: bool | None = None,
    coverage: Coverage | None = None,
    kind: Kind | None = None,
    fresh: bool | None = None,
    deleting: bool | None = None,
    holds_finalizer: bool | None = None,
    provider_deleting: bool | None = None,
    in_sync: bool | None = None,
    local_cluster_uid: str | None = LOCAL_CLUSTER_UID,
    consumer: dict[str, Any] | None = None,
    tenant: Tenant | None = None,
) -> InstanceView:
    """A well-formed view of one consumer object; every unpinned aspect is drawn.

    `local_cluster_uid=None` draws it (including empty: identity not known yet). With a
    `tenant`, the object is namespaced, mapped by the tenant, and its claim is drawn
    (`claims`).
    """
    is_namespaced = True if tenant is not None else draw(_maybe(namespaced))
    gvr = WIDGETS if is_namespaced else GADGETS
    mapper = tenant.mapper if tenant is not None else draw(st.sampled_from(MAPPERS))
    local = (
        draw(st.sampled_from([LOCAL_CLUSTER_UID, LOCAL_CLUSTER_UID, OTHER_CLUSTER_UID, ""]))
        if local_cluster_uid is None
        else local_cluster_uid
    )
    c = (
        consumer
        if consumer is not None
        else draw(
            consumer_objects(
                namespaced=is_namespaced, deleting=deleting, holds_finalizer=holds_finalizer
            )
        )
    )
    p, is_fresh, ns_exists = draw(
        provider_views(
            c,
            kind=kind,
            fresh=fresh,
            local_cluster_uid=local,
            gvr=gvr,
            mapper=mapper,
            deleting=provider_deleting,
            in_sync=in_sync,
        )
    )
    if consumer is None and p is not None and "status" in p and draw(st.booleans()):
        # The consumer status as an earlier mirror left it: equal, or a near miss.
        c = {**c, "status": draw(variants_of(p["status"]))}
    cov = draw(coverages) if coverage is None else coverage
    view = InstanceView(
        gvr=gvr,
        namespaced=is_namespaced,
        consumer=c,
        coverage=cov,
        provider=p,
        local_cluster_uid=local,
        mapper=mapper,
        tenant=tenant,
    )
    view = with_reads(view, fresh=is_fresh, namespace_exists=ns_exists)
    if tenant is not None and draw(st.booleans()):
        ref = claim_ref(tenant, string_at(c, "namespace"))
        claim = draw(claims(tenant, ref.key.name))
        view = attrs.evolve(
            view, observed={**view.observed, Get(PROVIDER, ref.gvr, ref.key): claim}
        )
    return view


@st.composite
def claims(draw: st.DrawFn, tenant: Tenant, consumer_namespace: str) -> dict[str, Any] | None:
    """A BoundNamespace as the provider may answer it: absent, unanswered, granted (the right
    namespace, or a lying one), refused, deleting, or malformed."""
    shape = draw(st.sampled_from(["absent", "pending", "granted", "lying", "refused", "junk"]))
    if shape == "absent":
        return None
    meta = {"name": consumer_namespace, "namespace": tenant.namespace}
    if draw(st.booleans()) and shape != "junk":
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    claim: dict[str, Any] = {"metadata": meta}
    ready = {"type": "Ready", "reason": "R", "message": "m",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}  # fmt: skip
    if shape in ("granted", "lying"):
        granted = tenant.provider_namespace(consumer_namespace) if shape == "granted" else "default"
        claim["status"] = {"namespace": granted, "conditions": [{**ready, "status": "True"}]}
    elif shape == "refused":
        claim["status"] = {"conditions": [{**ready, "status": "False"}]}
    elif shape == "junk":
        claim["status"] = draw(json_values(4))
    return claim


def string_at(obj: Mapping[str, Any], field: str) -> str:
    meta = obj.get("metadata")
    value = meta.get(field) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else ""


# --- malformed input --------------------------------------------------------------------------

_METADATA_FIELDS = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "annotations",
    "finalizers",
    "deletionTimestamp",
    "managedFields",
]


@st.composite
def malformed_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object that may be anything from plausible to nonsense: metadata of the wrong
    type, metadata fields of the wrong type, our keys with junk values, spec/status of any type."""
    obj = draw(json_objects(8))
    shape = draw(st.sampled_from(["raw", "junk-metadata", "junk-fields", "plausible"]))
    if shape == "junk-metadata":
        obj["metadata"] = draw(json_values(4))
    elif shape in ("junk-fields", "plausible"):
        meta: dict[str, Any] = {}
        for field in draw(st.lists(st.sampled_from(_METADATA_FIELDS), unique=True)):
            meta[field] = draw(json_values(4))
        if shape == "plausible":
            meta["name"] = draw(names)
            meta["uid"] = draw(uids)
            meta["annotations"] = draw(junk_maps)
            meta["labels"] = draw(junk_maps)
            meta["finalizers"] = draw(
                st.lists(st.one_of(st.just(keys.FINALIZER_SYNCER), json_values(2)), max_size=3)
            )
            if draw(st.booleans()):
                meta["deletionTimestamp"] = draw(st.one_of(timestamps, json_values(2)))
        obj["metadata"] = meta
    if draw(st.booleans()):
        obj["spec"] = draw(json_values(6))
    if draw(st.booleans()):
        obj["status"] = draw(json_values(6))
    return obj


@st.composite
def malformed_views(draw: st.DrawFn) -> InstanceView:
    """A view with malformed consumer and provider objects and arbitrary settings."""
    namespaced = draw(st.booleans())
    view = InstanceView(
        gvr=draw(st.sampled_from([WIDGETS, GADGETS])),
        namespaced=namespaced,
        consumer=draw(st.one_of(st.none(), malformed_objects())),
        coverage=draw(coverages),
        provider=draw(st.one_of(st.none(), malformed_objects())),
        local_cluster_uid=draw(st.sampled_from([LOCAL_CLUSTER_UID, "", "uid-1"])),
        mapper=draw(st.sampled_from(MAPPERS)),
    )
    fresh = draw(st.booleans())
    return with_reads(
        view, fresh=fresh, namespace_exists=draw(st.sampled_from([None, True, False]))
    )
