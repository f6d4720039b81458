"""The docs cannot drift from the code: every condition type and reason the kernel writes, every
konnector flag (with its default) and every metric the konnector exports appears in the user
guide; every `kube-bind-backend` flag and metric in docs/service-layer.md. Adding one without documenting it fails here. And the repository is self-contained:
nothing in it points at a document outside it.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import kbcore
from kbcore.api import conditions
from kbcore.sync import instance
from kbshell.backend.main import build_parser as build_backend_parser
from kbshell.backend.metrics import GatewayMetrics
from kbshell.main import build_parser
from kbshell.ops.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
USER_GUIDE = ROOT / "docs" / "user-guide.md"
SERVICE_LAYER = ROOT / "docs" / "service-layer.md"


@pytest.fixture(scope="module")
def guide() -> str:
    return USER_GUIDE.read_text()


def mentioned(word: str, text: str) -> bool:
    """`word` appears as code (`Word`), so prose that happens to contain it does not count."""
    return f"`{word}`" in text


# --- condition types and reasons ----------------------------------------------------------------


def kernel_modules() -> Iterator[ModuleType]:
    for info in pkgutil.walk_packages(kbcore.__path__, "kbcore."):
        yield importlib.import_module(info.name)


class _UnresolvedError(Exception):
    pass


def _resolve(node: ast.expr, module: ModuleType) -> Any:
    """The value of a constant, a module-level name or a dotted name (`c.READY`) in `module`;
    _UnresolvedError for anything computed at run time (a local variable, a subscript)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in vars(module):
            return vars(module)[node.id]
        raise _UnresolvedError(node.id)
    if isinstance(node, ast.Attribute):
        return getattr(_resolve(node.value, module), node.attr)
    raise _UnresolvedError(ast.dump(node))


def written_conditions() -> dict[str, set[str]]:
    """Condition types and reasons at every place the kernel writes one, as module and line:

    - `Conditions.set(type, status, reason, message)` (the only writer of status conditions);
    - `Refusal(reason, message)` (schema refusals, which become conditions);
    - `EmitEvent(..., reason, message)` (event reasons).
    A reason computed at run time (a variable) is covered by the constants test below."""
    found: dict[str, set[str]] = {}
    for module in kernel_modules():
        source = Path(module.__file__ or "").read_text()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "set" and len(node.args) == 4:
                args = [node.args[0], node.args[2]]
            elif name == "Refusal" and node.args:
                args = [node.args[0]]
            elif name == "EmitEvent" and len(node.args) >= 5:
                args = [node.args[4]]
            else:
                continue
            for arg in args:
                try:
                    value = _resolve(arg, module)
                except _UnresolvedError:
                    continue
                if isinstance(value, str):
                    found.setdefault(value, set()).add(f"{module.__name__}:{node.lineno}")
    return found


def condition_constants() -> dict[str, str]:
    """Every condition type and reason declared in `kbcore.api.conditions` (UPPER_CASE str)."""
    return {k: v for k, v in vars(conditions).items() if k.isupper() and isinstance(v, str)}


def test_every_condition_constant_is_documented(guide: str) -> None:
    missing = {k: v for k, v in condition_constants().items() if not mentioned(v, guide)}
    assert not missing, f"document these in {USER_GUIDE.name}: {missing}"


def test_every_condition_the_kernel_writes_is_documented(guide: str) -> None:
    """The konnector's conditions in the user guide; the provider-side service layer's
    (`kbcore.service`: the issuer writes them on Exports, Grants and claims) in its own doc."""
    written = written_conditions()
    # The scan must see the writers, or it would pass by finding nothing.
    assert {conditions.READY, conditions.SECRET_NOT_FOUND, conditions.FOREIGN_CRD} <= set(written)
    assert {"Issued", "HeartbeatExpired", "NamespaceTaken"} <= set(written)
    service = SERVICE_LAYER.read_text()
    missing = {}
    for value, where in written.items():
        konnector = [w for w in where if not w.startswith("kbcore.service.")]
        if (konnector and not mentioned(value, guide)) or (
            len(konnector) < len(where) and not mentioned(value, service)
        ):
            missing[value] = sorted(where)
    assert not missing, f"document these in {USER_GUIDE.name} / {SERVICE_LAYER.name}: {missing}"


def test_every_conflict_reason_is_documented(guide: str) -> None:
    """The conflict annotation's values (and event reasons) on consumer objects."""
    for reason in instance.CONFLICT_REASON.values():
        assert mentioned(reason, guide), reason


# --- flags --------------------------------------------------------------------------------------


def long_flags(parser: argparse.ArgumentParser | None = None) -> list[argparse.Action]:
    return [
        a
        for a in (parser or build_parser())._actions
        if any(s.startswith("--") for s in a.option_strings) and a.dest != "help"
    ]


def _flag(action: argparse.Action) -> str:
    return next(s for s in action.option_strings if s.startswith("--"))


def _default(action: argparse.Action) -> str | None:
    d = action.default
    if d is None or d is False or d == []:
        return None
    return f"{d:g}" if isinstance(d, float) else str(d)


def test_parser_has_flags() -> None:
    assert {_flag(a) for a in long_flags()} >= {"--kubeconfig", "--namespace", "--record"}


@pytest.mark.parametrize("action", long_flags(), ids=_flag)
def test_every_flag_is_documented_with_its_default(action: argparse.Action, guide: str) -> None:
    flag = _flag(action)
    rows = [line for line in guide.splitlines() if re.search(rf"`{re.escape(flag)}[ `]", line)]
    assert rows, f"{flag} is not in {USER_GUIDE.name}"
    default = _default(action)
    if default is not None:
        assert any(f"`{default}`" in row for row in rows), (
            f"{flag}: its default `{default}` is not on a line that documents it"
        )


@pytest.mark.parametrize("action", long_flags(build_backend_parser()), ids=_flag)
def test_every_backend_flag_is_documented_with_its_default(action: argparse.Action) -> None:
    text = SERVICE_LAYER.read_text()
    flag = _flag(action)
    rows = [line for line in text.splitlines() if re.search(rf"`{re.escape(flag)}[ `]", line)]
    assert rows, f"kube-bind-backend {flag} is not in {SERVICE_LAYER.name}"
    default = _default(action)
    if default is not None:
        assert any(f"`{default}`" in row for row in rows), (
            f"{flag}: its default `{default}` is not on a line that documents it"
        )


# --- metrics ------------------------------------------------------------------------------------


def _scraped(text: str) -> list[str]:
    names = re.findall(r"^# TYPE (\S+) \S+$", text, re.M)
    created = {
        n for n in names if n.endswith("_created") and {n[:-8], n[:-8] + "_total"} & set(names)
    }
    return [n for n in names if n not in created]


def test_every_backend_metric_is_documented() -> None:
    names = _scraped(GatewayMetrics().render().decode())
    assert "kubebind_gateway_binds_total" in names and "kubebind_backend_build_info" in names
    text = SERVICE_LAYER.read_text()
    missing = [n for n in names if not mentioned(n, text)]
    assert not missing, f"document these metrics in {SERVICE_LAYER.name}: {missing}"


def exported_metrics() -> list[str]:
    """Metric names as scraped (`# TYPE` lines: counters end in `_total`, Info in `_info`),
    without the `<name>_created` timestamps prometheus_client adds to counters and histograms
    (the guide mentions those once)."""
    text = Metrics(controllers=("konnector",), queues=("konnector",)).render().decode()
    names = re.findall(r"^# TYPE (\S+) \S+$", text, re.M)
    created = {
        n for n in names if n.endswith("_created") and {n[:-8], n[:-8] + "_total"} & set(names)
    }
    return [n for n in names if n not in created]


def test_every_metric_is_documented(guide: str) -> None:
    names = exported_metrics()
    assert "workqueue_depth" in names and "kubebind_build_info" in names
    missing = [n for n in names if not mentioned(n, guide)]
    assert not missing, f"document these metrics in {USER_GUIDE.name}: {missing}"


# --- the threat model ---------------------------------------------------------------------------

THREAT_MODEL = ROOT / "docs" / "threat-model.md"


def test_the_threat_model_names_every_invariant_and_only_what_exists() -> None:
    """Each kbsim invariant hunts for a "never" of the threat model, and every scenario, test
    and kbcore module the threat model cites exists: a renamed test or scenario fails here."""
    from kbsim.invariants import INVARIANTS

    text = THREAT_MODEL.read_text()
    assert [i for i in INVARIANTS if not mentioned(i, text)] == []
    scenarios = set(re.findall(r"`(hostile-[a-z0-9-]+)`", text))
    missing = [s for s in sorted(scenarios) if not (ROOT / "examples/scenarios" / s).is_dir()]
    assert missing == []
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    tests = set(re.findall(r"\b(test_[a-z0-9_]*[a-z0-9])\b", text))
    modules = {t for t in tests if any((ROOT / "tests").rglob(f"{t}.py"))}  # test files
    assert [t for t in sorted(tests - modules) if f"def {t}(" not in sources] == []
    for cited in set(re.findall(r"`(kbcore(?:\.[a-z_]+)+)", text)):
        module, _, name = cited.rpartition(".")
        try:
            importlib.import_module(cited)
        except ModuleNotFoundError:  # a function or constant of the module: it must exist
            assert hasattr(importlib.import_module(module), name), cited


# --- nothing points outside the repository --------------------------------------------------------

# Built from pieces so that this file does not match itself.
OUTSIDE_POINTERS = [
    re.compile(re.escape(".." + "/shared")),  # the workspace next to the checkout
    re.compile(re.escape("shared" + "/spec")),
    re.compile(r"\bspec/[\w.-]+\.md\b"),  # a specification file the repository does not hold
    re.compile(re.escape("DESIGN" + ".md")),  # the design lives in docs/design.md
    re.compile(re.escape("seeds" + "/")),
    re.compile(chr(0xA7)),  # section sign: "spec <section>" citations of an outside document
    re.compile(re.escape("/work" + "/")),  # absolute paths of the machine the code was written on
]
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def tracked_files() -> list[Path]:
    """The files of the repository: `git ls-files`, or every file outside tool caches when this
    is not a git checkout (an unpacked source archive)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        return [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        return [
            p
            for p in ROOT.rglob("*")
            if p.is_file() and not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)
        ]


def outside_pointers(text: str) -> list[str]:
    return [m.group(0) for pattern in OUTSIDE_POINTERS for m in pattern.finditer(text)]


def test_the_detector_finds_each_kind_of_outside_pointer() -> None:
    samples = [
        "see " + ".." + "/shared/DESIGN" + ".md",
        "background: spec" + "/real-apiserver.md",
        "(spec " + chr(0xA7) + "3.2)",
        "the " + "seeds" + "/ directory",
    ]
    assert all(outside_pointers(s) for s in samples)
    assert outside_pointers('docs/design.md, "Decisions"; kube-bind v2; spec: {size: large}') == []


def test_nothing_in_the_repository_points_outside_it() -> None:
    """Readers and code comments cite the project's own docs (docs/design.md and the others), never
    a document only the authors' workspace holds."""
    files = tracked_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"README.md", "docs/design.md", "kbcore/sync/instance.py"} <= names
    found = {}
    for path in files:
        if not path.is_file():  # deleted in the work tree but still in the index
            continue
        hits = outside_pointers(path.read_bytes().decode("utf-8", "replace"))
        if hits:
            found[path.relative_to(ROOT).as_posix()] = sorted(set(hits))
    assert found == {}, (
        "cite docs/design.md (or another page of docs/) instead of these outside pointers"
    )
