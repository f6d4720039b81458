"""CRD establishment, schema handling and cascade; namespace lifecycle."""

from __future__ import annotations

import pytest

from kbcore.api.resources import CONFIGMAPS, CRDS, NAMESPACES
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import APIServer
from tests.unit.kbsim.conftest import WIDGETS, Clock, crd, establish, key, widget

CRD_KEY = ObjectKey("", "widgets.example.org")


def conditions(obj: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"].get("conditions", [])}


def test_crd_is_served_only_once_established(server: APIServer) -> None:
    created = server.create(CRDS, crd())
    assert created["status"] == {
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": ["v1"],
    }
    assert created["spec"]["names"]["singular"] == "widget"  # defaulted
    assert created["spec"]["names"]["listKind"] == "WidgetList"
    with pytest.raises(ApiError) as err:
        server.create(WIDGETS, widget())
    assert err.value.code == 404
    assert server.pending_work()
    server.tick()
    assert not server.pending_work()
    established = server.get(CRDS, CRD_KEY)
    assert conditions(established) == {
        "NamesAccepted": ("True", "NoConflicts"),
        "Established": ("True", "InitialNamesAccepted"),
    }
    assert established["status"]["acceptedNames"]["kind"] == "Widget"
    server.create(WIDGETS, widget())
    assert server.resource_for(WIDGETS).status is True


def test_crd_validation(server: APIServer) -> None:
    bad = crd()
    bad["metadata"]["name"] = "wrong.example.org"
    bad["spec"]["scope"] = "Everywhere"
    with pytest.raises(ApiError) as err:
        server.create(CRDS, bad)
    assert err.value.code == 422
    assert (
        'metadata.name: Invalid value: "wrong.example.org": '
        'must be spec.names.plural+"."+spec.group' in err.value.message
    )
    assert (
        'spec.scope: Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"'
        in err.value.message
    )


def test_crd_in_protected_group_needs_approval(server: APIServer) -> None:
    with pytest.raises(ApiError) as err:
        server.create(CRDS, crd(group="things.k8s.io"))
    assert "protected groups must have approval annotation" in err.value.message
    ok = crd(group="things.k8s.io")
    ok["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    server.create(CRDS, ok)


def test_crd_schema_requires_types(server: APIServer) -> None:
    body = crd(schema={"type": "object", "properties": {"spec": {"properties": {}}}})
    with pytest.raises(ApiError) as err:
        server.create(CRDS, body)
    assert (
        "properties[spec].type: Required value: must not be empty for specified object fields"
        in err.value.message
    )


def test_custom_resources_are_pruned_defaulted_and_validated(widgets: APIServer) -> None:
    body = widget(size=1, unknown="dropped", free={"any": {"thing": 1}})
    body["extra"] = "dropped"
    body["metadata"]["bogus"] = "dropped"
    w = widgets.create(WIDGETS, body)
    assert w["spec"] == {"size": 1, "mode": "auto", "free": {"any": {"thing": 1}}}
    assert "extra" not in w and "bogus" not in w["metadata"]
    with pytest.raises(ApiError) as err:
        widgets.create(WIDGETS, widget("w2", size=-1, color="pink"))
    assert err.value.message == (
        'Widget.example.org "w2" is invalid: [spec.color: Unsupported value: "pink": supported '
        'values: "red", "blue", "green", spec.size: Invalid value: -1: spec.size in body should '
        "be greater than or equal to 0]"
    )
    with pytest.raises(ApiError) as err:
        widgets.create(WIDGETS, widget("w3", size="big"))
    assert err.value.message == (
        'Widget.example.org "w3" is invalid: spec.size: Invalid value: "string": spec.size in '
        'body must be of type integer: "string"'
    )
    with pytest.raises(ApiError) as err:
        widgets.create(WIDGETS, widget("w4", ports=[{"port": 1}]))
    assert "spec.ports[0].name: Required value" in err.value.message


def test_crd_schema_update_takes_effect(widgets: APIServer) -> None:
    widgets.create(WIDGETS, widget(size=1))
    current = widgets.get(CRDS, CRD_KEY)
    schema = current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["extra"] = {"type": "string", "default": "x"}
    updated = widgets.update(CRDS, current)
    assert updated["metadata"]["generation"] == 2
    assert widgets.get(WIDGETS, key("w1"))["spec"]["extra"] == "x"  # defaulted on read
    w = widgets.create(WIDGETS, widget("w2", extra="y"))
    assert w["spec"]["extra"] == "y"


def test_crd_scope_is_immutable(widgets: APIServer) -> None:
    current = widgets.get(CRDS, CRD_KEY)
    current["spec"]["scope"] = "Cluster"
    with pytest.raises(ApiError) as err:
        widgets.update(CRDS, current)
    assert 'spec.scope: Invalid value: "Cluster": field is immutable' in err.value.message


def test_crd_scope_and_kind_may_change_until_established(server: APIServer) -> None:
    # requireImmutableNames is "the old CRD is Established"; group and plural never change.
    created = server.create(CRDS, crd())
    created["spec"]["scope"] = "Cluster"
    created["spec"]["names"]["kind"] = "Gizmo"
    updated = server.update(CRDS, created)
    assert (updated["spec"]["scope"], updated["spec"]["names"]["kind"]) == ("Cluster", "Gizmo")


def test_crd_kind_group_and_plural_are_immutable(widgets: APIServer) -> None:
    current = widgets.get(CRDS, CRD_KEY)
    current["spec"]["names"]["kind"] = "Gizmo"
    with pytest.raises(ApiError) as err:
        widgets.update(CRDS, current)
    assert 'spec.names.kind: Invalid value: "Gizmo": field is immutable' in err.value.message
    current = widgets.get(CRDS, CRD_KEY)
    current["spec"]["group"] = "example.com"
    current["spec"]["names"]["plural"] = "gizmos"
    with pytest.raises(ApiError) as err:
        widgets.update(CRDS, current)
    assert 'spec.group: Invalid value: "example.com": field is immutable' in err.value.message
    assert 'spec.names.plural: Invalid value: "gizmos": field is immutable' in err.value.message
    # singular and listKind may change (the konnector's gate refuses them nonetheless).
    current = widgets.get(CRDS, CRD_KEY)
    current["spec"]["names"]["singular"] = "wdgt"
    assert widgets.update(CRDS, current)["spec"]["names"]["singular"] == "wdgt"


def test_a_new_storage_version_joins_stored_versions_which_must_stay_listed(
    widgets: APIServer,
) -> None:
    current = widgets.get(CRDS, CRD_KEY)
    v2 = {**current["spec"]["versions"][0], "name": "v2"}
    current["spec"]["versions"][0]["storage"] = False
    current["spec"]["versions"].append(v2)
    updated = widgets.update(CRDS, current)
    assert updated["status"]["storedVersions"] == ["v1", "v2"]
    # Dropping v1 while objects may be stored at it: refused, as PrepareForUpdate and
    # ValidateCustomResourceDefinitionStoredVersions do.
    updated["spec"]["versions"] = [updated["spec"]["versions"][1]]
    with pytest.raises(ApiError) as err:
        widgets.update(CRDS, updated)
    assert err.value.code == 422
    assert (
        'status.storedVersions[0]: Invalid value: "v1": missing from spec.versions; v1 was '
        "previously a storage version, and must remain in spec.versions until a storage "
        "migration ensures no data remains persisted in v1" in err.value.message
    )
    # A storage migration trims storedVersions through /status; then v1 may go.
    trimmed = widgets.get(CRDS, CRD_KEY)
    trimmed["status"]["storedVersions"] = ["v2"]
    trimmed = widgets.update(CRDS, trimmed, subresource="status")
    trimmed["spec"]["versions"] = [trimmed["spec"]["versions"][1]]
    assert [v["name"] for v in widgets.update(CRDS, trimmed)["spec"]["versions"]] == ["v2"]


def test_a_url_of_the_wrong_scope_is_not_found(server: APIServer) -> None:
    establish(server, crd(scope="Cluster"))
    gvr = GVR("example.org", "v1", "widgets")
    body = {"apiVersion": "example.org/v1", "kind": "Widget",
            "metadata": {"name": "w1", "namespace": "default"}, "spec": {}}  # fmt: skip
    # A client that puts the body's namespace in the URL, as the konnector does: 404.
    with pytest.raises(ApiError) as err:
        server.create(gvr, body, url_namespace="default")
    assert err.value.code == 404
    assert err.value.message == "the server could not find the requested resource"
    # kubectl knows the scope and drops the namespace: created cluster-wide.
    assert "namespace" not in server.create(gvr, body)["metadata"]


def test_crd_deletion_cascades_and_waits_for_instance_finalizers(widgets: APIServer) -> None:
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.org/hold"]
    widgets.create(WIDGETS, held)
    widgets.create(WIDGETS, widget("free"))
    marked = widgets.delete(CRDS, CRD_KEY)
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert conditions(marked)["Terminating"] == ("True", "InstanceDeletionPending")
    with pytest.raises(ApiError) as err:
        widgets.create(WIDGETS, widget("late"))
    assert err.value.code == 405
    assert err.value.message == 'create is not supported on resources of kind "widgets.example.org"'
    widgets.tick()
    items, _ = widgets.list(WIDGETS)
    assert [i["metadata"]["name"] for i in items] == ["held"]
    assert items[0]["metadata"]["deletionTimestamp"]
    assert not widgets.pending_work()  # waiting on someone else's finalizer
    assert conditions(widgets.get(CRDS, CRD_KEY))["Terminating"][1] == "InstanceDeletionInProgress"
    widgets.patch(WIDGETS, key("held"), {"metadata": {"finalizers": None}}, "merge")
    assert widgets.pending_work()
    widgets.tick()
    with pytest.raises(ApiError):
        widgets.get(CRDS, CRD_KEY)
    with pytest.raises(ApiError) as err:
        widgets.list(WIDGETS)
    assert err.value.message == "the server could not find the requested resource"


def test_watches_end_when_the_crd_goes_away(widgets: APIServer) -> None:
    w = widgets.watch(WIDGETS)
    widgets.delete(CRDS, CRD_KEY)
    widgets.tick()
    assert w.closed


def test_names_conflict_keeps_a_crd_unestablished(server: APIServer) -> None:
    establish(server)
    second = crd("things", "Widget")
    server.create(CRDS, second)
    server.tick()
    got = server.get(CRDS, ObjectKey("", "things.example.org"))
    assert conditions(got) == {"NamesAccepted": ("False", "KindConflict")}
    assert not server.pending_work()


def test_initial_namespaces(server: APIServer) -> None:
    names = [n["metadata"]["name"] for n in server.list(NAMESPACES)[0]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    ns = server.get(NAMESPACES, ObjectKey("", "kube-system"))
    assert ns["status"] == {"phase": "Active"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "kube-system"}


def test_kube_system_uid_is_stable(server: APIServer) -> None:
    uid = server.get(NAMESPACES, ObjectKey("", "kube-system"))["metadata"]["uid"]
    for _ in range(3):
        server.create(NAMESPACES, {"metadata": {"generateName": "x-"}})
        server.tick()
    assert server.get(NAMESPACES, ObjectKey("", "kube-system"))["metadata"]["uid"] == uid


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_immortal_namespaces(server: APIServer, name: str) -> None:
    with pytest.raises(ApiError) as err:
        server.delete(NAMESPACES, ObjectKey("", name))
    assert err.value.code == 403
    assert (
        err.value.message == f'namespaces "{name}" is forbidden: this namespace may not be deleted'
    )


def test_namespace_deletion_cleans_contents_and_respects_finalizers(widgets: APIServer) -> None:
    widgets.create(NAMESPACES, {"metadata": {"name": "team"}})
    held = widget("held", namespace="team")
    held["metadata"]["finalizers"] = ["example.org/hold"]
    widgets.create(WIDGETS, held)
    widgets.create(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "team"}})
    ns = widgets.delete(NAMESPACES, ObjectKey("", "team"))
    assert ns is not None and ns["status"]["phase"] == "Terminating"
    assert ns["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as err:
        widgets.create(CONFIGMAPS, {"metadata": {"name": "late", "namespace": "team"}})
    assert err.value.code == 403
    assert err.value.message == (
        'configmaps "late" is forbidden: unable to create new content in namespace team '
        "because it is being terminated"
    )
    assert err.value.details["causes"][0]["reason"] == "NamespaceTerminating"
    widgets.tick()
    assert widgets.list(CONFIGMAPS, "team")[0] == []
    remaining = conditions(widgets.get(NAMESPACES, ObjectKey("", "team")))
    assert remaining["NamespaceContentRemaining"] == ("True", "SomeResourcesRemain")
    assert remaining["NamespaceFinalizersRemaining"] == ("True", "SomeFinalizersRemain")
    assert not widgets.pending_work()
    widgets.patch(WIDGETS, key("held", "team"), {"metadata": {"finalizers": None}}, "merge")
    widgets.tick()
    with pytest.raises(ApiError) as err:
        widgets.get(NAMESPACES, ObjectKey("", "team"))
    assert err.value.is_not_found


def test_empty_namespace_is_removed_in_one_tick(server: APIServer) -> None:
    server.create(NAMESPACES, {"metadata": {"name": "empty"}})
    server.delete(NAMESPACES, ObjectKey("", "empty"))
    server.tick()
    with pytest.raises(ApiError):
        server.get(NAMESPACES, ObjectKey("", "empty"))


def test_namespace_spec_finalizers_change_only_via_finalize(server: APIServer) -> None:
    ns = server.create(NAMESPACES, {"metadata": {"name": "n"}})
    ns["spec"]["finalizers"] = []
    ns = server.update(NAMESPACES, ns)
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    ns["spec"]["finalizers"] = []
    out = server.update(NAMESPACES, ns, subresource="finalize")
    assert out["spec"]["finalizers"] == []


def test_namespace_defaults_controller(clock: Clock) -> None:
    server = APIServer("x", clock=clock, seed=1, namespace_defaults=True)
    assert server.pending_work()
    server.tick()
    assert not server.pending_work()
    sa = server.get(GVR("", "v1", "serviceaccounts"), key("default"))
    assert sa["metadata"]["name"] == "default"
    assert server.get(CONFIGMAPS, key("kube-root-ca.crt"))["data"]["ca.crt"]
