"""The headline property: safety always, convergence once faults stop (ESR)."""

from tests.property.machine import ConvergenceMachine

TestConvergence = ConvergenceMachine.TestCase
