"""Server-side apply: field ownership, conflicts, force, removal of dropped fields, uid."""

from __future__ import annotations

from typing import Any

from kbcore.objects import GVR
from tests.conformance.client import Api, Obj, raises_api_error, rv, widget

NO_SUCH_UID = "00000000-0000-4000-8000-000000000000"


def apply(api: Api, gvr: GVR, name: str, manager: str, force: bool = False, **spec: Any) -> Obj:
    return api.patch(
        gvr,
        name,
        widget(gvr, name, api.namespace, **spec),
        api.namespace,
        patch_type="apply",
        field_manager=manager,
        force=force,
    )


def owners(obj: Obj) -> dict[str, tuple[str, dict[str, Any]]]:
    """manager -> (operation, fieldsV1) of the object's managedFields."""
    return {
        e["manager"]: (e["operation"], e.get("fieldsV1") or {})
        for e in obj["metadata"].get("managedFields") or []
    }


def test_apply_of_an_absent_object_creates_it(api: Api, widgets: GVR) -> None:
    created = apply(api, widgets, "new", "alice", size=1)
    assert created["spec"] == {"size": 1}
    assert created["metadata"]["generation"] == 1
    assert api.get(widgets, "new", api.namespace) == created
    assert owners(created) == {"alice": ("Apply", {"f:spec": {"f:size": {}}})}
    # Applying the same configuration again is a no-op.
    assert rv(apply(api, widgets, "new", "alice", size=1)) == rv(created)


def test_apply_conflict_without_force_and_ownership_with_force(api: Api, widgets: GVR) -> None:
    apply(api, widgets, "w", "alice", size=1, color="red")
    version = f"{widgets.group}/{widgets.version}"
    with raises_api_error(
        409, "Conflict", 'Apply failed with 1 conflict: conflict with "alice": .spec.size'
    ) as info:
        apply(api, widgets, "w", "bob", size=2)
    assert info.value.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "alice"',
                "field": ".spec.size",
            }
        ]
    }
    assert api.get(widgets, "w", api.namespace)["spec"] == {"size": 1, "color": "red"}

    # Two conflicts at once, listed in field order.
    with raises_api_error(409, "Conflict") as info:
        apply(api, widgets, "w", "bob", size=2, color="blue")
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.color\n- .spec.size'
    )

    # Applying the same value is shared ownership, not a conflict.
    shared = apply(api, widgets, "w", "carol", size=1)
    assert owners(shared)["carol"] == ("Apply", {"f:spec": {"f:size": {}}})

    forced = apply(api, widgets, "w", "bob", force=True, size=2)
    assert forced["spec"] == {"size": 2, "color": "red"}
    table = owners(forced)
    assert table["bob"] == ("Apply", {"f:spec": {"f:size": {}}})
    assert table["alice"] == ("Apply", {"f:spec": {"f:color": {}}})
    assert "carol" not in table  # lost its only field

    # An update (not apply) by another manager conflicts with nobody but takes ownership.
    updated = api.patch(widgets, "w", {"spec": {"color": "green"}}, api.namespace)
    assert owners(updated)["conformance"] == ("Update", {"f:spec": {"f:color": {}}})
    with raises_api_error(409, "Conflict") as info:
        apply(api, widgets, "w", "alice", size=2, color="red")
    assert info.value.message == (
        f'Apply failed with 1 conflict: conflict with "conformance" using {version}: .spec.color'
    )


def test_fields_dropped_from_a_later_apply_are_removed(api: Api, widgets: GVR) -> None:
    apply(api, widgets, "d", "alice", size=1, color="red", shape="round")
    # bob co-owns shape, so alice dropping it keeps it.
    apply(api, widgets, "d", "bob", shape="round")
    later = apply(api, widgets, "d", "alice", size=1)
    assert later["spec"] == {"size": 1, "shape": "round"}
    assert owners(later)["alice"] == ("Apply", {"f:spec": {"f:size": {}}})
    # Fields owned by an updater are kept when an applier drops them.
    api.patch(widgets, "d", {"spec": {"color": "blue"}}, api.namespace)
    final = apply(api, widgets, "d", "alice", size=3)
    assert final["spec"] == {"size": 3, "shape": "round", "color": "blue"}


def test_apply_with_a_mismatched_uid_is_rejected(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    live = apply(api, widgets, "u", "alice", size=1)
    uid = live["metadata"]["uid"]
    body = widget(widgets, "u", ns, size=2)

    # The matching uid is a precondition that holds.
    body["metadata"]["uid"] = uid
    assert api.patch(widgets, "u", body, ns, patch_type="apply", field_manager="alice")["spec"] == {
        "size": 2
    }

    # A different uid: 422 Invalid (an immutable field), with or without force.
    body["metadata"]["uid"] = NO_SUCH_UID
    message = (
        f'Widget.{widgets.group} "u" is invalid: metadata.uid: Invalid value: "{NO_SUCH_UID}": '
        "field is immutable"
    )
    for force in (False, True):
        with raises_api_error(422, "Invalid", message):
            api.patch(
                widgets, "u", body, ns, patch_type="apply", field_manager="alice", force=force
            )
    assert api.get(widgets, "u", ns)["metadata"]["uid"] == uid

    # Field conflicts are found first: another manager without force gets 409.
    body["spec"] = {"size": 3}
    with raises_api_error(409, "Conflict"):
        api.patch(widgets, "u", body, ns, patch_type="apply", field_manager="bob")

    # For an absent object the uid cannot match anything: 409 Conflict, nothing created.
    absent = widget(widgets, "absent", ns, size=1)
    absent["metadata"]["uid"] = NO_SUCH_UID
    with raises_api_error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on widgets.{widgets.group} "absent": uid mismatch: the '
        f"provided object specified uid {NO_SUCH_UID}, and no existing object was found",
    ):
        api.patch(widgets, "absent", absent, ns, patch_type="apply", field_manager="alice")
    with raises_api_error(404, "NotFound"):
        api.get(widgets, "absent", ns)

    # A merge patch changing the uid is the same immutable-field error.
    with raises_api_error(422, "Invalid", message):
        api.patch(widgets, "u", {"metadata": {"uid": NO_SUCH_UID}}, ns)
