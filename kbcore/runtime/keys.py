"""Work-queue keys: what a worker is asked to look at, one frozen value per kind.

Not to be confused with `kbcore.api.keys`, the label, annotation and finalizer names on the
objects. A key names only *what* to look at, never what was seen, so a burst of events for one
object collapses into one key on the queue (keys are hashable and compared by value). The worker
(`kbcore.runtime.worker`) dispatches on the class with `match`.

Traces store keys in the shape they always had (`to_tuple`, `from_tuple`): the kind's name
first, then the fields, e.g. `["instance", <GVR>, <ObjectKey>]`.
"""

from __future__ import annotations

from typing import Any

import attrs

from kbcore.objects import GVR, ObjectKey


@attrs.frozen
class ConnectionKey:
    """Reconcile the Connection `name` (cluster-scoped)."""

    name: str


@attrs.frozen
class BindingKey:
    """Reconcile a binding: `kind` is "ClusterBinding" (namespace "") or "Binding"."""

    kind: str
    namespace: str
    name: str


@attrs.frozen
class InstanceKey:
    """Sync one consumer object of a bound API."""

    gvr: GVR
    key: ObjectKey


@attrs.frozen
class EngageKey:
    """The engagement pass: which bound APIs are synced through which Connection."""


ENGAGE = EngageKey()

WorkKey = ConnectionKey | BindingKey | InstanceKey | EngageKey


def describe_key(item: WorkKey) -> str:
    """A key as logs and traces show it: `instance widgets.example.org default/w1`."""
    match item:
        case InstanceKey(gvr, key):
            where = f"{key.namespace}/{key.name}" if key.namespace else key.name
            return f"instance {gvr.group_resource} {where}"
        case ConnectionKey(name):
            return f"connection {name}"
        case BindingKey(kind, namespace, name):
            return " ".join(x for x in ("binding", kind, namespace, name) if x)
        case EngageKey():
            return "engage"


_TAGS: dict[type[Any], str] = {
    ConnectionKey: "connection",
    BindingKey: "binding",
    InstanceKey: "instance",
    EngageKey: "engage",
}
_CLASSES = {tag: cls for cls, tag in _TAGS.items()}


def to_tuple(item: WorkKey) -> tuple[Any, ...]:
    """The key as traces record it: its kind, then its fields in order."""
    return (_TAGS[type(item)], *attrs.astuple(item, recurse=False))


def from_tuple(value: tuple[Any, ...] | list[Any]) -> WorkKey:
    """The inverse of `to_tuple`."""
    tag, *fields = value
    cls = _CLASSES.get(tag)
    if cls is None:
        raise ValueError(f"not a work-queue key: {value!r}")
    key: WorkKey = cls(*fields)
    return key
