"""Driving a control-plane planner the way the worker does (kbcore/runtime/worker.py): call it,
answer every read it asks for, and call it again until it needs none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from kbcore.actions import Plan
from kbcore.reads import Read


def answered(
    plan_fn: Callable[[Any], Plan], view: Any, answer: Callable[[Read], Any]
) -> tuple[Plan, dict[Read, Any]]:
    """The plan once every read is answered by `answer`, and the reads with their answers. A
    planner may not ask for a read twice, nor keep asking for more than ten rounds."""
    observed: dict[Read, Any] = {}
    for _ in range(10):
        plan = plan_fn(attrs.evolve(view, observed=dict(observed)))
        if not plan.needs:
            return plan, observed
        for r in plan.needs:
            assert r not in observed, f"asked twice for {r}"
            assert isinstance(r, Read)
            observed[r] = answer(r)
    raise AssertionError("planner kept asking for reads")
