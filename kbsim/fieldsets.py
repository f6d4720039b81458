"""Field sets and server-side apply, computed the way kube-apiserver computes them.

kube-apiserver tracks field ownership with sigs.k8s.io/structured-merge-diff (SMD). This module
re-implements the parts of SMD a controller can observe, so that kbsim records the same
`metadata.managedFields` as a real server. It lives in the simulator, not the kernel: the
konnector needs only to predict whether its own apply would change anything
(`kbcore.sync.instance.apply_is_noop`), and tests/unit/kbsim/test_apply_noop.py checks that the
prediction agrees with this module. Read this before touching it:

Theory of operation
-------------------

1. **Paths.** A field path is a tuple of path elements, each spelled as in the `fieldsV1` wire
   format: `f:<field>` (map key), `k:<json>` (an item of a list keyed by fields, JSON object of
   the key fields, sorted), `v:<json>` (an item of a set list), `i:<n>` (index; SMD only uses it
   for legacy sets). A `FieldSet` is a set of such paths; encoding it to `fieldsV1` nests the
   elements and marks a path that is both a member and a parent with `".": {}`.

2. **Types decide everything.** Whether `spec` itself is a member of an object's field set, whether
   a list is replaced wholesale or merged item by item, depends on the schema, not on the value:

   - `MapType` with `fields`: a *struct*. Named fields are not members when they have children
     (`{"f:spec": {"f:size": {}}}`), but empty or null ones are. Keys not in `fields` are
     map entries and always members (`{"f:labels": {"f:app": {}}}` vs a nested map entry
     `{"f:data": {".": {}, "f:x": {}}}`).
   - `ListType("atomic")` (the default for CRD lists): the list is one leaf.
     `ListType("set")`: items are `v:` members. `ListType("map", keys)`: items are `k:` members
     and merge field by field.
   - `Untyped`: what SMD calls `__untyped_deduced_` (maps granular, lists atomic), used for
     `x-kubernetes-preserve-unknown-fields`; `STRUCTISH` is the same but treats unknown keys as
     named fields (an approximation of Go structs we do not spell out); `ATOMIC` makes
     everything one leaf.

3. **Four walks**, each a port of the SMD walker of the same name: `field_set` (ToFieldSet),
   `compare` (Compare: added/modified/removed), `merge` (Merge with "keep RHS" for leaves) and
   `remove_items` (RemoveItems). Quirks are kept on purpose (an emptied map becomes `null`; an
   empty map compared with a missing one is a leaf change).

4. **Managers.** `update_managed_fields` is what every non-apply write (create, PUT, merge/JSON
   patch) does: the fields it added or modified become the writer's, other managers lose them,
   and everybody loses removed fields. `apply` is server-side apply: merge, take ownership of the
   applied set, prune what this applier owned alone and no longer applies, report conflicts with
   other managers unless `force`. The paths the apiserver never records (`strip_managed_metadata`)
   are removed from every result, and `ignore` (the "reset fields" of a status subresource) are
   filtered out, exactly as the apiserver does.

Deliberately out of scope: multi-version conversion of managed fields (every manager is
assumed to share one schema), union fields, defaults of list-map keys, and the cap of ten
`Update` entries (`ancient-changes`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from kbcore.limits import MAX_FIELD_PATH
from kbcore.objects import canonical_json, deepcopy, json_equal

__all__ = [
    "APPLY",
    "ATOMIC",
    "BUILTIN_TYPES",
    "DEDUCED",
    "EMPTY",
    "OBJECT_META",
    "SCALAR",
    "STRUCTISH",
    "UPDATE",
    "ApplyResult",
    "Comparison",
    "Conflict",
    "FieldSet",
    "FieldSetError",
    "ListType",
    "ManagedFieldsEntry",
    "MapType",
    "Path",
    "Scalar",
    "Untyped",
    "apply",
    "builtin_type",
    "compare",
    "conflict_causes",
    "conflict_message",
    "crd_object_type",
    "decode_managed_fields",
    "encode_managed_fields",
    "field_set",
    "json_equal",
    "merge",
    "object_type",
    "path_string",
    "remove_items",
    "strip_managed_metadata",
    "type_from_openapi",
    "update_managed_fields",
]


class FieldSetError(ValueError):
    """A value that cannot be walked with its type (e.g. a list-map item without its key)."""


Path = tuple[str, ...]
"""A field path; elements are spelled as in `fieldsV1` (`f:spec`, `k:{"name":"a"}`, ...)."""


# --- types -------------------------------------------------------------------------------------


@attrs.frozen(eq=False)
class Scalar:
    """A leaf: string, number, boolean or null."""


@attrs.frozen(eq=False)
class MapType:
    """A JSON object. `fields` are the named (struct) fields; other keys have type `elem`.

    `named_elems` treats unknown keys as named fields too (a struct whose fields we do not
    spell out). `atomic` makes the whole map one leaf (`x-kubernetes-map-type: atomic`).
    """

    fields: Mapping[str, Type] = attrs.field(factory=dict)
    elem: Type | None = None
    atomic: bool = False
    named_elems: bool = False


@attrs.frozen(eq=False)
class ListType:
    """A JSON array: `list_type` is `atomic`, `set` (scalar items) or `map` (keyed by `keys`)."""

    elem: Type
    list_type: str = "atomic"
    keys: tuple[str, ...] = ()


@attrs.frozen(eq=False)
class Untyped:
    """A type deduced from the value: maps are granular (or atomic), lists atomic."""

    named: bool = False
    atomic: bool = False


Type: TypeAlias = Scalar | MapType | ListType | Untyped

SCALAR = Scalar()
DEDUCED = Untyped()
STRUCTISH = Untyped(named=True)
ATOMIC = Untyped(atomic=True)

_DEDUCED_MAP = MapType(elem=DEDUCED)
_NAMED_MAP = MapType(elem=STRUCTISH, named_elems=True)
_ATOMIC_MAP = MapType(elem=ATOMIC, atomic=True)
_ATOMIC_LIST = ListType(ATOMIC, "atomic")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()
"""An absent value (as opposed to JSON null, which is `None`)."""


def _resolve(t: Type, v: Any) -> Scalar | MapType | ListType:
    """The concrete type of `v` under `t` (SMD's deduceAtom; maps win for null/absent)."""
    if isinstance(t, Untyped):
        if isinstance(v, list):
            return _ATOMIC_LIST
        if isinstance(v, dict) or v is None or v is _MISSING:
            if t.atomic:
                return _ATOMIC_MAP
            return _NAMED_MAP if t.named else _DEDUCED_MAP
        return SCALAR
    return t


def _shape(rt: Scalar | MapType | ListType, v: Any) -> str:
    """`map`, `list` or `scalar`: how a value is walked (mismatched values are leaves)."""
    if isinstance(rt, MapType) and (isinstance(v, dict) or v is None or v is _MISSING):
        return "map"
    if isinstance(rt, ListType) and (isinstance(v, list) or v is None or v is _MISSING):
        return "list"
    return "scalar"


def _field(m: MapType, key: str) -> tuple[Type, bool]:
    """(type, is-named-field) of key `key` in map type `m`."""
    if key in m.fields:
        return m.fields[key], True
    return (m.elem if m.elem is not None else DEDUCED), m.named_elems


# --- JSON helpers ------------------------------------------------------------------------------


def _json(value: Any) -> str:
    """Compact JSON with sorted keys, escaped like Go's encoding/json (HTML-safe)."""
    text = canonical_json(value, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _value_key(v: Any) -> tuple[Any, ...]:
    """A total order on JSON values matching SMD's value.Compare (numbers < strings < bools <
    lists < maps < null)."""
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, (int, float)):
        return (0, float(v))
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, list):
        return (3, tuple(_value_key(x) for x in v))
    if isinstance(v, dict):
        return (4, tuple((k, _value_key(v[k])) for k in sorted(v)))
    return (5,)


def _go_string(v: Any) -> str:
    """SMD's value.ToString (strings quoted like Go's %q)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ",".join(_go_string(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_go_string(v[k])}" for k in sorted(v)) + "}"
    return str(v)


# --- path elements -----------------------------------------------------------------------------

_PE_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


def _pe_sort_key(pe: str) -> tuple[Any, ...]:
    kind, rest = pe[0], pe[2:]
    if kind == "f":
        return (0, rest)
    if kind == "k":
        fields = json.loads(rest)
        return (1, len(fields), tuple((k, _value_key(fields[k])) for k in sorted(fields)))
    if kind == "v":
        return (2, _value_key(json.loads(rest)))
    return (3, int(rest))


def _path_sort_key(path: Path) -> tuple[Any, ...]:
    return tuple(_pe_sort_key(pe) for pe in path)


def _canonical_pe(text: str) -> str:
    kind, sep, rest = text.partition(":")
    if not sep or kind not in _PE_RANK:
        raise FieldSetError(f"invalid path element {text!r}")
    if kind == "f":
        return text
    if kind == "i":
        try:
            return f"i:{int(rest)}"
        except ValueError as exc:
            raise FieldSetError(f"invalid index path element {text!r}") from exc
    try:
        value = json.loads(rest)
    except ValueError as exc:
        raise FieldSetError(f"invalid path element {text!r}") from exc
    if kind == "k" and not isinstance(value, dict):
        raise FieldSetError(f"invalid key path element {text!r}")
    return f"{kind}:{_json(value)}"


def path_string(path: Path) -> str:
    """The human form SMD prints in conflicts: `.spec.ports[name="http"].port`."""
    parts: list[str] = []
    for pe in path:
        kind, rest = pe[0], pe[2:]
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            fields = json.loads(rest)
            parts.append(
                "[" + ",".join(f"{k}={_go_string(fields[k])}" for k in sorted(fields)) + "]"
            )
        elif kind == "v":
            parts.append(f"[={_go_string(json.loads(rest))}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


def _item_pe(lt: ListType, item: Any) -> str:
    if lt.list_type == "map":
        if not isinstance(item, dict):
            raise FieldSetError("associative list with keys may not have non-map elements")
        key: dict[str, Any] = {}
        for name in lt.keys:
            if name not in item:
                raise FieldSetError(
                    f'associative list with keys has an element that omits key field "{name}" '
                    "(and doesn't have default value)"
                )
            key[name] = item[name]
        return "k:" + _json(key)
    if isinstance(item, dict):
        raise FieldSetError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise FieldSetError("not supported: associative list with lists as elements")
    if item is None:
        raise FieldSetError("associative list without keys has an element that's an explicit null")
    return "v:" + _json(item)


# --- FieldSet ----------------------------------------------------------------------------------


@attrs.frozen
class FieldSet:
    """An immutable set of field paths (`fieldpath.Set`)."""

    paths: frozenset[Path] = frozenset()

    @classmethod
    def of(cls, paths: Iterable[Path]) -> FieldSet:
        return cls(frozenset(tuple(p) for p in paths))

    def __iter__(self) -> Iterator[Path]:
        return iter(sorted(self.paths, key=_path_sort_key))

    def __len__(self) -> int:
        return len(self.paths)

    def __bool__(self) -> bool:
        return bool(self.paths)

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __or__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths | other.paths)

    def __and__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths & other.paths)

    def __sub__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self.paths - other.paths)

    def union(self, other: FieldSet) -> FieldSet:
        return self | other

    def intersection(self, other: FieldSet) -> FieldSet:
        return self & other

    def difference(self, other: FieldSet) -> FieldSet:
        """Exact-path difference (`Set.Difference`)."""
        return self - other

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Drop paths in `other` and everything below them (`Set.RecursiveDifference`)."""
        if not other:
            return self
        return FieldSet(
            frozenset(
                p for p in self.paths if not any(p[:i] in other.paths for i in range(1, len(p) + 1))
            )
        )

    def strings(self) -> list[str]:
        """Human-readable paths, sorted (`.spec.size`)."""
        return [path_string(p) for p in self]

    def to_fields_v1(self) -> dict[str, Any]:
        """The `fieldsV1` wire form, keys ordered as kube-apiserver writes them."""
        tree: dict[str, Any] = {}
        root_member = False
        for path in self.paths:
            if not path:
                root_member = True
                continue
            children = tree
            for i, pe in enumerate(path):
                entry = children.setdefault(pe, [False, {}])
                if i == len(path) - 1:
                    entry[0] = True
                children = entry[1]

        def emit(children: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for pe in sorted(children, key=_pe_sort_key):
                member, sub = children[pe]
                if sub:
                    node: dict[str, Any] = {".": {}} if member else {}
                    node.update(emit(sub))
                    out[pe] = node
                else:
                    out[pe] = {}
            return out

        body = emit(tree)
        return {".": {}, **body} if root_member and body else body

    @classmethod
    def from_fields_v1(cls, data: Mapping[str, Any]) -> FieldSet:
        """Decode `fieldsV1`; raises `FieldSetError` on malformed input."""
        if not isinstance(data, Mapping):
            raise FieldSetError("fieldsV1 must be an object")
        out: set[Path] = set()
        # A stack, not recursion: a client may send fieldsV1 of any depth. Paths stop at
        # MAX_FIELD_PATH elements, as the walks that record them do (kbcore.limits rule 2b).
        stack: list[tuple[Mapping[str, Any], Path]] = [(data, ())]
        while stack:
            node, prefix = stack.pop()
            for key, child in node.items():
                if key == ".":
                    out.add(prefix)
                    continue
                if not isinstance(child, Mapping):
                    raise FieldSetError(f"fieldsV1 entry {key!r} must be an object")
                path = (*prefix, _canonical_pe(key))
                if child and len(path) < MAX_FIELD_PATH:
                    stack.append((child, path))
                else:
                    out.add(path)
        return cls(frozenset(out))


EMPTY = FieldSet()

_STRIPPED: frozenset[Path] = frozenset(
    [("f:apiVersion",), ("f:kind",), ("f:metadata",)]
    + [
        ("f:metadata", f"f:{name}")
        for name in (
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
        )
    ]
)


def strip_managed_metadata(fs: FieldSet) -> FieldSet:
    """Remove the paths kube-apiserver never records as owned (its stripMetaManager set)."""
    return FieldSet(fs.paths - _STRIPPED)


# --- walks -------------------------------------------------------------------------------------


def field_set(value: Any, typ: Type) -> FieldSet:
    """The set of fields `value` specifies (SMD ToFieldSet)."""
    out: set[Path] = set()
    _to_set(value, typ, (), out)
    return FieldSet(frozenset(out))


def _to_set(v: Any, t: Type, path: Path, out: set[Path]) -> None:
    if len(path) >= MAX_FIELD_PATH:
        out.add(path)  # deeper values are one field (kbcore.limits rule 2b)
        return
    rt = _resolve(t, v)
    shape = _shape(rt, v)
    if shape == "scalar":
        out.add(path)
        return
    if shape == "list":
        assert isinstance(rt, ListType)
        if rt.list_type == "atomic":
            out.add(path)
            return
        if not v:
            return
        seen: set[str] = set()
        dups: set[str] = set()
        pes = [_item_pe(rt, item) for item in v]
        for pe in pes:
            if pe in seen and pe not in dups:
                out.add((*path, pe))
                dups.add(pe)
            seen.add(pe)
        for pe, item in zip(pes, v, strict=True):
            if pe in dups:
                continue
            _to_set(item, rt.elem, (*path, pe), out)
            out.add((*path, pe))
        return
    assert isinstance(rt, MapType)
    if rt.atomic:
        out.add(path)
        return
    if not v:
        return
    for key, val in v.items():
        ft, named = _field(rt, key)
        child = (*path, "f:" + key)
        _to_set(val, ft, child, out)
        if val is None or (isinstance(val, dict) and not val) or not named:
            out.add(child)


@attrs.frozen
class Comparison:
    """Fields added, modified and removed going from `lhs` to `rhs` (SMD Comparison)."""

    added: FieldSet = EMPTY
    modified: FieldSet = EMPTY
    removed: FieldSet = EMPTY

    @property
    def same(self) -> bool:
        return not (self.added or self.modified or self.removed)

    def filter(self, ignore: FieldSet) -> Comparison:
        """Drop ignored paths and everything below them (`FilterFields` with reset fields)."""
        if not ignore:
            return self
        return Comparison(
            self.added.recursive_difference(ignore),
            self.modified.recursive_difference(ignore),
            self.removed.recursive_difference(ignore),
        )


def compare(lhs: Any, rhs: Any, typ: Type) -> Comparison:
    """Compare two values of type `typ` (SMD Compare)."""
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    _compare(lhs, rhs, typ, (), added, modified, removed)
    return Comparison(
        FieldSet(frozenset(added)), FieldSet(frozenset(modified)), FieldSet(frozenset(removed))
    )


def _compare(
    l: Any,  # noqa: E741
    r: Any,
    t: Type,
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
) -> None:
    def leaf() -> None:
        if l is _MISSING:
            added.add(path)
        elif r is _MISSING:
            removed.add(path)
        elif not json_equal(l, r):
            modified.add(path)

    if len(path) >= MAX_FIELD_PATH:
        leaf()  # deeper values are one field (kbcore.limits rule 2b)
        return
    present = r if r is not _MISSING else l
    rt = _resolve(t, present)
    shape = _shape(rt, present)
    if l is not _MISSING and r is not _MISSING and _shape(_resolve(t, l), l) != shape:
        leaf()
        return
    if shape == "scalar":
        leaf()
        return
    lv = None if l is _MISSING else l
    rv = None if r is _MISSING else r
    if shape == "list":
        assert isinstance(rt, ListType)
        if rt.list_type == "atomic" or (not lv and not rv):
            leaf()
            return
        _compare_list(rt, lv or [], rv or [], path, added, modified, removed)
    else:
        assert isinstance(rt, MapType)
        if rt.atomic or (not lv and not rv):
            leaf()
            return
        lm: dict[str, Any] = lv or {}
        rm: dict[str, Any] = rv or {}
        for key in [*lm, *(k for k in rm if k not in lm)]:
            ft, _ = _field(rt, key)
            _compare(
                lm.get(key, _MISSING),
                rm.get(key, _MISSING),
                ft,
                (*path, "f:" + key),
                added,
                modified,
                removed,
            )
    if l is _MISSING:
        added.add(path)
    elif r is _MISSING:
        removed.add(path)


def _compare_list(
    lt: ListType,
    lhs: list[Any],
    rhs: list[Any],
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
) -> None:
    order: list[str] = []
    lvals: dict[str, list[Any]] = {}
    rvals: dict[str, list[Any]] = {}
    for item in lhs:
        try:
            pe = _item_pe(lt, item)
        except FieldSetError:
            continue
        if pe not in lvals:
            order.append(pe)
        lvals.setdefault(pe, []).append(item)
    for item in rhs:
        try:
            pe = _item_pe(lt, item)
        except FieldSetError:
            continue
        if pe not in rvals and pe not in lvals:
            order.append(pe)
        rvals.setdefault(pe, []).append(item)
    for pe in order:
        ls, rs = lvals.get(pe, []), rvals.get(pe, [])
        child = (*path, pe)
        if len(ls) <= 1 and len(rs) <= 1:
            _compare(
                ls[0] if ls else _MISSING,
                rs[0] if rs else _MISSING,
                lt.elem,
                child,
                added,
                modified,
                removed,
            )
        elif len(ls) >= 2 and len(rs) >= 2:
            if not json_equal(ls, rs):
                modified.add(child)
        elif len(ls) >= 2:
            if rs:
                _compare(_MISSING, rs[0], lt.elem, child, added, modified, removed)
            removed.add(child)
        else:
            if ls:
                _compare(ls[0], _MISSING, lt.elem, child, added, modified, removed)
            added.add(child)


def merge(lhs: Any, rhs: Any, typ: Type) -> Any:
    """Merge `rhs` (an applied configuration) into `lhs` (SMD Merge, leaves from `rhs`)."""
    out = _merge(lhs, rhs, typ, 0)
    return None if out is _MISSING else out


def _keep_rhs(l: Any, r: Any) -> Any:  # noqa: E741
    return deepcopy(r if r is not _MISSING else l)


def _merge(l: Any, r: Any, t: Type, depth: int) -> Any:  # noqa: E741
    if depth >= MAX_FIELD_PATH:
        return _keep_rhs(l, r)  # deeper values are one field (kbcore.limits rule 2b)
    present = r if r is not _MISSING else l
    rt = _resolve(t, present)
    shape = _shape(rt, present)
    if l is not _MISSING and r is not _MISSING and _shape(_resolve(t, l), l) != shape:
        return deepcopy(r)
    if shape == "scalar":
        return _keep_rhs(l, r)
    lv = None if l is _MISSING else l
    rv = None if r is _MISSING else r
    if shape == "list":
        assert isinstance(rt, ListType)
        if rt.list_type == "atomic" or (not lv and not rv):
            return _keep_rhs(l, r)
        return _merge_list(rt, lv or [], rv or [], depth + 1)
    assert isinstance(rt, MapType)
    if rt.atomic or (not lv and not rv):
        return _keep_rhs(l, r)
    lm: dict[str, Any] = lv or {}
    rm: dict[str, Any] = rv or {}
    out: dict[str, Any] = {}
    for key in [*lm, *(k for k in rm if k not in lm)]:
        ft, _ = _field(rt, key)
        child = _merge(lm.get(key, _MISSING), rm.get(key, _MISSING), ft, depth + 1)
        if child is not _MISSING:
            out[key] = child
    return out if out else _MISSING


def _index_list(
    lt: ListType, items: list[Any], allow_duplicates: bool
) -> tuple[list[str], dict[str, Any]]:
    pes: list[str] = []
    observed: dict[str, Any] = {}
    for item in items:
        pe = _item_pe(lt, item)
        if pe in observed:
            if not allow_duplicates:
                raise FieldSetError(f"duplicate entries for key {path_string((pe,))}")
            observed[pe] = None
        else:
            observed[pe] = item
        pes.append(pe)
    return pes, observed


def _merge_list(lt: ListType, lhs: list[Any], rhs: list[Any], depth: int) -> Any:
    rhs_pes, observed_rhs = _index_list(lt, rhs, allow_duplicates=False)
    lhs_pes, observed_lhs = _index_list(lt, lhs, allow_duplicates=True)
    shared_order = [pe for pe in rhs_pes if pe in observed_lhs]
    next_shared = shared_order.pop(0) if shared_order else None
    merged_rhs: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(lhs_pes) or ri < len(rhs_pes):
        if li < len(lhs_pes) and ri < len(rhs_pes):
            pe = lhs_pes[li]
            if pe == rhs_pes[ri]:
                merged_rhs.add(pe)
                child = _merge(observed_lhs[pe], observed_rhs[pe], lt.elem, depth)
                if child is not _MISSING:
                    out.append(child)
                li += 1
                ri += 1
                next_shared = shared_order.pop(0) if shared_order else None
                continue
            if pe in observed_rhs and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lhs_pes):
            pe = lhs_pes[li]
            if pe not in observed_rhs:
                child = _merge(lhs[li], _MISSING, lt.elem, depth)
                if child is not _MISSING:
                    out.append(child)
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
        if ri < len(rhs_pes):
            pe = rhs_pes[ri]
            merged_rhs.add(pe)
            child = _merge(observed_lhs.get(pe, _MISSING), observed_rhs[pe], lt.elem, depth)
            if child is not _MISSING:
                out.append(child)
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared_order.pop(0) if shared_order else None
    return out if out else _MISSING


def remove_items(value: Any, to_remove: FieldSet, typ: Type) -> Any:
    """`value` without the member paths of `to_remove` (SMD RemoveItems).

    As in SMD, a map or list left empty by the removal becomes `None`.
    """
    if not to_remove:
        return deepcopy(value)
    return _remove(value, set(to_remove.paths), typ)


def _split(paths: set[Path]) -> tuple[set[str], dict[str, set[Path]]]:
    members: set[str] = set()
    below: dict[str, set[Path]] = {}
    for p in paths:
        if not p:
            continue
        if len(p) == 1:
            members.add(p[0])
        else:
            below.setdefault(p[0], set()).add(p[1:])
    return members, below


def _remove(v: Any, paths: set[Path], t: Type) -> Any:
    rt = _resolve(t, v)
    shape = _shape(rt, v)
    if shape == "scalar" or v is None:
        return deepcopy(v) if shape == "scalar" else None
    members, below = _split(paths)
    if shape == "list":
        assert isinstance(rt, ListType)
        if not v or rt.list_type == "atomic":
            return None
        items: list[Any] = []
        for item in v:
            pe = _item_pe(rt, item)
            if pe in members:
                continue
            sub = below.get(pe)
            items.append(_remove(item, sub, rt.elem) if sub else deepcopy(item))
        return items if items else None
    assert isinstance(rt, MapType)
    if not v or rt.atomic:
        return None
    out: dict[str, Any] = {}
    for key, val in v.items():
        pe = "f:" + key
        if pe in members:
            continue
        sub = below.get(pe)
        out[key] = _remove(val, sub, _field(rt, key)[0]) if sub else deepcopy(val)
    return out if out else None


def _ensure_named_fields_are_members(fs: FieldSet, typ: Type) -> FieldSet:
    """Add each named struct field that has children in `fs` as a member (SMD)."""
    out = set(fs.paths)
    for path in fs.paths:
        t: Type = typ
        for i, pe in enumerate(path[:-1]):
            rt = _resolve(t, _MISSING)
            if pe.startswith("f:") and isinstance(rt, MapType):
                t, named = _field(rt, pe[2:])
                if named:
                    out.add(path[: i + 1])
            elif pe.startswith("k:") and isinstance(rt, ListType):
                t = rt.elem
            else:
                t = DEDUCED
    return FieldSet(frozenset(out))


# --- managed fields ----------------------------------------------------------------------------

APPLY = "Apply"
UPDATE = "Update"


@attrs.frozen
class ManagedFieldsEntry:
    """One `metadata.managedFields` entry, decoded."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str = ""
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two entries the same manager (apply entries ignore apiVersion)."""
        version = self.api_version if self.operation == UPDATE else ""
        return (self.manager, self.operation, version, self.subresource)

    def identifier(self) -> str:
        """SMD's manager identifier: the entry as JSON without time and fields."""
        body: dict[str, str] = {"manager": self.manager, "operation": self.operation}
        if self.operation == UPDATE and self.api_version:
            body["apiVersion"] = self.api_version
        if self.subresource:
            body["subresource"] = self.subresource
        return json.dumps(body, separators=(",", ":"))

    def describe(self) -> str:
        """How kube-apiserver names this manager in a conflict message."""
        out = json.dumps(self.manager)
        if self.subresource:
            out += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            out += f" using {self.api_version}"
        return out

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = self.fields.to_fields_v1()
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    @classmethod
    def from_wire(cls, entry: Mapping[str, Any]) -> ManagedFieldsEntry:
        if not isinstance(entry, Mapping):
            raise FieldSetError("a managedFields entry must be an object")
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise FieldSetError(f"unsupported fieldsType {entry.get('fieldsType')!r}")
        operation = entry.get("operation")
        if operation not in (APPLY, UPDATE):
            raise FieldSetError(f"unsupported operation {operation!r}")
        strings = {k: entry.get(k, "") for k in ("manager", "apiVersion", "time", "subresource")}
        if not all(isinstance(v, str) for v in strings.values()):
            raise FieldSetError("managedFields string fields must be strings")
        return cls(
            manager=strings["manager"],
            operation=operation,
            api_version=strings["apiVersion"],
            fields=FieldSet.from_fields_v1(entry.get("fieldsV1") or {}),
            time=strings["time"] or "",
            subresource=strings["subresource"] or "",
        )


def decode_managed_fields(raw: Any) -> tuple[ManagedFieldsEntry, ...]:
    """Decode `metadata.managedFields`; raises `FieldSetError` if any entry is malformed."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FieldSetError("metadata.managedFields must be a list")
    return tuple(ManagedFieldsEntry.from_wire(e) for e in raw)


def _time_seconds(t: str) -> str:
    # RFC 3339 in UTC ("...Z") sorts lexicographically; seconds precision like Time.Unix().
    return t[:19]


def encode_managed_fields(entries: Iterable[ManagedFieldsEntry]) -> list[dict[str, Any]]:
    """Wire form, in kube-apiserver's order: operation, time, manager, apiVersion, subresource."""
    kept = [e for e in entries if e.fields]
    kept.sort(
        key=lambda e: (e.operation, _time_seconds(e.time), e.manager, e.api_version, e.subresource)
    )
    return [e.to_wire() for e in kept]


def _without_managed(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """A shallow view of `obj` without metadata.managedFields (nested values are shared; the
    walks never mutate their inputs)."""
    out = dict(obj) if obj else {}
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def update_managed_fields(
    live: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    managed: Sequence[ManagedFieldsEntry],
    *,
    manager: str,
    api_version: str,
    typ: Type,
    now: str,
    subresource: str = "",
    ignore: FieldSet = EMPTY,
) -> tuple[ManagedFieldsEntry, ...]:
    """Managed fields after a non-apply write (create, update, merge or JSON patch).

    The writer takes every field it added or modified (an `Update` entry timestamped `now`);
    other managers lose those fields, and every manager loses removed fields.
    """
    cmp = compare(_without_managed(live), _without_managed(new), typ).filter(ignore)
    taken = cmp.modified | cmp.added
    result: list[ManagedFieldsEntry] = []
    for entry in managed:
        remaining = entry.fields - taken - cmp.removed
        if remaining:
            result.append(attrs.evolve(entry, fields=remaining))
    current = strip_managed_metadata(taken)
    if current:
        mine = ManagedFieldsEntry(manager, UPDATE, api_version, current, now, subresource)
        for i, entry in enumerate(result):
            if entry.identity == mine.identity:
                result[i] = attrs.evolve(mine, fields=entry.fields | current)
                break
        else:
            result.append(mine)
    return tuple(result)


@attrs.frozen
class Conflict:
    """An applied field owned by another manager with a different value."""

    manager: ManagedFieldsEntry
    path: Path

    @property
    def field(self) -> str:
        return path_string(self.path)


def conflict_message(conflicts: Sequence[Conflict]) -> str:
    """kube-apiserver's 409 message for apply conflicts."""
    if len(conflicts) == 1:
        c = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {c.manager.describe()}: {c.field}"
    by_manager: dict[str, list[Conflict]] = {}
    for c in conflicts:
        by_manager.setdefault(c.manager.identifier(), []).append(c)
    lines: list[str] = []
    for ident in sorted(by_manager):
        group = by_manager[ident]
        lines.append(f"conflicts with {group[0].manager.describe()}:")
        lines.extend(f"- {c.field}" for c in group)
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def conflict_causes(conflicts: Sequence[Conflict]) -> list[dict[str, str]]:
    """`Status.details.causes` for apply conflicts."""
    return [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {c.manager.describe()}",
            "field": c.field,
        }
        for c in conflicts
    ]


@attrs.frozen
class ApplyResult:
    """Outcome of `apply`: the new object (without managedFields) and managers, or conflicts.

    `changed` says whether the object (ignoring managedFields) differs from the live one;
    `managed_changed` whether the managedFields would. A real server writes (and bumps the
    resourceVersion) iff either is true.
    """

    obj: dict[str, Any]
    managed: tuple[ManagedFieldsEntry, ...]
    changed: bool
    managed_changed: bool
    conflicts: tuple[Conflict, ...] = ()

    @property
    def writes(self) -> bool:
        return not self.conflicts and (self.changed or self.managed_changed)


def _prune(
    merged: Any,
    managers: Sequence[ManagedFieldsEntry],
    last: FieldSet,
    typ: Type,
) -> Any:
    # SMD Updater.prune: remove what this applier applied last time, does not apply now, and
    # no manager (including its new applied set) owns.
    if not last:
        return merged

    def ens(fs: FieldSet) -> FieldSet:
        return _ensure_named_fields_are_members(fs, typ)

    pruned = remove_items(merged, ens(last), typ)
    managed = EMPTY
    for entry in managers:
        managed = managed | entry.fields
    merged_set, pruned_set = field_set(merged, typ), field_set(pruned, typ)
    pruned = remove_items(merged, ens(merged_set) - (ens(pruned_set) | ens(managed)), typ)
    pruned_set, merged_set = ens(field_set(pruned, typ)), ens(field_set(merged, typ))
    return remove_items(merged, (merged_set - pruned_set) & ens(last), typ)


def apply(
    live: Mapping[str, Any] | None,
    config: Mapping[str, Any],
    *,
    manager: str,
    managed: Sequence[ManagedFieldsEntry] | None = None,
    api_version: str,
    typ: Type,
    now: str,
    force: bool = False,
    subresource: str = "",
    ignore: FieldSet = EMPTY,
) -> ApplyResult:
    """Server-side apply `config` onto `live` (None when the object does not exist yet).

    `managed` defaults to the entries decoded from `live`'s managedFields. As kube-apiserver
    does, when a live object has no managed fields at all its current fields are first
    attributed to the manager `before-first-apply`.
    """
    live_obj = _without_managed(live)
    if managed is None:
        managed = decode_managed_fields((live or {}).get("metadata", {}).get("managedFields"))
    original = tuple(managed)
    entries = list(managed)
    if not entries and live:
        entries = list(
            update_managed_fields(
                None,
                live_obj,
                (),
                manager="before-first-apply",
                api_version=api_version,
                typ=typ,
                now="",
                ignore=ignore,
            )
        )
    applied = _without_managed(config)
    merged = merge(live_obj, applied, typ) or {}
    me = ManagedFieldsEntry(manager, APPLY, api_version, EMPTY, "", subresource)
    last = next((e for e in entries if e.identity == me.identity), None)
    applied_set = field_set(applied, typ).recursive_difference(ignore)
    mine = attrs.evolve(me, fields=applied_set, time=last.time if last else "")
    others = [e for e in entries if e.identity != me.identity]
    new_obj = _prune(merged, [*others, mine], last.fields if last else EMPTY, typ) or {}

    cmp = compare(live_obj, new_obj, typ).filter(ignore)
    taken = cmp.modified | cmp.added
    conflicts: list[Conflict] = []
    result: list[ManagedFieldsEntry] = []
    for entry in others:
        clash = entry.fields & taken
        conflicts.extend(Conflict(entry, p) for p in clash)
        remaining = entry.fields - clash - cmp.removed
        if remaining:
            result.append(attrs.evolve(entry, fields=remaining))
    if conflicts and not force:
        conflicts.sort(key=lambda c: (c.manager.identifier(), _path_sort_key(c.path)))
        return ApplyResult(deepcopy(live_obj), original, False, False, tuple(conflicts))
    changed = not json_equal(live_obj, new_obj)
    mine = attrs.evolve(
        mine,
        fields=strip_managed_metadata(applied_set),
        time=now if changed else mine.time,
    )
    if mine.fields:
        result.append(mine)
    managed_changed = encode_managed_fields(result) != encode_managed_fields(original)
    return ApplyResult(new_obj, tuple(result), changed, managed_changed)


# --- schemas -----------------------------------------------------------------------------------


def _struct(fields: Mapping[str, Type], **kw: Any) -> MapType:
    return MapType(fields=dict(fields), elem=STRUCTISH, named_elems=True, **kw)


_STRING_MAP = MapType(elem=SCALAR)

OBJECT_META = _struct(
    {
        **{
            name: SCALAR
            for name in (
                "name",
                "generateName",
                "namespace",
                "selfLink",
                "uid",
                "resourceVersion",
                "generation",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            )
        },
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": ListType(SCALAR, "set"),
        "ownerReferences": ListType(STRUCTISH, "map", ("uid",)),
        "managedFields": ListType(ATOMIC, "atomic"),
    }
)
"""`metav1.ObjectMeta` as SMD sees it (finalizers a set, ownerReferences keyed by uid)."""


def object_type(fields: Mapping[str, Type]) -> MapType:
    """A top-level object type: apiVersion, kind, metadata plus `fields`."""
    return _struct({"apiVersion": SCALAR, "kind": SCALAR, **fields, "metadata": OBJECT_META})


def type_from_openapi(schema: Mapping[str, Any]) -> Type:
    """The SMD type of a CRD structural schema node (`openAPIV3Schema` or below)."""
    if not isinstance(schema, Mapping):
        return DEDUCED
    if schema.get("x-kubernetes-int-or-string"):
        return SCALAR
    kind = schema.get("type")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    if kind == "object" or (kind is None and (props or isinstance(additional, Mapping))):
        fields: dict[str, Type] = {}
        if isinstance(props, Mapping):
            fields = {str(k): type_from_openapi(v) for k, v in props.items()}
        if schema.get("x-kubernetes-embedded-resource"):
            fields.setdefault("apiVersion", SCALAR)
            fields.setdefault("kind", SCALAR)
            fields["metadata"] = OBJECT_META
        elem: Type = DEDUCED
        if isinstance(additional, Mapping):
            elem = type_from_openapi(additional)
        elif preserve:
            elem = DEDUCED
        return MapType(
            fields=fields,
            elem=elem,
            atomic=schema.get("x-kubernetes-map-type") == "atomic",
        )
    if kind == "array":
        list_type = schema.get("x-kubernetes-list-type") or "atomic"
        keys = schema.get("x-kubernetes-list-map-keys") or ()
        items = schema.get("items")
        return ListType(
            type_from_openapi(items) if isinstance(items, Mapping) else DEDUCED,
            str(list_type),
            tuple(str(k) for k in keys) if list_type == "map" else (),
        )
    if kind in ("string", "integer", "number", "boolean"):
        return SCALAR
    return DEDUCED


def crd_object_type(openapi_schema: Mapping[str, Any] | None) -> MapType:
    """The type of a custom resource whose version has schema `openapi_schema`."""
    root = type_from_openapi(openapi_schema or {"type": "object"})
    fields: dict[str, Type] = dict(root.fields) if isinstance(root, MapType) else {}
    fields.pop("metadata", None)
    elem = root.elem if isinstance(root, MapType) else DEDUCED
    return MapType(
        fields={"apiVersion": SCALAR, "kind": SCALAR, **fields, "metadata": OBJECT_META},
        elem=elem,
    )


def _conditions() -> ListType:
    return ListType(STRUCTISH, "map", ("type",))


BUILTIN_TYPES: Mapping[tuple[str, str], MapType] = {
    ("", "Namespace"): object_type(
        {
            "spec": _struct({"finalizers": ListType(SCALAR, "atomic")}),
            "status": _struct({"phase": SCALAR, "conditions": _conditions()}),
        }
    ),
    ("", "Secret"): object_type(
        {"data": _STRING_MAP, "stringData": _STRING_MAP, "type": SCALAR, "immutable": SCALAR}
    ),
    ("", "ConfigMap"): object_type(
        {"data": _STRING_MAP, "binaryData": _STRING_MAP, "immutable": SCALAR}
    ),
    ("", "ServiceAccount"): object_type(
        {
            "secrets": ListType(STRUCTISH, "map", ("name",)),
            "imagePullSecrets": ListType(STRUCTISH, "atomic"),
            "automountServiceAccountToken": SCALAR,
        }
    ),
    ("", "Event"): object_type({}),
    ("events.k8s.io", "Event"): object_type({}),
    ("coordination.k8s.io", "Lease"): object_type({"spec": _struct({})}),
    ("rbac.authorization.k8s.io", "ClusterRole"): object_type(
        {
            "rules": ListType(STRUCTISH, "atomic"),
            "aggregationRule": _struct({"clusterRoleSelectors": ListType(STRUCTISH, "atomic")}),
        }
    ),
    ("rbac.authorization.k8s.io", "Role"): object_type({"rules": ListType(STRUCTISH, "atomic")}),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): object_type(
        {"subjects": ListType(STRUCTISH, "atomic"), "roleRef": _struct({})}
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): object_type(
        {"subjects": ListType(STRUCTISH, "atomic"), "roleRef": _struct({})}
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"): object_type(
        {
            "spec": _struct(
                {
                    "names": _struct(
                        {
                            "shortNames": ListType(SCALAR, "atomic"),
                            "categories": ListType(SCALAR, "atomic"),
                        }
                    ),
                    "versions": ListType(STRUCTISH, "atomic"),
                }
            ),
            "status": _struct(
                {
                    "conditions": _conditions(),
                    "acceptedNames": _struct(
                        {
                            "shortNames": ListType(SCALAR, "atomic"),
                            "categories": ListType(SCALAR, "atomic"),
                        }
                    ),
                    "storedVersions": ListType(SCALAR, "atomic"),
                }
            ),
        }
    ),
}
"""SMD types of the built-in kinds kbsim serves, keyed by (group, kind)."""


def builtin_type(group: str, kind: str) -> MapType:
    """The type of a built-in kind; unknown kinds get a struct-like approximation."""
    return BUILTIN_TYPES.get((group, kind)) or object_type({})
