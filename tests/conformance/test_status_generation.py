"""The status subresource and metadata.generation of a custom resource."""

from __future__ import annotations

from kbcore.objects import GVR
from tests.conformance.client import (
    CRDS,
    Api,
    generation,
    raises_api_error,
    rv,
    unique,
    widget,
)
from tests.conformance.conftest import widget_crd


def test_generation_bumps_on_spec_changes_only(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    created = api.create(widgets, widget(widgets, "g", ns, size=1))
    assert generation(created) == 1

    spec = api.patch(widgets, "g", {"spec": {"size": 2}}, ns)
    assert generation(spec) == 2

    labelled = api.patch(widgets, "g", {"metadata": {"labels": {"l": "1"}}}, ns)
    assert generation(labelled) == 2 and rv(labelled) > rv(spec)

    annotated = api.patch(widgets, "g", {"metadata": {"annotations": {"a": "1"}}}, ns)
    assert generation(annotated) == 2

    status = api.patch(widgets, "g", {"status": {"ready": True}}, ns, subresource="status")
    assert generation(status) == 2 and rv(status) > rv(annotated)
    assert status["status"] == {"ready": True}

    same = api.patch(widgets, "g", {"spec": {"size": 2}}, ns)
    assert generation(same) == 2 and rv(same) == rv(status)

    full = api.get(widgets, "g", ns)
    full["spec"]["color"] = "red"
    updated = api.update(widgets, full)
    assert generation(updated) == 3

    # A client cannot set the generation itself.
    forged = api.patch(widgets, "g", {"metadata": {"generation": 42}}, ns)
    assert generation(forged) == 3


def test_status_writes_ignore_spec_and_main_writes_ignore_status(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    body = widget(widgets, "s", ns, size=1)
    body["status"] = {"ready": True}
    created = api.create(widgets, body)
    assert "status" not in created  # status is not settable on create

    status = api.patch(
        widgets, "s", {"spec": {"size": 99}, "status": {"ready": True}}, ns, subresource="status"
    )
    assert status["spec"] == {"size": 1}
    assert status["status"] == {"ready": True}
    assert generation(status) == 1

    main = api.patch(widgets, "s", {"spec": {"size": 2}, "status": {"ready": False}}, ns)
    assert main["spec"] == {"size": 2}
    assert main["status"] == {"ready": True}

    # A PUT of the main resource that only changes status is a no-op.
    full = api.get(widgets, "s", ns)
    full["status"] = {"ready": False, "observed": 7}
    assert api.update(widgets, full) == api.get(widgets, "s", ns)
    assert rv(api.get(widgets, "s", ns)) == rv(main)

    # A PUT to /status with a changed spec keeps the spec.
    full = api.get(widgets, "s", ns)
    full["spec"] = {"size": 100}
    full["status"] = {"ready": False, "observed": 2}
    written = api.update(widgets, full, subresource="status")
    assert written["spec"] == {"size": 2}
    assert written["status"] == {"ready": False, "observed": 2}
    assert api.get(widgets, "s", ns, subresource="status") == written


def test_put_status_without_status_clears_it(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    api.create(widgets, widget(widgets, "c", ns, size=1))
    with_status = api.patch(
        widgets, "c", {"status": {"ready": True, "observed": 1}}, ns, subresource="status"
    )
    assert with_status["status"] == {"ready": True, "observed": 1}
    del with_status["status"]
    cleared = api.update(widgets, with_status, subresource="status")
    assert "status" not in cleared
    assert "status" not in api.get(widgets, "c", ns)
    assert rv(cleared) > rv(with_status)
    assert generation(cleared) == 1


def test_without_a_status_subresource_status_is_ordinary_content(api: Api) -> None:
    ns = api.namespace
    crd = widget_crd(f"{unique('t')}.conformance.example.com")
    del crd["spec"]["versions"][0]["subresources"]
    api.create(CRDS, crd)
    api.wait_established(crd["metadata"]["name"])
    gvr = GVR(crd["spec"]["group"], "v1", "widgets")
    try:
        body = widget(gvr, "n", ns, size=1)
        body["status"] = {"ready": True}
        created = api.create(gvr, body)
        assert created["status"] == {"ready": True}  # kept on create
        assert generation(created) == 1
        # Any change but metadata bumps the generation, status included.
        changed = api.patch(gvr, "n", {"status": {"ready": False}}, ns)
        assert generation(changed) == 2
        labelled = api.patch(gvr, "n", {"metadata": {"labels": {"l": "1"}}}, ns)
        assert generation(labelled) == 2
        with raises_api_error(404, "NotFound", f'widgets.{gvr.group} "n" not found'):
            api.get(gvr, "n", ns, subresource="status")
        with raises_api_error(404, "NotFound", f'widgets.{gvr.group} "n" not found'):
            api.patch(gvr, "n", {"status": {"ready": True}}, ns, subresource="status")
    finally:
        api.delete(CRDS, crd["metadata"]["name"])
