"""The kubectl-bind plugin as users install it: the zipapp, its krew archive and manifest.

What users rely on:
 - the zipapp runs on the system's own python3 in isolated mode with no site-packages
   (`python3 -I -S`): everything it imports comes from the zipapp or the standard library, and
   it prints what the installed console script prints;
 - the build is reproducible: two builds give the same bytes, so the manifest's sha256 is that
   of the one archive published for every platform;
 - the manifest passes krew's own validator, and krew itself (`kubectl krew install --manifest
   --archive`, which checks the sha256) installs it on each of the four platforms; a manifest
   whose sha256 is not the archive's is refused;
 - kubectl finds the installed plugin (`kubectl plugin list`) and runs it as `kubectl bind`.

krew and its validator come from hack/krew/build.sh (`make krewvalidate`), kubectl from the
Kubernetes build (`make k8sbin`); both are prerequisites of `make test`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.harness.clusters import build_binaries

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "build_plugin.py"
KREW = ROOT / "hack" / "krew" / "build.sh"
# The interpreter the venv was made from: the system's python3, with none of the venv's packages.
SYSTEM_PYTHON = Path(sys.base_prefix) / "bin" / "python3"
PLATFORMS = {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}
# A PATH with the system's commands only: no venv, so nothing of the venv can leak in.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def build(out: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BUILD), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build(out)
    return out


@pytest.fixture(scope="module")
def krew_bin() -> Path:
    done = subprocess.run(["bash", str(KREW)], capture_output=True, text=True, timeout=900,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def system_run(*argv: str, cwd: Path, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": SYSTEM_PATH, "HOME": str(cwd), **(env or {})},
    )  # fmt: skip


def isolated(zipapp: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The zipapp on the system's python3: isolated (-I: no PYTHON* variables, no user site, no
    script directory on sys.path beyond the zipapp) and without site-packages (-S)."""
    return system_run(str(SYSTEM_PYTHON), "-I", "-S", str(zipapp), *args, cwd=cwd)


def test_the_system_python_is_not_the_venv() -> None:
    assert SYSTEM_PYTHON.is_file()
    assert sys.prefix != sys.base_prefix, "the tests run in the project's venv"
    version = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert version.strip() >= "(3, 11)"


def test_build_is_reproducible(dist: Path, tmp_path: Path) -> None:
    build(tmp_path)
    for name in ("kubectl-bind", "kubectl-bind.tar.gz", "krew/bind.yaml"):
        assert (tmp_path / name).read_bytes() == (dist / name).read_bytes(), name


def test_zipapp_is_pure_python_sorted_and_timeless(dist: Path) -> None:
    zipapp = dist / "kubectl-bind"
    assert zipapp.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(zipapp, os.X_OK)
    with zipfile.ZipFile(zipapp) as z:
        infos = z.infolist()
        listing = z.read("_vendor/VENDORED.txt").decode()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".pyc", ".dylib"))]
    assert not compiled, compiled
    assert "__main__.py" in names and "kbshell/bind/__init__.py" in names
    # The URL flow's login needs only the standard library: nothing compiled to vendor for it.
    assert "kbshell/bind/login.py" in names
    assert not any(n.startswith(("kbsim/", "tests/")) for n in names)
    # The project's own data files are in it (importlib.resources reads them from the zip).
    for path in sorted((ROOT / "kbshell").rglob("*")) + sorted((ROOT / "kbcore").rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and "__pycache__" not in rel:
            assert rel in names, rel
    # Every runtime dependency is listed, with its version; the ones with no pure-Python form
    # say so (tools/plugin_stubs/README.md).
    assert "kubernetes==" in listing and "pyyaml==" in listing
    assert "pydantic-core==" in listing and "LEFT OUT" in listing


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_plugin", BUILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_compiled_dependency_without_a_fallback_fails_the_build() -> None:
    """cryptography (installed here for the backend's tests) is Rust with no pure form: were it
    a CLI dependency, the build would stop and say so rather than ship it half."""
    builder = load_builder()
    assert "cryptography" not in builder.PURE_FALLBACK | builder.NO_PURE_FORM
    with pytest.raises(SystemExit, match="cryptography has compiled modules"):
        list(builder.vendored([metadata.distribution("cryptography")]))
    # The ones the CLI has now are all decided on.
    for dist in builder.closure(builder.requirements(builder.project())):
        name = builder.canonicalize_name(dist.metadata["Name"])
        if any(f.suffix in (".so", ".pyd") for f in dist.files or []):
            assert name in builder.PURE_FALLBACK | builder.NO_PURE_FORM, name


def test_runs_on_the_system_python_alone(dist: Path, tmp_path: Path) -> None:
    zipapp = dist / "kubectl-bind"
    done = isolated(zipapp, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage: kubectl bind" in done.stdout or "usage: kubectl-bind" in done.stdout
    # Every module the CLI imports (its whole import graph, not just --help's) comes from the
    # zipapp or the standard library: nothing from any site-packages, no compiled extension
    # other than the standard library's own.
    probe = (
        "import sys, sysconfig\n"
        f"sys.path.insert(0, {str(zipapp)!r})\n"
        "import kbshell.bind, kbshell.client, yaml\n"
        # The vendored distributions whose compiled speedups were dropped import their
        # pure-Python twins (tools/build_plugin.py, PURE_FALLBACK).
        "import aiohttp, charset_normalizer, frozenlist, multidict, propcache, yarl\n"
        # The installer reads the chart's rendering from the package (importlib.resources),
        # here from inside the zip.
        "import kbshell.install\n"
        "assert len(kbshell.install.rendered_manifests()) > 5\n"
        "stdlib = (sysconfig.get_paths()['stdlib'], sysconfig.get_paths()['platstdlib'])\n"
        "bad = sorted(n for n, m in sys.modules.items()\n"
        "             if (f := getattr(m, '__file__', None)) and not f.startswith(\n"
        f"                 ({str(zipapp)!r},) + stdlib) or 'site-packages' in (f or ''))\n"
        "print(bad, yaml.__with_libyaml__, 'site' in sys.modules)\n"
    )
    done = system_run(str(SYSTEM_PYTHON), "-I", "-S", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] False False", done.stdout


def test_rbac_is_what_the_installed_cli_prints(dist: Path, tmp_path: Path) -> None:
    """`rbac` needs no cluster; the zipapp's pure-Python YAML prints the same bytes as the venv's
    console script with libyaml."""
    args = ("rbac", "--api", "widgets.example.org", "--related", "secrets:FromProvider")
    done = isolated(dist / "kubectl-bind", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    installed = subprocess.run([str(Path(sys.executable).parent / "kubectl-bind"), *args],
                               capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout == installed.stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(done.stdout) if d]
    assert "ClusterRole" in kinds


def test_usage_error_is_exit_2_without_a_traceback(dist: Path, tmp_path: Path) -> None:
    done = isolated(dist / "kubectl-bind", "--no-such-flag", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_archive_and_manifest(dist: Path) -> None:
    archive = (dist / "kubectl-bind.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert set(members) == {"kubectl-bind", "LICENSE"}
        assert members["kubectl-bind"].mode == 0o755
        extracted = tf.extractfile("kubectl-bind")
        assert extracted is not None
        assert extracted.read() == (dist / "kubectl-bind").read_bytes()
        assert all(m.mtime == 0 and m.uid == 0 and not m.uname for m in members.values())
    manifest = yaml.safe_load((dist / "krew" / "bind.yaml").read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "bind"
    spec = manifest["spec"]
    assert spec["version"].startswith("v") and spec["shortDescription"] and spec["description"]
    assert spec["homepage"].startswith("https://")
    platforms = spec["platforms"]
    selectors = {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"])
                 for p in platforms}  # fmt: skip
    assert selectors == PLATFORMS and len(platforms) == len(PLATFORMS)
    sha = hashlib.sha256(archive).hexdigest()
    for p in platforms:
        assert p["bin"] == "kubectl-bind"
        assert p["sha256"] == sha
        assert p["uri"].startswith("https://") and p["uri"].endswith(".tar.gz")
    assert "{{" not in (dist / "krew" / "bind.yaml").read_text()


def test_krew_validates_the_manifest(dist: Path, krew_bin: Path) -> None:
    done = subprocess.run(
        [str(krew_bin / "validate-krew-manifest"), "-manifest", str(dist / "krew" / "bind.yaml"),
         "-skip-install"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no overlapping spec.platform[].selector" in done.stderr


def krew_install(krew_bin: Path, manifest: Path, archive: Path, root: Path, os_: str,
                 arch: str) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [str(krew_bin / "kubectl-krew"), "install", f"--manifest={manifest}",
         f"--archive={archive}"],
        env={"PATH": SYSTEM_PATH, "HOME": str(root), "KREW_ROOT": str(root / "krew"),
             "KREW_OS": os_, "KREW_ARCH": arch},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("os_", "arch"), sorted(PLATFORMS))
def test_krew_installs_it(dist: Path, krew_bin: Path, tmp_path: Path, os_: str, arch: str) -> None:
    done = krew_install(krew_bin, dist / "krew" / "bind.yaml", dist / "kubectl-bind.tar.gz",
                        tmp_path, os_, arch)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    installed = tmp_path / "krew" / "bin" / "kubectl-bind"
    assert installed.read_bytes() == (dist / "kubectl-bind").read_bytes()
    store = installed.resolve().parent
    assert (store / "LICENSE").is_file()


def test_krew_refuses_a_wrong_sha256(dist: Path, krew_bin: Path, tmp_path: Path) -> None:
    good = (dist / "krew" / "bind.yaml").read_text()
    sha = hashlib.sha256((dist / "kubectl-bind.tar.gz").read_bytes()).hexdigest()
    bad = tmp_path / "bind.yaml"
    bad.write_text(good.replace(sha, hashlib.sha256(b"another archive").hexdigest()))
    done = krew_install(krew_bin, bad, dist / "kubectl-bind.tar.gz", tmp_path, "linux", "amd64")
    assert done.returncode != 0
    assert "checksum" in (done.stdout + done.stderr).lower()
    assert not (tmp_path / "krew" / "bin" / "kubectl-bind").exists()


def test_kubectl_finds_and_runs_the_plugin(dist: Path, krew_bin: Path, tmp_path: Path) -> None:
    done = krew_install(krew_bin, dist / "krew" / "bind.yaml", dist / "kubectl-bind.tar.gz",
                        tmp_path, "linux", "amd64")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    kubectl = build_binaries() / "kubectl"
    bin_dir = tmp_path / "krew" / "bin"
    env = {"PATH": f"{bin_dir}:{SYSTEM_PATH}", "KUBECONFIG": str(tmp_path / "none")}
    listed = system_run(str(kubectl), "plugin", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert str(bin_dir / "kubectl-bind") in listed.stdout
    assert "warning" not in (listed.stdout + listed.stderr).lower()
    ran = system_run(str(kubectl), "bind", "rbac", "--api", "widgets.example.org", cwd=tmp_path,
                     env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "kind: ClusterRole" in ran.stdout
