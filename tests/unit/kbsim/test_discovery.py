"""Discovery and OpenAPI v3 documents of kbsim, compared with ones captured from a real server.

tests/data/openapi holds what kube-apiserver v1.36.4 served after the CRDs of its crds.yaml
were installed (tools/capture_openapi.py). kbsim, given the same CRDs, must serve the same
documents in every field a client reads; what legitimately differs is normalized away: the
OpenAPI index hash values (a digest of the server's own serialization), and the built-in groups
kbsim does not serve.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim import discovery
from kbsim.apiserver import AfterWrite, APIServer, User
from tests.unit.kbsim.conftest import CRDS

DATA = Path(__file__).resolve().parents[2] / "data" / "openapi"
MANIFEST: dict[str, Any] = json.loads((DATA / "MANIFEST.json").read_text())
SAMPLE_CRDS: list[dict[str, Any]] = list(yaml.safe_load_all((DATA / "crds.yaml").read_text()))
CRD_GVS = [(c["spec"]["group"], v["name"]) for c in SAMPLE_CRDS for v in c["spec"]["versions"]]
NOBODY = User("nobody")  # no RBAC at all: discovery and OpenAPI are public to the authenticated


def real(url: str) -> Any:
    return json.loads((DATA / MANIFEST["files"][url]).read_text())


def settle(server: APIServer) -> None:
    while server.pending_work():
        server.tick()


@pytest.fixture
def samples(server: APIServer) -> APIServer:
    for crd in SAMPLE_CRDS:
        server.create(CRDS, crd)
    settle(server)
    return server


def served_groups(doc: dict[str, Any], groups: set[str]) -> list[dict[str, Any]]:
    return [g for g in doc["groups"] if g["name"] in groups]


# --- discovery -----------------------------------------------------------------------------------


def test_api_versions_match_the_real_server(samples: APIServer) -> None:
    assert samples.discovery("/api", user=NOBODY) == real("/api")


def test_api_group_list_matches_the_real_server(samples: APIServer) -> None:
    mine = samples.discovery("/apis", user=NOBODY)
    theirs = real("/apis")
    assert (mine["apiVersion"], mine["kind"]) == (theirs["apiVersion"], theirs["kind"])
    kbsim_groups = {g["name"] for g in mine["groups"]}
    # Every group kbsim serves is a real built-in group or one of the sample CRD groups...
    assert kbsim_groups <= {g["name"] for g in theirs["groups"]}
    # ...listed in the same order, with the same versions and preferred version.
    assert mine["groups"] == served_groups(theirs, kbsim_groups)
    gadget = next(g for g in mine["groups"] if g["name"] == "gadget.io")
    assert gadget["preferredVersion"] == {"groupVersion": "gadget.io/v1", "version": "v1"}
    assert [v["version"] for v in gadget["versions"]] == ["v1", "v1alpha1"]


@pytest.mark.parametrize(("group", "version"), CRD_GVS)
def test_resource_lists_match_the_real_server(samples: APIServer, group: str, version: str) -> None:
    url = f"/apis/{group}/{version}"
    mine = samples.discovery(url, user=NOBODY)
    theirs = real(url)
    # Field by field, storageVersionHash included (it is the same digest of the storage GVK).
    assert mine == theirs


def test_built_in_resource_lists(samples: APIServer) -> None:
    core = samples.discovery("/api/v1")
    assert "apiVersion" not in core and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["configmaps"]["shortNames"] == ["cm"]
    assert by_name["configmaps"]["storageVersionHash"] == "qFsyl6wFWjQ="
    assert "deletecollection" not in by_name["namespaces"]["verbs"]
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["namespaces/finalize"]["verbs"] == ["update"]
    assert by_name["namespaces/status"]["verbs"] == ["get", "patch", "update"]
    crds = {r["name"]: r for r in samples.discovery("/apis/apiextensions.k8s.io/v1")["resources"]}
    assert crds["customresourcedefinitions"]["categories"] == ["api-extensions"]
    assert crds["customresourcedefinitions"]["shortNames"] == ["crd", "crds"]
    assert "customresourcedefinitions/status" in crds
    assert crds["customresourcedefinitions"]["storageVersionHash"] == "jfWCUB31mvA="  # v1beta1
    group = samples.discovery("/apis/gadget.io")
    assert (group["kind"], group["name"]) == ("APIGroup", "gadget.io")
    assert group["preferredVersion"]["version"] == "v1"


@pytest.mark.parametrize(
    "path",
    ["/apis/nosuch.io/v1", "/apis/gadget.io/v2", "/apis/nosuch.io", "/api/v2", "/version", "/"],
)
def test_unknown_discovery_paths_are_404(samples: APIServer, path: str) -> None:
    with pytest.raises(ApiError) as err:
        samples.discovery(path)
    assert (err.value.code, err.value.reason) == (404, "NotFound")


def test_version_priority() -> None:
    versions = ["v1alpha1", "foo1", "v2", "v1", "v1beta1", "v10", "v2beta3", "v11alpha2", "foo10"]
    expected = ["v10", "v2", "v1", "v2beta3", "v1beta1", "v11alpha2", "v1alpha1", "foo1", "foo10"]
    assert sorted(versions, key=discovery.version_priority) == expected


# --- OpenAPI v3 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "version"), CRD_GVS)
def test_openapi_documents_match_the_real_server(
    samples: APIServer, group: str, version: str
) -> None:
    key = f"apis/{group}/{version}"
    index = samples.openapi("/openapi/v3", user=NOBODY)
    url = index["paths"][key]["serverRelativeURL"]
    assert url.startswith(f"/openapi/v3/{key}?hash=")
    mine = samples.openapi(url, user=NOBODY)
    theirs = real(f"/openapi/v3/{key}")
    assert (mine["openapi"], mine["info"]) == (theirs["openapi"], theirs["info"])
    # What the konnector reads: the component schema of each kind, found by its
    # x-kubernetes-group-version-kind, with the CRD's spec/status properties, and the schemas
    # it refers to. Those are the real ones; the schemas only the operations refer to
    # (Status, DeleteOptions, Patch, Scale, ...) are left out, as the operations are.
    ours, real_schemas = mine["components"]["schemas"], theirs["components"]["schemas"]
    kinds = {
        n
        for n, s in real_schemas.items()
        if any(gvk["group"] == group for gvk in s.get("x-kubernetes-group-version-kind", []))
    }
    assert kinds and kinds <= set(ours)
    for name, schema in ours.items():
        assert schema == real_schemas[name], name
    assert not discovery._references(ours) - set(ours)
    # The REST paths are named as the real builder names them.
    assert set(mine["paths"]) == set(theirs["paths"])


def test_openapi_component_schema_names_and_gvk(samples: APIServer) -> None:
    doc = samples.openapi("/openapi/v3/apis/example.org/v1")
    widget = doc["components"]["schemas"]["org.example.v1.Widget"]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": "example.org", "kind": "Widget", "version": "v1"}
    ]
    assert widget["properties"]["spec"]["required"] == ["size"]
    assert widget["description"] == "A Widget is a namespaced sample resource."
    things = samples.openapi("/openapi/v3/apis/things.io/v1")["components"]["schemas"]
    assert things["io.things.v1.ClusterThing"]["properties"]["spec"]["properties"]["config"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_openapi_index_lists_crd_and_built_in_group_versions(samples: APIServer) -> None:
    index = samples.openapi("/openapi/v3")
    theirs = real("/openapi/v3")
    crd_keys = {f"apis/{g}/{v}" for g, v in CRD_GVS}
    assert crd_keys <= set(index["paths"])
    assert crd_keys == {k for k in theirs["paths"] if k != "apis/apps/v1"}
    for key in ("api/v1", "apis/apiextensions.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1"):
        assert key in index["paths"]
    for key, entry in index["paths"].items():
        assert set(entry) == {"serverRelativeURL"}
        assert entry["serverRelativeURL"].startswith(f"/openapi/v3/{key}?hash=")
    core = samples.openapi(index["paths"]["api/v1"]["serverRelativeURL"])
    cm = core["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]
    assert cm["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "ConfigMap", "version": "v1"}
    ]
    assert "/api/v1/namespaces/{namespace}/configmaps/{name}" in core["paths"]
    # Every $ref resolves within its document.
    for key, entry in index["paths"].items():
        doc = samples.openapi(entry["serverRelativeURL"])
        missing = discovery._references(doc) - set(doc["components"]["schemas"])
        assert not missing, (key, missing)


@pytest.mark.parametrize(
    "path", ["/openapi/v3/apis/nosuch.io/v1", "/openapi/v3/apis/gadget.io/v2", "/openapi/v2"]
)
def test_unknown_openapi_paths_are_404(samples: APIServer, path: str) -> None:
    with pytest.raises(ApiError) as err:
        samples.openapi(path)
    assert (err.value.code, err.value.reason) == (404, "NotFound")


# --- following the CRDs -------------------------------------------------------------------------


def index_hash(server: APIServer, key: str) -> str | None:
    entry = server.openapi("/openapi/v3")["paths"].get(key)
    return None if entry is None else str(entry["serverRelativeURL"]).split("?hash=")[1]


def test_a_deleted_crd_disappears(samples: APIServer) -> None:
    samples.delete(CRDS, ObjectKey("", "clusterthings.things.io"))
    settle(samples)
    assert "things.io" not in {g["name"] for g in samples.discovery("/apis")["groups"]}
    with pytest.raises(ApiError) as err:
        samples.discovery("/apis/things.io/v1")
    assert err.value.code == 404
    assert index_hash(samples, "apis/things.io/v1") is None
    with pytest.raises(ApiError):
        samples.openapi("/openapi/v3/apis/things.io/v1")
    # The other groups are untouched.
    assert samples.discovery("/apis/example.org/v1") == real("/apis/example.org/v1")


def test_a_new_served_version_shows_up(samples: APIServer) -> None:
    crd = samples.get(CRDS, ObjectKey("", "widgets.example.org"))
    v2 = copy.deepcopy(crd["spec"]["versions"][0])
    v2.update(name="v2", storage=False)
    v2.pop("subresources")
    crd["spec"]["versions"].append(v2)
    samples.update(CRDS, crd)
    settle(samples)
    group = next(g for g in samples.discovery("/apis")["groups"] if g["name"] == "example.org")
    assert [v["version"] for v in group["versions"]] == ["v2", "v1"]
    assert group["preferredVersion"]["version"] == "v2"
    resources = samples.discovery("/apis/example.org/v2")["resources"]
    # No status subresource in v2; the storage version (v1) names the hash.
    assert [r["name"] for r in resources] == ["widgets"]
    assert resources[0]["storageVersionHash"] == "UBpgYKpyMCc="
    doc = samples.openapi("/openapi/v3/apis/example.org/v2")
    assert doc["components"]["schemas"]["org.example.v2.Widget"][
        "x-kubernetes-group-version-kind"
    ] == [{"group": "example.org", "kind": "Widget", "version": "v2"}]


def test_the_index_hash_changes_with_the_schema(samples: APIServer) -> None:
    before = {k: index_hash(samples, k) for k in ("apis/gadget.io/v1", "apis/gadget.io/v1alpha1")}
    assert samples.openapi("/openapi/v3") == samples.openapi("/openapi/v3")  # deterministic
    crd = samples.get(CRDS, ObjectKey("", "gadgets.gadget.io"))
    schema = crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["color"] = {"type": "string"}
    samples.update(CRDS, crd)
    settle(samples)
    assert index_hash(samples, "apis/gadget.io/v1") != before["apis/gadget.io/v1"]
    assert index_hash(samples, "apis/gadget.io/v1alpha1") == before["apis/gadget.io/v1alpha1"]
    spec = samples.openapi("/openapi/v3/apis/gadget.io/v1")["components"]["schemas"][
        "io.gadget.v1.Gadget"
    ]["properties"]["spec"]
    assert spec["properties"]["color"] == {"type": "string"}


def test_a_group_is_listed_before_its_crd_is_established(server: APIServer) -> None:
    """As on the real server: the group's APIService exists from the CRD spec; the resource
    list is empty (and there is no OpenAPI document) until the CRD is Established."""
    server.create(CRDS, SAMPLE_CRDS[0])
    assert "example.org" in {g["name"] for g in server.discovery("/apis")["groups"]}
    assert server.discovery("/apis/example.org/v1")["resources"] == []
    assert "apis/example.org/v1" not in server.openapi("/openapi/v3")["paths"]
    settle(server)
    assert server.discovery("/apis/example.org/v1") == real("/apis/example.org/v1")


def test_terminating_crd_lists_fewer_verbs(samples: APIServer) -> None:
    gadgets = GVR("gadget.io", "v1", "gadgets")
    samples.create(GVR("", "v1", "namespaces"), {"metadata": {"name": "ns"}})
    body = {"apiVersion": "gadget.io/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    body["metadata"].update(namespace="ns", finalizers=["example.org/hold"])
    samples.create(gadgets, body)
    samples.delete(CRDS, ObjectKey("", "gadgets.gadget.io"))
    settle(samples)
    resources = samples.discovery("/apis/gadget.io/v1")["resources"]
    assert resources[0]["verbs"] == ["delete", "deletecollection", "get", "list", "watch"]


# --- requests --------------------------------------------------------------------------------


def test_request_hooks_see_discovery_and_openapi_reads(samples: APIServer) -> None:
    seen: list[tuple[str, GVR, ObjectKey, str]] = []

    def hook(verb: str, gvr: GVR, key: ObjectKey, user: User) -> ApiError | None:
        seen.append((verb, gvr, key, user.name))
        if gvr.group == "gadget.io":
            return ApiError(503, "ServiceUnavailable", "injected")
        return None

    samples.add_request_hook(hook)
    samples.discovery("/apis", user=NOBODY)
    samples.openapi("/openapi/v3/apis/example.org/v1?hash=X", user=NOBODY)
    with pytest.raises(ApiError) as err:
        samples.discovery("/apis/gadget.io/v1")
    assert err.value.code == 503
    assert seen == [
        ("get", GVR("", "", ""), ObjectKey("", ""), "nobody"),
        ("get", GVR("example.org", "v1", ""), ObjectKey("", ""), "nobody"),
        ("get", GVR("gadget.io", "v1", ""), ObjectKey("", ""), "admin"),
    ]


def test_after_write_verdict_fails_the_read(samples: APIServer) -> None:
    samples.add_request_hook(
        lambda verb, gvr, key, user: AfterWrite(ApiError(504, "Timeout", "late"))
    )
    with pytest.raises(ApiError) as err:
        samples.openapi("/openapi/v3")
    assert err.value.code == 504


def test_documents_are_copies(samples: APIServer) -> None:
    doc = samples.discovery("/apis/example.org/v1")
    doc["resources"].clear()
    assert samples.discovery("/apis/example.org/v1") == real("/apis/example.org/v1")
