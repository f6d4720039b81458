"""Basic object semantics: CRUD, optimistic concurrency, preconditions, selectors."""

from __future__ import annotations

from tests.conformance.client import (
    CONFIGMAPS,
    NAMESPACES,
    Api,
    configmap,
    raises_api_error,
    rv,
    unique,
)

OPTIMISTIC_LOCK = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def test_create_get_update_delete_round_trip(api: Api) -> None:
    ns = api.namespace
    created = api.create(CONFIGMAPS, configmap("rt", ns, a="1"))
    meta = created["metadata"]
    assert (created["apiVersion"], created["kind"]) == ("v1", "ConfigMap")
    assert (meta["name"], meta["namespace"]) == ("rt", ns)
    assert meta["uid"] and meta["creationTimestamp"] and rv(created) > 0
    assert "generation" not in meta  # ConfigMaps do not track generation
    assert created["data"] == {"a": "1"}
    assert [(e["manager"], e["operation"]) for e in meta["managedFields"]] == [
        ("conformance", "Update")
    ]

    assert api.get(CONFIGMAPS, "rt", ns) == created
    items, list_rv = api.list(CONFIGMAPS, ns)
    assert [i["metadata"]["name"] for i in items] == ["rt"]
    assert int(list_rv) >= rv(created)

    changed = api.get(CONFIGMAPS, "rt", ns)
    changed["data"]["a"] = "2"
    updated = api.update(CONFIGMAPS, changed)
    assert updated["data"] == {"a": "2"}
    assert updated["metadata"]["uid"] == meta["uid"]
    assert updated["metadata"]["creationTimestamp"] == meta["creationTimestamp"]
    assert rv(updated) > rv(created)

    assert api.delete(CONFIGMAPS, "rt", ns) is None
    with raises_api_error(404, "NotFound", 'configmaps "rt" not found'):
        api.get(CONFIGMAPS, "rt", ns)
    with raises_api_error(404, "NotFound", 'configmaps "rt" not found'):
        api.delete(CONFIGMAPS, "rt", ns)
    assert api.list(CONFIGMAPS, ns)[0] == []


def test_update_with_stale_resource_version_conflicts(api: Api) -> None:
    ns = api.namespace
    stale = api.create(CONFIGMAPS, configmap("c", ns, a="1"))
    fresh = dict(stale, data={"a": "2"})
    api.update(CONFIGMAPS, fresh)
    stale["data"] = {"a": "3"}
    message = f'Operation cannot be fulfilled on configmaps "c": {OPTIMISTIC_LOCK}'
    with raises_api_error(409, "Conflict", message):
        api.update(CONFIGMAPS, stale)
    assert api.get(CONFIGMAPS, "c", ns)["data"] == {"a": "2"}
    # Without a resourceVersion, an update is unconditional.
    del stale["metadata"]["resourceVersion"]
    assert api.update(CONFIGMAPS, stale)["data"] == {"a": "3"}


def test_create_of_existing_name_already_exists(api: Api) -> None:
    ns = api.namespace
    api.create(CONFIGMAPS, configmap("dup", ns, a="1"))
    with raises_api_error(409, "AlreadyExists", 'configmaps "dup" already exists') as info:
        api.create(CONFIGMAPS, configmap("dup", ns, a="2"))
    assert info.value.details == {"name": "dup", "kind": "configmaps"}
    assert api.get(CONFIGMAPS, "dup", ns)["data"] == {"a": "1"}


def test_create_in_missing_namespace_not_found(api: Api) -> None:
    missing = unique("missing")
    with raises_api_error(404, "NotFound", f'namespaces "{missing}" not found'):
        api.create(CONFIGMAPS, configmap("c", missing))
    with raises_api_error(404, "NotFound", f'namespaces "{missing}" not found'):
        api.get(NAMESPACES, missing)


def test_noop_update_keeps_resource_version(api: Api) -> None:
    ns = api.namespace
    created = api.create(CONFIGMAPS, configmap("same", ns, labels={"x": "1"}, a="1"))
    assert api.update(CONFIGMAPS, created) == created
    assert api.patch(CONFIGMAPS, "same", {"data": {"a": "1"}}, ns) == created
    assert api.patch(CONFIGMAPS, "same", {"metadata": {"labels": {"x": "1"}}}, ns) == created
    json_patch = [{"op": "replace", "path": "/data/a", "value": "1"}]
    assert api.patch(CONFIGMAPS, "same", json_patch, ns, patch_type="json") == created
    assert rv(api.get(CONFIGMAPS, "same", ns)) == rv(created)
    # A real change does bump it.
    assert rv(api.patch(CONFIGMAPS, "same", {"data": {"a": "2"}}, ns)) > rv(created)


def test_label_selector_list(api: Api) -> None:
    ns = api.namespace
    labels = {
        "a": {"app": "web", "tier": "front"},
        "b": {"app": "db", "tier": "back"},
        "c": {"app": "web", "tier": "back"},
        "d": {"tier": "front"},
        "e": {},
    }
    for name, lab in labels.items():
        api.create(CONFIGMAPS, configmap(name, ns, labels=lab))

    def names(selector: str) -> list[str]:
        return [i["metadata"]["name"] for i in api.list(CONFIGMAPS, ns, label_selector=selector)[0]]

    assert names("") == ["a", "b", "c", "d", "e"]
    assert names("app=web") == ["a", "c"]
    assert names("app==web,tier=back") == ["c"]
    assert names("app!=web") == ["b", "d", "e"]
    assert names("app") == ["a", "b", "c"]
    assert names("!app") == ["d", "e"]
    assert names("app in (web,db)") == ["a", "b", "c"]
    assert names("tier notin (front)") == ["b", "c", "e"]
    assert names("app=nothing") == []
    with raises_api_error(400, "BadRequest"):
        api.list(CONFIGMAPS, ns, label_selector="app in (web")


def test_merge_patch_with_resource_version_is_a_precondition(api: Api) -> None:
    ns = api.namespace
    created = api.create(CONFIGMAPS, configmap("p", ns, a="1"))
    current = api.patch(CONFIGMAPS, "p", {"data": {"a": "2"}}, ns)
    stale_patch = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    stale_patch["data"] = {"a": "3"}
    with raises_api_error(
        409, "Conflict", f'Operation cannot be fulfilled on configmaps "p": {OPTIMISTIC_LOCK}'
    ):
        api.patch(CONFIGMAPS, "p", stale_patch, ns)
    fresh_patch = {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}}
    fresh_patch["data"] = {"a": "3"}
    assert api.patch(CONFIGMAPS, "p", fresh_patch, ns)["data"] == {"a": "3"}


def test_delete_preconditions(api: Api) -> None:
    ns = api.namespace
    created = api.create(CONFIGMAPS, configmap("d", ns, a="1"))
    uid = created["metadata"]["uid"]
    other = "00000000-0000-4000-8000-000000000000"
    with raises_api_error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on ConfigMap "d": the UID in the precondition ({other}) '
        f"does not match the UID in record ({uid}). The object might have been deleted and then "
        "recreated",
    ):
        api.delete(CONFIGMAPS, "d", ns, uid=other)
    current = api.patch(CONFIGMAPS, "d", {"data": {"a": "2"}}, ns)
    old_rv = created["metadata"]["resourceVersion"]
    with raises_api_error(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on ConfigMap "d": the ResourceVersion in the precondition '
        f"({old_rv}) does not match the ResourceVersion in record "
        f"({current['metadata']['resourceVersion']}). The object might have been modified",
    ):
        api.delete(CONFIGMAPS, "d", ns, resource_version=old_rv)
    assert api.get(CONFIGMAPS, "d", ns)["data"] == {"a": "2"}
    assert api.delete(CONFIGMAPS, "d", ns, uid=uid) is None
    with raises_api_error(404, "NotFound"):
        api.get(CONFIGMAPS, "d", ns)


def test_update_with_mismatched_uid_conflicts(api: Api) -> None:
    ns = api.namespace
    created = api.create(CONFIGMAPS, configmap("u", ns, a="1"))
    body = configmap("u", ns, a="2")
    body["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
    with raises_api_error(
        409,
        "Conflict",
        'Operation cannot be fulfilled on configmaps "u": StorageError: invalid object, Code: 4, '
        f"Key: /registry/configmaps/{ns}/u, ResourceVersion: 0, AdditionalErrorMsg: Precondition "
        "failed: UID in precondition: 00000000-0000-4000-8000-000000000000, UID in object meta: "
        f"{created['metadata']['uid']}",
    ):
        api.update(CONFIGMAPS, body)
    # The same for a cluster-scoped object (its key has no namespace part).
    ns_body = {"metadata": {"name": ns, "uid": "00000000-0000-4000-8000-000000000000"}}
    with raises_api_error(409, "Conflict") as info:
        api.update(NAMESPACES, ns_body)
    assert f"Key: /registry/namespaces/{ns}, " in info.value.message
