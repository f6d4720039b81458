"""What both Helm charts (`charts/konnector` and `charts/backend`) promise alike, each test run
once per chart: they lint, render valid Kubernetes objects the API server accepts, and their
values are validated by a draft-07 schema naming the same keys as values.yaml, each documented
for helm-docs.

What only one chart promises is in test_chart.py (konnector) and test_backend_chart.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart.conftest import CHARTS, K8S_VERSION, Chart, Helm, collection, one
from tests.harness.clusters import Clusters

every_chart = pytest.mark.parametrize("chart", CHARTS, ids=lambda c: c.name)
every_ci_values = pytest.mark.parametrize(
    ("chart", "values_file"),
    [pytest.param(c, p, id=f"{c.name}-{p.name}") for c in CHARTS for p in c.ci_values],
)


@every_ci_values
def test_helm_lint_strict_passes(helm: Helm, chart: Chart, values_file: Path) -> None:
    out = helm.run("lint", "--strict", str(chart.path), "-f", str(values_file))
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


@every_ci_values
def test_every_rendered_object_is_valid_kubernetes(
    helm: Helm, chart: Chart, values_file: Path
) -> None:
    objs = helm.template(files=[values_file], chart=chart.path)
    assert one(objs, "Deployment")
    for obj in objs:  # CRDs included: their manifests are apiextensions.k8s.io/v1 objects
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    keys = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys)), f"an object is rendered twice: {keys}"
    for obj in objs:
        if obj["kind"] != "CustomResourceDefinition":  # the generated files, verbatim
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
            assert labels["helm.sh/chart"] == f"{chart.name}-{chart.version}", obj["kind"]


@every_chart
def test_values_schema_is_draft_07_and_accepts_every_shipped_values_file(chart: Chart) -> None:
    schema = chart.schema
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    validator.validate(chart.defaults)
    for path in chart.ci_values:
        validator.validate(yaml.safe_load(path.read_text()) or {})


@every_chart
def test_values_schema_and_values_yaml_name_the_same_keys(chart: Chart) -> None:
    """Every key of values.yaml is in the schema and the other way round: a key added to one
    and not the other is either unvalidated or undocumented."""

    def walk(schema: dict[str, Any], values: Any, path: str) -> None:
        if schema.get("additionalProperties") is not False:
            return  # a Kubernetes object passed through (resources, affinity, ...)
        props = set(schema.get("properties", {})) - {"global"}
        assert props == set(values), (
            f"{path or 'top level'}: schema {props} vs values {set(values)}"
        )
        for key, sub in schema["properties"].items():
            if key != "global" and "$ref" not in sub:
                walk(sub, values[key], f"{path}.{key}")

    walk(chart.schema, chart.defaults, "")


@every_chart
def test_every_value_is_documented_for_helm_docs(chart: Chart) -> None:
    """helm-docs reads a `# --` comment right above a key. Every leaf is documented, or its
    parent is (a Kubernetes object such as resources is documented as a whole)."""
    documented: dict[tuple[str, ...], bool] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in (chart.path / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        match = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match.group(2)))
            path = tuple(k for _, k in stack)
            documented[path] = any(c.startswith("# --") for c in comment)
        if not stripped or match:
            comment = []

    def leaves(node: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if isinstance(node, dict) and node and not documented.get(path, False):
            for k, v in node.items():
                yield from leaves(v, (*path, k))
        elif path:
            yield path

    missing = [".".join(p) for p in leaves(chart.defaults, ()) if not documented.get(p)]
    assert not missing, f"values without a `# --` comment: {missing}"


# ---------------------------------------------------------------------------------------------
# The API server's word: server-side dry run on a real kube-apiserver.


@every_ci_values
def test_the_api_server_accepts_every_rendered_object(
    helm: Helm, real_clusters: Clusters, chart: Chart, values_file: Path
) -> None:
    """Each object sent with dryRun=All and fieldValidation=Strict (unknown or duplicate fields
    refused) to the chart's cluster (the konnector's consumer, the backend's provider): CRDs by
    server-side apply (they may exist already on this shared cluster), the rest by create, as
    helm does, in a namespace of this test's own."""
    cluster = getattr(real_clusters, chart.cluster)
    suffix = uuid.uuid4().hex[:8]
    namespace, release = f"{chart.name}-chart-{suffix}", f"kb-{suffix}"
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    status, body = cluster.request("POST", "/api/v1/namespaces", ns)
    assert status == 201, body
    try:
        objs = helm.template(
            files=[values_file], release=release, namespace=namespace, chart=chart.path
        )
        objs.sort(key=lambda o: o["kind"] != "CustomResourceDefinition")
        for obj in objs:
            query = "dryRun=All&fieldValidation=Strict"
            if obj["kind"] == "CustomResourceDefinition":
                path = f"{collection(obj, namespace)}/{obj['metadata']['name']}"
                path += f"?{query}&fieldManager=chart-test&force=true"
                status, body = cluster.request(
                    "PATCH", path, obj, content_type="application/apply-patch+yaml"
                )
                assert status in (200, 201), (obj["metadata"]["name"], body)
            else:
                status, body = cluster.request("POST", f"{collection(obj, namespace)}?{query}", obj)
                assert status == 201, (obj["kind"], obj["metadata"]["name"], body)
            assert body["metadata"]["name"] == obj["metadata"]["name"]
        # Dry run: nothing of the release exists afterwards.
        name = one(objs, "Deployment")["metadata"]["name"]
        status, _ = cluster.request(
            "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
        )
        assert status == 404
    finally:
        cluster.request("DELETE", f"/api/v1/namespaces/{namespace}")
