"""The invariants of provider schema changes (kbsim/invariants.py) catch the write that breaks
them: the hostile scenarios pass with the real konnector and fail, naming the write, with a
seeded bug patched in (tests/property/seeded_bugs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kbsim import scenario
from tests.property.seeded_bugs import SCHEMA_SEEDED_BUGS

SCENARIOS = Path("examples/scenarios")


@pytest.mark.parametrize(
    ("bug", "example", "invariant", "names"),
    [
        ("change gate ignores scope", "hostile-scope-change",
         "consumer-crd-immutable-fields", "changes spec.scope from 'Namespaced' to 'Cluster'"),
        ("change gate ignores stored versions", "hostile-version-removed",
         "consumer-crd-immutable-fields", "leaves stored version(s) v1 unserved"),
        ("hash claimed before the write", "hostile-version-removed",
         "bound-hash-was-written", "which its consumer CRD never carried"),
        ("shell addresses the provider by its own scope", "hostile-scope-change",
         "instance-scope-matches-provider", "is Namespaced on the consumer and Cluster on provider"),
    ],
)  # fmt: skip
def test_a_seeded_bug_breaks_the_invariant_that_states_its_rule(
    bug: str, example: str, invariant: str, names: str
) -> None:
    sc = scenario.load(SCENARIOS / example / "scenario.yaml")
    assert scenario.run(sc).invariants[invariant] == "held"
    patch, _ = SCHEMA_SEEDED_BUGS[bug]
    with patch():
        held = scenario.run(sc).invariants
    assert names in held[invariant], held[invariant]
