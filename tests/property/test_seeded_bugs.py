"""Oracle adequacy: the convergence property fails on every deliberately broken kernel.

If one of these starts passing, the property suite has lost the power to catch that bug class.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

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


@pytest.mark.parametrize("bug", sorted(SEEDED_BUGS))
def test_property_suite_catches(bug: str) -> None:
    planner, symptom = SEEDED_BUGS[bug]

    # A class per mutant, and no example database: a failing example saved for one mutant must
    # not be replayed against another and make it look caught.
    mutant = type(f"Mutant_{planner.__name__}", (ConvergenceMachine,), {})
    mutant.planner = staticmethod(planner)
    with pytest.raises(AssertionError, match=symptom):
        run_state_machine_as_test(mutant, settings=FINDING_BUDGET)


@pytest.mark.parametrize("bug", sorted(KERNEL_PATCHES))
def test_property_suite_catches_a_broken_control_plane_rule(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, replacement, symptom = KERNEL_PATCHES[bug]
    monkeypatch.setattr(target, replacement)
    mutant = type(f"Mutant_{target.replace('.', '_')}", (ConvergenceMachine,), {})
    with pytest.raises(AssertionError, match=symptom):
        run_state_machine_as_test(mutant, settings=FINDING_BUDGET)


@pytest.mark.parametrize("bug", sorted(RELATED_SEEDED_BUGS))
def test_property_suite_catches_a_broken_trust_boundary(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    patches, symptom = RELATED_SEEDED_BUGS[bug]
    for name, broken in patches:
        assert callable(getattr(related, name)), name  # the rule function exists
        monkeypatch.setattr(related, name, broken)
    # A class per mutant (no example database either), as above.
    mutant = type(f"Mutant_{patches[0][0]}", (RelatedMachine,), {})
    with pytest.raises(AssertionError, match=symptom):
        run_state_machine_as_test(mutant, settings=FINDING_BUDGET)


@pytest.mark.parametrize("bug", sorted(SCHEMA_SEEDED_BUGS))
def test_schema_change_property_catches(bug: str) -> None:
    patch, symptom = SCHEMA_SEEDED_BUGS[bug]
    mutant = type(f"Mutant_{patch.__name__}", (SchemaChangeMachine,), {})
    budget = settings(FINDING_BUDGET, max_examples=400, stateful_step_count=15)
    with patch(), pytest.raises(AssertionError, match=symptom):
        run_state_machine_as_test(mutant, settings=budget)
