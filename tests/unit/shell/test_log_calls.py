"""Every log call in the shells has a constant message, with the values in fields
(kbshell/ops/logs.py): a string literal as its only positional argument, so one event reads
the same in every line and log tooling can group and filter on `msg`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("kbshell", "kbsim")
LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})


def _loggers(tree: ast.Module) -> set[str]:
    """Names bound to `logging.getLogger(...)` in a module, plus `logging` itself."""
    names = {"logging"}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "getLogger"
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def log_calls(source: str) -> list[tuple[int, bool]]:
    """(line, message is constant) for each log call in `source`."""
    tree = ast.parse(source)
    loggers = _loggers(tree)
    calls = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in loggers
        ):
            continue
        args = node.args[1:] if node.func.attr == "log" else node.args  # log(level, msg)
        constant = (
            len(args) == 1 and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)
        )
        calls.append((node.lineno, constant))
    return calls


@pytest.mark.parametrize(
    "call",
    [
        'log.info("synced %s", name)',
        'log.info(f"synced {name}")',
        'log.warning("synced " + name)',
        "log.error(message)",
        'logging.info("synced %s", name)',
        'log.log(logging.INFO, "synced %s", name)',
    ],
)
def test_the_check_catches_a_formatted_message(call: str) -> None:
    source = f'import logging\nlog = logging.getLogger("x")\n{call}\n'
    assert log_calls(source) == [(3, False)]


def test_the_check_accepts_a_constant_message_with_fields() -> None:
    source = 'import logging\nlog = logging.getLogger("x")\nlog.info("synced", extra={"n": 1})\n'
    assert log_calls(source) == [(3, True)]


def test_every_log_call_in_the_shells_has_a_constant_message() -> None:
    formatted, seen = [], 0
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for line, constant in log_calls(path.read_text()):
                seen += 1
                if not constant:
                    formatted.append(f"{path.relative_to(REPO)}:{line}")
    assert seen >= 15, f"found only {seen} log calls: is the check still finding them?"
    assert not formatted, "log calls formatting values into the message: " + ", ".join(formatted)
