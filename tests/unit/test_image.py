"""The container image, checked without a Docker engine (there is none on the project machines).

What can be checked here is checked against the Dockerfile's text and the project itself: the
runtime stage is distroless, non-root (UID/GID 65532, as the chart's securityContext says) and
runs no shell step; its entrypoint is an absolute path and starts a module or console script
this project ships; the venv is built by the same Python minor the runtime image runs; the build
installs the project with its runtime dependencies and the backend extra (the backend chart
runs `kbshell.backend` from the same image), never the test extras; the build context
`.dockerignore` leaves holds everything the Dockerfile copies; and a wheel builds from exactly that context. Whether the
image starts is checked by the build itself (its last RUN step runs `--help`), not here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
NONROOT = 65532

# The Python minor each base image runs: Debian 12 (bookworm) ships python3.11, which is also
# what distroless/python3-debian12 carries.
DEBIAN_PYTHON = {"12": "3.11", "bookworm": "3.11"}


@attrs.frozen
class Stage:
    image: str
    name: str
    instructions: tuple[tuple[str, str], ...]

    def all(self, op: str) -> list[str]:
        return [args for o, args in self.instructions if o == op]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.all("ENV"):
            for word in shlex.split(args):
                k, sep, v = word.partition("=")
                assert sep, f"use ENV KEY=VALUE, got {args!r}"
                out[k] = v
        return out


def parse(text: str) -> list[Stage]:
    """The Dockerfile's stages: continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation"
    stages: list[Stage] = []
    for line in lines:
        op, _, args = line.partition(" ")
        op, args = op.upper(), args.strip()
        if op == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name, ()))
        else:
            assert stages, f"{op} before the first FROM"
            last = stages[-1]
            stages[-1] = attrs.evolve(last, instructions=(*last.instructions, (op, args)))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def build(stages: list[Stage], final: Stage) -> Stage:
    """The stage the runtime copies the venv from."""
    sources = [re.match(r"--from=(\S+)\s+(\S+)\s+(\S+)", args) for args in final.all("COPY")]
    froms = [m for m in sources if m]
    assert len(froms) == 1, "the runtime stage copies exactly one thing: the venv"
    stage_name, src, dst = froms[0].groups()
    assert src == dst == "/venv", "the venv keeps its path, or its scripts' shebangs break"
    by_name = {s.name: s for s in stages if s.name}
    assert stage_name in by_name, f"COPY --from={stage_name}: no such stage"
    return by_name[stage_name]


def python_minor(image: str, stage: Stage | None = None) -> str:
    """The Python minor an image runs (for a Debian stage: the one it installs and uses)."""
    repo, _, tag = image.partition("@")[0].rpartition(":")
    if repo == "python":  # python:3.11-slim-bookworm
        m = re.match(r"(\d+\.\d+)", tag)
        assert m, image
        return m.group(1)
    if repo.startswith("gcr.io/distroless/python3-debian"):
        return DEBIAN_PYTHON[repo.removeprefix("gcr.io/distroless/python3-debian")]
    if repo == "debian":  # debian:12-slim, debian:bookworm-slim
        release = tag.split("-")[0]
        minor = DEBIAN_PYTHON[release]
        assert stage is not None
        runs = " ".join(stage.all("RUN"))
        assert f"python{minor}-venv" in runs or "python3-venv" in runs, "install Debian's venv"
        assert f"python{minor} -m venv /venv" in runs or "python3 -m venv /venv" in runs
        return minor
    raise AssertionError(f"unknown base image {image!r}: add it to python_minor")


def test_runtime_is_distroless_nonroot(final: Stage) -> None:
    assert final.image.startswith("gcr.io/distroless/python3-debian12:nonroot"), final.image
    users = final.all("USER")
    assert users, "state the user explicitly: runAsNonRoot needs a numeric UID in the image"
    uid, _, gid = users[-1].partition(":")
    assert uid == str(NONROOT), "numeric UID 65532, as the chart's runAsUser"
    assert gid in ("", str(NONROOT))
    # distroless has no shell: a RUN there would fail the build.
    assert not final.all("RUN")


def test_runtime_uid_matches_the_chart() -> None:
    values = ROOT / "charts" / "konnector" / "values.yaml"

    def found(node: Any) -> list[Any]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k in ("runAsUser", "runAsGroup")] + [
                x for v in node.values() for x in found(v)
            ]
        if isinstance(node, list):
            return [x for v in node for x in found(v)]
        return []

    ids = found(yaml.safe_load(values.read_text()))
    assert ids and set(ids) == {NONROOT}, f"the chart's runAsUser/runAsGroup: {ids}"


def test_entrypoint_is_absolute_and_ships_with_the_project(final: Stage) -> None:
    (entry,) = final.all("ENTRYPOINT")
    argv = json.loads(entry)  # exec form: distroless has no shell to run the shell form
    assert isinstance(argv, list) and argv, entry
    assert argv[0].startswith("/venv/bin/"), "an absolute path into the venv"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    if argv[0] in ("/venv/bin/python3", "/venv/bin/python"):
        assert argv[1] == "-m", argv
        module = argv[2]
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin is not None, module
        source = Path(spec.origin).read_text()
        assert 'if __name__ == "__main__":' in source, f"{module} must run under -m"
        assert re.search(r"^def main\(", source, re.M), f"{module} has no main()"
        assert f"{module}:main" in scripts.values(), "the module is the konnector's entry point"
    else:
        script = argv[0].removeprefix("/venv/bin/")
        assert scripts.get(script) == "kbshell.main:main", argv


def test_build_and_runtime_python_agree(build: Stage, final: Stage) -> None:
    built = python_minor(build.image, build)
    runtime = python_minor(final.image)
    assert built == runtime, f"venv built with Python {built}, runtime is {runtime}"
    if final.image.startswith("gcr.io/distroless/"):
        # The venv's python3 is a symlink to the interpreter that built it: python:* images
        # keep theirs in /usr/local/bin, which distroless does not have; Debian's is in
        # /usr/bin, as distroless's is.
        assert build.image.startswith("debian:"), "build the venv with Debian's python3"
    env = final.env()
    assert env.get("PYTHONPATH") == f"/venv/lib/python{runtime}/site-packages"
    assert f"/venv/lib/python{runtime}/site-packages" in " ".join(build.all("RUN"))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    m = re.fullmatch(r">=\s*(\d+)\.(\d+)", requires)
    assert m, f"update this test for requires-python {requires!r}"
    assert tuple(map(int, runtime.split("."))) >= (int(m.group(1)), int(m.group(2)))


def test_read_only_root_filesystem(final: Stage) -> None:
    env = final.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1", "no .pyc writes at run time"
    assert env.get("TMPDIR", "/tmp") == "/tmp", "temporary files go to the /tmp emptyDir"
    assert not final.all("VOLUME"), "the chart mounts /tmp; the image declares no volumes"


def test_installs_the_runtime_and_backend_dependencies_only(build: Stage) -> None:
    installs = [
        cmd
        for run in build.all("RUN")
        for cmd in re.split(r"&&|;", run)
        if re.search(r"pip3? install\b", cmd) and "--upgrade pip" not in cmd
    ]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0])
    targets = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    assert targets == [".[backend]"], f"the project and its backend extra only: {installs[0]}"


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on a relative path."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            result = not negated
    return result


def dockerignore_lines() -> list[str]:
    lines = (raw.strip() for raw in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    return [
        (line.startswith("!"), _pattern(line.lstrip("!").strip("/")))
        for line in dockerignore_lines()
    ]


def build_context(dest: Path) -> None:
    """Copy the files the build context holds (tracked or not) into `dest`."""
    rules = dockerignore_rules()
    reincluded = [line[1:].strip("/") for line in dockerignore_lines() if line.startswith("!")]
    for top, dirs, files in os.walk(ROOT):
        base = Path(top).relative_to(ROOT).as_posix()
        base = "" if base == "." else base + "/"
        # Skip excluded directories (.venv, .git) unless a `!` pattern re-includes below them.
        dirs[:] = [
            d
            for d in dirs
            if not excluded(base + d, rules)
            or any(p.startswith(base + d + "/") for p in reincluded)
        ]
        for f in files:
            rel = base + f
            if not excluded(rel, rules):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, target)


def test_dockerignore_keeps_what_the_build_copies(build: Stage) -> None:
    rules = dockerignore_rules()
    for args in build.all("COPY"):
        assert not args.startswith("--from"), args
        *sources, _dest = shlex.split(args)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
            assert not excluded(src, rules), f"COPY {src}: excluded by .dockerignore"
    for kept in ("kbcore/runtime/worker.py", "kbshell/main.py", "kbsim/openapi_template.json"):
        assert not excluded(kept, rules), kept
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/unit/test_image.py"):
        assert excluded(dropped, rules), dropped
    assert excluded("kbcore/__pycache__/worker.cpython-311.pyc", rules)


def test_wheel_builds_from_the_build_context(tmp_path: Path) -> None:
    """`pip install .` in the image builds this wheel from the context `.dockerignore` leaves:
    every package file is in it, and the konnector's entry point."""
    context, out = tmp_path / "context", tmp_path / "dist"
    build_context(context)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(context)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"pip wheel failed (it needs the build backend from PyPI):\n"
                    f"{done.stdout + done.stderr}")  # fmt: skip
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = z.read(entry_points).decode()
    assert re.search(r"^konnector = kbshell\.main:main$", scripts, re.M), scripts
    for package in ("kbcore", "kbshell", "kbsim"):
        for f in (context / package).rglob("*"):
            if f.is_file():
                rel = f.relative_to(context).as_posix()
                assert rel in names, f"{rel} missing from the wheel"
    assert not any(n.startswith("tests/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the licence text"
