"""Record and replay: what a konnector observed and planned, and a check that the kernel agrees.

A trace is one record per key a worker handled. `Recording` wraps the shell's state (the
`KonnectorState` a worker reads: caches, settings) and notes every answer it gives; `recorded`
runs a worker through it and notes every effect the worker yielded with the answer the shell
gave, and the outcome. `replay` runs the kernel again on a record's inputs alone: the state
calls are answered from the record, in order, as are the reads and requests, and every effect
and the outcome must come out equal. A difference is a `Divergence`: either the kernel changed
(a replay of an old trace on new code shows what a change would do on real traffic) or it is
not deterministic, which is a bug (docs/design.md, "The laws").

Records are JSON-able (`encode`/`decode`): attrs values carry their class name under "$t".
A trace holds what the konnector read, kubeconfig Secrets included; the shells write it with
owner-only permissions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Mapping
from typing import Any

import attrs

from kbcore import actions, diff, objects, reads
from kbcore.control import engagement, kubeconfig
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj, ObjectKey
from kbcore.redaction import redacted_repr
from kbcore.runtime import observe, requests, worker
from kbcore.runtime.keys import WorkKey, describe_key, from_tuple, to_tuple
from kbcore.runtime.observe import KonnectorState, Planner
from kbcore.runtime.worker import Ask, Effect, Outcome, Send

FORMAT = 1

_CLASSES: dict[str, type] = {}
for _module in (actions, reads, requests, objects, engagement, kubeconfig, worker):
    for _name in dir(_module):
        _cls = getattr(_module, _name)
        if isinstance(_cls, type) and attrs.has(_cls) and _cls.__module__ == _module.__name__:
            _CLASSES[_cls.__name__] = _cls


def encode(value: Any) -> Any:
    """A JSON-able form of kernel values (attrs classes, tuples, enums, ApiError).

    Iterative (`objects.fold`): a record holds objects as deep as a provider wrote them."""
    return objects.fold(value, _encode_children, _encode_build)


def _encode_children(value: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(value, ApiError):
        return [
            ("$t", "ApiError"),
            ("code", value.code),
            ("reason", value.reason),
            ("message", value.message),
            ("retry_after", value.retry_after),
            ("details", value.details),
        ]
    if attrs.has(type(value)):
        pairs: list[tuple[Any, Any]] = [("$t", type(value).__name__)]
        return pairs + [(f.name, getattr(value, f.name)) for f in attrs.fields(type(value))]
    if isinstance(value, enum.Enum):
        return None
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    return None


def _encode_build(value: Any, pairs: list[tuple[Any, Any]] | None) -> Any:
    if pairs is None:
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, list | tuple):
        return [v for _, v in pairs]
    return dict(pairs)


def decode(value: Any) -> Any:
    """The inverse of `encode` for the values answers carry (objects stay plain dicts)."""
    return objects.fold(value, _decode_children, _decode_build)


def _decode_children(value: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(value, list):
        return list(enumerate(value))
    if isinstance(value, dict):
        return [(k, v) for k, v in value.items() if k != "$t"]
    return None


def _decode_build(value: Any, pairs: list[tuple[Any, Any]] | None) -> Any:
    if pairs is None:
        return value
    if isinstance(value, list):
        return [v for _, v in pairs]
    fields = dict(pairs)
    tag = value.get("$t")
    if tag is None:
        return fields
    if tag == "ApiError":
        return ApiError(
            fields["code"],
            fields["reason"],
            fields["message"],
            retry_after=fields.get("retry_after"),
            details=fields.get("details") or None,
        )
    cls = _CLASSES.get(tag)
    if cls is None:
        raise ValueError(f"unknown value type {tag!r} in trace")
    for f in attrs.fields(cls):
        if f.name in fields and isinstance(fields[f.name], list):
            fields[f.name] = tuple(fields[f.name])
    return cls(**fields)


def encode_key(item: WorkKey) -> Any:
    """A key as a record stores it: a list, its kind first (`keys.to_tuple`)."""
    return encode(to_tuple(item))


def decode_key(value: Any) -> WorkKey:
    return from_tuple(decode(value))


# -- recording ------------------------------------------------------------------------------


class _RecordedSyncer:
    def __init__(self, inner: observe.Syncer, calls: list[Any], gvr: GVR, synced: bool) -> None:
        self._inner, self._calls, self._gvr = inner, calls, gvr
        self.target = inner.target
        self.synced = synced

    def consumer_get(self, key: ObjectKey) -> Obj | None:
        result = self._inner.consumer_get(key)
        self._calls.append(["consumer_get", encode([self._gvr, key]), encode(result)])
        return result

    def provider_get(self, key: ObjectKey) -> Obj | None:
        result = self._inner.provider_get(key)
        self._calls.append(["provider_get", encode([self._gvr, key]), encode(result)])
        return result


class Recording:
    """A `KonnectorState` that notes every answer the shell's state gives a worker."""

    def __init__(self, inner: KonnectorState) -> None:
        self._inner = inner
        self.calls: list[Any] = []
        self.namespace = inner.namespace
        self.planner = inner.planner

    def _note(self, method: str, args: list[Any], result: Any) -> Any:
        self.calls.append([method, encode(args), encode(result)])
        return result

    def cached(self, gvr: GVR) -> list[Obj]:
        return self._note("cached", [gvr], self._inner.cached(gvr))  # type: ignore[no-any-return]

    def cached_get(self, gvr: GVR, key: ObjectKey) -> Obj | None:
        return self._note("cached_get", [gvr, key], self._inner.cached_get(gvr, key))  # type: ignore[no-any-return]

    def control_synced(self) -> bool:
        return self._note("control_synced", [], self._inner.control_synced())  # type: ignore[no-any-return]

    def verified(self, connection: str) -> str | None:
        return self._note("verified", [connection], self._inner.verified(connection))  # type: ignore[no-any-return]

    def syncer(self, gvr: GVR) -> observe.Syncer | None:
        inner = self._inner.syncer(gvr)
        if inner is None:
            self._note("syncer", [gvr], None)
            return None
        synced = inner.synced
        self._note("syncer", [gvr], {"target": inner.target, "synced": synced})
        return _RecordedSyncer(inner, self.calls, gvr, synced)


def recorded(
    item: WorkKey,
    state: KonnectorState,
    now: float,
    answer: Callable[[Ask], Any],
    send: Callable[[Send], ApiError | None],
) -> tuple[Outcome, dict[str, Any]]:
    """`worker.drive(worker.work(...))`, plus the trace record of it."""
    recording = Recording(state)
    effects: list[Any] = []

    def noted_answer(ask: Ask) -> Any:
        result = answer(ask)
        effects.append([encode(ask), encode(result)])
        return result

    def noted_send(s: Send) -> ApiError | None:
        error = send(s)
        effects.append([encode(s), encode(error)])
        return error

    outcome = worker.drive(worker.work(item, recording, now), noted_answer, noted_send)
    record = {
        "format": FORMAT,
        "key": encode_key(item),
        "now": now,
        "namespace": state.namespace,
        "state": recording.calls,
        "effects": effects,
        "outcome": encode(outcome),
    }
    return outcome, record


# -- replay ---------------------------------------------------------------------------------


@attrs.frozen
class Divergence:
    """Where a replay first differed from the record."""

    key: str
    what: str
    recorded: Any = attrs.field(repr=redacted_repr)  # a trace holds the Secrets the konnector read
    replayed: Any = attrs.field(repr=redacted_repr)

    def describe(self) -> str:
        """Where the two differ, field by field (`kbcore.diff`); both whole if one is absent."""
        head = f"{self.key}: {self.what}"
        if self.recorded is None or self.replayed is None:
            return f"{head}\n  recorded: {self.recorded}\n  replayed: {self.replayed}"
        found = diff.changes(self.recorded, self.replayed)
        lines = diff.render(found, self.recorded, self.replayed, limit=100)
        return f"{head} (recorded -> replayed)" + "".join(f"\n  {line}" for line in lines)


class _Diverged(Exception):  # noqa: N818 - a signal carrying the divergence
    def __init__(self, what: str, recorded: Any, replayed: Any) -> None:
        super().__init__(what)
        self.what, self.recorded, self.replayed = what, recorded, replayed


class _ReplayedSyncer:
    def __init__(self, state: _ReplayState, gvr: GVR, target: Any, synced: bool) -> None:
        self._state, self._gvr = state, gvr
        self.target = target
        self.synced = synced

    def consumer_get(self, key: ObjectKey) -> Obj | None:
        return self._state.answer("consumer_get", [self._gvr, key])  # type: ignore[no-any-return]

    def provider_get(self, key: ObjectKey) -> Obj | None:
        return self._state.answer("provider_get", [self._gvr, key])  # type: ignore[no-any-return]


class _ReplayState:
    def __init__(
        self,
        calls: list[Any],
        namespace: str,
        planner: Planner,
    ) -> None:
        self._calls = list(calls)
        self._next = 0
        self.namespace = namespace
        self.planner = planner

    def answer(self, method: str, args: list[Any]) -> Any:
        asked = [method, _normal(encode(args))]
        if self._next >= len(self._calls):
            raise _Diverged("the kernel read state the record does not have", None, asked)
        rec_method, rec_args, result = self._calls[self._next]
        if [rec_method, _normal(rec_args)] != asked:
            raise _Diverged("the kernel read different state", [rec_method, rec_args], asked)
        self._next += 1
        return decode(result)

    def cached(self, gvr: GVR) -> list[Obj]:
        return self.answer("cached", [gvr])  # type: ignore[no-any-return]

    def cached_get(self, gvr: GVR, key: ObjectKey) -> Obj | None:
        return self.answer("cached_get", [gvr, key])  # type: ignore[no-any-return]

    def control_synced(self) -> bool:
        return bool(self.answer("control_synced", []))

    def verified(self, connection: str) -> str | None:
        return self.answer("verified", [connection])  # type: ignore[no-any-return]

    def syncer(self, gvr: GVR) -> observe.Syncer | None:
        result = self.answer("syncer", [gvr])
        if result is None:
            return None
        return _ReplayedSyncer(self, gvr, result["target"], bool(result["synced"]))


def _normal(value: Any) -> Any:
    """Encoded values compared as JSON would store them (tuples and lists alike)."""
    return objects.fold(value, _normal_children, _normal_build)


def _normal_children(value: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    return None


def _normal_build(value: Any, pairs: list[tuple[Any, Any]] | None) -> Any:
    if pairs is None:
        return value
    return dict(pairs) if isinstance(value, dict) else [v for _, v in pairs]


def replay(
    record: Mapping[str, Any],
    *,
    planner: Planner,
) -> Divergence | None:
    """Run the kernel on one record's inputs; the first difference, or None."""
    item = decode_key(record["key"])
    name = describe_key(item)
    state = _ReplayState(record["state"], str(record.get("namespace", "")), planner)
    effects = list(record["effects"])
    gen: Generator[Effect, Any, Outcome] = worker.work(item, state, float(record["now"]))
    step = 0
    try:
        effect = next(gen)
        while True:
            mine = _normal(encode(effect))
            if step >= len(effects):
                raise _Diverged(f"effect {step + 1}: the kernel did more", None, mine)
            theirs, answer = effects[step]
            if not objects.json_equal(_normal(theirs), mine):
                raise _Diverged(f"effect {step + 1} differs", theirs, mine)
            step += 1
            effect = gen.send(decode(answer))
    except StopIteration as stop:
        outcome = _normal(encode(stop.value))
    except _Diverged as d:
        return Divergence(name, d.what, d.recorded, d.replayed)
    if step != len(effects):
        return Divergence(name, "the kernel did less", effects[step][0], None)
    if not objects.json_equal(outcome, _normal(record["outcome"])):
        return Divergence(name, "the outcome differs", record["outcome"], outcome)
    return None
