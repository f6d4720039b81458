"""The service layer's API (catalog.kube-bind.io, iam.kube-bind.io): wire format, defaults,
required fields, the limits checked when structuring, and the CRDs' rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kbcore.api import catalog, iam, keys
from kbcore.api.catalog import (
    Collection,
    Export,
    ExportSpec,
    GroupResource,
)
from kbcore.api.convert import (
    InvalidObject,
    structure,
    structure_object,
    structure_service_object,
    unstructure,
)
from kbcore.api.iam import BoundNamespace, Grant, GrantSpec, OIDCIdentity
from kbcore.api.service_conditions import ServiceConditionType, ServiceReason
from kbcore.api.service_kinds import SERVICE_KINDS, ServiceObject
from kbcore.api.types import ConflictPolicy, PullPolicy, RelatedResourceKind, SchemaPolicy
from kbcore.schema import crdgen
from tests.unit.test_api_types import SERVER_CONNECTION, _paths, _with
from tests.unit.test_crdgen import _apply_defaults

T0 = "2026-01-02T03:04:05Z"
CATALOG = f"{keys.CATALOG_GROUP}/v1alpha1"
IAM = f"{keys.IAM_GROUP}/v1alpha1"
UID = "0b5c1f5e-1111-4c1e-9a55-0123456789ab"
READY = {
    "type": "Ready",
    "status": "True",
    "observedGeneration": 1,
    "lastTransitionTime": T0,
    "reason": "AsExpected",
    "message": "",
}

# Objects shaped as the API server returns them: defaults materialised, server metadata present.
SERVER_EXPORT: dict[str, Any] = {
    "apiVersion": CATALOG,
    "kind": "Export",
    "metadata": {
        "name": "widgets",
        "uid": "u-1",
        "resourceVersion": "7",
        "generation": 1,
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    },
    "spec": {
        "title": "Widgets",
        "description": "Widgets and gadgets, managed for you.",
        "docsURL": "https://docs.example.org/widgets?lang=en#start",
        "iconURL": "http://cdn.example.org:8080/icons/widgets.svg",
        "apis": [
            {"group": "example.org", "resource": "widgets"},
            {"group": "example.org", "resource": "gadgets"},
        ],
        "conflictPolicy": "Adopt",
        "relatedResources": [
            {"group": "", "resource": "secrets", "direction": "FromProvider"},
        ],
        "schema": {"source": "CRD", "pullPolicy": "Bound", "updatePolicy": "Once"},
    },
    "status": {"conditions": [READY]},
}

SERVER_COLLECTION: dict[str, Any] = {
    "apiVersion": CATALOG,
    "kind": "Collection",
    "metadata": {"name": "databases", "uid": "u-2", "resourceVersion": "8"},
    "spec": {"title": "Databases", "exports": ["postgres", "redis"]},
    "status": {
        "conditions": [
            READY | {"status": "False", "reason": "ExportNotFound", "message": "missing: redis"}
        ]
    },
}

SERVER_GRANT: dict[str, Any] = {
    "apiVersion": IAM,
    "kind": "Grant",
    "metadata": {"name": "kb-0a1b2c3d4e", "uid": "u-3", "resourceVersion": "9"},
    "spec": {
        "identity": {
            "issuer": "https://dex.example.org",
            "subject": "CgVhbGljZRIFbG9jYWw",
            "email": "alice@example.org",
        },
        "export": "widgets",
        "consumerClusterUID": UID,
    },
    "status": {
        "namespace": "kb-0a1b2c3d4e",
        "serviceAccountName": "konnector",
        "tokenSecretName": "konnector-token",
        "apis": ["gadgets.example.org", "widgets.example.org"],
        "issuedAt": T0,
        "conditions": [READY | {"reason": "Issued"}],
    },
}

SERVER_BOUND_NAMESPACE: dict[str, Any] = {
    "apiVersion": IAM,
    "kind": "BoundNamespace",
    "metadata": {"name": "team-a", "namespace": "kb-0a1b2c3d4e", "uid": "u-4"},
    "spec": {},
    "status": {"namespace": "kb-0a1b2c3d4e-team-a", "conditions": [READY]},
}

SERVER_OBJECTS = [SERVER_EXPORT, SERVER_COLLECTION, SERVER_GRANT, SERVER_BOUND_NAMESPACE]


# ---------------------------------------------------------------------------------------------
# Round trips, typed values and defaults.


@pytest.mark.parametrize("obj", SERVER_OBJECTS, ids=lambda o: o["kind"])
def test_server_objects_round_trip_exactly(obj: dict[str, Any]) -> None:
    value = structure_service_object(obj)
    assert type(value).__name__ == obj["kind"]
    assert unstructure(value) == obj


def test_structured_values_are_typed() -> None:
    export = structure_service_object(SERVER_EXPORT)
    assert isinstance(export, Export)
    assert export.spec.apis[0] == GroupResource(group="example.org", resource="widgets")
    assert [a.api_name for a in export.spec.apis] == ["widgets.example.org", "gadgets.example.org"]
    assert export.spec.conflict_policy is ConflictPolicy.ADOPT
    assert export.spec.related_resources[0].resource is RelatedResourceKind.SECRETS
    assert export.spec.docs_url == "https://docs.example.org/widgets?lang=en#start"
    assert export.metadata.extra["managedFields"][0]["manager"] == "kubectl"
    grant = structure_service_object(SERVER_GRANT)
    assert isinstance(grant, Grant)
    assert grant.spec.consumer_cluster_uid == UID
    assert grant.spec.identity.email == "alice@example.org"
    assert grant.status.token_secret_name == "konnector-token"
    assert grant.status.apis == ("gadgets.example.org", "widgets.example.org")
    assert grant.status.conditions[0].reason == ServiceReason.ISSUED
    claim = structure_service_object(SERVER_BOUND_NAMESPACE)
    assert isinstance(claim, BoundNamespace)
    assert claim.status.namespace == "kb-0a1b2c3d4e-team-a"
    collection = structure_service_object(SERVER_COLLECTION)
    assert isinstance(collection, Collection)
    assert collection.spec.exports == ("postgres", "redis")


def test_minimal_objects_get_the_bindings_defaults() -> None:
    export = structure_service_object(
        {
            "apiVersion": CATALOG,
            "kind": "Export",
            "metadata": {"name": "w", "creationTimestamp": None},
            "spec": {"title": "W", "apis": [{"group": "example.org", "resource": "widgets"}]},
        }
    )
    assert isinstance(export, Export)
    # An Export's defaults are a binding's and a Connection's, as they are copied into them.
    assert export.spec.conflict_policy is ConflictPolicy.FAIL
    assert export.spec.schema == SchemaPolicy()
    assert export.spec.schema.pull_policy is PullPolicy.BOUND
    assert (export.spec.description, export.spec.docs_url, export.spec.icon_url) == ("", "", "")
    assert unstructure(export) == {
        "apiVersion": CATALOG,
        "kind": "Export",
        "metadata": {"name": "w"},
        "spec": {
            "title": "W",
            "apis": [{"group": "example.org", "resource": "widgets"}],
            "conflictPolicy": "Fail",
            "schema": {"source": "Auto", "pullPolicy": "Bound", "updatePolicy": "Always"},
        },
    }
    claim = structure_service_object(
        {"apiVersion": IAM, "kind": "BoundNamespace", "metadata": {"name": "a", "namespace": "h"}}
    )
    # The empty spec is defaulted by the server, so it is always written.
    assert unstructure(claim)["spec"] == {}


def test_python_constructed_grant_unstructures_with_wire_names() -> None:
    grant = Grant(
        spec=GrantSpec(
            identity=OIDCIdentity(issuer="https://dex.example.org", subject="alice"),
            export="widgets",
            consumer_cluster_uid=UID,
        )
    )
    assert unstructure(grant) == {
        "apiVersion": IAM,
        "kind": "Grant",
        "spec": {
            "identity": {"issuer": "https://dex.example.org", "subject": "alice"},
            "export": "widgets",
            "consumerClusterUID": UID,
        },
    }


def test_unknown_fields_are_pruned_like_the_api_server() -> None:
    obj = copy.deepcopy(SERVER_GRANT)
    obj["spec"]["bogus"] = 1
    obj["spec"]["identity"]["groups"] = ["admins"]
    obj["status"]["token"] = "must-not-survive"
    assert unstructure(structure_service_object(obj)) == SERVER_GRANT


def test_the_two_apis_do_not_structure_each_others_kinds() -> None:
    with pytest.raises(InvalidObject) as err:
        structure_service_object(SERVER_CONNECTION)
    assert (err.value.path, err.value.message) == (
        "kind",
        "'Connection' is not one of BoundNamespace, Collection, Export, Grant",
    )
    with pytest.raises(InvalidObject) as err:
        structure_object(SERVER_EXPORT)
    assert err.value.path == "kind"


# ---------------------------------------------------------------------------------------------
# Bad input: rejected when structuring, with the field's JSON path, as the API server would.

URL_REJECTED = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:image/svg+xml;base64,PHN2Zz4=",
    "file:///etc/passwd",
    "ftp://example.org/icon.png",
    "https://user:password@example.org/icon.png",
    "https://example.org/a b.png",
    'https://example.org/"onload="x',
    "//example.org/icon.png",
    "",
]
URL_ACCEPTED = [
    "https://example.org",
    "http://example.org/icon.png",
    "https://cdn.example.org:8443/a/b.svg?v=1&x=%20#top",
    "https://127.0.0.1/icon",
]


@pytest.mark.parametrize("url", URL_REJECTED)
@pytest.mark.parametrize("field", ["docsURL", "iconURL"])
def test_only_http_and_https_urls_are_accepted(field: str, url: str) -> None:
    with pytest.raises(InvalidObject) as err:
        structure_service_object(_with(SERVER_EXPORT, f"spec.{field}", url))
    assert err.value.path == f"spec.{field}"
    assert err.value.message == f"should match '{catalog.URL_PATTERN}'"


@pytest.mark.parametrize("url", URL_ACCEPTED)
def test_ordinary_urls_are_accepted(url: str) -> None:
    spec = structure(
        {"title": "t", "apis": [{"group": "a.b", "resource": "c"}], "iconURL": url, "docsURL": url},
        ExportSpec,
    )
    assert spec.icon_url == spec.docs_url == url


BAD_INPUT = [
    # (object, dotted path to change, new value or ... to delete, expected path, message)
    (SERVER_EXPORT, "spec.apis", [], "spec.apis", "should have at least 1 items"),
    (SERVER_EXPORT, "spec.apis", ..., "spec.apis", "required field is missing"),
    (SERVER_EXPORT, "spec.title", ..., "spec.title", "required field is missing"),
    (SERVER_EXPORT, "spec.title", "", "spec.title", "should be at least 1 chars long"),
    (
        SERVER_EXPORT,
        "spec.apis.0.group",
        "Example.org",
        "spec.apis[0].group",
        f"should match '{catalog.GROUP_PATTERN}'",
    ),
    (
        SERVER_EXPORT,
        "spec.apis.0.group",
        "core",  # no dot: not a group a CRD can have
        "spec.apis[0].group",
        f"should match '{catalog.GROUP_PATTERN}'",
    ),
    (
        SERVER_EXPORT,
        "spec.apis.0.resource",
        "widgets.example.org",
        "spec.apis[0].resource",
        f"should match '{catalog.RESOURCE_PATTERN}'",
    ),
    (
        SERVER_EXPORT,
        "spec.conflictPolicy",
        "Steal",
        "spec.conflictPolicy",
        "'Steal' is not one of Fail, Adopt",
    ),
    (
        SERVER_EXPORT,
        "spec.schema.source",
        "crd",
        "spec.schema.source",
        "'crd' is not one of Auto, CRD, OpenAPI",
    ),
    (SERVER_COLLECTION, "spec.exports", [], "spec.exports", "should have at least 1 items"),
    (
        SERVER_COLLECTION,
        "spec.exports",
        "postgres",
        "spec.exports",
        "expected array, got string 'postgres'",
    ),
    (
        SERVER_GRANT,
        "spec.consumerClusterUID",
        UID.upper(),
        "spec.consumerClusterUID",
        f"should match '{iam.UUID_PATTERN}'",
    ),
    (
        SERVER_GRANT,
        "spec.consumerClusterUID",
        "kube-system",
        "spec.consumerClusterUID",
        f"should match '{iam.UUID_PATTERN}'",
    ),
    (
        SERVER_GRANT,
        "spec.consumerClusterUID",
        ...,
        "spec.consumerClusterUID",
        "required field is missing",
    ),
    (
        SERVER_GRANT,
        "spec.identity.subject",
        "",
        "spec.identity.subject",
        "should be at least 1 chars long",
    ),
    (
        SERVER_GRANT,
        "spec.identity.issuer",
        ...,
        "spec.identity.issuer",
        "required field is missing",
    ),
    (SERVER_GRANT, "spec.export", "", "spec.export", "should be at least 1 chars long"),
    (
        SERVER_GRANT,
        "status.apis",
        [1],
        "status.apis[0]",
        "expected string, got integer 1",
    ),
    (
        SERVER_BOUND_NAMESPACE,
        "status.conditions.0.reason",
        "",
        "status.conditions[0].reason",
        "should be at least 1 chars long",
    ),
    (
        SERVER_GRANT,
        "apiVersion",
        "core.kube-bind.io/v1alpha1",
        "apiVersion",
        "expected 'iam.kube-bind.io/v1alpha1', got string 'core.kube-bind.io/v1alpha1'",
    ),
    (
        SERVER_EXPORT,
        "apiVersion",
        IAM,
        "apiVersion",
        "expected 'catalog.kube-bind.io/v1alpha1', got string 'iam.kube-bind.io/v1alpha1'",
    ),
]


@pytest.mark.parametrize(
    ("obj", "change", "value", "path", "message"),
    BAD_INPUT,
    ids=[f"{o['kind']}:{ch}={v!r}" for o, ch, v, _, _ in BAD_INPUT],
)
def test_bad_input_names_the_field(
    obj: dict[str, Any], change: str, value: Any, path: str, message: str
) -> None:
    with pytest.raises(InvalidObject) as err:
        structure_service_object(_with(obj, change, value))
    assert (err.value.path, err.value.message) == (path, message)


def test_every_problem_is_reported() -> None:
    obj = _with(SERVER_EXPORT, "spec.iconURL", "javascript:alert(1)")
    obj = _with(obj, "spec.apis.1.resource", 7)
    with pytest.raises(InvalidObject) as err:
        structure_service_object(obj)
    assert [p for p, _ in err.value.errors] == ["spec.iconURL", "spec.apis[1].resource"]


# ---------------------------------------------------------------------------------------------
# The CRDs: every JSON path, the required ones, and the rules only the API server checks.

_CONDITIONS = {
    "status.conditions",
    *(
        f"status.conditions[].{f}"
        for f in ("type", "status", "observedGeneration", "lastTransitionTime", "reason")
    ),
    "status.conditions[].message",
}
_CONDITIONS_REQUIRED = {
    f"status.conditions[].{f}"
    for f in ("type", "status", "lastTransitionTime", "reason", "message")
}
_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}
_RELATED = {
    "spec.relatedResources",
    "spec.relatedResources[].group",
    "spec.relatedResources[].resource",
    "spec.relatedResources[].direction",
    "spec.relatedResources[].selector",
    "spec.relatedResources[].selector.labelSelector",
    "spec.relatedResources[].selector.labelSelector.matchLabels",
    "spec.relatedResources[].selector.labelSelector.matchExpressions",
    "spec.relatedResources[].selector.labelSelector.matchExpressions[].key",
    "spec.relatedResources[].selector.labelSelector.matchExpressions[].operator",
    "spec.relatedResources[].selector.labelSelector.matchExpressions[].values",
    "spec.relatedResources[].selector.names",
}

PATHS = {
    Export: (
        _TOP
        | _CONDITIONS
        | _RELATED
        | {
            "spec.title",
            "spec.description",
            "spec.docsURL",
            "spec.iconURL",
            "spec.apis",
            "spec.apis[].group",
            "spec.apis[].resource",
            "spec.conflictPolicy",
            "spec.schema",
            "spec.schema.source",
            "spec.schema.pullPolicy",
            "spec.schema.updatePolicy",
        },
        _CONDITIONS_REQUIRED
        | {
            "spec",
            "spec.title",
            "spec.apis",
            "spec.apis[].group",
            "spec.apis[].resource",
            "spec.relatedResources[].group",
            "spec.relatedResources[].resource",
            "spec.relatedResources[].direction",
            "spec.relatedResources[].selector.labelSelector.matchExpressions[].key",
            "spec.relatedResources[].selector.labelSelector.matchExpressions[].operator",
        },
    ),
    Collection: (
        _TOP | _CONDITIONS | {"spec.title", "spec.description", "spec.exports"},
        _CONDITIONS_REQUIRED | {"spec", "spec.title", "spec.exports"},
    ),
    Grant: (
        _TOP
        | _CONDITIONS
        | {
            "spec.identity",
            "spec.identity.issuer",
            "spec.identity.subject",
            "spec.identity.email",
            "spec.export",
            "spec.consumerClusterUID",
            "status.namespace",
            "status.serviceAccountName",
            "status.tokenSecretName",
            "status.apis",
            "status.issuedAt",
        },
        _CONDITIONS_REQUIRED
        | {
            "spec",
            "spec.identity",
            "spec.identity.issuer",
            "spec.identity.subject",
            "spec.export",
            "spec.consumerClusterUID",
        },
    ),
    BoundNamespace: (_TOP | _CONDITIONS | {"status.namespace"}, _CONDITIONS_REQUIRED),
}


@pytest.mark.parametrize("cls", SERVICE_KINDS, ids=lambda c: c.KIND.kind)
def test_json_paths_and_required_fields(cls: type[ServiceObject]) -> None:
    paths, required = _paths(crdgen.openapi_schema(cls))
    assert (paths, required) == PATHS[cls]


def _crd(cls: type[ServiceObject]) -> dict[str, Any]:
    return crdgen.crd(cls)


def test_names_groups_and_scopes() -> None:
    for cls, group, plural, scope in [
        (Export, "catalog.kube-bind.io", "exports", "Cluster"),
        (Collection, "catalog.kube-bind.io", "collections", "Cluster"),
        (Grant, "iam.kube-bind.io", "grants", "Cluster"),
        (BoundNamespace, "iam.kube-bind.io", "boundnamespaces", "Namespaced"),
    ]:
        crd = _crd(cls)
        assert crd["metadata"]["name"] == f"{plural}.{group}"
        assert (crd["spec"]["group"], crd["spec"]["scope"]) == (group, scope)
        assert crd["spec"]["names"]["kind"] == cls.KIND.kind
        assert crd["spec"]["names"]["listKind"] == f"{cls.KIND.kind}List"
        (version,) = crd["spec"]["versions"]
        assert (version["name"], version["subresources"]) == ("v1alpha1", {"status": {}})


def test_grant_spec_fields_are_immutable() -> None:
    spec = crdgen.openapi_schema(Grant)["properties"]["spec"]["properties"]
    for field in ("identity", "export", "consumerClusterUID"):
        assert spec[field]["x-kubernetes-validations"] == [
            {"rule": "self == oldSelf", "message": f"{field} is immutable"}
        ]
    assert spec["consumerClusterUID"]["pattern"] == iam.UUID_PATTERN


def test_object_names_are_checked_by_cel() -> None:
    grant = crdgen.openapi_schema(Grant)["x-kubernetes-validations"]
    assert grant[0]["rule"] == "self.metadata.name.matches('^kb-[0-9a-z]{10}$')"
    claim = crdgen.openapi_schema(BoundNamespace)["x-kubernetes-validations"]
    # `<home>-<name>` must fit a namespace name: 63 - len("kb-") - 10 - len("-").
    assert iam.CONSUMER_NAMESPACE_MAX_LENGTH == 49
    assert claim[1]["rule"] == "size(self.metadata.name) <= 49"
    assert "x-kubernetes-validations" not in crdgen.openapi_schema(Export)


def test_export_apis_and_collection_exports_are_keyed_lists() -> None:
    export = crdgen.openapi_schema(Export)["properties"]["spec"]["properties"]
    assert export["apis"]["minItems"] == 1
    assert export["apis"]["x-kubernetes-list-type"] == "map"
    assert export["apis"]["x-kubernetes-list-map-keys"] == ["group", "resource"]
    assert export["iconURL"]["pattern"] == export["docsURL"]["pattern"] == catalog.URL_PATTERN
    assert export["conflictPolicy"]["default"] == "Fail"
    assert export["schema"]["default"] == {}
    collection = crdgen.openapi_schema(Collection)["properties"]["spec"]["properties"]
    assert collection["exports"]["minItems"] == 1
    assert collection["exports"]["x-kubernetes-list-type"] == "set"


MINIMAL: dict[type[ServiceObject], dict[str, Any]] = {
    Export: {"spec": {"title": "W", "apis": [{"group": "a.b", "resource": "c"}]}},
    Collection: {"spec": {"title": "C", "exports": ["w"]}},
    Grant: {
        "spec": {
            "identity": {"issuer": "i", "subject": "s"},
            "export": "w",
            "consumerClusterUID": UID,
        }
    },
    BoundNamespace: {},
}


@pytest.mark.parametrize("cls", SERVICE_KINDS, ids=lambda c: c.KIND.kind)
def test_schema_defaults_match_python_defaults(cls: type[ServiceObject]) -> None:
    minimal = {"apiVersion": cls.KIND.api_version, "kind": cls.KIND.kind, **MINIMAL[cls]}
    stored = _apply_defaults(minimal, crdgen.openapi_schema(cls))
    assert unstructure(structure_service_object(minimal)) == stored
    assert structure_service_object(stored) == structure_service_object(minimal)


def test_condition_vocabulary() -> None:
    assert [t.value for t in ServiceConditionType] == ["Ready", "Stale", "Revoked"]
    assert ServiceReason.API_NOT_EXPORTED == "APINotExported"
    assert ServiceReason.ISSUED == "Issued"
    # A member is its wire string: usable in a Condition and equal to one read back.
    assert structure_service_object(SERVER_GRANT).status.conditions[0].type == (
        ServiceConditionType.READY
    )
