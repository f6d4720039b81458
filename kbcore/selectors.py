"""Label selectors and the name/label validation rules they share with the API server.

Two spellings of one idea, both as Kubernetes defines them (k8s.io/apimachinery `labels` and
`metav1.LabelSelector`):

- the string form used by `?labelSelector=`: `a=b,c!=d,e in (x,y),f notin (z),g,!h` (also `==`,
  and the numeric `k>3` / `k<3` that `labels.Parse` accepts);
- the object form embedded in API types: `{"matchLabels": {...}, "matchExpressions": [...]}` with
  the operators `In`, `NotIn`, `Exists`, `DoesNotExist`.

Both parse to the same immutable `Selector`. Invalid input raises `ValueError` with a message that
names the offending piece; nothing here raises anything else.

Matching rules (the ones a controller gets wrong most often): `!=` and `notin` match objects that
do not have the label at all; an empty selector matches everything; a `None` object-form selector
matches nothing (`metav1.LabelSelectorAsSelector(nil)` is `labels.Nothing()`).

The validation helpers (`qualified_name_errors`, `label_value_errors`, `dns1123_*_errors`) return
the exact message fragments of `k8s.io/apimachinery/pkg/util/validation`, so kbsim can build
byte-identical 422 messages from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "Requirement",
    "Selector",
    "dns1123_label_errors",
    "dns1123_subdomain_errors",
    "from_label_selector",
    "label_value_errors",
    "matches_string",
    "parse",
    "qualified_name_errors",
]

# --- validation fragments (k8s.io/apimachinery/pkg/util/validation) ---------------------------

_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT_CHAR = "[-A-Za-z0-9_.]"
_QUALIFIED_NAME_FMT = "(" + _QNAME_CHAR + _QNAME_EXT_CHAR + "*)?" + _QNAME_CHAR
_QUALIFIED_NAME_RE = re.compile("^" + _QUALIFIED_NAME_FMT + "$")
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_RE = re.compile("^" + _LABEL_VALUE_FMT + "$")
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile("^" + _DNS1123_LABEL_FMT + "$")
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile("^" + _DNS1123_SUBDOMAIN_FMT + "$")
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    # Mirrors validation.RegexError, including its double space before "or".
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{example}', "
    return out + f"regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def dns1123_label_errors(value: str) -> list[str]:
    """Messages of `IsDNS1123Label` (namespace names, CRD plurals); empty when valid."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len_error(63))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Messages of `IsDNS1123Subdomain` (most object names); empty when valid."""
    errs: list[str] = []
    if len(value) > 253:
        errs.append(_max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """Messages of `IsQualifiedName` (label and annotation keys); empty when valid."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def label_value_errors(value: str) -> list[str]:
    """Messages of `IsValidLabelValue`; empty when valid (the empty string is valid)."""
    errs: list[str] = []
    if len(value) > 63:
        errs.append(_max_len_error(63))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


# --- selectors --------------------------------------------------------------------------------


@attrs.frozen(order=True)
class Requirement:
    """One clause: `key <operator> values`. Operators use the string-form spelling:
    `=`, `!=`, `in`, `notin`, `exists`, `!` (does not exist), `gt`, `lt`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        op = self.operator
        if op in ("=", "in"):
            return present and value in self.values
        if op in ("!=", "notin"):
            return not present or value not in self.values
        if op == "exists":
            return present
        if op == "!":
            return not present
        # gt / lt: both sides must be integers, as labels.Requirement.Matches does.
        if not present:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if op == "gt" else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return "!" + self.key
        if op in ("in", "notin"):
            return f"{self.key} {op} ({','.join(self.values)})"
        if op == "gt":
            return f"{self.key}>{self.values[0]}"
        if op == "lt":
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op}{self.values[0]}"


@attrs.frozen
class Selector:
    """A conjunction of requirements; `nothing=True` is the selector that matches no object."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector matches every object."""
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


def _check_key(key: str) -> None:
    errs = qualified_name_errors(key)
    if errs:
        raise ValueError(f"invalid label key {key!r}: {'; '.join(errs)}")


def _check_value(key: str, value: str) -> None:
    errs = label_value_errors(value)
    if errs:
        raise ValueError(f"invalid label value {value!r} for key {key!r}: {'; '.join(errs)}")


def _requirement(key: str, operator: str, values: tuple[str, ...]) -> Requirement:
    _check_key(key)
    if operator in ("in", "notin"):
        if not values:
            raise ValueError(f"for 'in', 'notin' operators, values set can't be empty: {key!r}")
        values = tuple(sorted(set(values)))
    elif operator in ("=", "==", "!="):
        if len(values) != 1:
            raise ValueError(f"exact-match compatibility requires one single value: {key!r}")
        operator = "=" if operator == "==" else operator
    elif operator in ("exists", "!"):
        if values:
            raise ValueError(f"values set must be empty for exists and does not exist: {key!r}")
    elif operator in ("gt", "lt"):
        if len(values) != 1 or not re.fullmatch(r"-?[0-9]+", values[0]):
            raise ValueError(
                f"for 'gt', 'lt' operators, exactly one integer value is required: {key!r}"
            )
        return Requirement(key, operator, values)
    else:
        raise ValueError(f"{operator!r} is not a valid label selector operator")
    for v in values:
        _check_value(key, v)
    return Requirement(key, operator, values)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > 1:
                raise ValueError(f"unexpected '(' in selector {text!r}")
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unexpected ')' in selector {text!r}")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if depth != 0:
        raise ValueError(f"unclosed '(' in selector {text!r}")
    parts.append(current)
    return parts


_SET_RE = re.compile(r"^\s*(!?)\s*([^\s=!<>(),]+)\s+(in|notin)\s*\((.*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([^\s=!<>(),]+)\s*(==|!=|=|>|<)\s*([^\s=!<>(),]*)\s*$")
_KEY_RE = re.compile(r"^\s*(!?)\s*([^\s=!<>(),]+)\s*$")


def parse(text: str) -> Selector:
    """Parse the string form. `""` (or only whitespace) is the everything-selector."""
    if not text.strip():
        return EVERYTHING
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        if not raw.strip():
            raise ValueError(f"empty requirement in selector {text!r}")
        m = _SET_RE.match(raw)
        if m:
            if m.group(1):
                raise ValueError(f"'!' cannot be combined with a set operator: {raw.strip()!r}")
            values = tuple(v.strip() for v in m.group(4).split(","))
            if values == ("",):
                values = ()
            requirements.append(_requirement(m.group(2), m.group(3), values))
            continue
        m = _CMP_RE.match(raw)
        if m:
            op = {">": "gt", "<": "lt"}.get(m.group(2), m.group(2))
            requirements.append(_requirement(m.group(1), op, (m.group(3),)))
            continue
        m = _KEY_RE.match(raw)
        if m:
            requirements.append(_requirement(m.group(2), "!" if m.group(1) else "exists", ()))
            continue
        raise ValueError(f"unable to parse requirement {raw.strip()!r} in selector {text!r}")
    return Selector(tuple(sorted(requirements, key=lambda r: r.key)))


_OBJECT_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def from_label_selector(selector: Mapping[str, Any] | None) -> Selector:
    """Convert a `metav1.LabelSelector` dict. `None` matches nothing; `{}` matches everything."""
    if selector is None:
        return NOTHING
    if not isinstance(selector, Mapping):
        raise ValueError(f"a label selector must be an object, got {type(selector).__name__}")
    requirements: list[Requirement] = []
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise ValueError("matchLabels must be an object of string values")
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise ValueError(f"matchLabels[{key!r}] must be a string")
        requirements.append(_requirement(str(key), "=", (value,)))
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise ValueError("matchExpressions must be a list")
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise ValueError("each matchExpressions entry must be an object")
        operator = expr.get("operator")
        if operator not in _OBJECT_OPERATORS:
            raise ValueError(f"{operator!r} is not a valid label selector operator")
        values = expr.get("values") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError("matchExpressions values must be a list of strings")
        key = expr.get("key")
        if not isinstance(key, str):
            raise ValueError("matchExpressions key must be a string")
        requirements.append(_requirement(key, _OBJECT_OPERATORS[operator], tuple(values)))
    return Selector(tuple(sorted(requirements, key=lambda r: r.key)))


def matches_string(selector: str, labels: Mapping[str, str]) -> bool:
    """Whether `labels` match the string-form `selector` (raises ValueError if invalid)."""
    return parse(selector).matches(labels)
