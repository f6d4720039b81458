"""Properties of the API types, converter and generated schemas (style guide D.2, test 3).

For every kind, of the konnector's API and of the provider-side service layer, over values
built field by field from the attrs types themselves:

- `structure(unstructure(x)) == x` (the converter loses nothing);
- `unstructure(x)` is valid against the generated `openAPIV3Schema` (the converter and the CRD
  agree; `jsonschema` ignores the x-kubernetes-* keywords, which the API server checks);
- the unstructured form is canonical: unstructuring again gives the same dict, and it is plain
  JSON (`json.dumps` and `yaml.safe_dump` accept it).

The strategy reads the same field metadata as the generator (`minLength`, `minItems`, `pattern`,
list types), so it produces the values a real API server would accept, with small sane strings.
"""

from __future__ import annotations

import enum
import json
import string
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kbcore.api.convert import (
    json_name,
    structure,
    structure_object,
    structure_service_object,
    unstructure,
)
from kbcore.api.service_kinds import SERVICE_KINDS
from kbcore.api.types import KINDS
from kbcore.schema import crdgen

_TEXT = st.text(string.ascii_letters + string.digits + "-._/:", max_size=12)
_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
# Metadata keys the kernel does not model; they must survive a round trip in `extra`.
_UNMODELLED_METADATA = ["generateName", "managedFields", "selfLink", "deletionGracePeriodSeconds"]


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: len(s) <= schema.get("maxLength", 64)
        )
    if schema.get("format") == "date-time":
        return _TIMES
    return st.text(
        string.ascii_letters + string.digits + "-._/:",
        min_size=schema.get("minLength", 0),
        max_size=12,
    )


def values_of(tp: Any, schema: Mapping[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Valid values of an API type; `schema` is the field's extra keywords (metadata)."""
    schema = schema or {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is str:
        return _string(schema)
    if tp is bool:
        return st.booleans()
    if tp is int:
        top = 2**31 - 1 if schema.get("format") == "int32" else 2**53
        return st.integers(0, top)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if origin is not None and type(None) in args:
        (present,) = [a for a in args if a is not type(None)]
        return st.none() | values_of(present, schema)
    if origin is tuple:
        list_type = schema.get("x-kubernetes-list-type", "atomic")
        unique_by = (
            _map_key(args[0], schema["x-kubernetes-list-map-keys"]) if list_type == "map" else None
        )
        return st.lists(
            values_of(args[0]),
            min_size=schema.get("minItems", 0),
            max_size=3,
            unique=list_type == "set",
            unique_by=unique_by,
        ).map(tuple)
    if origin in (Mapping, dict):
        return st.dictionaries(_TEXT, values_of(args[1]), max_size=3)
    if attrs.has(tp):
        return _attrs_values(tp)
    raise TypeError(f"no strategy for {tp!r}")


def _map_key(cls: type, keys: list[str]) -> Any:
    """The key of an item of a list of type map: its map-key fields (a condition's type)."""
    by_wire = {json_name(a): a.name for a in attrs.fields(cls)}
    return lambda item: tuple(getattr(item, by_wire[k]) for k in keys)


def _attrs_values(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for a in attrs.fields(cls):
        if a.metadata.get("extra"):
            fields[a.name] = st.dictionaries(st.sampled_from(_UNMODELLED_METADATA), _JSON)
        else:
            fields[a.name] = values_of(hints[a.name], a.metadata.get("schema"))
    return st.builds(cls, **fields)


ALL_KINDS: tuple[type[crdgen.AnyObject], ...] = (*KINDS, *SERVICE_KINDS)
KIND_IDS = [cls.KIND.kind for cls in ALL_KINDS]


def _structure_by_kind(data: Any, cls: type) -> Any:
    """The entry point a shell would call for `cls`: the core's or the service layer's."""
    return structure_object(data) if cls in KINDS else structure_service_object(data)


@pytest.mark.parametrize("cls", ALL_KINDS, ids=KIND_IDS)
def test_round_trip(cls: type[crdgen.AnyObject]) -> None:
    @given(values_of(cls))
    def check(value: crdgen.AnyObject) -> None:
        data = unstructure(value)
        assert _structure_by_kind(data, cls) == value
        assert structure(data, cls) == value
        assert unstructure(_structure_by_kind(data, cls)) == data  # canonical: a fixed point

    check()


@pytest.mark.parametrize("cls", ALL_KINDS, ids=KIND_IDS)
def test_unstructured_values_match_generated_schema(cls: type[crdgen.AnyObject]) -> None:
    schema = crdgen.openapi_schema(cls)
    validator = jsonschema.Draft202012Validator(schema)

    @given(values_of(cls))
    def check(value: crdgen.AnyObject) -> None:
        data = unstructure(value)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]

    check()


@given(st.sampled_from(ALL_KINDS).flatmap(values_of))
def test_unstructured_values_are_plain_json(value: crdgen.AnyObject) -> None:
    data = unstructure(value)
    assert json.loads(json.dumps(data)) == data
    assert yaml.safe_load(yaml.safe_dump(data)) == data
