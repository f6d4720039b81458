"""The real `helm` binary for tests: built once by hack/helm/build.sh (cached in
~/.cache/kube-bind/helm/<version>), run with its own home so it never reads or writes the
user's Helm setup. The chart tests (tests/chart) and the konnector-as-a-Pod harness
(tests/harness/pod.py) render and install charts with it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "konnector"
BUILD = REPO / "hack" / "helm" / "build.sh"

Obj = dict[str, Any]


def build_helm() -> Path:
    """The helm binary (a no-op once built; `make test` builds it first through `make helm`)."""
    res = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise HelmError(["(hack/helm/build.sh)"], res.returncode, res.stderr[-4000:])
    return Path(res.stdout.strip().splitlines()[-1]) / "helm"


class HelmError(AssertionError):
    """helm exited non-zero; the message has its stderr."""

    def __init__(self, args: Sequence[str], code: int, stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)} exited {code}:\n{stderr}")
        self.stderr = stderr


class Helm:
    """The helm binary with an isolated home, and the chart operations the tests need."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        self._n = 0

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        res = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and res.returncode != 0:
            raise HelmError(args, res.returncode, res.stderr)
        return res.stdout

    def values_file(self, values: Mapping[str, Any]) -> Path:
        """`values` written to a file for `-f` (no --set parsing surprises)."""
        self._n += 1
        path = self.home / f"values-{self._n}.yaml"
        path.write_text(yaml.safe_dump(dict(values)))
        return path

    def value_args(
        self, values: Mapping[str, Any] | None = None, files: Iterable[Path] = ()
    ) -> list[str]:
        args: list[str] = []
        for f in files:
            args += ["-f", str(f)]
        if values:
            args += ["-f", str(self.values_file(values))]
        return args

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        files: Iterable[Path] = (),
        release: str = "kb",
        namespace: str = "kube-bind",
        chart: Path = CHART,
        extra: Sequence[str] = (),
    ) -> list[Obj]:
        """Every object `helm template` renders (hooks and tests included), in order."""
        out = self.run(
            "template",
            release,
            str(chart),
            "--namespace",
            namespace,
            *self.value_args(values, files),
            *extra,
        )
        return [d for d in yaml.safe_load_all(out) if d]
