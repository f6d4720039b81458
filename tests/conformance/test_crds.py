"""CustomResourceDefinitions: served once Established; deleting one deletes its instances."""

from __future__ import annotations

from kbcore.objects import GVR
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
