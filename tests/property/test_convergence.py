"""The headline property: safety always, convergence once faults stop (ESR)."""

from hypothesis import settings

from tests.property.machine import ConvergenceMachine, SchemaChangeMachine
from tests.property.related_machine import RelatedMachine

TestConvergence = ConvergenceMachine.TestCase
TestRelatedConvergence = RelatedMachine.TestCase
"""The same, with related resources under a hostile provider (kbcore.control.related T1-T7)."""

# Provider schema changes (issue 12). A step may delete and re-create a CRD and each example
# ends with two full settles: a fifth of the profile's examples, half its steps.
TestSchemaChanges = SchemaChangeMachine.TestCase
TestSchemaChanges.settings = settings(
    settings.default,
    max_examples=max(settings.default.max_examples // 5, 5),
    stateful_step_count=max((settings.default.stateful_step_count or 30) // 2, 5),
)
