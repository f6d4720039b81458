"""Addressing and reading unstructured Kubernetes objects.

Objects cross the kernel boundary as plain JSON-shaped dicts, exactly as the API server returns
them, so the kernel never depends on a client library's model classes. This module owns the
small vocabulary used to address them (`GVR`, `ObjectKey`, `ObjectRef`) and read-only accessors.
Accessors never mutate their argument and tolerate missing or mistyped fields (returning the empty
value), because objects come from clusters we do not control.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

T = TypeVar("T")
Obj = dict[str, Any]
"""A JSON-shaped Kubernetes object as the API server returns it."""

OBJECT_META_FIELDS = (
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
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
"""The fields of metav1.ObjectMeta, in the order the API server writes them."""


@attrs.frozen(order=True)
class GVR:
    """A group/version/resource triple; `group == ""` is the core group."""

    group: str
    version: str
    resource: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`<resource>.<group>`, the CRD-name form (`widgets.example.org`); `secrets` for core."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def __str__(self) -> str:
        return f"{self.group_resource}/{self.version}"


@attrs.frozen(order=True)
class ObjectKey:
    """namespace/name of an object; `namespace == ""` for cluster-scoped objects."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@attrs.frozen(order=True)
class ObjectRef:
    """One object in one cluster: which cluster (by role or name), which resource, which key."""

    cluster: str
    gvr: GVR
    key: ObjectKey

    def __str__(self) -> str:
        return f"{self.cluster}:{self.gvr.group_resource}:{self.key}"


def split_api_version(api_version: str) -> tuple[str, str]:
    """`example.org/v1` -> (`example.org`, `v1`); `v1` -> (``, `v1`)."""
    if "/" in api_version:
        group, _, version = api_version.partition("/")
        return group, version
    return "", api_version


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def list_at(obj: Mapping[str, Any], field: str) -> list[Any]:
    """`obj[field]` when it is a list, else [] (fields written by others may hold anything)."""
    v = obj.get(field)
    return v if isinstance(v, list) else []


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")  # inline of _mapping: read many times for every object on every pass
    return m if isinstance(m, dict) else _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def name(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("name")
    return v if isinstance(v, str) else ""


def namespace(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("namespace")
    return v if isinstance(v, str) else ""


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    return ObjectKey(namespace(obj), name(obj))


def uid(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("uid")
    return v if isinstance(v, str) else ""


def resource_version(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("resourceVersion")
    return v if isinstance(v, str) else ""


def generation(obj: Mapping[str, Any]) -> int:
    v = metadata(obj).get("generation")
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return {k: v for k, v in _mapping(metadata(obj).get("labels")).items() if isinstance(v, str)}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    raw = _mapping(metadata(obj).get("annotations"))
    return {k: v for k, v in raw.items() if isinstance(v, str)}


def annotation(obj: Mapping[str, Any], key: str) -> str | None:
    """One annotation's value when it is a string (as `annotations_of(obj).get(key)`, without
    building the whole map)."""
    raw = metadata(obj).get("annotations")
    v = raw.get(key) if isinstance(raw, dict) else None
    return v if isinstance(v, str) else None


def finalizers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    v = metadata(obj).get("finalizers")
    return tuple(f for f in v if isinstance(f, str)) if isinstance(v, list) else ()


def deletion_timestamp(obj: Mapping[str, Any]) -> str:
    v = metadata(obj).get("deletionTimestamp")
    return v if isinstance(v, str) else ""


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return deletion_timestamp(obj) != ""


# --- walking JSON values -------------------------------------------------------------------------
#
# Objects come from the other side of the trust boundary and an API server stores them up to
# 10,000 levels deep (`kbcore.limits`), ten times Python's recursion budget. So every walk here
# keeps its own stack instead of recursing: any depth costs time linear in the size, never a
# RecursionError.

_ATOMS = (str, int, float, bool, type(None))


def deepcopy(obj: T) -> T:
    """A copy sharing no dict or list with `obj`, as `copy.deepcopy` makes (which recurses).

    Scalars are shared (they are immutable). A dict or list met twice (a YAML alias) is copied
    once, so the copy keeps the original's sharing and a cycle stays a cycle. Anything that is
    not JSON (a tuple, an attrs value) is handed to `copy.deepcopy`: JSON decoders never make
    one, so no deep data reaches it. A dict or list subclass is copied as a plain one."""
    memo: dict[int, Any] = {}
    pending: list[tuple[Any, Any]] = []  # (original, its copy, still to be filled)

    def copied(value: Any) -> Any:
        if isinstance(value, _ATOMS):
            return value
        if not isinstance(value, dict | list):
            return copy.deepcopy(value)
        known = memo.get(id(value))
        if known is None:
            known = memo[id(value)] = {} if isinstance(value, dict) else []
            pending.append((value, known))
        return known

    root = copied(obj)
    while pending:
        original, new = pending.pop()
        if isinstance(original, dict):
            for k, v in original.items():
                new[k] = copied(v)
        else:
            new.extend(copied(v) for v in original)
    return root  # type: ignore[no-any-return]


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: `1 == 1.0` but `True != 1`, dict order ignored."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            pairs: Any = ((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pairs = zip(x, y, strict=True)
        else:
            if not _scalar_equal(x, y):
                return False
            continue
        for xv, yv in pairs:
            # Strings are most leaves: compared here, the rest go through the stack.
            if type(xv) is str and type(yv) is str:
                if xv != yv:
                    return False
            else:
                stack.append((xv, yv))
    return True


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False  # one container, one not (two of a kind were compared item by item)
    return type(a) is type(b) and bool(a == b)


def contains(haystack: Any, needle: Any) -> bool:
    """Subset match: every map key of `needle` is in `haystack` with a matching value; lists and
    scalars must be equal as JSON values. `contains(x, x)` holds for every JSON value."""
    stack = [(haystack, needle)]
    while stack:
        h, n = stack.pop()
        if isinstance(n, dict):
            if not isinstance(h, dict) or not n.keys() <= h.keys():
                return False
            for k, v in n.items():
                hv = h[k]
                if type(v) is str and type(hv) is str:
                    if v != hv:
                        return False
                else:
                    stack.append((hv, v))
        elif not json_equal(h, n):
            return False
    return True


def canonical_json(value: Any, *, ensure_ascii: bool = True) -> str:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=...)`, at any
    depth: the same text, so hashes over it never change (schema hashes are stored on CRDs).
    Raises TypeError or ValueError exactly where `json.dumps` would."""
    return _dumps(value, ensure_ascii=ensure_ascii, sort_keys=True, separators=(",", ":"))


def json_text(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"))` at any depth: compact, keys in their order, as
    client-go writes a request body."""
    return _dumps(value, ensure_ascii=True, sort_keys=False, separators=(",", ":"))


def _dumps(value: Any, *, ensure_ascii: bool, sort_keys: bool, separators: tuple[str, str]) -> str:
    # The C encoder runs first (it is fast); only a value too deep for it (it recurses) is
    # written by the iterative encoder, which writes the same text.
    try:
        return json.dumps(
            value, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii
        )
    except RecursionError:
        return _iterative_json(value, ensure_ascii, sort_keys, separators)


def _iterative_json(
    value: Any, ensure_ascii: bool, sort_keys: bool, separators: tuple[str, str]
) -> str:
    encoder = json.encoder
    string = encoder.encode_basestring_ascii if ensure_ascii else encoder.encode_basestring
    item_sep, key_sep = separators
    out: list[str] = []
    open_ids: set[int] = set()
    # The pieces still to write, last first: a value, a literal `_Text`, or the `_Close` of a
    # container (which also leaves the circular-reference check).
    todo: list[Any] = [value]
    while todo:
        item = todo.pop()
        if type(item) is _Text:
            out.append(item.text)
            continue
        if type(item) is _Close:
            open_ids.discard(item.ident)
            out.append(item.text)
            continue
        if isinstance(item, str):
            out.append(string(item))
        elif item is None or isinstance(item, bool | int | float):
            out.append(json.dumps(item))  # scalars exactly as json writes them
        elif isinstance(item, dict | list | tuple):
            if id(item) in open_ids:
                raise ValueError("Circular reference detected")
            open_ids.add(id(item))
            pieces: list[Any] = []
            if isinstance(item, dict):
                entries = sorted(item.items(), key=lambda kv: kv[0]) if sort_keys else item.items()
                for i, (k, v) in enumerate(entries):
                    key = k if isinstance(k, str) else _json_key(k)
                    pieces.append(_Text((item_sep if i else "") + string(key) + key_sep))
                    pieces.append(v)
                opening, closing = "{", "}"
            else:
                for i, v in enumerate(item):
                    if i:
                        pieces.append(_Text(item_sep))
                    pieces.append(v)
                opening, closing = "[", "]"
            out.append(opening)
            todo.append(_Close(id(item), closing))
            todo.extend(reversed(pieces))
        else:
            raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")
    return "".join(out)


def parse_json(text: str | bytes) -> Any:
    """`json.loads(text)` at any depth (Python's decoder recurses, about a thousand levels):
    the same value, or the same `json.JSONDecodeError` (a ValueError) for text that is not
    JSON. The C decoder runs first; only a document too deep for it is read iteratively."""
    try:
        return json.loads(text)
    except RecursionError:
        if isinstance(text, bytes | bytearray):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        return _iterative_parse(text)


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_CONSTANTS = {
    "null": None,
    "true": True,
    "false": False,
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
}


def _iterative_parse(s: str) -> Any:
    """A JSON reader with its own stack of open containers (what `json.loads` accepts)."""
    error = json.JSONDecodeError
    # Each open container: [the dict or list, the key a value is awaited for (dicts)].
    stack: list[list[Any]] = []
    i = _WHITESPACE.match(s, 0).end()  # type: ignore[union-attr]
    while True:
        # Read one value at s[i], or open a container.
        c = s[i : i + 1]
        if c == "{" or c == "[":
            i = _WHITESPACE.match(s, i + 1).end()  # type: ignore[union-attr]
            closing = "}" if c == "{" else "]"
            if s[i : i + 1] == closing:
                value: Any = {} if c == "{" else []
                i += 1
            else:
                stack.append([{} if c == "{" else [], None])
                if c == "{":
                    i = _read_key(s, i, stack[-1])
                continue
        elif c == '"':
            value, i = _read_string(s, i)
        else:
            number = _NUMBER.match(s, i)
            if number is not None:
                whole, frac, exp = number.groups()
                value = float(whole + (frac or "") + (exp or "")) if frac or exp else int(whole)
                i = number.end()
            else:
                for word, constant in _CONSTANTS.items():
                    if s.startswith(word, i):
                        value, i = constant, i + len(word)
                        break
                else:
                    raise error("Expecting value", s, i)
        # Put the value where it belongs, and close what it completes.
        while True:
            i = _WHITESPACE.match(s, i).end()  # type: ignore[union-attr]
            if not stack:
                if i != len(s):
                    raise error("Extra data", s, i)
                return value
            frame = stack[-1]
            container = frame[0]
            if isinstance(container, dict):
                container[frame[1]] = value
                closing = "}"
            else:
                container.append(value)
                closing = "]"
            c = s[i : i + 1]
            if c == ",":
                i = _WHITESPACE.match(s, i + 1).end()  # type: ignore[union-attr]
                if closing == "}":
                    i = _read_key(s, i, frame)
                break
            if c != closing:
                expected = "','" if closing == "]" else "',' delimiter"
                raise error(f"Expecting {expected}", s, i)
            stack.pop()
            value, i = container, i + 1


def _read_string(s: str, i: int) -> tuple[str, int]:
    """The JSON string at s[i] (its escapes decoded by json itself) and the index after it."""
    match = _STRING.match(s, i)
    if match is None:
        raise json.JSONDecodeError("Unterminated string starting at", s, i)
    return json.loads(match.group()), match.end()


def _read_key(s: str, i: int, frame: list[Any]) -> int:
    """Read `"key":` at s[i] into `frame`; the index of the value after it."""
    if s[i : i + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", s, i)
    frame[1], i = _read_string(s, i)
    i = _WHITESPACE.match(s, i).end()  # type: ignore[union-attr]
    if s[i : i + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", s, i)
    return _WHITESPACE.match(s, i + 1).end()  # type: ignore[union-attr]


def _json_key(key: Any) -> str:
    """A non-string dict key as json.dumps writes it."""
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


@attrs.frozen
class _Text:
    text: str


@attrs.frozen
class _Close:
    ident: int
    text: str


def fold(
    value: Any,
    children: Callable[[Any], Sequence[tuple[Any, Any]] | None],
    build: Callable[[Any, list[tuple[Any, Any]] | None], Any],
) -> Any:
    """Rebuild a tree bottom-up without recursion: `children(node)` is None for a leaf, else
    its (key, child) pairs in order; `build(node, pairs)` makes a node's result from its
    children's results (`pairs` is None for a leaf). What a recursive
    `build(v, [(k, fold(c)) for k, c in children(v)])` computes, at any depth."""
    kids = children(value)
    if kids is None:
        return build(value, None)
    # Frames: [node, its pairs, next index, results so far, key in the parent].
    stack: list[list[Any]] = [[value, kids, 0, [], None]]
    while True:
        frame = stack[-1]
        node, pairs, i, done = frame[0], frame[1], frame[2], frame[3]
        if i < len(pairs):
            frame[2] = i + 1
            key, child = pairs[i]
            grandkids = children(child)
            if grandkids is None:
                done.append((key, build(child, None)))
            else:
                stack.append([child, grandkids, 0, [], key])
            continue
        stack.pop()
        result = build(node, done)
        if not stack:
            return result
        stack[-1][3].append((frame[4], result))


Walk = Generator["Walk[Any]", Any, T]
"""A recursive walk written as a generator: where it would call itself it yields the sub-walk
(`x = yield walk(child)`) and receives the sub-walk's return value."""


def run_walk(walk: Walk[T]) -> T:
    """Run a `Walk` with an explicit stack of its generators instead of Python's: the walk keeps
    its recursive shape (and so its order of effects) while nothing recurses, at any depth."""
    stack: list[Walk[Any]] = [walk]
    answer: Any = None
    while True:
        try:
            sub = stack[-1].send(answer)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value  # type: ignore[no-any-return]
            answer = done.value
            continue
        stack.append(sub)
        answer = None
