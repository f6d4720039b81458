"""Watches: event order and types, selectors, bookmarks, and 410 after compaction."""

from __future__ import annotations

from tests.conformance.client import CONFIGMAPS, Api, Obj, WatchStream, configmap, rv

SELECTED = "conformance.example.com/watched"


def types(events: list[Obj]) -> list[str]:
    return [e["type"] for e in events]


def watch_selected(api: Api, timeout_seconds: int, allow_bookmarks: bool = False) -> WatchStream:
    """A watch of the test namespace's ConfigMaps labelled SELECTED=yes, from a list made now."""
    _, list_rv = api.list(CONFIGMAPS, api.namespace)
    return api.watch(
        CONFIGMAPS,
        api.namespace,
        resource_version=list_rv,
        allow_bookmarks=allow_bookmarks,
        label_selector=f"{SELECTED}=yes",
        timeout_seconds=timeout_seconds,
    )


def test_watch_delivers_changes_in_order(api: Api) -> None:
    ns = api.namespace
    api.create(CONFIGMAPS, configmap("before", ns, a="0"))
    _, list_rv = api.list(CONFIGMAPS, ns)
    w = api.watch(CONFIGMAPS, ns, resource_version=list_rv, timeout_seconds=10)
    created = api.create(CONFIGMAPS, configmap("w", ns, a="1"))
    updated = api.patch(CONFIGMAPS, "w", {"data": {"a": "2"}}, ns)
    api.delete(CONFIGMAPS, "w", ns)
    events = w.events(8, until=lambda evs: len(evs) >= 3)
    w.stop()
    assert types(events) == ["ADDED", "MODIFIED", "DELETED"]
    assert events[0]["object"] == created
    assert events[1]["object"] == updated
    deleted = events[2]["object"]
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    assert rv(deleted) > rv(updated)  # the deletion's own resourceVersion
    assert deleted["data"] == {"a": "2"}


def test_watch_from_empty_resource_version_starts_with_the_current_state(api: Api) -> None:
    ns = api.namespace
    first = api.create(CONFIGMAPS, configmap("one", ns, a="1"))
    w = api.watch(CONFIGMAPS, ns, timeout_seconds=5)
    events = w.events(4, until=lambda evs: len(evs) >= 1)
    assert types(events) == ["ADDED"]
    assert events[0]["object"] == first
    second = api.create(CONFIGMAPS, configmap("two", ns, a="2"))
    events = w.events(4, until=lambda evs: len(evs) >= 2)
    w.stop()
    assert types(events) == ["ADDED", "ADDED"]
    assert events[1]["object"] == second

    # With bookmarks allowed, the synthetic ADDED events end with an annotated bookmark.
    _, list_rv = api.list(CONFIGMAPS, ns)
    w = api.watch(CONFIGMAPS, ns, allow_bookmarks=True, timeout_seconds=5)
    events = w.events(4, until=lambda evs: len(evs) >= 3)
    w.stop()
    assert types(events) == ["ADDED", "ADDED", "BOOKMARK"]
    assert [e["object"]["metadata"]["name"] for e in events[:2]] == ["one", "two"]
    bookmark = events[2]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert rv(bookmark) >= int(list_rv)


def test_label_selector_watch_sees_objects_leave_and_enter(api: Api) -> None:
    ns = api.namespace
    w = watch_selected(api, 10)
    api.create(CONFIGMAPS, configmap("other", ns, a="1"))  # never selected
    api.create(CONFIGMAPS, configmap("s", ns, labels={SELECTED: "yes"}, a="1"))
    left = api.patch(CONFIGMAPS, "s", {"metadata": {"labels": {SELECTED: "no"}}}, ns)
    back = api.patch(CONFIGMAPS, "s", {"metadata": {"labels": {SELECTED: "yes"}}}, ns)
    events = w.events(8, until=lambda evs: len(evs) >= 3)
    w.stop()
    assert types(events) == ["ADDED", "DELETED", "ADDED"]
    assert all(e["object"]["metadata"]["name"] == "s" for e in events)
    # The object that left is shown as it was, at the resourceVersion of the change.
    gone = events[1]["object"]
    assert gone["metadata"]["labels"] == {SELECTED: "yes"}
    assert rv(gone) == rv(left)
    assert events[2]["object"] == back


def test_watch_bookmarks_carry_a_resource_version(api: Api) -> None:
    """A bookmark comes when the server's resourceVersion moved past the watcher's; the real
    server sends them from two seconds before the watch's timeout on (or every minute)."""
    ns = api.namespace
    w = watch_selected(api, 4, allow_bookmarks=True)
    unseen = api.create(CONFIGMAPS, configmap("unseen", ns, a="1"))  # moves the resourceVersion
    events = w.events(8, until=lambda evs: "BOOKMARK" in types(evs))
    w.stop()
    assert set(types(events)) == {"BOOKMARK"}, events
    bookmark = events[0]["object"]
    assert (bookmark["apiVersion"], bookmark["kind"]) == ("v1", "ConfigMap")
    assert rv(bookmark) >= rv(unseen)
    assert set(bookmark["metadata"]) == {"resourceVersion"}

    # Without allowWatchBookmarks there are none, over the watch's whole life.
    quiet = watch_selected(api, 3)
    api.create(CONFIGMAPS, configmap("unseen-too", ns, a="1"))
    assert quiet.events(5) == []
    quiet.stop()


def test_watch_from_a_compacted_resource_version_is_gone(api: Api) -> None:
    ns = api.namespace
    first = api.create(CONFIGMAPS, configmap("c", ns, a="0"))
    for i in range(1, 4):
        last = api.patch(CONFIGMAPS, "c", {"data": {"a": str(i)}}, ns)
    api.compact()

    old = first["metadata"]["resourceVersion"]
    # (Right after a restart the real server may answer 429 until its watch cache is primed.)
    w = api.eventually(lambda: api.watch(CONFIGMAPS, ns, resource_version=old, timeout_seconds=5))
    events = w.events(4, until=lambda evs: len(evs) >= 1)
    w.stop()
    assert types(events) == ["ERROR"]
    status = events[0]["object"]
    assert (status["kind"], status["status"], status["code"], status["reason"]) == (
        "Status",
        "Failure",
        410,
        "Expired",
    )
    assert status["message"].startswith(f"too old resource version: {old} (")

    # Watching from a fresh list's resourceVersion works, and sees new changes only. (Not
    # from `last`: the restarted real apiserver's watch cache starts after its own writes.)
    _, current = api.list(CONFIGMAPS, ns)
    assert int(current) >= rv(last)
    w = api.watch(CONFIGMAPS, ns, resource_version=current, timeout_seconds=10)
    after = api.patch(CONFIGMAPS, "c", {"data": {"a": "after"}}, ns)
    events = w.events(8, until=lambda evs: len(evs) >= 1)
    w.stop()
    assert types(events) == ["MODIFIED"]
    assert events[0]["object"] == after
