"""OpenAPI -> CRD synthesis (kbcore.schema.openapi) on documents captured from a real kube-apiserver.

The inputs are tests/data/openapi (tools/capture_openapi.py; MANIFEST.json maps URL paths to
files). The synthesized CRDs are compared with golden files in tests/data/openapi/golden/,
one `<crd-name>.json` each. After an intended change, rewrite them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/unit/test_openapi.py -k golden
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kbcore.api.resources import CRDS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.reads import Discovery, Failed, Missing, OpenAPIDoc, Read
from kbcore.schema.groups import is_builtin_group
from kbcore.schema.openapi import (
    PRINTER_COLUMNS_LOSS,
    Synthesis,
    clean_schema,
    synthesize,
    version_priority_key,
)
from kbsim.apiserver import APIServer
from tests import crds

DATA = Path(__file__).resolve().parents[1] / "data" / "openapi"
GOLDEN = DATA / "golden"
CLUSTER = "provider"


def captured() -> dict[str, Any]:
    """URL path -> captured JSON document."""
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    return {path: json.loads((DATA / f).read_text()) for path, f in manifest["files"].items()}


def run(
    docs: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    order: Callable[[list[Read]], list[Read]] = lambda reads: reads,
) -> tuple[Synthesis, list[tuple[Read, ...]]]:
    """Drive synthesize like a shell: on Missing, do the reads and call again. Returns the
    result and the reads asked for in each round. `overrides` replaces results by path."""
    overrides = overrides or {}
    observed: dict[Read, Any] = {}
    rounds: list[tuple[Read, ...]] = []
    while True:
        try:
            return synthesize(
                dict((r, observed[r]) for r in order(list(observed))), CLUSTER
            ), rounds
        except Missing as missing:
            assert missing.reads, "Missing must name the reads it needs"
            assert len(rounds) < 10, "synthesize keeps asking"
            rounds.append(missing.reads)
            for read in missing.reads:
                assert isinstance(read, (Discovery, OpenAPIDoc)) and read.cluster == CLUSTER
                assert read not in observed, f"asked twice for {read}"
                observed[read] = overrides[read.path] if read.path in overrides else docs[read.path]


@pytest.fixture(scope="module")
def docs() -> dict[str, Any]:
    return captured()


@pytest.fixture(scope="module")
def synthesis(docs: dict[str, Any]) -> Synthesis:
    return run(docs)[0]


def by_name(synthesis: Synthesis) -> dict[str, Any]:
    return {api.crd["metadata"]["name"]: api for api in synthesis.apis}


def apis_doc_preferred(docs: Mapping[str, Any], group: str) -> str:
    (entry,) = [g for g in docs["/apis"]["groups"] if g["name"] == group]
    return str(entry["preferredVersion"]["version"])


# --- the read protocol --------------------------------------------------------------------------


def test_reads_come_in_three_rounds_with_per_gv_discovery_in_one(docs: dict[str, Any]) -> None:
    _, rounds = run(docs)
    assert len(rounds) <= 3
    assert rounds[0] == (Discovery(CLUSTER, "/apis"),)
    custom = sorted(
        (g["name"], v["version"])
        for g in docs["/apis"]["groups"]
        if not is_builtin_group(g["name"])
        for v in g["versions"]
    )
    assert set(rounds[1]) == {Discovery(CLUSTER, f"/apis/{g}/{v}") for g, v in custom} | {
        OpenAPIDoc(CLUSTER, "/openapi/v3")
    }
    # The hash query of the index's serverRelativeURL is not part of the read.
    assert set(rounds[2]) == {OpenAPIDoc(CLUSTER, f"/openapi/v3/apis/{g}/{v}") for g, v in custom}


def test_builtin_groups_are_never_read_nor_synthesized(
    docs: dict[str, Any], synthesis: Synthesis
) -> None:
    _, rounds = run(docs)
    paths = [r.path for reads in rounds for r in reads]
    assert "/apis/apps/v1" not in paths and "/openapi/v3/apis/apps/v1" not in paths
    assert not any(is_builtin_group(api.crd["spec"]["group"]) for api in synthesis.apis)
    assert sorted(by_name(synthesis)) == [
        "clusterthings.things.io",
        "gadgets.gadget.io",
        "widgets.example.org",
    ]
    assert synthesis.skipped == ()


def test_forbidden_apis_raises_its_error(docs: dict[str, Any]) -> None:
    forbidden = ApiError(403, "Forbidden", 'cannot get path "/apis"')
    with pytest.raises(ApiError) as err:
        run(docs, {"/apis": Failed(forbidden)})
    assert err.value.code == 403


def test_failed_index_raises_its_error(docs: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as err:
        run(docs, {"/openapi/v3": Failed(ApiError(403, "Forbidden", "no"))})
    assert err.value.code == 403


def test_failed_group_version_discovery_is_skipped_and_reported(docs: dict[str, Any]) -> None:
    error = ApiError(503, "ServiceUnavailable", "the server is currently unable to handle it")
    synthesis, rounds = run(docs, {"/apis/gadget.io/v1alpha1": Failed(error)})
    assert OpenAPIDoc(CLUSTER, "/openapi/v3/apis/gadget.io/v1alpha1") not in rounds[-1]
    gadgets = by_name(synthesis)["gadgets.gadget.io"].crd
    assert [v["name"] for v in gadgets["spec"]["versions"]] == ["v1"]
    assert len(synthesis.apis) == 3
    ((what, why),) = synthesis.skipped
    assert what == "gadget.io/v1alpha1"
    assert "discovery failed" in why and "503" in why


def test_every_group_version_discovery_failing_raises(docs: dict[str, Any]) -> None:
    error = Failed(ApiError(503, "ServiceUnavailable", "down"))
    custom = [p for p in docs if p.startswith("/apis/") and not p.startswith("/apis/apps/")]
    with pytest.raises(ApiError) as err:
        run(docs, dict.fromkeys(custom, error))
    assert err.value.code == 503


def test_failed_openapi_document_and_missing_index_entry_are_skipped(
    docs: dict[str, Any],
) -> None:
    index = copy.deepcopy(docs["/openapi/v3"])
    del index["paths"]["apis/things.io/v1"]
    failed = Failed(ApiError(500, "InternalError", "boom"))
    synthesis, _ = run(docs, {"/openapi/v3": index, "/openapi/v3/apis/example.org/v1": failed})
    assert sorted(by_name(synthesis)) == ["gadgets.gadget.io"]
    assert synthesis.skipped == (
        ("example.org/v1", "OpenAPI document failed: 500 InternalError: boom"),
        ("things.io/v1", "not in the OpenAPI v3 index"),
    )


def test_resource_without_matching_schema_is_skipped(docs: dict[str, Any]) -> None:
    doc = copy.deepcopy(docs["/openapi/v3/apis/gadget.io/v1alpha1"])
    doc["components"]["schemas"]["io.gadget.v1alpha1.Gadget"]["x-kubernetes-group-version-kind"] = [
        {"group": "gadget.io", "kind": "Gadget", "version": "v1"}
    ]  # wrong version
    synthesis, _ = run(docs, {"/openapi/v3/apis/gadget.io/v1alpha1": doc})
    gadgets = by_name(synthesis)["gadgets.gadget.io"].crd
    assert [v["name"] for v in gadgets["spec"]["versions"]] == ["v1"]
    assert synthesis.skipped == (
        (
            "gadgets.gadget.io/v1alpha1",
            "no schema with x-kubernetes-group-version-kind gadget.io/v1alpha1, Kind=Gadget",
        ),
    )


# --- what is synthesized ------------------------------------------------------------------------


def test_widgets_has_status_scope_and_names_from_discovery(synthesis: Synthesis) -> None:
    api = by_name(synthesis)["widgets.example.org"]
    spec = api.crd["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "categories": ["all", "samples"],
        "kind": "Widget",
        "listKind": "WidgetList",
        "plural": "widgets",
        "shortNames": ["wdg"],
        "singular": "widget",
    }
    assert spec["conversion"] == {"strategy": "None"}
    (version,) = spec["versions"]
    assert version["subresources"] == {"status": {}}
    assert version["served"] is True and version["storage"] is True
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["type"] == "object"
    assert not {"apiVersion", "kind", "metadata"} & set(schema["properties"])
    assert schema["properties"]["spec"]["required"] == ["size"]
    assert schema["properties"]["spec"]["properties"]["size"] == {
        "default": 1,
        "minimum": 1,
        "type": "integer",
    }
    # Printer columns exist on the provider but OpenAPI does not carry them.
    assert api.losses == (PRINTER_COLUMNS_LOSS,)
    assert api.crd["metadata"] == {"name": "widgets.example.org"}


def test_gadgets_is_one_crd_with_all_versions_and_the_preferred_storage(
    docs: dict[str, Any], synthesis: Synthesis
) -> None:
    gadgets = [a for a in synthesis.apis if a.crd["spec"]["group"] == "gadget.io"]
    assert len(gadgets) == 1
    api = gadgets[0]
    versions = api.crd["spec"]["versions"]
    assert [v["name"] for v in versions] == ["v1", "v1alpha1"]
    preferred = apis_doc_preferred(docs, "gadget.io")
    assert [v["name"] for v in versions if v["storage"]] == [preferred]
    assert all(v["served"] for v in versions)
    # Only v1 has a status subresource on the provider.
    assert [v.get("subresources") for v in versions] == [{"status": {}}, None]
    assert "status" not in versions[1]["schema"]["openAPIV3Schema"]["properties"]
    assert any("conversion strategy None" in loss for loss in api.losses)


@pytest.mark.parametrize(
    ("preferred", "storage"),
    [("v1alpha1", "v1alpha1"), ("v2", "v1"), (None, "v1")],
)
def test_storage_is_the_preferred_version_if_served_else_the_highest(
    docs: dict[str, Any], preferred: str | None, storage: str
) -> None:
    apis = copy.deepcopy(docs["/apis"])
    (group,) = [g for g in apis["groups"] if g["name"] == "gadget.io"]
    if preferred is None:
        del group["preferredVersion"]
    else:
        group["preferredVersion"] = {"groupVersion": f"gadget.io/{preferred}", "version": preferred}
    synthesis, _ = run(docs, {"/apis": apis})
    versions = by_name(synthesis)["gadgets.gadget.io"].crd["spec"]["versions"]
    assert [v["name"] for v in versions] == ["v1", "v1alpha1"]
    assert [v["name"] for v in versions if v["storage"]] == [storage]


def test_clusterthings_is_cluster_scoped_and_reports_scale(synthesis: Synthesis) -> None:
    api = by_name(synthesis)["clusterthings.things.io"]
    assert api.crd["spec"]["scope"] == "Cluster"
    (version,) = api.crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}  # scale is not synthesized
    assert [loss for loss in api.losses if "scale subresource" in loss] == [
        "v1: scale subresource not synthesized: its replica paths are not published "
        "(discovery lists clusterthings/scale)"
    ]
    config = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["config"]
    assert config == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every list describing a set, and every object's key order,
    shuffled (schema lists like `enum` and `required` keep their order)."""
    if isinstance(value, dict):
        items = [(k, shuffled(v, rng)) for k, v in value.items()]
        rng.shuffle(items)
        return dict(items)
    if isinstance(value, list):
        out = [shuffled(v, rng) for v in value]
        if all(isinstance(v, dict) and ("name" in v or "version" in v) for v in out):
            rng.shuffle(out)  # groups, versions, resources
        return out
    return value


@pytest.mark.parametrize("seed", range(5))
def test_determinism_under_shuffled_inputs(docs: dict[str, Any], seed: int) -> None:
    rng = random.Random(seed)
    reference, _ = run(docs)
    mixed = {path: shuffled(doc, rng) for path, doc in docs.items()}
    result, _ = run(mixed, order=lambda reads: rng.sample(reads, len(reads)))
    assert result == reference
    # Byte for byte, key order included.
    assert json.dumps([a.crd for a in result.apis]) == json.dumps([a.crd for a in reference.apis])


def test_golden_files(synthesis: Synthesis) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for old in GOLDEN.glob("*.json"):
            old.unlink()
        for api in synthesis.apis:
            path = GOLDEN / f"{api.crd['metadata']['name']}.json"
            path.write_text(json.dumps(api.crd, indent=2, sort_keys=True) + "\n")
    expected = {p.stem: json.loads(p.read_text()) for p in sorted(GOLDEN.glob("*.json"))}
    assert {name: api.crd for name, api in by_name(synthesis).items()} == expected


# --- accepted by an API server ------------------------------------------------------------------


def establish(server: APIServer, crd: dict[str, Any]) -> dict[str, Any]:
    server.create(CRDS, copy.deepcopy(crd))
    while server.pending_work():
        server.tick()
    got = server.get(CRDS, ObjectKey("", crd["metadata"]["name"]))
    conditions = {c["type"]: c["status"] for c in got["status"].get("conditions", [])}
    assert conditions.get("Established") == "True", got["status"]
    return got


INSTANCES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "widgets.example.org": [
        (
            "v1",
            {
                "metadata": {"name": "w1", "namespace": "default"},
                "spec": {"size": 3, "color": "green", "tags": ["a"], "secretRef": {"name": "s"}},
            },
        )
    ],
    "gadgets.gadget.io": [
        (
            "v1",
            {
                "metadata": {"name": "g1", "namespace": "default"},
                "spec": {"model": "x", "replicas": 2},
            },
        ),
        ("v1alpha1", {"metadata": {"name": "g2", "namespace": "default"}, "spec": {"model": "y"}}),
    ],
    "clusterthings.things.io": [
        (
            "v1",
            {
                "metadata": {"name": "t1"},
                "spec": {"replicas": 1, "config": {"any": {"thing": [1]}}},
            },
        ),
    ],
}


def test_every_synthesized_crd_is_established_and_serves_instances(
    synthesis: Synthesis,
) -> None:
    server = APIServer("consumer", clock=lambda: 0.0, seed=1)
    for api in synthesis.apis:
        crd = api.crd
        establish(server, crd)
        spec = crd["spec"]
        for version, body in INSTANCES[crd["metadata"]["name"]]:
            gvr = GVR(spec["group"], version, spec["names"]["plural"])
            obj = {
                "apiVersion": f"{spec['group']}/{version}",
                "kind": spec["names"]["kind"],
                **body,
            }
            created = server.create(gvr, copy.deepcopy(obj))
            assert created["spec"] == obj["spec"]


def test_synthesized_validation_still_rejects_invalid_widgets(synthesis: Synthesis) -> None:
    server = APIServer("consumer", clock=lambda: 0.0, seed=1)
    establish(server, by_name(synthesis)["widgets.example.org"].crd)
    widgets = GVR("example.org", "v1", "widgets")
    base = {"apiVersion": "example.org/v1", "kind": "Widget"}
    for i, spec in enumerate([{"size": 0}, {"size": "big"}, {"size": 1, "color": "purple"}]):
        with pytest.raises(ApiError) as err:
            server.create(
                widgets,
                {**base, "metadata": {"name": f"w{i}", "namespace": "default"}, "spec": spec},
            )
        assert err.value.code == 422


# --- cleaning -----------------------------------------------------------------------------------

_FORBIDDEN = {
    "$ref", "allOf", "anyOf", "oneOf", "not", "patternProperties", "dependencies",
    "additionalItems", "definitions", "id", "x-kubernetes-validations",
}  # fmt: skip
_TYPES = {"string", "number", "integer", "boolean", "array", "object"}


def structural_errors(schema: Any, path: str = "", level: str = "root") -> list[str]:
    """The apiextensions rules (validation.go, schema/validation.go) a cleaned schema must
    meet, checked independently of the cleaner: forbidden keywords, types, items, list types."""
    errs: list[str] = []
    if not isinstance(schema, dict):
        return [f"{path}: not an object"]
    errs += [f"{path}.{k}: forbidden" for k in _FORBIDDEN & set(schema)]
    if schema.get("uniqueItems") is True:
        errs.append(f"{path}.uniqueItems: forbidden")
    kind = schema.get("type")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    int_or_string = schema.get("x-kubernetes-int-or-string")
    if preserve is not None and preserve is not True:
        errs.append(f"{path}: preserve must be true or absent")
    if kind is not None and kind not in _TYPES:
        errs.append(f"{path}.type: unsupported {kind!r}")
    if not kind and not preserve and not int_or_string:
        errs.append(f"{path}.type: must not be empty")
    if int_or_string and (kind or preserve or schema.get("x-kubernetes-embedded-resource")):
        errs.append(f"{path}: int-or-string with type/preserve/embedded")
    if kind == "array" and "items" not in schema:
        errs.append(f"{path}.items: must be specified")
    if "properties" in schema and isinstance(schema.get("additionalProperties"), dict):
        errs.append(f"{path}: properties and additionalProperties")
    if schema.get("x-kubernetes-embedded-resource"):
        if kind != "object" or "additionalProperties" in schema:
            errs.append(f"{path}: embedded resource must be an object without additionalProperties")
        if not schema.get("properties") and not preserve:
            errs.append(f"{path}: embedded resource needs properties or preserve")
    if "x-kubernetes-map-type" in schema and kind != "object":
        errs.append(f"{path}: map-type on non-object")
    list_type = schema.get("x-kubernetes-list-type")
    if list_type is not None and kind != "array":
        errs.append(f"{path}: list-type on non-array")
    if "x-kubernetes-list-map-keys" in schema and list_type != "map":
        errs.append(f"{path}: map keys without list-type map")
    items = schema.get("items")
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        props = items.get("properties") or {}
        if not keys or items.get("type") != "object" or items.get("nullable"):
            errs.append(f"{path}: bad list-type map")
        for key in keys:
            prop = props.get(key)
            if prop is None or prop.get("type") in ("array", "object") or prop.get("nullable"):
                errs.append(f"{path}: bad map key {key}")
            elif key not in (items.get("required") or []) and "default" not in prop:
                errs.append(f"{path}: map key {key} neither required nor defaulted")
    set_items_ok = isinstance(items, dict) and not items.get("nullable")
    if set_items_ok and items.get("type") == "object":
        set_items_ok = items.get("x-kubernetes-map-type") == "atomic"
    if list_type == "set" and not set_items_ok:
        errs.append(f"{path}: bad list-type set")
    if level == "root":
        if kind != "object":
            errs.append(f"{path}.type: must be object at the root")
        allowed = {"description", "title", "type", "properties", "required",
                   "x-kubernetes-preserve-unknown-fields"}  # fmt: skip
        errs += [f"{path}.{k}: not allowed at the root" for k in set(schema) - allowed]
        if {"apiVersion", "kind", "metadata"} & set(schema.get("properties") or {}):
            errs.append(f"{path}: root metadata properties")
    for name, sub in (schema.get("properties") or {}).items():
        errs += structural_errors(sub, f"{path}.{name}", "field")
    if isinstance(items, dict):
        errs += structural_errors(items, f"{path}[*]", "item")
    if isinstance(schema.get("additionalProperties"), dict):
        errs += structural_errors(schema["additionalProperties"], f"{path}.*", "field")
    return errs


def test_cleaning_replaces_refs_by_their_kind_of_value() -> None:
    components = {
        "Time": {"type": "string", "format": "date-time"},
        "IntOrString": {
            "format": "int-or-string",
            "oneOf": [{"type": "integer"}, {"type": "string"}],
        },
        "Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "Spec": {"type": "object", "properties": {"a": {"type": "string"}}},
        "Alias": {"$ref": "#/components/schemas/Time"},
    }
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [{"$ref": "#/components/schemas/ObjectMeta"}]},
            "spec": {
                "allOf": [{"$ref": "#/components/schemas/Spec"}],
                "default": {},
                "description": "d",
            },
            "at": {"$ref": "#/components/schemas/Alias"},
            "port": {"allOf": [{"$ref": "#/components/schemas/IntOrString"}]},
            "size": {"$ref": "#/components/schemas/Quantity"},
            "other": {"$ref": "https://example.com/elsewhere"},
        },
        "x-kubernetes-group-version-kind": [{"group": "g.io", "version": "v1", "kind": "K"}],
    }
    cleaned, losses = clean_schema(schema, components)
    assert cleaned == {
        "type": "object",
        "properties": {
            "at": {"type": "string"},
            "other": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "port": {"x-kubernetes-int-or-string": True},
            "size": {"x-kubernetes-preserve-unknown-fields": True},
            "spec": {
                "default": {},
                "description": "d",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            },
        },
    }
    assert losses == (
        "$ref at .at replaced by an unvalidated string",
        "$ref at .other replaced by an unvalidated object",
        "$ref at .port replaced by an unvalidated int-or-string",
        "$ref at .size replaced by an unvalidated value",
        "$ref at .spec replaced by an unvalidated object",
    )
    assert structural_errors(cleaned) == []


def test_cleaning_drops_what_crds_reject_and_reports_it() -> None:
    schema = {
        "type": "object",
        "nullable": True,
        "additionalProperties": {"type": "string"},
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.a > 0"}],
                "properties": {
                    "a": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["A", "B"], "default": ""},
                    "tags": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"$ref": "#/components/schemas/Port"},
                    },
                    "any": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
                    "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                    "untyped": {"description": "no type"},
                    "list": {"items": {"type": "string"}},
                    "labels": {"type": "object", "additionalProperties": True},
                    "nested": {
                        "type": "object",
                        "properties": {"x": {"type": "string"}},
                        "additionalProperties": {"type": "string"},
                    },
                    "raw": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {"apiVersion": {"type": "string"}},
                    },
                },
            }
        },
    }
    cleaned, losses = clean_schema(schema)
    assert structural_errors(cleaned) == []
    spec = cleaned["properties"]["spec"]["properties"]
    assert "x-kubernetes-validations" not in cleaned["properties"]["spec"]
    assert spec["mode"] == {"enum": ["A", "B"], "type": "string"}
    assert spec["tags"] == {"items": {"type": "string"}, "type": "array"}
    assert spec["ports"] == {
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "type": "array",
    }
    assert spec["any"] == {"x-kubernetes-preserve-unknown-fields": True}
    assert spec["either"] == {"x-kubernetes-int-or-string": True}
    assert spec["untyped"] == {
        "description": "no type",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert spec["list"] == {"items": {"type": "string"}, "type": "array"}
    assert spec["labels"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert spec["nested"] == {"properties": {"x": {"type": "string"}}, "type": "object"}
    assert spec["raw"] == {
        "type": "object",
        "x-kubernetes-embedded-resource": True,
        "x-kubernetes-preserve-unknown-fields": True,
    }
    # In traversal order: a node's own losses, then its properties by name; the root last.
    assert losses == (
        "CEL validation rules (x-kubernetes-validations) at .spec dropped",
        "anyOf at .spec.any dropped",
        "default at .spec.mode dropped: not valid for the schema",
        "additionalProperties at .spec.nested dropped",
        "$ref at .spec.ports[*] replaced by an unvalidated object",
        "x-kubernetes-list-type map at .spec.ports replaced by atomic",
        "uniqueItems at .spec.tags dropped",
        "additionalProperties at . dropped",
    )


def test_real_builtin_schemas_clean_into_accepted_crds(docs: dict[str, Any]) -> None:
    """apps/v1 is never synthesized, but its documents are the richest real input there is:
    refs everywhere, enums with "" defaults, unions, list maps over referenced items."""
    server = APIServer("consumer", clock=lambda: 0.0, seed=1)
    components = docs["/openapi/v3/apis/apps/v1"]["components"]["schemas"]
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"):
        cleaned, losses = clean_schema(components[f"io.k8s.api.apps.v1.{kind}"], components)
        assert structural_errors(cleaned) == [], kind
        assert clean_schema(cleaned)[0] == cleaned
        plural = f"{kind.lower()}s"
        versions = [crds.version(schema=cleaned)]
        establish(server, crds.crd(plural, kind, group="apps.example.io", versions=versions))
        if kind == "Deployment":
            # The spec's rule: a $ref'd struct becomes an unvalidated object.
            assert "$ref at .spec replaced by an unvalidated object" in losses
            deployment = {
                "apiVersion": "apps.example.io/v1",
                "kind": "Deployment",
                "metadata": {"name": "d", "namespace": "default"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "d"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                    "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                },
            }
            created = server.create(GVR("apps.example.io", "v1", plural), copy.deepcopy(deployment))
            assert created["spec"] == deployment["spec"]


# --- laws ---------------------------------------------------------------------------------------


def test_version_priority_examples() -> None:
    ordered = ["v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
    assert sorted(reversed(ordered), key=version_priority_key) == ordered
    # k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings' documented order.
    upstream = ["v10", "v2", "v1", "v11beta2", "v10beta3", "v3beta1", "v12alpha1", "v11alpha2", "foo1", "foo10"]  # fmt: skip
    assert sorted(upstream[::-1], key=version_priority_key) == upstream


kube_versions = st.builds(
    lambda major, stability, minor: f"v{major}{stability}{minor if stability else ''}",
    st.integers(1, 30),
    st.sampled_from(["", "beta", "alpha"]),
    st.integers(1, 30),
)
KUBE_LIKE = re.compile(r"v([0-9]+)(?:(alpha|beta)([0-9]+))?")
other_versions = st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z").filter(
    lambda v: not KUBE_LIKE.fullmatch(v)
)


def kube_rank(version: str) -> tuple[int, ...] | None:
    """(stability rank, major, minor) of a kube-like version; None for any other."""
    m = KUBE_LIKE.fullmatch(version)
    if m is None:
        return None
    return ({None: 2, "beta": 1, "alpha": 0}[m.group(2)], int(m.group(1)), int(m.group(3) or 0))


@given(st.lists(st.one_of(kube_versions, other_versions), min_size=2, max_size=12, unique=True))
def test_version_priority_follows_the_kubernetes_rules(versions: list[str]) -> None:
    ordered = sorted(versions, key=version_priority_key)
    for higher, lower in itertools.pairwise(ordered):
        h, lo = kube_rank(higher), kube_rank(lower)
        if h is None:
            assert lo is None and higher < lower  # non-kube-like: last, alphabetical
        elif lo is not None:
            assert h[0] > lo[0] or (h[0] == lo[0] and h[1:] > lo[1:]), (higher, lower)


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "a", "B", "int-or-string"])
)
schema_keys = st.sampled_from(
    [
        "type", "format", "description", "enum", "default", "nullable", "required", "minimum",
        "maximum", "exclusiveMinimum", "minLength", "maxItems", "pattern", "uniqueItems",
        "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type", "x-kubernetes-validations", "$ref", "readOnly", "not",
    ]
)  # fmt: skip
key_values = st.one_of(
    json_scalars,
    st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "null"]),
    st.sampled_from(["atomic", "set", "map", "granular"]),
    st.lists(st.sampled_from(["a", "b", "name"]), max_size=2),
    st.just("#/components/schemas/X"),
    st.just({}),
)


def schema_like(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    plain = st.dictionaries(schema_keys, key_values, max_size=5)
    nested = st.fixed_dictionaries(
        {},
        optional={
            "properties": st.dictionaries(
                st.sampled_from(["a", "b", "name", "apiVersion", "kind", "metadata", "spec"]),
                children,
                max_size=3,
            ),
            "items": st.one_of(children, st.lists(children, max_size=2)),
            "additionalProperties": st.one_of(st.booleans(), children),
            "allOf": st.lists(children, max_size=2),
            "anyOf": st.lists(children, max_size=2),
            "oneOf": st.lists(children, max_size=2),
        },
    )
    return st.builds(lambda a, b: {**a, **b}, plain, nested)


schemas = st.recursive(
    st.dictionaries(schema_keys, key_values, max_size=4), schema_like, max_leaves=12
)


@settings(max_examples=300, deadline=None)
@given(schemas)
def test_cleaning_is_idempotent_and_structural(schema: dict[str, Any]) -> None:
    components = {"X": {"type": "string"}}
    once, _ = clean_schema(schema, components)
    assert clean_schema(once, components)[0] == once
    assert clean_schema(once)[0] == once
    assert structural_errors(once) == []
    # Cleaning never mutates its input.
    assert clean_schema(copy.deepcopy(schema), components)[0] == once


@settings(max_examples=40, deadline=None)
@given(schemas)
def test_cleaned_schemas_are_accepted_by_the_simulated_server(schema: dict[str, Any]) -> None:
    cleaned, _ = clean_schema(schema)
    server = APIServer("consumer", clock=lambda: 0.0, seed=1)
    versions = [crds.version(schema=cleaned, status=False)]
    establish(
        server, crds.crd("things", "Thing", group="law.io", scope="Cluster", versions=versions)
    )
