"""Fixtures of the Helm chart tests: a real `helm` binary, a way to render a chart, and the
two charts (`CHARTS`: konnector and backend) that test_charts.py checks alike.

`helm` is built from the Go module proxy by hack/helm/build.sh (cached in
~/.cache/kube-bind/helm/<version>; `make test` builds it first through `make helm`, so the
fixture is a no-op there). Helm's own cache, config and data directories point into a
temporary directory, so the tests never read or write the user's Helm setup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# Re-exported: the chart tests import them from here.
from tests.harness.helm import CHART as CHART
from tests.harness.helm import REPO as REPO
from tests.harness.helm import Helm as Helm
from tests.harness.helm import HelmError as HelmError
from tests.harness.helm import build_helm

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))

Obj = dict[str, Any]


def _k8s_version() -> str:
    """The Kubernetes minor the real-cluster tests run (hack/k8s/go.mod), e.g. "1.36"."""
    gomod = (REPO / "hack" / "k8s" / "go.mod").read_text()
    match = re.search(r"k8s\.io/kubernetes v(\d+\.\d+)\.\d+", gomod)
    assert match, "no k8s.io/kubernetes version in hack/k8s/go.mod"
    return match.group(1)


K8S_VERSION = _k8s_version()


@dataclass(frozen=True)
class Chart:
    """One chart of charts/: where it is, its values and schema, and the cluster of the
    real-cluster tests it is installed into (the konnector's consumer, the backend's
    provider)."""

    name: str
    cluster: str

    @property
    def path(self) -> Path:
        return REPO / "charts" / self.name

    @property
    def ci_values(self) -> list[Path]:
        return sorted((self.path / "ci").glob("*-values.yaml"))

    @property
    def schema(self) -> Any:
        return json.loads((self.path / "values.schema.json").read_text())

    @property
    def defaults(self) -> Any:
        return yaml.safe_load((self.path / "values.yaml").read_text())

    @property
    def version(self) -> str:
        return str(yaml.safe_load((self.path / "Chart.yaml").read_text())["version"])


KONNECTOR = Chart("konnector", cluster="consumer")
BACKEND = Chart("backend", cluster="provider")
CHARTS = (KONNECTOR, BACKEND)

PLURALS = {
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "CustomResourceDefinition": "customresourcedefinitions",
    "Deployment": "deployments",
    "Pod": "pods",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def collection(obj: Obj, namespace: str) -> str:
    """The API path of the collection `obj` is created in."""
    group_version = obj["apiVersion"]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    if obj["kind"] not in CLUSTER_SCOPED:
        base += f"/namespaces/{namespace}"
    return f"{base}/{PLURALS[obj['kind']]}"


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The helm binary, built once (a cold build takes a few minutes on 2 cores)."""
    try:
        binary = build_helm()
    except HelmError as err:
        pytest.fail(str(err), pytrace=False)
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


def by_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: Iterable[Obj], kind: str) -> Obj:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def probe_ports(container: Obj, health_probe_bind_address: str) -> dict[str, int]:
    """The container's named ports, after checking that its probes ask the probe port for
    /healthz and /readyz and that the process serves them there (its parsed flag)."""
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert health_probe_bind_address == f":{ports['probe']}"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probe"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probe"}
    return ports


def konnector_container(objs: Iterable[Obj]) -> Obj:
    containers = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "konnector"]
    return container


def rule_allows(
    rule: Mapping[str, Any],
    group: str,
    resource: str,
    verb: str,
    *,
    subresource: str = "",
    name: str = "",
) -> bool:
    """Whether one RBAC PolicyRule allows a request, as the RBAC authorizer decides it
    (k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go): group, resource (`*`,
    `resource/subresource` or `*/subresource`), verb, and resourceNames, which never match a
    create (the name is not part of a create's URL)."""
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    if "*" not in groups and group not in groups:
        return False
    full = f"{resource}/{subresource}" if subresource else resource
    if not (
        "*" in resources or full in resources or (subresource and f"*/{subresource}" in resources)
    ):
        return False
    if "*" not in verbs and verb not in verbs:
        return False
    if names:
        return verb != "create" and name in names
    return True
