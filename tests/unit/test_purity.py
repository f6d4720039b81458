"""kbcore is pure in effects: no clock, randomness, files, processes or console, checked per call.

The import contract (pyproject.toml) bans the modules that are nothing but effects. A module
kbcore may import can still hold one effectful function (`datetime.datetime.now` beside the pure
`fromisoformat`), and import-linter cannot ban a function; this scan of kbcore's source can.
It resolves each name through the module's imports (`import datetime as dt`, `from datetime
import date`) and fails on any use, called or passed on, of a banned function, and on a call
of deepdiff with a parameter that starts a thread, processes or logging.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KBCORE = Path(__file__).resolve().parents[2] / "kbcore"

# Dotted names (as imported) whose use is an effect. A name banned here ends in its own name
# or is a prefix of the banned use: `time` bans `time.time`, `time.monotonic`, ...
BANNED = {
    # the clock, and the local time zone (an environment read)
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.datetime.fromtimestamp",
    "datetime.datetime.utcfromtimestamp",
    "datetime.date.today",
    "datetime.date.fromtimestamp",
    "time",
    # randomness
    "random",
    "secrets",
    "uuid.uuid1",
    "uuid.uuid4",
    "os.urandom",
    # the process, its environment and its files
    "os",
    "sys",
    "subprocess",
    "builtins.open",
    "builtins.print",
    "builtins.input",
    "builtins.breakpoint",
    "builtins.exec",
    "builtins.eval",
    "builtins.__import__",
    "importlib",
    # YAML beyond plain data: the other loaders construct Python objects
    "yaml.load",
    "yaml.load_all",
    "yaml.full_load",
    "yaml.full_load_all",
    "yaml.unsafe_load",
    "yaml.unsafe_load_all",
    "yaml.dump",
    "yaml.dump_all",
}
# Methods that read the local time zone whatever object they are called on, when called bare.
BARE_METHODS = {"astimezone", "timetuple", "ctime"}
# deepdiff is pure as kbcore.diff calls it; these parameters start a timer thread, processes, or
# logging.
DEEPDIFF_EFFECTS = {
    "log_frequency_in_sec",
    "progress_logger",
    "multiprocessing",
    "multiprocessing_workers",
    "multiprocessing_threshold",
    "max_diffs",
    "max_passes",
}


def banned_uses(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: name` for every use of a banned function in `source`."""
    tree = ast.parse(source, filename)
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.partition(".")[0]
                imported[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found: list[str] = []

    def report(node: ast.expr, name: str) -> None:
        found.append(f"{filename}:{node.lineno}: {name}")

    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and not node.args
            and not node.keywords
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in BARE_METHODS
        ):
            report(node, f"{node.func.attr}() (the local time zone)")
        if isinstance(node, ast.Call) and _resolve(node.func, imported).startswith("deepdiff."):
            for kw in node.keywords:
                if kw.arg in DEEPDIFF_EFFECTS:
                    report(node, f"deepdiff's {kw.arg}= (a thread, processes or logging)")
        if not isinstance(node, ast.Attribute | ast.Name) or not isinstance(node.ctx, ast.Load):
            continue
        dotted = _dotted(node)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head in imported:
            full = imported[head] + (f".{rest}" if rest else "")
        elif isinstance(node, ast.Name):
            full = f"builtins.{head}"
        else:
            continue
        if any(full == b or full.startswith(b + ".") for b in BANNED):
            report(node, full)
    return sorted(set(found))


def _resolve(node: ast.expr, imported: dict[str, str]) -> str:
    dotted = _dotted(node) or ""
    head, _, rest = dotted.partition(".")
    return imported.get(head, head) + (f".{rest}" if rest else "")


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def test_kbcore_uses_no_clock_randomness_files_or_console() -> None:
    files = sorted(KBCORE.rglob("*.py"))
    assert len(files) > 20, f"kbcore not found at {KBCORE}"
    found = [hit for f in files for hit in banned_uses(f.read_text(), str(f.relative_to(KBCORE)))]
    assert found == [], "kbcore must be given time and data as values:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import datetime\nt = datetime.datetime.now()",
        "import datetime as dt\nt = dt.datetime.now(dt.UTC)",
        "from datetime import datetime\nt = datetime.utcnow()",
        "from datetime import date\nd = date.today()",
        "from datetime import datetime as D\nclock = D.now",  # passed on, not called
        "from datetime import datetime\nt = datetime.fromtimestamp(0)",
        "import time\nt = time.monotonic()",
        "from time import time\nt = time()",
        "import uuid\nu = uuid.uuid4()",
        "import random\nx = random.random()",
        "import os\nv = os.environ['HOME']",
        "text = open('f').read()",
        "print('hello')",
        "import yaml\ndoc = yaml.load(text, Loader=yaml.Loader)",
        "local = instant.astimezone()",
        "from deepdiff import DeepDiff\nd = DeepDiff(a, b, log_frequency_in_sec=1)",
    ],
)
def test_the_scan_finds_each_kind_of_effect(source: str) -> None:
    assert banned_uses(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import datetime as dt\nt = dt.datetime.fromisoformat('2024-01-02T03:04:05Z')",
        "import datetime as dt\nt = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=5)",
        "import datetime as dt\nu = instant.astimezone(dt.UTC)",
        "import yaml\ndoc = yaml.safe_load(text)\nout = yaml.safe_dump(doc)",
        "def f(now: float) -> float:\n    return now + 1",
        "import hashlib\nh = hashlib.sha256(b'x').hexdigest()",
        "from deepdiff import DeepDiff\nd = DeepDiff(a, b, view='tree', verbose_level=2)",
    ],
)
def test_the_scan_allows_pure_functions_of_the_same_modules(source: str) -> None:
    assert banned_uses(source) == []
