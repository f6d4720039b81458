"""Reflector bookkeeping: what a list or a watch event means for a cache, as pure functions.

A reflector lists a resource, then watches it from the list's resourceVersion (client-go's
Reflector + Store). The decisions it makes — which keys changed, whether an event is stale, the
resourceVersion to resume from, when to relist — live here; the shells (kbsim's in-memory
streams, kbshell's HTTP watches) hold the cache and the connection and apply the outcome.

Rules:
 1. A relist replaces the cache: keys that vanished are reported DELETED (a watch gap must not
    hide a delete), new keys ADDED, keys whose resourceVersion changed MODIFIED.
 2. A watch event at or below the cached object's resourceVersion is a duplicate or a replay:
    ignored, though it still advances the resume point.
 3. An object that stops matching the label selector is reported DELETED, as a server-side
    selector watch does.
 4. A BOOKMARK only advances the resume point. An ERROR with code 410 (Gone: the history was
    compacted) asks for a relist; any other ERROR is returned as an ApiError.
 5. The resume point never moves backwards.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from kbcore import objects as o
from kbcore.errors import ApiError
from kbcore.objects import Obj, ObjectKey
from kbcore.redaction import redacted_repr


class Change(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@attrs.frozen
class Delta:
    """One change to the cache: `new` is None for DELETED, `old` None for ADDED."""

    change: Change
    key: ObjectKey
    # A Secret's data when the cache holds Secrets: masked in the repr.
    old: Obj | None = attrs.field(repr=redacted_repr)
    new: Obj | None = attrs.field(repr=redacted_repr)


@attrs.frozen
class EventOutcome:
    """What a watch event means: a change to apply (or none), the resume point, a relist."""

    delta: Delta | None
    resource_version: str
    relist: bool = False


def rv_int(rv: str) -> int:
    """A resourceVersion as a number for ordering; unparsable ones order first."""
    try:
        return int(rv)
    except ValueError:
        return 0


def later(a: str, b: str) -> str:
    """The later of two resourceVersions ("" is the earliest)."""
    if not a:
        return b
    if not b:
        return a
    return max(a, b, key=rv_int)


def relist(cache: Mapping[ObjectKey, Obj], items: list[Obj]) -> tuple[Delta, ...]:
    """Rule 1: the changes that turn `cache` into exactly `items`."""
    fresh = {o.key_of(i): i for i in items}
    deltas = [Delta(Change.DELETED, k, old, None) for k, old in cache.items() if k not in fresh]
    for key, new in fresh.items():
        old = cache.get(key)
        if old is None:
            deltas.append(Delta(Change.ADDED, key, None, new))
        elif o.resource_version(old) != o.resource_version(new):
            deltas.append(Delta(Change.MODIFIED, key, old, new))
    return tuple(deltas)


def on_event(
    cache: Mapping[ObjectKey, Obj],
    resource_version: str,
    event: Mapping[str, Any],
    selected: Callable[[Obj], bool],
) -> EventOutcome:
    """Rules 2-5 for one watch event; raises ApiError for an ERROR event other than 410."""
    kind = event.get("type")
    raw = event.get("object")
    obj: Obj = raw if isinstance(raw, dict) else {}
    if kind == "ERROR":
        code = obj.get("code")
        if code == 410:
            return EventOutcome(None, resource_version, relist=True)
        raise ApiError(
            int(code) if isinstance(code, int) else 500,
            str(obj.get("reason", "")),
            str(obj.get("message", "watch error")),
        )
    rv = o.resource_version(obj)
    resume = later(resource_version, rv)
    if kind == "BOOKMARK":
        return EventOutcome(None, resume)
    key = o.key_of(obj)
    old = cache.get(key)
    stale = old is not None and bool(rv) and rv_int(rv) <= rv_int(o.resource_version(old))
    if kind != "DELETED" and stale:
        return EventOutcome(None, resume)
    if kind == "DELETED" or not selected(obj):
        delta = Delta(Change.DELETED, key, old, None) if old is not None else None
        return EventOutcome(delta, resume)
    change = Change.ADDED if old is None else Change.MODIFIED
    return EventOutcome(Delta(change, key, old, obj), resume)
