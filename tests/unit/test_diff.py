"""`kbcore.diff`: the differences people read (plan, replay, scenario), never a Secret's data."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore import diff
from kbcore import objects as o

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab.", max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text("ab./", max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)


def lines(old: Any, new: Any, **kw: Any) -> list[str]:
    return diff.render(diff.changes(old, new), old, new, **kw)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_no_change_exactly_when_the_values_are_equal_as_json(a: Any, b: Any) -> None:
    assert (diff.changes(a, b) == ()) == o.json_equal(a, b)
    assert diff.changes(a, o.deepcopy(a)) == ()


def test_paths_read_like_kubectls() -> None:
    old = {"spec": {"ports": [{"port": 80}]}, "metadata": {"labels": {"app.kubernetes.io/x": "a"}}}
    new = {"spec": {"ports": [{"port": 81}]}, "metadata": {"labels": {"app.kubernetes.io/x": "b"}}}
    assert lines(old, new) == [
        'metadata.labels["app.kubernetes.io/x"]: "a" -> "b"',
        "spec.ports[0].port: 80 -> 81",
    ]


def test_numbers_compare_as_json_does() -> None:
    assert diff.changes({"a": 1}, {"a": 1.0}) == ()
    assert lines({"a": True}, {"a": 1}) == ["a: true -> 1"]


def test_long_values_are_cut() -> None:
    assert lines({"a": "x" * 200}, {}) == ['a: "' + "x" * 56 + "... -> (none)"]


secret_values = st.text(
    st.characters(codec="ascii", categories=["L", "N"]), min_size=6, max_size=12
)


@settings(max_examples=200, deadline=None)
@given(secret_values, secret_values, st.booleans(), st.booleans())
def test_a_secrets_data_is_never_shown(old_v: str, new_v: str, nested: bool, told: bool) -> None:
    def secret(v: str) -> dict[str, Any]:
        return {
            "kind": "Secret",
            "metadata": {"name": "s", "annotations": {diff.LAST_APPLIED: v}},
            "data": {"k": v, "j": v[::-1]},
            "stringData": {"t": v},
        }

    old: Any = secret(old_v)
    new: Any = secret(new_v)
    if nested:  # as a replay shows it: the Secret inside an action's body
        old, new = [{"body": old}], [{"body": {"x": {"y": new}}}]
    text = "\n".join(lines(old, new, secret=told and not nested))
    for v in (old_v, new_v):
        assert v not in text and v[::-1] not in text
    assert lines(None, new) == [".: (changed)"]


def test_a_secrets_other_fields_are_shown() -> None:
    old = {"kind": "Secret", "metadata": {"labels": {"a": "1"}}, "data": {"k": "czE="}}
    new = {"kind": "Secret", "metadata": {"labels": {"a": "2"}}, "data": {"k": "czI="}}
    assert lines(old, new) == ["data.k: (changed)", 'metadata.labels.a: "1" -> "2"']


def test_values_deeper_than_deepdiff_recurses_are_one_change() -> None:
    def deep(leaf: int) -> Any:
        value: Any = leaf
        for _ in range(5000):
            value = {"a": value}
        return value

    assert len(diff.changes(deep(1), deep(2))) == 1
    assert diff.changes(deep(1), deep(1)) == ()


def test_a_boolean_against_a_number_is_a_change_beside_other_changes() -> None:
    """JSON's false is not 0, though Python's is: the change is listed with the others."""
    assert diff.changes({"a": [False], "b": 1}, {"a": [0], "b": 2}) == (
        diff.Change(("a", 0), False, 0),
        diff.Change(("b",), 1, 2),
    )
