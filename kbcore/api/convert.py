"""The wire format of the API: one cattrs Converter for both directions and for the CRD schemas.

Rules, in the order they matter:

1. Wire names come from `json_name` only. The structure hooks, the unstructure hooks and
   `kbcore.schema.crdgen` all call it, so the Python types, the dicts we read and write, and the
   CRDs cannot disagree on a field name.
2. Structuring is strict where cattrs is lenient by default: a string is not an integer, `"false"`
   is not a boolean, a string is not a list of characters. Enum values, required fields and the
   `minLength`/`minItems`/`pattern` limits the CRD declares are checked too. Every failure
   becomes one `InvalidObject` naming the JSON path (`spec.apis[0].name: ...`), so a reconcile
   can put it in a condition instead of crashing.
3. Structuring behaves like the API server where it is lenient: unknown keys are ignored (the
   server prunes them) and `null` means absent (the server prunes nulls of non-nullable fields;
   `kubectl create --dry-run -o yaml` writes `creationTimestamp: null`).
4. Unstructuring omits a field when it is optional, has no server-side default and holds its
   default (Go's `omitempty`). Required fields and server-defaulted fields are always written: an
   object read from the API server carries both, so `unstructure(structure(obj)) == obj` for real
   objects and a hash of the unstructured value does not flap.

Pure: no I/O. cattrs generates its hook functions in memory on first use.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from kbcore.api.service_kinds import SERVICE_KINDS, ServiceObject
from kbcore.api.types import KINDS, ApiObject, KindInfo
from kbcore.objects import deepcopy

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Field facts shared with kbcore.schema.crdgen.


def json_name(a: attrs.Attribute[Any]) -> str:
    """The wire name of a field: `metadata["json"]`, else the attribute name in camelCase."""
    explicit = a.metadata.get("json")
    if isinstance(explicit, str):
        return explicit
    head, *rest = a.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def is_required(a: attrs.Attribute[Any]) -> bool:
    """Required in the schema: no Python default, or marked `required` (see kbcore.api.types)."""
    return a.default is attrs.NOTHING or bool(a.metadata.get("required", False))


def always_written(a: attrs.Attribute[Any]) -> bool:
    """Written by `unstructure` even when it holds its default (rule 4)."""
    return is_required(a) or bool(a.metadata.get("server_default", False))


# ---------------------------------------------------------------------------------------------
# Errors.


class InvalidObject(ValueError):  # noqa: N818 -- the name the rest of kbcore uses
    """An object that does not fit the API. `path` and `message` describe the first problem;
    `errors` lists all of them as `(path, message)` pairs. A path is a JSON path such as
    `spec.apis[0].name`; `""` is the object itself."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors = tuple(errors)
        self.path, self.message = self.errors[0]
        super().__init__("; ".join(f"{p}: {m}" if p else m for p, m in self.errors))


class _BadValueError(ValueError):
    """A leaf failure with a finished message, optionally below the current field (`path`)."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


_JSON_TYPES: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "null"),
    (bool, "boolean"),  # before int: bool is an int subclass
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    ((list, tuple), "array"),
    (Mapping, "object"),
)


def _describe(value: object) -> str:
    """`string 'yes'`, `integer 5`, `array`: what we got, for an error message."""
    name = next((n for t, n in _JSON_TYPES if isinstance(value, t)), type(value).__name__)
    if isinstance(value, bool | int | float | str):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        return f"{name} {shown}"
    return name


def _flatten(exc: BaseException, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """Walk cattrs' exception groups; yield one `(json path, message)` per leaf failure."""
    if isinstance(exc, BaseValidationError):
        names = (
            {a.name: json_name(a) for a in attrs.fields(exc.cl)}
            if isinstance(exc, ClassValidationError)
            else {}
        )
        for sub in exc.exceptions:
            yield from _flatten(sub, path + _segment(sub, names))
    elif isinstance(exc, _BadValueError):
        yield _render(path + exc.path), exc.message
    elif isinstance(exc, KeyError):
        # cattrs reads a required key with `o[key]`.
        yield _render(path), "required field is missing"
    else:
        yield _render(path), str(exc) or type(exc).__name__


def _segment(exc: BaseException, names: Mapping[str, str]) -> tuple[str, ...]:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return (names.get(note.name, note.name),)
        if isinstance(note, IterableValidationNote):
            return (f"[{note.index}]",)
    return ()


def _render(path: tuple[str, ...]) -> str:
    return "".join(s if s.startswith("[") or i == 0 else f".{s}" for i, s in enumerate(path))


# ---------------------------------------------------------------------------------------------
# The converter.

converter = cattrs.Converter()
"""The one converter. Prefer `structure`/`unstructure` below, which add error flattening."""


def _strict(expected: type, name: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
            return value
        raise _BadValueError(f"expected {name}, got {_describe(value)}")

    return structure


converter.register_structure_hook(str, _strict(str, "string"))
converter.register_structure_hook(int, _strict(int, "integer"))
converter.register_structure_hook(bool, _strict(bool, "boolean"))


def _structure_enum(value: Any, t: type[enum.StrEnum]) -> enum.StrEnum:
    if not isinstance(value, str):
        raise _BadValueError(f"expected string, got {_describe(value)}")
    try:
        return t(value)
    except ValueError:
        allowed = ", ".join(m.value for m in t)
        raise _BadValueError(f"{value!r} is not one of {allowed}") from None


# These hooks dispatch on the class hierarchy (functools.singledispatch). StrEnum must be
# registered itself: otherwise its `str` base would pick the string hook and skip the check.
# Every API enum is a StrEnum (see kbcore.api.types).
converter.register_structure_hook(enum.StrEnum, _structure_enum)
converter.register_unstructure_hook(enum.StrEnum, lambda member: member.value)


def _structure_items(
    items: Iterator[tuple[int | str, Any]], t: Any, elem: Any
) -> list[tuple[int | str, Any]]:
    """Structure `(index, value)` pairs, collecting failures the way cattrs does for its own
    iterables, so `_flatten` renders `[index]` path segments."""
    hook = converter.get_structure_hook(elem)
    out: list[tuple[int | str, Any]] = []
    errors: list[Exception] = []
    for index, value in items:
        try:
            out.append((index, hook(value, elem)))
        except Exception as exc:
            exc.add_note(IterableValidationNote(f"Structuring {t} @ index {index}", index, elem))
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {t}", errors, t)
    return out


def _tuple_hook(t: Any) -> Callable[[Any, Any], Any]:
    (elem, _) = get_args(t)  # only homogeneous `tuple[X, ...]` appears in the API

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise _BadValueError(f"expected array, got {_describe(value)}")
        return tuple(v for _, v in _structure_items(iter(enumerate(value)), t, elem))

    return structure


def _mapping_hook(t: Any) -> Callable[[Any, Any], Any]:
    (key, elem) = get_args(t)
    if key is not str:
        raise TypeError(f"only string-keyed maps are supported, not {t}")

    def structure(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _BadValueError(f"expected object, got {_describe(value)}")
        return {str(k): v for k, v in _structure_items(iter(value.items()), t, elem)}

    return structure


def _is_tuple(t: Any) -> bool:
    return bool(get_origin(t) is tuple)


def _is_mapping(t: Any) -> bool:
    return get_origin(t) in (Mapping, dict)


converter.register_structure_hook_factory(_is_tuple, _tuple_hook)
converter.register_structure_hook_factory(_is_mapping, _mapping_hook)
# JSON has lists, not tuples; and maps are copied so callers may mutate what they get.
converter.register_unstructure_hook_factory(
    _is_tuple,
    lambda t: lambda value: [converter.unstructure(v, get_args(t)[0]) for v in value],
)
converter.register_unstructure_hook_factory(
    _is_mapping,
    lambda t: lambda value: {k: converter.unstructure(v, get_args(t)[1]) for k, v in value.items()},
)


def _extra_field(cl: type) -> attrs.Attribute[Any] | None:
    return next((a for a in attrs.fields(cl) if a.metadata.get("extra")), None)


def _kind_of(cl: type) -> KindInfo | None:
    info = getattr(cl, "KIND", None)
    return info if isinstance(info, KindInfo) else None


def _limits_hook(a: attrs.Attribute[Any]) -> Callable[[Any, Any], Any] | None:
    """A structure hook enforcing the field's `minLength`/`minItems`/`pattern`, or None if it
    has none."""
    schema = a.metadata.get("schema", {})
    min_length, min_items = schema.get("minLength"), schema.get("minItems")
    # Unanchored search, as the API server applies a pattern; the API's patterns are anchored.
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
    if min_length is None and min_items is None and pattern is None:
        return None

    def structure(value: Any, t: Any) -> Any:
        result = converter.structure(value, t)
        if min_length is not None and len(result) < min_length:
            raise _BadValueError(f"should be at least {min_length} chars long")
        if min_items is not None and len(result) < min_items:
            raise _BadValueError(f"should have at least {min_items} items")
        if pattern is not None and isinstance(result, str) and not pattern.search(result):
            raise _BadValueError(f"should match '{pattern.pattern}'")
        return result

    return structure


def _check_type_meta(value: Mapping[str, Any], info: KindInfo) -> None:
    for key, expected in (("apiVersion", info.api_version), ("kind", info.kind)):
        got = value.get(key)
        if got is None:
            raise _BadValueError("required field is missing", (key,))
        if got != expected:
            raise _BadValueError(f"expected {expected!r}, got {_describe(got)}", (key,))


def _attrs_structure_hook(cl: type) -> Callable[[Any, Any], Any]:
    extra = _extra_field(cl)
    known = {json_name(a) for a in attrs.fields(cl) if a is not extra}
    overrides = {
        a.name: override(omit=True)
        if a is extra
        else override(rename=json_name(a), struct_hook=_limits_hook(a))
        for a in attrs.fields(cl)
    }
    generated: Callable[[Mapping[str, Any], Any], Any] = make_dict_structure_fn(
        cl,
        converter,
        **overrides,  # type: ignore[arg-type]  # cattrs types **kwargs loosely
    )
    info = _kind_of(cl)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _BadValueError(f"expected object, got {_describe(value)}")
        if info is not None:
            _check_type_meta(value, info)
        present = {k: v for k, v in value.items() if k in known and v is not None}
        obj = generated(present, cl)
        if extra is not None:
            rest = {k: deepcopy(v) for k, v in value.items() if k not in known}
            obj = attrs.evolve(obj, **{extra.name: rest})
        return obj

    return structure


def _attrs_unstructure_hook(cl: type) -> Callable[[Any], dict[str, Any]]:
    extra = _extra_field(cl)
    overrides = {
        a.name: override(omit=True)
        if a is extra
        else override(rename=json_name(a), omit_if_default=not always_written(a))
        for a in attrs.fields(cl)
    }
    generated: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cl,
        converter,
        **overrides,  # type: ignore[arg-type]  # cattrs types **kwargs loosely
    )
    info = _kind_of(cl)

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = generated(obj)
        if extra is not None:
            rest = getattr(obj, extra.name)
            out.update({k: deepcopy(v) for k, v in rest.items() if k not in out})
        if info is not None:
            # cattrs emits omittable fields last; restore the conventional order.
            out = {"apiVersion": info.api_version, "kind": info.kind} | {
                k: out[k] for k in ("metadata", "spec", "status") if k in out
            }
        return out

    return unstructure


converter.register_structure_hook_factory(attrs.has, _attrs_structure_hook)
converter.register_unstructure_hook_factory(attrs.has, _attrs_unstructure_hook)


# ---------------------------------------------------------------------------------------------
# Public entry points.

_BY_KIND: Mapping[str, type[ApiObject]] = {cls.KIND.kind: cls for cls in KINDS}
_SERVICE_BY_KIND: Mapping[str, type[ServiceObject]] = {cls.KIND.kind: cls for cls in SERVICE_KINDS}


def structure(data: Any, cls: type[T]) -> T:
    """`data` (a JSON-shaped value) as a `cls`, or `InvalidObject` naming every bad field."""
    try:
        return converter.structure(data, cls)
    except (BaseValidationError, _BadValueError) as exc:
        raise InvalidObject(list(_flatten(exc, ()))) from None


def structure_object(data: Any) -> ApiObject:
    """A Connection, ClusterBinding or Binding, chosen by `data["kind"]`.

    Raises `InvalidObject` for an unknown kind, a wrong apiVersion or any invalid field.
    """
    return _structure_kind(data, _BY_KIND)


def structure_service_object(data: Any) -> ServiceObject:
    """An Export, Collection, Grant or BoundNamespace, chosen by `data["kind"]`; raises
    `InvalidObject` as `structure_object` does. A core kind is not one of them: the two APIs
    live in different clusters."""
    return _structure_kind(data, _SERVICE_BY_KIND)


def _structure_kind(data: Any, by_kind: Mapping[str, type[T]]) -> T:
    if not isinstance(data, Mapping):
        raise InvalidObject([("", f"expected object, got {_describe(data)}")])
    kind = data.get("kind")
    cls = by_kind.get(kind) if isinstance(kind, str) else None
    if cls is None:
        allowed = ", ".join(sorted(by_kind))
        if kind is None:
            raise InvalidObject([("kind", "required field is missing")])
        raise InvalidObject([("kind", f"{kind!r} is not one of {allowed}")])
    return structure(data, cls)


def unstructure(value: Any) -> dict[str, Any]:
    """An attrs API value as a fresh JSON-shaped dict (kinds include apiVersion and kind)."""
    if not attrs.has(type(value)):
        raise TypeError(f"not an API value: {type(value).__name__}")
    out: dict[str, Any] = converter.unstructure(value)
    return out
