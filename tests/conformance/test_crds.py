"""CustomResourceDefinitions: served once Established; deleting one deletes its instances."""

from __future__ import annotations

import copy
from collections.abc import Callable

from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj
from tests.conformance.client import CRDS, Api, raises_api_error, unique, widget
from tests.conformance.conftest import widget_crd

NOT_SERVED = "the server could not find the requested resource"


def test_crd_is_served_once_established(api: Api) -> None:
    ns = api.namespace
    group = f"{unique('t')}.conformance.example.com"
    gvr = GVR(group, "v1", "widgets")
    with raises_api_error(404, "NotFound", NOT_SERVED):
        api.list(gvr, ns)

    created = api.create(CRDS, widget_crd(group))
    assert created["metadata"]["name"] == f"widgets.{group}"
    assert created["status"]["storedVersions"] == ["v1"]

    crd = api.wait_established(f"widgets.{group}")
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True"
    assert conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert conditions["Established"]["reason"] == "InitialNamesAccepted"
    assert crd["status"]["acceptedNames"] == {
        "plural": "widgets",
        "singular": "widget",
        "kind": "Widget",
        "listKind": "WidgetList",
    }

    made = api.create(gvr, widget(gvr, "one", ns, size=1))
    assert (made["apiVersion"], made["kind"]) == (f"{group}/v1", "Widget")
    items, _ = api.list(gvr, ns)
    assert [(i["apiVersion"], i["kind"], i["metadata"]["name"]) for i in items] == [
        (f"{group}/v1", "Widget", "one")
    ]
    # Unknown fields are pruned by the structural schema.
    body = widget(gvr, "two", ns, size=2)
    body["spec"]["unknown"] = True
    body["extra"] = {"x": 1}
    pruned = api.create(gvr, body)
    assert pruned["spec"] == {"size": 2} and "extra" not in pruned
    api.delete(CRDS, f"widgets.{group}")


def test_deleting_a_crd_deletes_its_instances(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    name = f"{widgets.resource}.{widgets.group}"
    for n in ("a", "b"):
        api.create(widgets, widget(widgets, n, ns, size=1))

    marked = api.delete(CRDS, name)
    assert marked is not None
    assert marked["metadata"]["deletionTimestamp"]
    assert "customresourcecleanup.apiextensions.k8s.io" in marked["metadata"]["finalizers"]

    api.wait_gone(CRDS, name)
    with raises_api_error(404, "NotFound", NOT_SERVED):
        api.list(widgets, ns)

    # A CRD of the same name starts empty: the instances were deleted, not hidden.
    api.create(CRDS, widget_crd(widgets.group))
    api.wait_established(name)
    assert api.list(widgets, ns)[0] == []


IMMUTABLE = "field is immutable"


def update_latest(api: Api, name: str, change: Callable[[Obj], None]) -> Obj:
    """Update the CRD from the server's latest copy: its own controllers write its status
    meanwhile, so an update from an older copy may get 409 before it is validated."""
    for attempt in range(5):
        crd = api.get(CRDS, name)
        change(crd)
        try:
            return api.update(CRDS, crd)
        except ApiError as err:
            if err.code != 409 or attempt == 4:
                raise
    raise AssertionError("unreachable")


def test_an_established_crd_keeps_scope_names_and_stored_versions(api: Api) -> None:
    """What the konnector's change gate (kbcore.schema.policy rule 8) predicts the server refuses."""
    group = f"{unique('t')}.conformance.example.com"
    name = f"widgets.{group}"
    api.create(CRDS, widget_crd(group))
    api.wait_established(name)

    def set_scope(crd: Obj) -> None:
        crd["spec"]["scope"] = "Cluster"

    def set_kind(crd: Obj) -> None:
        crd["spec"]["names"]["kind"] = "Gizmo"

    for change, path, value in ((set_scope, "spec.scope", "Cluster"),
                                (set_kind, "spec.names.kind", "Gizmo")):  # fmt: skip
        with raises_api_error(422, "Invalid") as refused:
            update_latest(api, name, change)
        assert f'{path}: Invalid value: "{value}": {IMMUTABLE}' in refused.value.message

    # singular may change (the gate refuses it all the same: it renames the consumer's API).
    def rename(crd: Obj) -> None:
        crd["spec"]["names"]["singular"] = "wdgt"

    assert update_latest(api, name, rename)["spec"]["names"]["singular"] == "wdgt"

    # A new storage version joins status.storedVersions ...
    def add_v2(crd: Obj) -> None:
        v2 = {**copy.deepcopy(crd["spec"]["versions"][0]), "name": "v2"}
        crd["spec"]["versions"][0]["storage"] = False
        crd["spec"]["versions"].append(v2)

    assert update_latest(api, name, add_v2)["status"]["storedVersions"] == ["v1", "v2"]

    # ... and a stored version cannot leave spec.versions.
    def drop_v1(crd: Obj) -> None:
        crd["spec"]["versions"] = [v for v in crd["spec"]["versions"] if v["name"] != "v1"]

    with raises_api_error(422, "Invalid") as refused:
        update_latest(api, name, drop_v1)
    assert 'status.storedVersions[0]: Invalid value: "v1": missing from spec.versions' in (
        refused.value.message
    )
    api.delete(CRDS, name)


def test_a_namespaced_url_of_a_cluster_scoped_resource_is_not_found(api: Api) -> None:
    """A konnector that writes a namespaced object to a provider whose CRD became cluster-
    scoped gets 404 (it never lands cluster-wide)."""
    group = f"{unique('t')}.conformance.example.com"
    name = f"widgets.{group}"
    body = widget_crd(group)
    body["spec"]["scope"] = "Cluster"
    api.create(CRDS, body)
    api.wait_established(name)
    gvr = GVR(group, "v1", "widgets")
    with raises_api_error(404, "NotFound", NOT_SERVED):
        api.create(gvr, widget(gvr, "one", api.namespace, size=1))
    assert api.list(gvr)[0] == []
    api.delete(CRDS, name)
