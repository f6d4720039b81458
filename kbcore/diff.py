"""Differences a person reads: which fields of an object differ, `path: old -> new`.

Used where a difference is shown to someone: `kubectl bind plan` (what an update or apply would
change), a replay's first divergence, a scenario expectation that failed. The comparison is
deepdiff's. deepdiff is a pure library as called here: its progress timer thread, its
multiprocessing and its logging are only reached through parameters this module never passes
(tests/unit/test_purity.py bans them in kbcore) or dictionary keys that are numbers, which JSON
values do not have.

Rules:
 1. Values are JSON values; numbers compare as JSON does (1 and 1.0 are the same), lists in
    order, element by element (where the lengths differ, deepdiff aligns the elements that
    stayed, so a removed element shows as one removal, not a change of every later one).
 2. Paths read like kubectl's: `spec.ports[1].port`, `metadata.labels["app.kubernetes.io/name"]`;
    sorted, so the same two values always print the same lines.
 3. No Secret's data is ever shown: a change under `data` or `stringData` of a Secret, or under
    its `kubectl.kubernetes.io/last-applied-configuration` annotation (which holds the data in
    clear), prints as `path: (changed)`; so does any change whose value holds a Secret's data.
 4. Total: values nested deeper than deepdiff recurses are reported as one change of the whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from deepdiff import DeepDiff
from deepdiff.helper import notpresent

from kbcore import objects as o

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SECRET_FIELDS = ("data", "stringData")
CHANGED = "(changed)"
ABSENT = "(none)"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*", re.ASCII)


class _Absent:
    def __repr__(self) -> str:
        return ABSENT


MISSING: Any = _Absent()
"""The old value of an added field, the new value of a removed one."""

Path = tuple[str | int, ...]


@attrs.frozen
class Change:
    """One field that differs: its path and its two values (`MISSING` when not there)."""

    path: Path
    old: Any
    new: Any


def changes(old: Any, new: Any) -> tuple[Change, ...]:
    """Every field that differs between two JSON values (rules 1, 2 and 4)."""
    try:
        tree = DeepDiff(_tag_bools(old), _tag_bools(new), view="tree", verbose_level=2)
    except RecursionError:
        return () if o.json_equal(old, new) else (Change((), old, new),)
    out = [
        Change(tuple(level.path(output_format="list")), _value(level.t1), _value(level.t2))
        for levels in tree.values()
        for level in levels
        if not _same_number(level.t1, level.t2)
    ]
    return tuple(sorted(out, key=lambda c: _sort_key(c.path)))


def _same_number(a: Any, b: Any) -> bool:
    """1 and 1.0 (a type change to deepdiff); True is not 1."""
    numbers = (int, float)
    both = all(isinstance(v, numbers) and not isinstance(v, bool) for v in (a, b))
    return both and bool(a == b)


class _JsonBool(str):
    """A JSON boolean while deepdiff compares: Python calls `False == 0` (so deepdiff skips
    `[False]` against `[0]`), JSON does not. Equal only to the same boolean."""

    def __eq__(self, other: object) -> bool:
        return type(other) is _JsonBool and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


def _tag_bools(value: Any) -> Any:
    """`value` with every boolean a `_JsonBool` (recursive, as deepdiff is: a value too deep
    raises RecursionError, which `changes` handles)."""
    if isinstance(value, bool):
        return _JsonBool("true" if value else "false")
    if isinstance(value, dict):
        return {k: _tag_bools(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tag_bools(v) for v in value]
    return value


def _value(v: Any) -> Any:
    if v is notpresent:
        return MISSING
    if isinstance(v, _JsonBool):
        return str.__eq__(v, "true")
    if isinstance(v, dict | list):
        return _untag(v)
    return v


def _untag(value: Any) -> Any:
    if isinstance(value, _JsonBool):
        return str.__eq__(value, "true")
    if isinstance(value, dict):
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def _sort_key(path: Path) -> tuple[tuple[int, Any], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def path_text(path: Path) -> str:
    """Rule 2: `spec.ports[1].port`; the whole value is `.`."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENTIFIER.fullmatch(p):
            out += f".{p}" if out else p
        else:
            out += f"[{o.canonical_json(p)}]"
    return out or "."


def render(
    found: Sequence[Change], old: Any, new: Any, *, secret: bool = False, limit: int = 60
) -> list[str]:
    """`path: old -> new` per change; `secret` says `old` and `new` are Secrets (rule 3)."""
    return [_line(c, old, new, secret, limit) for c in found]


def _line(change: Change, old: Any, new: Any, secret: bool, limit: int) -> str:
    where = path_text(change.path)
    if _hidden(change, old, new, secret):
        return f"{where}: {CHANGED}"
    return f"{where}: {_short(change.old, limit)} -> {_short(change.new, limit)}"


def _short(value: Any, limit: int) -> str:
    if value is MISSING:
        return ABSENT
    text = o.canonical_json(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _hidden(change: Change, old: Any, new: Any, secret: bool) -> bool:
    """Rule 3: does the change pass through, or carry, a Secret's data?"""
    if secret and _secret_path(change.path):
        return True
    for root in (old, new):
        node = root
        for i, p in enumerate(change.path):
            if _is_secret(node) and _secret_path(change.path[i:]):
                return True
            node = _child(node, p)
            if node is MISSING:
                break
    return any(_holds_secret_data(v) for v in (change.old, change.new))


def _secret_path(path: Path) -> bool:
    if not path:
        return True  # the whole Secret
    if path[0] in SECRET_FIELDS:
        return True
    return path[:2] == ("metadata", "annotations") and (len(path) == 2 or path[2] == LAST_APPLIED)


def _is_secret(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("kind") == "Secret"


def _child(node: Any, p: str | int) -> Any:
    if isinstance(p, int):
        return node[p] if isinstance(node, list) and 0 <= p < len(node) else MISSING
    return node.get(p, MISSING) if isinstance(node, Mapping) else MISSING


def _holds_secret_data(value: Any) -> bool:
    """Is there a Secret with data (or a last-applied annotation) anywhere in `value`?"""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Mapping):
            if _is_secret(v) and (
                any(f in v for f in SECRET_FIELDS) or LAST_APPLIED in o.annotations_of(v)
            ):
                return True
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False
