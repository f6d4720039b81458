"""What the user sees when `kubectl bind` fails: the problem, its fix, the exit status."""

from __future__ import annotations


class Failure(Exception):  # noqa: N818 - what the user sees: a problem and its fix
    """A failure to report: what went wrong and how to fix it; `code` is the exit status."""

    def __init__(self, problem: str, fix: str = "", code: int = 1) -> None:
        super().__init__(problem)
        self.problem, self.fix, self.code = problem, fix, code
