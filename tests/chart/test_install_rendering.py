"""The installer of `kubectl bind --install-konnector` (kbcore/views/install.py) writes what the
chart renders: its shipped rendering is helm's with default values (release and namespace
`kube-bind`), and what it derives from it (rule 2's image, rule 10's bound groups) is what helm
renders for the same values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kbcore.views import install as ins
from kbshell.install import rendered_manifests
from tests.chart.conftest import REPO, Helm, Obj
from tools import gen_konnector_manifests as gen


def render(helm: Helm, values: dict[str, Any] | None = None) -> list[Obj]:
    return helm.template(
        values, release=ins.RELEASE, namespace=ins.NAMESPACE, extra=["--skip-tests"]
    )


def by_label(objs: list[Obj]) -> dict[str, Obj]:
    return {t.label: t.body for t in ins.targets(objs, None)}


def test_the_shipped_rendering_is_helms_with_default_values(helm: Helm) -> None:
    assert render(helm) == rendered_manifests()


@pytest.mark.parametrize("groups", [["example.org"], ["a.example", "b.example.org"]])
def test_bound_groups_are_the_charts_bound_resource_groups(helm: Helm, groups: list[str]) -> None:
    want = render(helm, {"rbac": {"boundResourceGroups": groups}})
    got = {t.label: t.body for t in ins.targets(rendered_manifests(), None, reversed(groups))}
    assert got == {**by_label(want), "Namespace kube-bind": got["Namespace kube-bind"]}


def test_the_image_is_the_charts_image_values(helm: Helm) -> None:
    want = render(helm, {"image": {"repository": "registry.example/k", "tag": "v9"}})
    got = {t.label: t.body for t in ins.targets(rendered_manifests(), "registry.example/k:v9")}
    assert got == {**by_label(want), "Namespace kube-bind": got["Namespace kube-bind"]}


def test_the_drift_check_fails_on_a_stale_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "konnector.yaml"
    monkeypatch.setattr(gen, "OUTPUT", stale)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1  # missing
    assert gen.main(["--write"]) == 0
    assert gen.main(["--check"]) == 0
    assert (
        stale.read_text()
        == gen.OUTPUT.read_text()
        == (REPO / "kbshell/data/konnector.yaml").read_text()
    )
    stale.write_text(stale.read_text().replace("replicas: 1", "replicas: 2"))
    capsys.readouterr()
    assert gen.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "-  replicas: 2\n+  replicas: 1\n" in out
    assert "konnector.yaml is stale; run: python tools/gen_konnector_manifests.py --write" in out
