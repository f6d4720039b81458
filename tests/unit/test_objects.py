"""Unit tests of `kbcore.objects`: addressing values and junk-tolerant accessors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kbcore import objects as o
from kbcore.objects import GVR, ObjectKey, ObjectRef
from tests.property.strategies import json_objects, json_values, malformed_objects

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GOOD = {
    "apiVersion": "example.org/v1",
    "kind": "Widget",
    "metadata": {
        "name": "w1",
        "namespace": "team-a",
        "uid": "u-1",
        "resourceVersion": "41",
        "generation": 3,
        "labels": {"app": "web"},
        "annotations": {"note": "x"},
        "finalizers": ["a/b", "c/d"],
        "deletionTimestamp": "2024-01-01T00:00:00Z",
    },
}


def test_accessors_on_a_good_object() -> None:
    assert o.name(GOOD) == "w1"
    assert o.namespace(GOOD) == "team-a"
    assert o.key_of(GOOD) == ObjectKey("team-a", "w1")
    assert o.uid(GOOD) == "u-1"
    assert o.resource_version(GOOD) == "41"
    assert o.generation(GOOD) == 3
    assert o.labels_of(GOOD) == {"app": "web"}
    assert o.annotations_of(GOOD) == {"note": "x"}
    assert o.finalizers(GOOD) == ("a/b", "c/d")
    assert o.deletion_timestamp(GOOD) == "2024-01-01T00:00:00Z"
    assert o.is_deleting(GOOD)


EMPTY = {
    "name": "",
    "namespace": "",
    "uid": "",
    "resource_version": "",
    "generation": 0,
    "labels_of": {},
    "annotations_of": {},
    "finalizers": (),
    "deletion_timestamp": "",
    "is_deleting": False,
}


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": None},
        {"metadata": "junk"},
        {"metadata": [1, 2]},
        {"metadata": 7},
        {
            "metadata": {
                "name": 1,
                "namespace": ["x"],
                "uid": None,
                "resourceVersion": 41,
                "generation": True,
                "labels": "app=web",
                "annotations": ["note"],
                "finalizers": "a/b",
                "deletionTimestamp": 0,
            }
        },
        {"metadata": {"generation": "3", "labels": None, "annotations": None, "finalizers": None}},
    ],
)
def test_accessors_tolerate_junk(obj: dict[str, Any]) -> None:
    for accessor, expected in EMPTY.items():
        assert getattr(o, accessor)(obj) == expected, accessor
    assert o.key_of(obj) == ObjectKey("", "")


def test_non_string_labels_annotations_and_finalizers_are_dropped() -> None:
    obj = {
        "metadata": {
            "labels": {"app": "web", "n": 1, "b": True, "none": None, "l": ["x"]},
            "annotations": {"note": "x", "d": {"k": "v"}, "f": 1.5},
            "finalizers": ["a/b", 1, None, {"x": 1}, "c/d"],
        }
    }
    assert o.labels_of(obj) == {"app": "web"}
    assert o.annotations_of(obj) == {"note": "x"}
    assert o.finalizers(obj) == ("a/b", "c/d")


ACCESSORS = [
    o.metadata,
    o.name,
    o.namespace,
    o.key_of,
    o.uid,
    o.resource_version,
    o.generation,
    o.labels_of,
    o.annotations_of,
    o.finalizers,
    o.deletion_timestamp,
    o.is_deleting,
]


@FAST
@given(malformed_objects())
def test_accessors_are_total_and_do_not_mutate(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    for accessor in ACCESSORS:
        accessor(obj)
    assert isinstance(o.name(obj), str)
    assert isinstance(o.generation(obj), int)
    assert all(isinstance(v, str) for v in o.labels_of(obj).values())
    assert all(isinstance(v, str) for v in o.annotations_of(obj).values())
    assert all(isinstance(f, str) for f in o.finalizers(obj))
    assert obj == before


# --- contains ---------------------------------------------------------------------------------


@FAST
@given(json_values())
def test_contains_is_reflexive(x: Any) -> None:
    assert o.contains(x, x)
    assert o.contains(x, copy.deepcopy(x))


@FAST
@given(json_objects(), json_objects())
def test_contains_a_sub_map(extra: dict[str, Any], base: dict[str, Any]) -> None:
    assert o.contains({**extra, **base}, base)
    assert o.contains(base, {})


@pytest.mark.parametrize(
    ("haystack", "needle", "expected"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ({"a": {"x": 1, "y": 2}}, {"a": {"x": 1}}, True),
        ({"a": [1, 2, 3]}, {"a": [1, 2]}, False),
        ({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]}, False),
        ({"a": 1}, {"a": {"x": 1}}, False),
        ({"a": None}, {"a": None}, True),
        ({}, {"a": None}, False),
        (True, 1, False),
        (1, True, False),
        (0, False, False),
        ({"a": 1}, {"a": True}, False),
        ({"a": 1.0}, {"a": 1}, True),
        ([1], [True], False),
        ([True], [1], False),
        ({"a": [0]}, {"a": [False]}, False),
        ([{"a": True}], [{"a": 1}], False),
        ("x", "x", True),
        (None, {}, False),
    ],
)
def test_contains_examples(haystack: Any, needle: Any, expected: bool) -> None:
    assert o.contains(haystack, needle) is expected


# --- addressing -------------------------------------------------------------------------------


def test_gvr_forms() -> None:
    w = GVR("example.org", "v1", "widgets")
    s = GVR("", "v1", "secrets")
    assert (w.api_version, w.group_resource, str(w)) == (
        "example.org/v1",
        "widgets.example.org",
        "widgets.example.org/v1",
    )
    assert (s.api_version, s.group_resource, str(s)) == ("v1", "secrets", "secrets/v1")


def test_key_and_ref_strings() -> None:
    assert str(ObjectKey("team-a", "w1")) == "team-a/w1"
    assert str(ObjectKey("", "g1")) == "g1"
    ref = ObjectRef("provider", GVR("example.org", "v1", "widgets"), ObjectKey("team-a", "w1"))
    assert str(ref) == "provider:widgets.example.org:team-a/w1"


def test_addressing_values_compare_hash_and_order() -> None:
    a, b = ObjectKey("a", "x"), ObjectKey("b", "a")
    assert a == ObjectKey("a", "x") and hash(a) == hash(ObjectKey("a", "x"))
    assert sorted([b, a]) == [a, b]


@pytest.mark.parametrize(
    ("api_version", "expected"),
    [("example.org/v1", ("example.org", "v1")), ("v1", ("", "v1")), ("a/b/c", ("a", "b/c"))],
)
def test_split_api_version(api_version: str, expected: tuple[str, str]) -> None:
    assert o.split_api_version(api_version) == expected


@FAST
@given(st.dictionaries(st.text(max_size=3), json_values(6), max_size=4))
def test_deepcopy_is_equal_and_independent(obj: dict[str, Any]) -> None:
    c = o.deepcopy(obj)
    assert c == obj
    c["__new__"] = 1
    assert "__new__" not in obj


# --- walking at any depth -------------------------------------------------------------------

DEEP = 20_000
"""Twice what an API server decodes, twenty times Python's recursion budget."""


def deep(levels: int, leaf: Any = "bottom", key: str = "a") -> Any:
    value = leaf
    for i in range(levels):
        value = [value] if i % 3 == 2 else {key: value, "z": i}
    return value


def deep_text(levels: int) -> str:
    """`deep(levels)` written out by hand, as json.dumps would write it."""
    opening, closing = [], []
    for i in range(levels):
        opening.append("[" if i % 3 == 2 else '{"a":')
        closing.append("]" if i % 3 == 2 else f',"z":{i}}}')
    return "".join(reversed(opening)) + '"bottom"' + "".join(closing)


def test_the_walks_work_at_any_depth() -> None:
    a, b = deep(DEEP), deep(DEEP)
    copied = o.deepcopy(a)
    assert copied is not a and o.json_equal(copied, a) and o.json_equal(a, b)
    assert o.contains(a, b) and o.contains(a, deep(DEEP, leaf="bottom", key="a"))
    assert not o.json_equal(a, deep(DEEP, leaf="other"))
    assert not o.contains(a, deep(DEEP, leaf=True))
    text = o.canonical_json(a)
    assert text == deep_text(DEEP)
    assert o.json_equal(o.parse_json(text), a)
    assert o.json_equal(o.parse_json(o.json_text(a).encode()), a)


def test_deep_json_equality_keeps_json_rules() -> None:
    assert o.json_equal(deep(5_000, leaf=1), deep(5_000, leaf=1.0))
    assert not o.json_equal(deep(5_000, leaf=1), deep(5_000, leaf=True))


@FAST
@given(json_values(20))
def test_canonical_json_is_json_dumps_so_stored_hashes_never_change(value: Any) -> None:
    # The iterative writer (used when json.dumps runs out of recursion) writes the same text.
    for ascii_only in (True, False):
        expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
        assert o._iterative_json(value, ascii_only, True, (",", ":")) == expected
    assert o._iterative_json(value, True, False, (",", ":")) == o.json_text(value)


@FAST
@given(json_values(20), st.sampled_from([None, 0, 2]))
def test_parse_json_reads_what_json_loads_reads(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    assert o.json_equal(o._iterative_parse(text), json.loads(text))


@pytest.mark.parametrize(
    "text", ["", "{", '{"a" 1}', '{"a":1,}', "[1 2]", '"open', "nul", "1 2", '{"a":1}}', "{'a':1}"]
)
def test_parse_json_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        o._iterative_parse(text)
    with pytest.raises(ValueError):
        o.parse_json("[" * 5_000 + text)


def test_deepcopy_keeps_sharing_and_cycles() -> None:
    shared: list[Any] = [1]
    copied = o.deepcopy({"x": shared, "y": shared})
    assert copied["x"] is copied["y"] and copied["x"] is not shared
    cycle: list[Any] = [1]
    cycle.append(cycle)
    copied_cycle = o.deepcopy(cycle)
    assert copied_cycle[1] is copied_cycle and copied_cycle is not cycle


def test_canonical_json_refuses_a_cycle_and_non_json_as_json_dumps_does() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        o._iterative_json(cycle, True, True, (",", ":"))
    with pytest.raises(TypeError):
        o.canonical_json(deep(5_000, leaf=object()))


def test_fold_and_run_walk_rebuild_at_any_depth() -> None:
    value = deep(DEEP)

    def count(v: Any) -> o.Walk[int]:
        total = 1
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        for child in children:
            total += yield count(child)
        return total

    assert o.run_walk(count(value)) == 1 + DEEP + DEEP - DEEP // 3  # nodes: containers, leaves
    rebuilt = o.fold(
        value,
        lambda v: (
            list(v.items())
            if isinstance(v, dict)
            else list(enumerate(v))
            if isinstance(v, list)
            else None
        ),
        lambda v, pairs: (
            v if pairs is None else dict(pairs) if isinstance(v, dict) else [x for _, x in pairs]
        ),
    )
    assert o.json_equal(rebuilt, value)
