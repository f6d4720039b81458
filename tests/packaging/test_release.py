"""What a release publishes, checked here: the sdist and wheel, and the image the charts run.

- `python -m build` makes an sdist and, from it, a wheel; `twine check --strict` passes both
  (the README renders on PyPI, the metadata is complete); a wheel built straight from the
  checkout has the same files with the same bytes, so the sdist holds everything the wheel is
  built from; every tracked file of the packages (data files included: what the code reads at
  run time with importlib.resources) is in the wheel.
- One image, one name: the charts' default image repository (both charts), the Dockerfile's
  title label, every `docker build -t` in the Dockerfile's comments and the docs, and every
  `--set image.repository=` in the docs name the same image; the tag the charts default to
  (their appVersion), the Dockerfile's version label and the docs' concrete tags are the
  project's version.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kbcore", "kbshell", "kbsim")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CHARTS = ("konnector", "backend")
# Where users are told how to build the image.
DOC_FILES = [ROOT / "Dockerfile", ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "charts").glob("*/README.md"))]  # fmt: skip


def python_build(out: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "-o", str(out), *args, str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist, and the wheel `python -m build` made from it."""
    out = tmp_path_factory.mktemp("release")
    python_build(out)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def tracked(*paths: str) -> list[str]:
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", *paths],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return [line for line in done.stdout.splitlines() if (ROOT / line).is_file()]


def zip_contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_twine_check_strict(dists: tuple[Path, Path]) -> None:
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_metadata_is_complete(dists: tuple[Path, Path]) -> None:
    _, wheel = dists
    files = zip_contents(wheel)
    (name,) = [n for n in files if n.endswith(".dist-info/METADATA")]
    meta = Parser().parsestr(files[name].decode())
    assert meta["Name"] == "kube-bind" and meta["Version"] == VERSION
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL", []))
    assert set(urls) >= {"Homepage", "Source"}, urls
    classifiers = meta.get_all("Classifier", [])
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in files)
    entry_points = next(v for n, v in files.items() if n.endswith("entry_points.txt")).decode()
    assert re.search(r"^kubectl-bind = kbshell\.bind:cli$", entry_points, re.M)


def test_a_wheel_from_the_checkout_equals_the_one_from_the_sdist(
    dists: tuple[Path, Path], tmp_path: Path
) -> None:
    python_build(tmp_path, "--wheel")
    (direct,) = tmp_path.glob("*.whl")
    from_sdist = zip_contents(dists[1])
    from_tree = zip_contents(direct)
    assert sorted(from_sdist) == sorted(from_tree)
    differ = [n for n in from_tree if from_tree[n] != from_sdist[n]]
    assert not differ, differ


def test_every_package_file_is_in_the_wheel_and_the_sdist(dists: tuple[Path, Path]) -> None:
    sdist, wheel = dists
    in_wheel = set(zip_contents(wheel))
    with tarfile.open(sdist) as tf:
        top = f"kube_bind-{VERSION}/"
        in_sdist = {m.name.removeprefix(top) for m in tf.getmembers() if m.isfile()}
    package_files = tracked(*PACKAGES)
    assert any(not f.endswith(".py") for f in package_files), "data files are checked too"
    for f in package_files:
        assert f in in_wheel, f"{f} missing from the wheel"
    for f in [*package_files, *tracked("crds", "charts"), "README.md", "pyproject.toml",
              "LICENSE"]:  # fmt: skip
        assert f in in_sdist, f"{f} missing from the sdist"
    assert not any(n.startswith("tests/") for n in in_wheel | in_sdist)


def dockerfile_labels() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    labels: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("LABEL "):
            for word in shlex.split(line[len("LABEL ") :]):
                key, _, value = word.partition("=")
                labels[key] = value
    return labels


def chart_image(chart: str) -> dict[str, str]:
    values = yaml.safe_load((ROOT / "charts" / chart / "values.yaml").read_text())
    image: dict[str, str] = values["image"]
    return image


def test_charts_run_the_image_the_dockerfile_builds() -> None:
    labels = dockerfile_labels()
    name = labels["org.opencontainers.image.title"]
    assert labels["org.opencontainers.image.version"] == VERSION
    repositories = {chart_image(c)["repository"] for c in CHARTS}
    assert len(repositories) == 1, f"both charts run the one image: {repositories}"
    (repository,) = repositories
    assert repository.rsplit("/", 1)[-1] == name
    for chart in CHARTS:
        meta = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())
        assert meta["appVersion"] == VERSION, f"charts/{chart}: appVersion is the project's version"
        assert chart_image(chart)["tag"] == "", f"charts/{chart}: the tag defaults to appVersion"


def test_the_installer_installs_that_image() -> None:
    """`kubectl bind --install-konnector` installs the chart's rendering with its default image."""
    rendered = yaml.safe_load_all((ROOT / "kbshell" / "data" / "konnector.yaml").read_text())
    images = {
        c["image"]
        for d in rendered
        if d and d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{chart_image('konnector')['repository']}:{VERSION}"}


def test_docs_build_and_set_that_image() -> None:
    repository = chart_image("konnector")["repository"]
    name = repository.rsplit("/", 1)[-1]
    built, set_ = [], []
    for path in DOC_FILES:
        for line in path.read_text().splitlines():
            line = line.lstrip("# ")
            if line.startswith("docker ") and " -t " in line:
                built.append((path.name, line.split(" -t ", 1)[1].split()[0]))
            set_ += [(path.name, m) for m in re.findall(r"image\.repository=(\S+)", line)]
    assert len(built) >= 4 and set_, (built, set_)  # the Dockerfile's two and the guide's two
    for where, ref in built:
        repo, _, tag = ref.rpartition(":")
        assert repo.rsplit("/", 1)[-1] == name, f"{where}: {ref} is not {name}"
        if tag != "TAG":
            assert tag == VERSION, f"{where}: {ref}: tag it with the project's version"
        if not repo.startswith("REGISTRY/"):
            assert repo == repository, f"{where}: {ref}: the charts' default is {repository}"
    for where, repo in set_:
        assert repo.rsplit("/", 1)[-1] == name, f"{where}: image.repository={repo}"
