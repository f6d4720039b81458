"""Oracle adequacy: the convergence property fails on every deliberately broken kernel.

If one of these starts passing, the property suite has lost the power to catch that bug class.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from kbcore.control import related
from tests.property.machine import ConvergenceMachine, SchemaChangeMachine
from tests.property.related_machine import RelatedMachine
from tests.property.seeded_bugs import (
    FINDING_BUDGET,
    KERNEL_PATCHES,
    RELATED_SEEDED_BUGS,
    SCHEMA_SEEDED_BUGS,
    SEEDED_BUGS,
)


def assert_caught(
    machine: type[RuleBasedStateMachine],
    mutant: str,
    symptom: str,
    budget: settings = FINDING_BUDGET,
    **attributes: Any,
) -> None:
    """The machine fails with `symptom` against the mutant (already patched in, or given as
    class `attributes`). A class per mutant, and no example database: a failing example saved
    for one mutant must not be replayed against another and make it look caught."""
    cls = type(f"Mutant_{mutant}", (machine,), attributes)
    with pytest.raises(AssertionError, match=symptom):
        run_state_machine_as_test(cls, settings=budget)


@pytest.mark.parametrize("bug", sorted(SEEDED_BUGS))
def test_property_suite_catches(bug: str) -> None:
    planner, symptom = SEEDED_BUGS[bug]
    assert_caught(ConvergenceMachine, planner.__name__, symptom, planner=staticmethod(planner))


@pytest.mark.parametrize("bug", sorted(KERNEL_PATCHES))
def test_property_suite_catches_a_broken_control_plane_rule(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, replacement, symptom = KERNEL_PATCHES[bug]
    monkeypatch.setattr(target, replacement)
    assert_caught(ConvergenceMachine, target.replace(".", "_"), symptom)


@pytest.mark.parametrize("bug", sorted(RELATED_SEEDED_BUGS))
def test_property_suite_catches_a_broken_trust_boundary(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    patches, symptom = RELATED_SEEDED_BUGS[bug]
    for name, broken in patches:
        assert callable(getattr(related, name)), name  # the rule function exists
        monkeypatch.setattr(related, name, broken)
    assert_caught(RelatedMachine, patches[0][0], symptom)


@pytest.mark.parametrize("bug", sorted(SCHEMA_SEEDED_BUGS))
def test_schema_change_property_catches(bug: str) -> None:
    patch, symptom = SCHEMA_SEEDED_BUGS[bug]
    budget = settings(FINDING_BUDGET, max_examples=400, stateful_step_count=15)
    with patch():
        assert_caught(SchemaChangeMachine, patch.__name__, symptom, budget)
