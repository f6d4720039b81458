"""The kubectl-bind zipapp against a real provider: `-o yaml` reads what the provider exports
(a real kube-apiserver, through the kubernetes client's transport, urllib3 and the pure-Python
YAML) and prints the bundle byte for byte as the venv's console script does. It applies
nothing, so it needs no consumer cluster."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from kbcore.api import keys
from kbcore.api.resources import CRDS
from kbcore.objects import ObjectKey
from kbshell.client import KubeClient
from tests.harness.clusters import Clusters
from tests.harness.konnector import eventually
from tests.packaging.test_plugin import build, isolated

REPO = Path(__file__).resolve().parents[2]


def test_bundle_from_a_real_provider(real_clusters: Clusters, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    group = f"g{uuid.uuid4().hex[:6]}.plugin.example.org"
    crd = yaml.safe_load((REPO / "examples/scenarios/_common/widgets-crd.yaml").read_text())
    name = f"widgets.{group}"
    crd["metadata"] = {"name": name, "labels": {keys.LABEL_EXPORTED: "true"}}
    crd["spec"]["group"] = group
    provider = KubeClient.from_kubeconfig_file(real_clusters.provider.kubeconfig)
    provider.patch(CRDS, ObjectKey("", name), crd, "apply", "packaging-test", True)
    try:

        def established() -> bool:
            live = provider.get(CRDS, ObjectKey("", name))
            conds = (live.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

        eventually(established, 30, f"CRD {name} established")
        kubeconfig = tmp_path / "provider.kubeconfig"
        kubeconfig.write_text(real_clusters.provider.kubeconfig_text())
        args = ("--provider-kubeconfig", str(kubeconfig), "--api", name, "--connection",
                "acme", "-o", "yaml")  # fmt: skip
        done = isolated(tmp_path / "dist" / "kubectl-bind", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        installed = subprocess.run(
            [str(Path(sys.executable).parent / "kubectl-bind"), *args],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert done.stdout == installed.stdout
        kinds = [d["kind"] for d in yaml.safe_load_all(done.stdout)]
        assert kinds == ["Secret", "Connection", "ClusterBinding"]
        listed = isolated(tmp_path / "dist" / "kubectl-bind", "--provider-kubeconfig",
                          str(kubeconfig), "--list", cwd=tmp_path)  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert name in listed.stdout
    finally:
        provider.delete(CRDS, ObjectKey("", name))
