"""kbcore.selectors: the string and object forms of label selectors, and the name rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbcore import selectors as sel


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {}, True),  # != matches objects without the label
        ("a!=b", {"a": "b"}, False),
        ("e in (x, y)", {"e": "y"}, True),
        ("e in (x,y)", {"e": "z"}, False),
        ("f notin (z)", {}, True),
        ("f notin (z)", {"f": "z"}, False),
        ("g", {"g": ""}, True),
        ("g", {}, False),
        ("!h", {}, True),
        ("!h", {"h": "1"}, False),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("n>3", {"n": "four"}, False),
        (
            "a=b,c!=d,e in (x,y),f notin (z),g,!h",
            {"a": "b", "e": "x", "g": "1"},
            True,
        ),
        ("example.com/role=web", {"example.com/role": "web"}, True),
        ("a=", {"a": ""}, True),
    ],
)
def test_string_form_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert sel.parse(selector).matches(labels) is expected
    assert sel.matches_string(selector, labels) is expected


@pytest.mark.parametrize(
    "bad",
    ["a in (", "a in ()", "bad key!=x", "a=b c", "a=bad value!", ",", "a=(b)", "!a in (b)", "x>y"],
)
def test_invalid_string_selectors_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        sel.parse(bad)


def test_string_form_is_canonical() -> None:
    s = sel.parse("b in (y, x), !c, a=1")
    assert str(s) == "a=1,b in (x,y),!c"
    assert sel.parse(str(s)) == s
    assert sel.parse("").empty and not s.empty


def test_object_form() -> None:
    s = sel.from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
            ],
        }
    )
    assert s.matches({"app": "web", "tier": "a", "zone": "z1"})
    assert not s.matches({"app": "web", "tier": "a", "zone": "z1", "legacy": "y"})
    assert not s.matches({"app": "web", "tier": "a", "zone": "z1", "env": "prod"})
    assert sel.from_label_selector({}).matches({"anything": "x"})
    assert not sel.from_label_selector(None).matches({})


@pytest.mark.parametrize(
    "bad",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Near"}]},
        {"matchLabels": {"bad key": "x"}},
        {"matchLabels": {"a": 1}},
        {"matchLabels": ["a"]},
    ],
)
def test_invalid_object_selectors(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        sel.from_label_selector(bad)


def test_validation_messages_are_apimachinery_verbatim() -> None:
    assert sel.label_value_errors("bad value!") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]
    assert sel.qualified_name_errors("example.com/ok") == []
    assert sel.qualified_name_errors("/x") == ["prefix part must be non-empty"]
    assert sel.dns1123_label_errors("a.b") == ["must not contain dots"]
    assert sel.dns1123_subdomain_errors("x" * 254)[0] == "must be no more than 253 characters"


keys = st.from_regex(r"[a-z]([a-z0-9]{0,5})", fullmatch=True)
values = st.from_regex(r"[a-z0-9]{1,5}", fullmatch=True)


@given(st.dictionaries(keys, values, max_size=4), st.dictionaries(keys, values, max_size=4))
def test_match_labels_selector_is_a_subset_check(
    want: dict[str, str], have: dict[str, str]
) -> None:
    s = sel.from_label_selector({"matchLabels": want})
    assert s.matches(have) == all(have.get(k) == v for k, v in want.items())
    assert sel.parse(str(s)) == s
