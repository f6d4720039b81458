"""Status written by the control-plane kernels: conditions read tolerantly, set by
SetStatusCondition rules, and an `UpdateStatus` planned only when something changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kbcore import objects as o
from kbcore.actions import UpdateStatus
from kbcore.api.conditions import find_condition, set_condition
from kbcore.api.convert import InvalidObject, structure, unstructure
from kbcore.api.types import Condition, ConditionStatus
from kbcore.objects import ObjectRef


def read_conditions(value: Any) -> tuple[Condition, ...]:
    """The well-formed conditions in `value` (a status `conditions` list); others are dropped,
    since a hostile or stale writer must not make the kernel fail."""
    out: list[Condition] = []
    for item in value if isinstance(value, list) else []:
        try:
            out.append(structure(item, Condition))
        except InvalidObject:
            continue
    return tuple(out)


class Conditions:
    """A condition list being rewritten during one reconcile of an object of `generation`."""

    def __init__(self, current: Any, generation: int, now: str) -> None:
        self.items = read_conditions(current)
        self.generation = generation
        self.now = now

    def set(self, type_: str, status: bool, reason: str, message: str) -> None:
        new = Condition(
            type=type_,
            status=ConditionStatus.TRUE if status else ConditionStatus.FALSE,
            reason=reason,
            message=message[:32768],
            observed_generation=self.generation,
        )
        self.items = set_condition(self.items, new, self.now)

    def remove(self, type_: str) -> None:
        """Drop the condition of type `type_`, if any (`meta.RemoveStatusCondition`)."""
        self.items = tuple(c for c in self.items if c.type != type_)

    def is_true(self, type_: str) -> bool:
        c = find_condition(self.items, type_)
        return c is not None and c.status == ConditionStatus.TRUE

    def to_json(self) -> list[dict[str, Any]]:
        return [unstructure(c) for c in self.items]


def status_update(obj: Mapping[str, Any], target: ObjectRef, status: o.Obj) -> UpdateStatus | None:
    """An UpdateStatus writing `status` onto `obj`, or None when it already has exactly that."""
    if o.json_equal(obj.get("status") or {}, status):
        return None
    body = o.deepcopy(dict(obj))
    body["status"] = status
    return UpdateStatus(target, body)


def condition_is_true(obj: Mapping[str, Any], type_: str) -> bool:
    status = obj.get("status")
    conds = read_conditions(status.get("conditions") if isinstance(status, Mapping) else None)
    c = find_condition(conds, type_)
    return c is not None and c.status == ConditionStatus.TRUE
