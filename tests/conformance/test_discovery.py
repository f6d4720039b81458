"""Discovery and OpenAPI v3 documents: what a client (the konnector's OpenAPI schema source)
reads to learn which resources a server has and their schemas."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

from tests.conformance.client import CRDS, Api, Obj, raises_api_error, unique
from tests.conformance.conftest import install_crd, new_group, widget_crd

NOT_FOUND = "the server could not find the requested resource"


def two_version_crd(group: str) -> Obj:
    """Widgets served as v1 (storage, /status) and v1beta1 (no subresources), listed
    beta-first so that the preferred version has to come from version priority."""
    crd = widget_crd(group)
    names = crd["spec"]["names"]
    names.update(shortNames=["wdg"], categories=["conformance"])
    v1 = crd["spec"]["versions"][0]
    beta = copy.deepcopy(v1)
    beta.update(name="v1beta1", storage=False)
    del beta["subresources"]
    crd["spec"]["versions"] = [beta, v1]
    return crd


def svh(group: str, version: str, kind: str) -> str:
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def find_group(api: Api, group: str) -> Obj | None:
    return next((g for g in api.discovery("/apis")["groups"] if g["name"] == group), None)


def schema_name(group: str, version: str, kind: str) -> str:
    return ".".join([*reversed(group.split(".")), version, kind])


def component(doc: Obj, group: str, version: str, kind: str) -> tuple[str, Obj]:
    """The component schema whose x-kubernetes-group-version-kind is exactly this GVK."""
    gvk = {"group": group, "version": version, "kind": kind}
    for name, schema in doc["components"]["schemas"].items():
        if gvk in (schema.get("x-kubernetes-group-version-kind") or []):
            return name, schema
    raise AssertionError(f"no component schema for {gvk}")


def index_url(api: Api, group: str, version: str) -> str | None:
    entry = api.openapi("/openapi/v3")["paths"].get(f"apis/{group}/{version}")
    return None if entry is None else str(entry["serverRelativeURL"])


def test_discovery_and_openapi_of_a_two_version_crd(api: Api) -> None:
    group = new_group()
    crd = two_version_crd(group)
    name = install_crd(api, crd)
    reader = api.as_user(unique("nobody"))  # no RBAC at all: discovery is public

    def group_listed() -> Obj | None:
        return find_group(reader, group)

    listed = api.eventually(group_listed, 30, f"{group} in /apis")
    both = [
        {"groupVersion": f"{group}/v1", "version": "v1"},
        {"groupVersion": f"{group}/v1beta1", "version": "v1beta1"},
    ]
    assert listed == {"name": group, "preferredVersion": both[0], "versions": both}
    assert reader.discovery(f"/apis/{group}") == {
        "apiVersion": "v1",
        "kind": "APIGroup",
        **listed,
    }

    def resources(version: str) -> list[Obj]:
        doc = reader.discovery(f"/apis/{group}/{version}")
        assert (doc["apiVersion"], doc["kind"]) == ("v1", "APIResourceList")
        assert doc["groupVersion"] == f"{group}/{version}"
        found: list[Obj] = doc["resources"]
        assert found, "resources not published yet"
        return found

    main: dict[str, Any] = {
        "categories": ["conformance"],
        "kind": "Widget",
        "name": "widgets",
        "namespaced": True,
        "shortNames": ["wdg"],
        "singularName": "widget",
        "storageVersionHash": svh(group, "v1", "Widget"),
        "verbs": [
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ],
    }
    status = {
        "kind": "Widget",
        "name": "widgets/status",
        "namespaced": True,
        "singularName": "",
        "verbs": ["get", "patch", "update"],
    }
    assert api.eventually(lambda: resources("v1"), 30, "v1 resources") == [main, status]
    assert api.eventually(lambda: resources("v1beta1"), 30, "v1beta1 resources") == [main]

    # OpenAPI v3: one document per served version, found through the index.
    for version in ("v1", "v1beta1"):
        url = api.eventually(
            lambda v=version: index_url(reader, group, v), 60, f"{version} in /openapi/v3"
        )
        assert url.startswith(f"/openapi/v3/apis/{group}/{version}?hash=")
        doc = reader.openapi(url)
        assert doc["openapi"] == "3.0.0"
        found, schema = component(doc, group, version, "Widget")
        assert found == schema_name(group, version, "Widget")
        assert schema["type"] == "object"
        source = crd["spec"]["versions"][1 if version == "v1" else 0]["schema"]["openAPIV3Schema"]
        for prop in ("spec", "status"):
            assert schema["properties"][prop] == source["properties"][prop]
        assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])
        list_name, _ = component(doc, group, version, "WidgetList")
        assert list_name == schema_name(group, version, "WidgetList")
        base = f"/apis/{group}/{version}/namespaces/{{namespace}}/widgets/{{name}}"
        assert (base + "/status" in doc["paths"]) == (version == "v1")

    api.delete(CRDS, name)
    api.wait_gone(CRDS, name)
    api.eventually(lambda: find_group(reader, group) is None, 30, f"{group} gone from /apis")
    with raises_api_error(404, "NotFound", NOT_FOUND):
        reader.discovery(f"/apis/{group}/v1")
    api.eventually(lambda: index_url(reader, group, "v1") is None, 60, "gone from /openapi/v3")


def test_openapi_index_hash_follows_the_schema(api: Api) -> None:
    group = new_group()
    name = install_crd(api, widget_crd(group))
    before = api.eventually(lambda: index_url(api, group, "v1"), 60, "v1 in /openapi/v3")

    live = api.get(CRDS, name)
    schema = live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["weight"] = {"type": "number"}
    api.update(CRDS, live)

    def moved() -> str | None:
        url = index_url(api, group, "v1")
        return url if url is not None and url != before else None

    after = api.eventually(moved, 60, "index hash changed")
    _, widget = component(api.openapi(after), group, "v1", "Widget")
    assert widget["properties"]["spec"]["properties"]["weight"] == {"type": "number"}
    api.delete(CRDS, name)


def test_core_and_unknown_discovery_paths(api: Api) -> None:
    versions = api.discovery("/api")
    assert (versions["kind"], versions["versions"]) == ("APIVersions", ["v1"])
    core = api.discovery("/api/v1")
    assert (core["kind"], core["groupVersion"]) == ("APIResourceList", "v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["configmaps"]["shortNames"] == ["cm"]
    assert by_name["configmaps"]["storageVersionHash"] == svh("", "v1", "ConfigMap")
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["namespaces"]["verbs"] == [
        "create",
        "delete",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]
    assert by_name["namespaces/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    extensions = api.discovery("/apis/apiextensions.k8s.io/v1")["resources"]
    crds = next(r for r in extensions if r["name"] == CRDS.resource)
    assert crds["categories"] == ["api-extensions"] and crds["shortNames"] == ["crd", "crds"]
    # CRDs are still stored as v1beta1.
    assert crds["storageVersionHash"] == svh(CRDS.group, "v1beta1", "CustomResourceDefinition")
    assert "api/v1" in api.openapi("/openapi/v3")["paths"]

    missing = f"{unique('t')}.conformance.example.com"
    for path in (f"/apis/{missing}/v1", f"/apis/{missing}", "/apis/apps/v7"):
        with raises_api_error(404, "NotFound", NOT_FOUND):
            api.discovery(path)
    with raises_api_error(404, "NotFound"):
        api.openapi(f"/openapi/v3/apis/{missing}/v1")
