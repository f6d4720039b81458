"""The headline property: safety always, convergence once faults stop (ESR)."""

from tests.property.machine import ConvergenceMachine
from tests.property.related_machine import RelatedMachine

TestConvergence = ConvergenceMachine.TestCase
TestRelatedConvergence = RelatedMachine.TestCase
"""The same, with related resources under a hostile provider (kbcore.related T1-T7)."""
