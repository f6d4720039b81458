"""The generated CRDs: golden files, Kubernetes validity, structural rules, upstream's API details."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kbcore.api.convert import structure, structure_object, unstructure
from kbcore.api.keys import API_VERSION
from kbcore.api.types import KINDS, Binding, ClusterBinding, Connection, SchemaPolicy
from kbcore.schema import crdgen
from tools import gen_crds

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
# The newest schema set kubernetes-validate ships (1.37 at the time of writing).
K8S_VERSION = kubernetes_validate.latest_version()

CRDS = {crd["spec"]["names"]["kind"]: crd for crd in crdgen.all_crds()}


def _schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The sub-schema at a dotted path; `[]` steps into array items."""
    for part in path.split("."):
        schema = schema["properties"][part.removesuffix("[]")]
        if part.endswith("[]"):
            schema = schema["items"]
    return schema


# ---------------------------------------------------------------------------------------------
# Golden files and the tool.


def test_committed_crds_match_generator() -> None:
    files = gen_crds.generated()
    assert sorted(files) == [
        "core.kube-bind.io_bindings.yaml",
        "core.kube-bind.io_clusterbindings.yaml",
        "core.kube-bind.io_connections.yaml",
    ]
    for name, text in files.items():
        assert (CRD_DIR / name).read_text() == text, f"crds/{name} is stale: make crds-check"


def test_check_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen_crds.write(tmp_path) == 0
    assert gen_crds.check(tmp_path) == 0
    stale = tmp_path / "core.kube-bind.io_bindings.yaml"
    stale.write_text(stale.read_text().replace("minItems: 1", "minItems: 2"))
    capsys.readouterr()
    assert gen_crds.check(tmp_path) == 1
    out = capsys.readouterr().out
    assert "-                minItems: 2" in out and "+                minItems: 1" in out


def test_yaml_parses_back_to_generator_output() -> None:
    for name, text in gen_crds.generated().items():
        (doc,) = [d for d in yaml.safe_load_all(text) if d]
        assert doc == CRDS[doc["spec"]["names"]["kind"]], name


def test_generator_is_deterministic() -> None:
    assert crdgen.all_crds() == crdgen.all_crds()


# ---------------------------------------------------------------------------------------------
# Validity.


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_kubernetes_validate_accepts_crd(kind: str) -> None:
    kubernetes_validate.validate(CRDS[kind], K8S_VERSION, strict=True)


def test_kubernetes_validate_is_strict() -> None:
    """Guard the guard: an unknown CRD field must be refused, or the test above proves little."""
    broken = copy.deepcopy(CRDS["Connection"])
    broken["spec"]["versions"][0]["printerColumns"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        out += _nodes(sub, f"{path}.{name}" if path else name)
    if "items" in schema:
        out += _nodes(schema["items"], path + "[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += _nodes(schema["additionalProperties"], path + "{}")
    return out


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_schema_is_structural(kind: str) -> None:
    """The rules the API server enforces for structural schemas that matter here."""
    for path, node in _nodes(_schema(kind)):
        assert node.get("type") in {"object", "array", "string", "integer", "boolean"}, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node["type"] == "array":
            assert "items" in node, path
            assert node["x-kubernetes-list-type"] in {"atomic", "set", "map"}, path
        if "default" in node:
            # A default must itself be valid; for objects the server applies sub-defaults.
            assert node["type"] != "object" or node["default"] == {}, path


# ---------------------------------------------------------------------------------------------
# Upstream's API details.


def test_names_scope_and_versions() -> None:
    for kind, plural, scope in [
        ("Connection", "connections", "Cluster"),
        ("ClusterBinding", "clusterbindings", "Cluster"),
        ("Binding", "bindings", "Namespaced"),
    ]:
        crd = CRDS[kind]
        assert crd["metadata"]["name"] == f"{plural}.core.kube-bind.io"
        assert crd["spec"]["group"] == "core.kube-bind.io"
        assert crd["spec"]["scope"] == scope
        assert crd["spec"]["names"] == {
            "kind": kind,
            "listKind": f"{kind}List",
            "plural": plural,
            "singular": plural[:-1],
            "categories": ["kube-bind"],
        }
        (version,) = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}
        assert _schema(kind)["required"] == ["spec"]
        assert _schema(kind)["properties"]["metadata"] == {"type": "object"}


READY = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def test_printer_columns() -> None:
    def columns(kind: str) -> list[dict[str, str]]:
        cols: list[dict[str, str]] = CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
        return cols

    secret = {"name": "Secret", "type": "string", "jsonPath": ".spec.kubeconfigSecretRef.name"}
    assert columns("Connection") == [READY, secret, AGE]
    conn = {"name": "Connection", "type": "string", "jsonPath": ".spec.connectionRef.name"}
    assert columns("ClusterBinding") == columns("Binding") == [conn, READY, AGE]


def test_connection_schema_details() -> None:
    s = _schema("Connection")
    ref = _at(s, "spec.kubeconfigSecretRef")
    assert ref["x-kubernetes-validations"] == [
        {"rule": "self == oldSelf", "message": "kubeconfigSecretRef is immutable"}
    ]
    assert ref["required"] == ["namespace", "name"]
    assert _at(s, "spec.kubeconfigSecretRef.name")["minLength"] == 1
    assert _at(s, "spec.kubeconfigSecretRef.namespace")["minLength"] == 1
    assert _at(s, "spec.kubeconfigSecretRef.key")["default"] == "kubeconfig"
    assert _at(s, "spec.schema")["default"] == {}
    for field, enum, default in [
        ("source", ["Auto", "CRD", "OpenAPI"], "Auto"),
        ("pullPolicy", ["Bound", "All", "None"], "Bound"),
        ("updatePolicy", ["Always", "Once"], "Always"),
    ]:
        node = _at(s, f"spec.schema.{field}")
        assert (node["type"], node["enum"], node["default"]) == ("string", enum, default)
    assert _at(s, "spec.autoBind") | {"description": ""} == {
        "description": "",
        "type": "boolean",
        "default": False,
    }
    for field in ("remoteClusterUID", "localClusterUID"):
        assert _at(s, f"status.{field}")["x-kubernetes-validations"] == [
            {
                "rule": "oldSelf == '' || self == oldSelf",
                "message": f"{field} is immutable once set",
            }
        ]
    assert "enum" not in _at(s, "status.activeSchemaSource")
    assert _at(s, "status.exportedAPIs")["x-kubernetes-list-type"] == "atomic"
    assert _at(s, "status.exportedAPIs[].versions")["x-kubernetes-list-type"] == "set"


@pytest.mark.parametrize("kind", ["ClusterBinding", "Binding"])
def test_binding_schema_details(kind: str) -> None:
    s = _schema(kind)
    assert _at(s, "spec")["required"] == ["connectionRef", "apis"]
    assert _at(s, "spec.connectionRef.name")["minLength"] == 1
    assert _at(s, "spec.apis")["minItems"] == 1
    assert _at(s, "spec.apis[].name")["minLength"] == 1
    assert _at(s, "spec.conflictPolicy")["enum"] == ["Fail", "Adopt"]
    assert _at(s, "spec.conflictPolicy")["default"] == "Fail"
    related = _at(s, "spec.relatedResources[]")
    assert related["required"] == ["group", "resource", "direction"]
    assert related["properties"]["group"]["default"] == ""
    assert related["properties"]["resource"]["enum"] == ["secrets", "configmaps"]
    assert related["properties"]["direction"]["enum"] == ["FromProvider", "FromConsumer"]
    assert _at(s, "spec.relatedResources")["x-kubernetes-list-type"] == "atomic"
    selector = _at(s, "spec.relatedResources[].selector")
    assert "required" not in selector
    assert selector["properties"]["names"]["x-kubernetes-list-type"] == "set"
    assert selector["properties"]["labelSelector"]["x-kubernetes-map-type"] == "atomic"
    labels = _at(s, "spec.relatedResources[].selector.labelSelector.matchLabels")
    assert labels == labels | {"type": "object", "additionalProperties": {"type": "string"}}
    assert _at(s, "status.boundAPIs")["x-kubernetes-list-type"] == "atomic"
    assert _at(s, "status.boundAPIs[]")["required"] == ["name"]
    assert _at(s, "status.boundAPIs[].conflictCount")["format"] == "int32"


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_conditions_are_a_map_keyed_by_type(kind: str) -> None:
    conditions = _at(_schema(kind), "status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert item["required"] == ["type", "status", "lastTransitionTime", "reason", "message"]
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert item["properties"]["observedGeneration"]["minimum"] == 0


def test_every_field_is_documented() -> None:
    for kind in CRDS:
        for path, node in _nodes(_schema(kind)):
            if path == "metadata" or (path.endswith(("[]", "{}")) and node["type"] != "object"):
                continue
            assert node.get("description"), f"{kind}: {path or '<root>'} has no description"


# ---------------------------------------------------------------------------------------------
# Schema defaults and Python defaults agree: what the API server stores for a minimal object is
# exactly what `unstructure(structure(...))` produces.


def _apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """A small model of API server defaulting (recursive, defaults of absent fields)."""
    if schema.get("type") == "array" and isinstance(value, list):
        return [_apply_defaults(v, schema["items"]) for v in value]
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    out = dict(value)
    for name, sub in schema.get("properties", {}).items():
        if name not in out and "default" in sub:
            out[name] = sub["default"]
        if name in out:
            out[name] = _apply_defaults(out[name], sub)
    return out


MINIMAL = {
    Connection: {"spec": {"kubeconfigSecretRef": {"namespace": "kb", "name": "s"}}},
    ClusterBinding: {
        "spec": {
            "connectionRef": {"name": "c"},
            "apis": [{"name": "widgets.example.org"}],
            "relatedResources": [{"resource": "secrets", "direction": "FromProvider"}],
        }
    },
    Binding: {"spec": {"connectionRef": {"name": "c"}, "apis": [{"name": "a.b"}]}},
}


@pytest.mark.parametrize("cls", KINDS, ids=lambda c: c.KIND.kind)
def test_schema_defaults_match_python_defaults(
    cls: type[Connection | ClusterBinding | Binding],
) -> None:
    minimal = {"apiVersion": API_VERSION, "kind": cls.KIND.kind, **MINIMAL[cls]}
    stored = _apply_defaults(minimal, crdgen.openapi_schema(cls))
    assert unstructure(structure_object(minimal)) == stored
    assert structure_object(stored) == structure_object(minimal)


def test_object_default_is_empty_and_sub_defaults_apply() -> None:
    assert structure({}, SchemaPolicy) == SchemaPolicy()
