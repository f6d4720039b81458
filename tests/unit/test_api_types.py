"""The core.kube-bind.io API types: wire format, errors, conditions, compatibility with upstream."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from kbcore.api import conditions as c
from kbcore.api.convert import InvalidObject, structure, structure_object, unstructure
from kbcore.api.keys import API_VERSION, FINALIZER_CLEANUP
from kbcore.api.types import (
    APIRef,
    Binding,
    BindingSpec,
    ClusterBinding,
    Condition,
    ConditionStatus,
    ConflictPolicy,
    Connection,
    ConnectionRef,
    ConnectionSpec,
    ExportedAPI,
    PullPolicy,
    SchemaPolicy,
    SchemaSource,
    SecretKeyRef,
    UpdatePolicy,
)
from kbcore.schema.crdgen import openapi_schema

T0 = "2026-01-02T03:04:05Z"
T1 = "2026-01-02T03:05:00Z"

# Objects shaped exactly as the API server returns them: defaults materialised, server-owned
# metadata present, fields the kernel does not model (managedFields) included.
SERVER_CONNECTION: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "Connection",
    "metadata": {
        "name": "demo-provider",
        "uid": "0b5c1f5e-1111-4c1e-9a55-0123456789ab",
        "resourceVersion": "4711",
        "generation": 2,
        "creationTimestamp": T0,
        "finalizers": [FINALIZER_CLEANUP],
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
    },
    "spec": {
        "kubeconfigSecretRef": {"namespace": "kube-bind", "name": "provider", "key": "kubeconfig"},
        "schema": {"source": "Auto", "pullPolicy": "Bound", "updatePolicy": "Always"},
        "autoBind": False,
    },
    "status": {
        "remoteClusterUID": "remote-uid",
        "localClusterUID": "local-uid",
        "activeSchemaSource": "CRD",
        "exportedAPIs": [
            {
                "name": "widgets.example.org",
                "group": "example.org",
                "resource": "widgets",
                "scope": "Namespaced",
                "versions": ["v1"],
            }
        ],
        "conditions": [
            {
                "type": "SecretValid",
                "status": "True",
                "observedGeneration": 2,
                "lastTransitionTime": T0,
                "reason": "AsExpected",
                "message": "kubeconfig secret resolved",
            },
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": T0,
                "reason": "AsExpected",
                "message": "",
            },
        ],
    },
}

SERVER_CLUSTER_BINDING: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "ClusterBinding",
    "metadata": {"name": "widgets", "uid": "u-1", "resourceVersion": "12", "generation": 1},
    "spec": {
        "connectionRef": {"name": "demo-provider"},
        "apis": [{"name": "widgets.example.org"}],
        "conflictPolicy": "Fail",
        "relatedResources": [
            {
                "group": "",
                "resource": "secrets",
                "direction": "FromProvider",
                "selector": {
                    "labelSelector": {
                        "matchLabels": {"app": "widget"},
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}],
                    },
                    "names": ["creds"],
                },
            }
        ],
    },
    "status": {
        "boundAPIs": [
            {
                "name": "widgets.example.org",
                "crdHash": "sha256:0123456789abcdef",
                "conflictCount": 1,
            }
        ],
        "conditions": [
            {
                "type": "Conflicts",
                "status": "True",
                "observedGeneration": 1,
                "lastTransitionTime": T0,
                "reason": "ForeignObjectExists",
                "message": "1 object(s) skipped due to foreign ownership; see object Events",
            }
        ],
    },
}

SERVER_BINDING: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "Binding",
    "metadata": {"name": "widgets", "namespace": "team-a", "uid": "u-2", "resourceVersion": "13"},
    "spec": {
        "connectionRef": {"name": "demo-provider"},
        "apis": [{"name": "widgets.example.org"}, {"name": "gadgets.example.org"}],
        "conflictPolicy": "Adopt",
    },
}

SERVER_OBJECTS = [SERVER_CONNECTION, SERVER_CLUSTER_BINDING, SERVER_BINDING]


# ---------------------------------------------------------------------------------------------
# Round trips and defaults.


@pytest.mark.parametrize("obj", SERVER_OBJECTS, ids=lambda o: o["kind"])
def test_server_objects_round_trip_exactly(obj: dict[str, Any]) -> None:
    value = structure_object(obj)
    assert type(value).__name__ == obj["kind"]
    assert unstructure(value) == obj


def test_structured_values_are_typed() -> None:
    conn = structure_object(SERVER_CONNECTION)
    assert isinstance(conn, Connection)
    assert conn.spec.schema.source is SchemaSource.AUTO
    assert conn.metadata.finalizers == (FINALIZER_CLEANUP,)
    assert conn.status.exported_apis[0].versions == ("v1",)
    assert conn.metadata.extra["managedFields"][0]["manager"] == "kubectl"
    binding = structure_object(SERVER_BINDING)
    assert isinstance(binding, Binding)
    assert binding.spec.conflict_policy is ConflictPolicy.ADOPT
    assert isinstance(structure_object(SERVER_CLUSTER_BINDING), ClusterBinding)


def test_minimal_user_object_gets_defaults() -> None:
    conn = structure_object(
        {
            "apiVersion": API_VERSION,
            "kind": "Connection",
            "metadata": {"name": "p", "creationTimestamp": None},  # kubectl --dry-run writes null
            "spec": {"kubeconfigSecretRef": {"namespace": "kube-bind", "name": "s"}},
        }
    )
    assert conn == Connection(
        metadata=conn.metadata,
        spec=ConnectionSpec(kubeconfig_secret_ref=SecretKeyRef(namespace="kube-bind", name="s")),
    )
    assert conn.metadata.name == "p" and conn.metadata.creation_timestamp == ""
    assert conn.spec.kubeconfig_secret_ref.key == "kubeconfig"
    assert conn.spec.schema == SchemaPolicy(
        source=SchemaSource.AUTO, pull_policy=PullPolicy.BOUND, update_policy=UpdatePolicy.ALWAYS
    )
    # The canonical form is what the API server would store: defaults written, empties omitted.
    assert unstructure(conn) == {
        "apiVersion": API_VERSION,
        "kind": "Connection",
        "metadata": {"name": "p"},
        "spec": {
            "kubeconfigSecretRef": {"namespace": "kube-bind", "name": "s", "key": "kubeconfig"},
            "schema": {"source": "Auto", "pullPolicy": "Bound", "updatePolicy": "Always"},
            "autoBind": False,
        },
    }


def test_unknown_fields_are_pruned_like_the_api_server() -> None:
    obj = copy.deepcopy(SERVER_BINDING)
    obj["spec"]["bogus"] = 1
    obj["status"] = {"whatever": True}
    assert unstructure(structure_object(obj)) == SERVER_BINDING


def test_python_constructed_value_unstructures_to_plain_json() -> None:
    binding = ClusterBinding(
        spec=BindingSpec(
            connection_ref=ConnectionRef(name="demo"), apis=(APIRef(name="widgets.example.org"),)
        )
    )
    out = unstructure(binding)
    assert out == {
        "apiVersion": API_VERSION,
        "kind": "ClusterBinding",
        "spec": {
            "connectionRef": {"name": "demo"},
            "apis": [{"name": "widgets.example.org"}],
            "conflictPolicy": "Fail",
        },
    }
    # Enum members become plain strings, tuples lists: yaml.safe_dump and json accept it.
    assert type(out["spec"]["conflictPolicy"]) is str
    assert yaml.safe_load(yaml.safe_dump(out)) == out == json.loads(json.dumps(out))


def test_unstructure_returns_fresh_containers() -> None:
    conn = structure_object(SERVER_CONNECTION)
    out = unstructure(conn)
    out["metadata"]["managedFields"][0]["manager"] = "mutated"
    out["metadata"]["annotations"]["x"] = "y"
    assert unstructure(conn) == SERVER_CONNECTION


def test_structure_does_not_alias_its_input() -> None:
    obj = copy.deepcopy(SERVER_CONNECTION)
    conn = structure_object(obj)
    obj["metadata"]["managedFields"][0]["manager"] = "mutated"
    assert conn.metadata.extra["managedFields"][0]["manager"] == "kubectl"


def test_structure_single_type() -> None:
    assert structure({"name": "x"}, APIRef) == APIRef(name="x")
    with pytest.raises(InvalidObject) as err:
        structure({"name": "x", "group": "g", "resource": "r", "scope": "Cluster"}, ExportedAPI)
    assert (err.value.path, err.value.message) == ("versions", "required field is missing")


def test_unstructure_rejects_non_api_values() -> None:
    with pytest.raises(TypeError):
        unstructure({"a": 1})


# ---------------------------------------------------------------------------------------------
# Bad input: one clear error naming the JSON path.


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `obj` with the dotted `path` set to `value` (or deleted if `...`)."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is ...:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


BAD_INPUT = [
    # (object, dotted path to change, new value or ... to delete, expected path, message)
    (
        SERVER_CONNECTION,
        "spec.schema.source",
        "Bogus",
        "spec.schema.source",
        "'Bogus' is not one of Auto, CRD, OpenAPI",
    ),
    (
        SERVER_CONNECTION,
        "spec.schema.pullPolicy",
        "bound",
        "spec.schema.pullPolicy",
        "'bound' is not one of Bound, All, None",
    ),
    (
        SERVER_CONNECTION,
        "spec.kubeconfigSecretRef",
        ...,
        "spec.kubeconfigSecretRef",
        "required field is missing",
    ),
    (
        SERVER_CONNECTION,
        "spec.kubeconfigSecretRef.name",
        ...,
        "spec.kubeconfigSecretRef.name",
        "required field is missing",
    ),
    (
        SERVER_CONNECTION,
        "spec.kubeconfigSecretRef.namespace",
        "",
        "spec.kubeconfigSecretRef.namespace",
        "should be at least 1 chars long",
    ),
    (
        SERVER_CONNECTION,
        "spec.autoBind",
        "false",
        "spec.autoBind",
        "expected boolean, got string 'false'",
    ),
    (SERVER_CONNECTION, "spec", ..., "spec", "required field is missing"),
    (SERVER_CONNECTION, "spec", "x", "spec", "expected object, got string 'x'"),
    (
        SERVER_CONNECTION,
        "status.exportedAPIs.0.versions",
        "v1",
        "status.exportedAPIs[0].versions",
        "expected array, got string 'v1'",
    ),
    (
        SERVER_CONNECTION,
        "status.conditions.1.status",
        True,
        "status.conditions[1].status",
        "expected string, got boolean True",
    ),
    (
        SERVER_CONNECTION,
        "status.conditions.0.observedGeneration",
        "2",
        "status.conditions[0].observedGeneration",
        "expected integer, got string '2'",
    ),
    (
        SERVER_CONNECTION,
        "status.conditions.0.reason",
        "",
        "status.conditions[0].reason",
        "should be at least 1 chars long",
    ),
    (
        SERVER_CONNECTION,
        "metadata.labels",
        {"a": 1},
        "metadata.labels[a]",
        "expected string, got integer 1",
    ),
    (
        SERVER_CONNECTION,
        "metadata.generation",
        True,
        "metadata.generation",
        "expected integer, got boolean True",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "spec.apis",
        [],
        "spec.apis",
        "should have at least 1 items",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "spec.apis.0",
        {"name": ""},
        "spec.apis[0].name",
        "should be at least 1 chars long",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "spec.connectionRef.name",
        ...,
        "spec.connectionRef.name",
        "required field is missing",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "spec.relatedResources.0.resource",
        "pods",
        "spec.relatedResources[0].resource",
        "'pods' is not one of secrets, configmaps",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "spec.relatedResources.0.direction",
        ...,
        "spec.relatedResources[0].direction",
        "required field is missing",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "spec.relatedResources.0.selector.labelSelector.matchExpressions.0.values",
        [1],
        "spec.relatedResources[0].selector.labelSelector.matchExpressions[0].values[0]",
        "expected string, got integer 1",
    ),
    (
        SERVER_CLUSTER_BINDING,
        "status.boundAPIs.0.conflictCount",
        1.5,
        "status.boundAPIs[0].conflictCount",
        "expected integer, got number 1.5",
    ),
    (
        SERVER_BINDING,
        "spec.conflictPolicy",
        "Steal",
        "spec.conflictPolicy",
        "'Steal' is not one of Fail, Adopt",
    ),
    (
        SERVER_BINDING,
        "apiVersion",
        "v1",
        "apiVersion",
        "expected 'core.kube-bind.io/v1alpha1', got string 'v1'",
    ),
    (SERVER_BINDING, "apiVersion", ..., "apiVersion", "required field is missing"),
    (
        SERVER_BINDING,
        "kind",
        "Widget",
        "kind",
        "'Widget' is not one of Binding, ClusterBinding, Connection",
    ),
    (SERVER_BINDING, "kind", ..., "kind", "required field is missing"),
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
        structure_object(_with(obj, change, value))
    assert isinstance(err.value, ValueError)
    assert (err.value.path, err.value.message) == (path, message)
    assert str(err.value) == f"{path}: {message}"


def test_every_problem_is_reported() -> None:
    obj = _with(SERVER_CLUSTER_BINDING, "spec.conflictPolicy", "X")
    obj = _with(obj, "spec.apis.0.name", 7)
    with pytest.raises(InvalidObject) as err:
        structure_object(obj)
    assert err.value.errors == (
        ("spec.apis[0].name", "expected string, got integer 7"),
        ("spec.conflictPolicy", "'X' is not one of Fail, Adopt"),
    )
    assert str(err.value) == (
        "spec.apis[0].name: expected string, got integer 7; "
        "spec.conflictPolicy: 'X' is not one of Fail, Adopt"
    )


@pytest.mark.parametrize("data", [None, "Connection", ["kind", "Connection"]])
def test_not_an_object(data: Any) -> None:
    with pytest.raises(InvalidObject) as err:
        structure_object(data)
    assert err.value.path == ""
    assert err.value.message.startswith("expected object, got ")


# ---------------------------------------------------------------------------------------------
# Conditions.


def test_condition_vocabulary_is_verbatim() -> None:
    types = [c.READY, c.SECRET_VALID, c.CONNECTED, c.SCHEMA_IN_SYNC]
    types += [c.SYNCED, c.CONFLICTS, c.PERMISSION_DENIED]
    assert types == [
        "Ready",
        "SecretValid",
        "Connected",
        "SchemaInSync",
        "Synced",
        "Conflicts",
        "PermissionDenied",
    ]
    reasons = [c.AS_EXPECTED, c.PENDING, c.SECRET_NOT_FOUND, c.CLUSTER_IDENTITY_CHANGED]
    reasons += [c.API_NOT_EXPORTED, c.FOREIGN_OBJECT_EXISTS, c.OWNED_BY_ANOTHER, c.FORBIDDEN]
    reasons += [c.DRAINING_BINDINGS, c.DRAINING_OBJECTS]
    assert reasons == [
        "AsExpected",
        "Pending",
        "SecretNotFound",
        "ClusterIdentityChanged",
        "APINotExported",
        "ForeignObjectExists",
        "OwnedByAnother",
        "Forbidden",
        "DrainingBindings",
        "DrainingObjects",
    ]


def _cond(type_: str, status: ConditionStatus, reason: str = "AsExpected", **kw: Any) -> Condition:
    return Condition(type=type_, status=status, reason=reason, **kw)


TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


def test_set_condition_appends_new_type_stamped_now() -> None:
    got = c.set_condition((), _cond(c.READY, TRUE, observed_generation=3), T0)
    assert got == (_cond(c.READY, TRUE, observed_generation=3, last_transition_time=T0),)


def test_set_condition_keeps_time_when_status_unchanged() -> None:
    before = (
        _cond(c.SECRET_VALID, TRUE, last_transition_time=T0),
        _cond(c.READY, FALSE, reason=c.PENDING, last_transition_time=T0),
    )
    got = c.set_condition(
        before,
        _cond(c.READY, FALSE, reason=c.SECRET_NOT_FOUND, message="m", observed_generation=2),
        T1,
    )
    assert got == (
        before[0],
        _cond(
            c.READY,
            FALSE,
            reason=c.SECRET_NOT_FOUND,
            message="m",
            observed_generation=2,
            last_transition_time=T0,
        ),
    )


def test_set_condition_flip_changes_time_and_keeps_position() -> None:
    before = (
        _cond(c.READY, FALSE, reason=c.PENDING, last_transition_time=T0),
        _cond(c.SYNCED, TRUE, last_transition_time=T0),
    )
    got = c.set_condition(before, _cond(c.READY, TRUE), T1)
    assert got == (_cond(c.READY, TRUE, last_transition_time=T1), before[1])
    # An explicit lastTransitionTime on the new condition wins over `now` (as upstream).
    explicit = c.set_condition(before, _cond(c.READY, TRUE, last_transition_time="x"), T1)
    assert explicit[0].last_transition_time == "x"


def test_set_condition_no_change_returns_same_tuple() -> None:
    before = (_cond(c.READY, TRUE, last_transition_time=T0, observed_generation=1),)
    assert c.set_condition(before, _cond(c.READY, TRUE, observed_generation=1), T1) is before


def test_find_and_is_true() -> None:
    conds = (_cond(c.READY, TRUE), _cond(c.CONFLICTS, FALSE))
    assert c.find_condition(conds, c.CONFLICTS) == conds[1]
    assert c.find_condition(conds, c.SYNCED) is None
    assert c.is_true(conds, c.READY)
    assert not c.is_true(conds, c.CONFLICTS)
    assert not c.is_true(conds, c.SYNCED)
    assert not c.is_true((_cond(c.READY, ConditionStatus.UNKNOWN),), c.READY)


# ---------------------------------------------------------------------------------------------
# Compatibility with upstream: every JSON path of every kind, hand-written from upstream's API.

_CONDITION_PATHS = {
    "status.conditions",
    "status.conditions[].type",
    "status.conditions[].status",
    "status.conditions[].observedGeneration",
    "status.conditions[].lastTransitionTime",
    "status.conditions[].reason",
    "status.conditions[].message",
}
_TOP = {"apiVersion", "kind", "metadata", "spec", "status"}

CONNECTION_PATHS = (
    _TOP
    | _CONDITION_PATHS
    | {
        "spec.kubeconfigSecretRef",
        "spec.kubeconfigSecretRef.namespace",
        "spec.kubeconfigSecretRef.name",
        "spec.kubeconfigSecretRef.key",
        "spec.schema",
        "spec.schema.source",
        "spec.schema.pullPolicy",
        "spec.schema.updatePolicy",
        "spec.autoBind",
        # Our addition: a tenant of a shared provider (kbcore.sync.tenancy).
        "spec.tenant",
        "spec.tenant.namespace",
        "spec.tenant.apis",
        "status.tenantNamespaces",
        "status.remoteClusterUID",
        "status.localClusterUID",
        "status.activeSchemaSource",
        "status.exportedAPIs",
        "status.exportedAPIs[].name",
        "status.exportedAPIs[].group",
        "status.exportedAPIs[].resource",
        "status.exportedAPIs[].scope",
        "status.exportedAPIs[].versions",
    }
)

BINDING_PATHS = (
    _TOP
    | _CONDITION_PATHS
    | {
        "spec.connectionRef",
        "spec.connectionRef.name",
        "spec.apis",
        "spec.apis[].name",
        "spec.conflictPolicy",
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
        "status.boundAPIs",
        "status.boundAPIs[].name",
        "status.boundAPIs[].crdHash",
        "status.boundAPIs[].conflictCount",
        # Our addition: a per-API Ready condition (docs/design.md, "Differences from upstream").
        *(p.replace("status.", "status.boundAPIs[].", 1) for p in _CONDITION_PATHS),
    }
)

_CONDITION_REQUIRED = {
    f"status.conditions[].{f}"
    for f in ("type", "status", "lastTransitionTime", "reason", "message")
}
CONNECTION_REQUIRED = _CONDITION_REQUIRED | {
    "spec",
    "spec.kubeconfigSecretRef",
    "spec.kubeconfigSecretRef.namespace",
    "spec.kubeconfigSecretRef.name",
    "spec.tenant.namespace",
    "spec.tenant.apis",
    *(f"status.exportedAPIs[].{f}" for f in ("name", "group", "resource", "scope", "versions")),
}
BINDING_REQUIRED = _CONDITION_REQUIRED | {
    "spec",
    "spec.connectionRef",
    "spec.connectionRef.name",
    "spec.apis",
    "spec.apis[].name",
    "spec.relatedResources[].group",
    "spec.relatedResources[].resource",
    "spec.relatedResources[].direction",
    "spec.relatedResources[].selector.labelSelector.matchExpressions[].key",
    "spec.relatedResources[].selector.labelSelector.matchExpressions[].operator",
    "status.boundAPIs[].name",
    *(p.replace("status.", "status.boundAPIs[].", 1) for p in _CONDITION_REQUIRED),
}


def _paths(schema: dict[str, Any], prefix: str = "") -> tuple[set[str], set[str]]:
    """All property paths of a schema, and the required ones."""
    paths: set[str] = set()
    required: set[str] = set()
    if schema.get("type") == "array":
        return _paths(schema["items"], prefix + "[]")
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        paths.add(path)
        if name in schema.get("required", ()):
            required.add(path)
        sub_paths, sub_required = _paths(sub, path)
        paths |= sub_paths
        required |= sub_required
    return paths, required


@pytest.mark.parametrize(
    ("cls", "expected_paths", "expected_required"),
    [
        (Connection, CONNECTION_PATHS, CONNECTION_REQUIRED),
        (ClusterBinding, BINDING_PATHS, BINDING_REQUIRED),
        (Binding, BINDING_PATHS, BINDING_REQUIRED),
    ],
)
def test_json_paths_match_spec(
    cls: type[Connection | ClusterBinding | Binding],
    expected_paths: set[str],
    expected_required: set[str],
) -> None:
    paths, required = _paths(openapi_schema(cls))
    assert paths == expected_paths
    assert required == expected_required


_MAP_PATHS = ("spec.relatedResources[].selector.labelSelector.matchLabels",)


@pytest.mark.parametrize("obj", SERVER_OBJECTS, ids=lambda o: o["kind"])
def test_fixtures_use_only_spec_paths(obj: dict[str, Any]) -> None:
    """The server-shaped fixtures (and so the converter's output) stay within upstream's paths."""
    expected = CONNECTION_PATHS if obj["kind"] == "Connection" else BINDING_PATHS

    def walk(value: Any, prefix: str) -> set[str]:
        if isinstance(value, list):
            return set().union(*(walk(v, prefix + "[]") for v in value))
        if isinstance(value, dict) and prefix not in ("metadata", *_MAP_PATHS):
            out = set()
            for k, v in value.items():
                path = f"{prefix}.{k}" if prefix else k
                out |= {path} | walk(v, path)
            return out
        return set()

    assert walk(unstructure(structure_object(obj)), "") <= expected
