"""Finalizers, deletionTimestamp, and namespace deletion (kube-controller-manager's job)."""

from __future__ import annotations

from kbcore.objects import GVR
from tests.conformance.client import (
    CONFIGMAPS,
    NAMESPACES,
    Api,
    Obj,
    configmap,
    generation,
    raises_api_error,
    rv,
    unique,
    widget,
)

HOLD = "conformance.example.com/hold"
OTHER = "conformance.example.com/other"


def test_finalizer_keeps_a_deleted_object_until_removed(api: Api, widgets: GVR) -> None:
    ns = api.namespace
    body = widget(widgets, "f", ns, size=1)
    body["metadata"]["finalizers"] = [HOLD]
    created = api.create(widgets, body)

    marked = api.delete(widgets, "f", ns)
    assert marked is not None
    live = api.get(widgets, "f", ns)
    assert live == marked
    meta = live["metadata"]
    assert meta["deletionTimestamp"]
    assert meta["deletionGracePeriodSeconds"] == 0
    assert meta["finalizers"] == [HOLD]
    assert generation(live) == generation(created) + 1  # deletion bumps the generation
    assert rv(live) > rv(created)

    # Deleting again changes nothing.
    again = api.delete(widgets, "f", ns)
    assert again is not None and again["metadata"] == meta

    # Other changes are still allowed; a new finalizer is not.
    labelled = api.patch(widgets, "f", {"metadata": {"labels": {"still": "here"}}}, ns)
    assert labelled["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    with raises_api_error(422, "Invalid") as info:
        api.patch(widgets, "f", {"metadata": {"finalizers": [HOLD, OTHER]}}, ns)
    assert "no new finalizers can be added if the object is being deleted" in info.value.message
    # The deletionTimestamp cannot be cleared either (it is simply kept).
    kept = api.patch(widgets, "f", {"metadata": {"deletionTimestamp": None}}, ns)
    assert kept["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]

    # Removing the last finalizer completes the deletion.
    api.patch(widgets, "f", {"metadata": {"finalizers": None}}, ns)
    with raises_api_error(404, "NotFound"):
        api.get(widgets, "f", ns)


def test_namespace_deletion_removes_contents_then_the_namespace(api: Api, widgets: GVR) -> None:
    doomed = unique("doomed")
    api.create(NAMESPACES, {"metadata": {"name": doomed}})
    api.create(CONFIGMAPS, configmap("plain", doomed, a="1"))
    held = widget(widgets, "held", doomed, size=1)
    held["metadata"]["finalizers"] = [HOLD]
    api.create(widgets, held)

    marked = api.delete(NAMESPACES, doomed)
    assert marked is not None
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["status"]["phase"] == "Terminating"
    assert marked["spec"] == {"finalizers": ["kubernetes"]}

    # No new content while terminating.
    with raises_api_error(
        403,
        "Forbidden",
        f'configmaps "late" is forbidden: unable to create new content in namespace {doomed} '
        "because it is being terminated",
    ):
        api.create(CONFIGMAPS, configmap("late", doomed))

    # The namespace controller deletes what it can; the finalizer holds the widget (and so
    # the namespace) until it is removed.
    api.eventually(
        lambda: api.list(CONFIGMAPS, doomed)[0] == [], what="configmaps of the namespace deleted"
    )
    api.eventually(
        lambda: api.get(widgets, "held", doomed)["metadata"].get("deletionTimestamp"),
        what="widget marked for deletion",
    )

    def finalizers_remaining() -> Obj | None:
        ns = api.get(NAMESPACES, doomed)
        conditions = {c["type"]: c for c in ns["status"].get("conditions") or []}
        cond = conditions.get("NamespaceFinalizersRemaining")
        return cond if cond and cond["status"] == "True" else None

    cond = api.eventually(finalizers_remaining, what="NamespaceFinalizersRemaining")
    assert cond["reason"] == "SomeFinalizersRemain"
    assert cond["message"] == (
        f"Some content in the namespace has finalizers remaining: {HOLD} in 1 resource instances"
    )
    assert api.get(NAMESPACES, doomed)["status"]["phase"] == "Terminating"

    api.patch(widgets, "held", {"metadata": {"finalizers": None}}, doomed)
    api.wait_gone(NAMESPACES, doomed)
    with raises_api_error(404, "NotFound", f'namespaces "{doomed}" not found'):
        api.get(NAMESPACES, doomed)


def test_garbage_collection_follows_owner_references(api: Api) -> None:
    ns = api.namespace

    def owned(name: str, owner: Obj, **extra: object) -> Obj:
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"]}
        ref.update(uid=owner["metadata"]["uid"], **extra)
        body = configmap(name, ns, a="1")
        body["metadata"]["ownerReferences"] = [ref]
        return api.create(CONFIGMAPS, body)

    # Background (the default): the owner goes at once, dependents after it.
    owner = api.create(CONFIGMAPS, configmap("bg-owner", ns))
    owned("bg-dependent", owner)
    assert api.delete(CONFIGMAPS, "bg-owner", ns) is None
    api.wait_gone(CONFIGMAPS, "bg-dependent", ns)

    # Foreground: the owner waits, marked, until its blocking dependents are gone.
    owner = api.create(CONFIGMAPS, configmap("fg-owner", ns))
    owned("fg-dependent", owner, blockOwnerDeletion=True)
    marked = api.delete(CONFIGMAPS, "fg-owner", ns, propagation_policy="Foreground")
    assert marked is not None
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert marked["metadata"]["deletionTimestamp"]
    api.wait_gone(CONFIGMAPS, "fg-dependent", ns)
    api.wait_gone(CONFIGMAPS, "fg-owner", ns)

    # Orphan: dependents stay, without the owner reference.
    owner = api.create(CONFIGMAPS, configmap("or-owner", ns))
    owned("or-dependent", owner)
    marked = api.delete(CONFIGMAPS, "or-owner", ns, propagation_policy="Orphan")
    assert marked is not None and marked["metadata"]["finalizers"] == ["orphan"]
    api.wait_gone(CONFIGMAPS, "or-owner", ns)
    survivor = api.get(CONFIGMAPS, "or-dependent", ns)
    assert "ownerReferences" not in survivor["metadata"]

    # A dependent whose owner never existed (wrong uid) is collected too.
    ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-4000-8000-000000000000"}}
    owned("orphaned-at-birth", ghost)
    api.wait_gone(CONFIGMAPS, "orphaned-at-birth", ns)
