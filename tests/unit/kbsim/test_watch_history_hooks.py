"""Watches (initial state, replay, 410, bookmarks, expiry), stale reads, hooks and observers."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import AfterWrite, APIServer, User, WriteRecord
from tests.unit.kbsim.conftest import CONFIGMAPS, NAMESPACES, WIDGETS, key, widget


def cm(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "data": {}}


def types(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


def test_watch_from_empty_rv_sends_current_state_then_changes(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("b"))
    server.create(CONFIGMAPS, cm("a"))
    w = server.watch(CONFIGMAPS, allow_bookmarks=False)
    assert types(w.drain()) == [("ADDED", "a"), ("ADDED", "b")]
    server.patch(CONFIGMAPS, key("a"), {"data": {"k": "v"}}, "merge")
    server.delete(CONFIGMAPS, key("b"))
    events = w.drain()
    assert types(events) == [("MODIFIED", "a"), ("DELETED", "b")]
    assert events[0]["object"]["kind"] == "ConfigMap"  # watch objects carry kind
    assert w.drain() == []


def test_watch_replays_history_after_a_resource_version(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    _, rv = server.list(CONFIGMAPS)
    server.create(CONFIGMAPS, cm("b"))
    server.patch(CONFIGMAPS, key("a"), {"data": {"x": "1"}}, "merge")
    w = server.watch(CONFIGMAPS, resource_version=rv)
    events = w.drain()
    assert types(events) == [("ADDED", "b"), ("MODIFIED", "a")]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


def test_deleted_event_carries_the_last_state(server: APIServer) -> None:
    created = server.create(CONFIGMAPS, cm("a", app="x"))
    w = server.watch(CONFIGMAPS, resource_version=server.current_resource_version())
    server.delete(CONFIGMAPS, key("a"))
    (event,) = w.drain()
    assert event["type"] == "DELETED"
    assert event["object"]["metadata"]["labels"] == {"app": "x"}
    assert event["object"]["metadata"]["uid"] == created["metadata"]["uid"]
    assert event["object"]["metadata"]["resourceVersion"] == server.current_resource_version()


def test_watch_filters_by_namespace(server: APIServer) -> None:
    server.create(NAMESPACES, {"metadata": {"name": "other"}})
    w = server.watch(CONFIGMAPS, "default", allow_bookmarks=False)
    server.create(CONFIGMAPS, cm("x", "other"))
    server.create(CONFIGMAPS, cm("y"))
    assert types(w.drain()) == [("ADDED", "y")]


def test_label_selector_watch_sees_objects_enter_and_leave(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    w = server.watch(CONFIGMAPS, label_selector="app=web", allow_bookmarks=False)
    assert w.drain() == []
    server.patch(CONFIGMAPS, key("a"), {"metadata": {"labels": {"app": "web"}}}, "merge")
    server.patch(CONFIGMAPS, key("a"), {"data": {"k": "v"}}, "merge")
    server.patch(CONFIGMAPS, key("a"), {"metadata": {"labels": {"app": "db"}}}, "merge")
    assert types(w.drain()) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_noop_writes_emit_no_events(server: APIServer) -> None:
    obj = server.create(CONFIGMAPS, cm("a"))
    w = server.watch(CONFIGMAPS, resource_version=server.current_resource_version())
    server.update(CONFIGMAPS, obj)
    server.patch(CONFIGMAPS, key("a"), {"data": {}}, "merge")
    assert w.drain() == []


def test_watch_from_a_compacted_rv_gets_410(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    old = server.current_resource_version()
    server.create(CONFIGMAPS, cm("b"))
    server.compact()
    w = server.watch(CONFIGMAPS, resource_version=old)
    (event,) = w.drain()
    assert event["type"] == "ERROR"
    status = event["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    assert (
        status["message"]
        == f"too old resource version: {old} ({server.current_resource_version()})"
    )
    assert w.closed
    # Watching from the list's resourceVersion after a relist works.
    _, rv = server.list(CONFIGMAPS)
    w2 = server.watch(CONFIGMAPS, resource_version=rv)
    server.create(CONFIGMAPS, cm("c"))
    assert types(w2.drain()) == [("ADDED", "c")]


def test_bookmarks(server: APIServer) -> None:
    with_bm = server.watch(CONFIGMAPS, resource_version=server.current_resource_version())
    without = server.watch(
        CONFIGMAPS, resource_version=server.current_resource_version(), allow_bookmarks=False
    )
    server.create(CONFIGMAPS, cm("a"))
    server.emit_bookmarks()
    events = with_bm.drain()
    assert events[-1] == {
        "type": "BOOKMARK",
        "object": {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": server.current_resource_version()},
        },
    }
    assert [e["type"] for e in without.drain()] == ["ADDED"]


def test_bookmarks_only_after_a_change_and_at_the_end_of_initial_events(
    server: APIServer,
) -> None:
    server.create(CONFIGMAPS, cm("a"))
    initial = server.watch(CONFIGMAPS)
    rv = server.current_resource_version()
    assert initial.drain() == [
        {"type": "ADDED", "object": server.get(CONFIGMAPS, key("a"))},
        {
            "type": "BOOKMARK",
            "object": {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {
                    "resourceVersion": rv,
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            },
        },
    ]
    current = server.watch(CONFIGMAPS, resource_version=rv)
    server.emit_bookmarks()  # nothing happened since either watch started
    assert initial.drain() == [] and current.drain() == []
    server.create(NAMESPACES, {"metadata": {"name": "elsewhere"}})
    server.emit_bookmarks()
    for w in (initial, current):
        assert types(w.drain()) == [("BOOKMARK", "")]


def test_expire_and_stop(server: APIServer) -> None:
    w = server.watch(CONFIGMAPS, allow_bookmarks=False)
    server.create(CONFIGMAPS, cm("a"))
    server.expire_watches()
    assert w.closed and server.open_watches == 0
    server.create(CONFIGMAPS, cm("b"))
    assert types(w.drain()) == [("ADDED", "a")]  # what was queued before the end
    w2 = server.watch(CONFIGMAPS)
    w2.stop()
    server.create(CONFIGMAPS, cm("c"))
    assert w2.drain() == [] and w2.closed


def test_get_at_and_list_at(server: APIServer) -> None:
    server.create(CONFIGMAPS, cm("a"))
    rv1 = server.current_resource_version()
    server.patch(CONFIGMAPS, key("a"), {"data": {"k": "2"}}, "merge")
    server.create(CONFIGMAPS, cm("b"))
    server.delete(CONFIGMAPS, key("a"))
    old = server.get_at(CONFIGMAPS, key("a"), rv1)
    assert old is not None and old["data"] == {} and old["metadata"]["resourceVersion"] == rv1
    assert server.get_at(CONFIGMAPS, key("b"), rv1) is None
    items, rv = server.list_at(CONFIGMAPS, "default", rv1)
    assert [i["metadata"]["name"] for i in items] == ["a"] and rv == rv1
    server.compact()
    with pytest.raises(ApiError) as err:
        server.get_at(CONFIGMAPS, key("a"), rv1)
    assert err.value.is_gone


def test_request_hook_injects_errors_without_writing(server: APIServer) -> None:
    seen: list[tuple[str, GVR, ObjectKey, str]] = []

    def hook(verb: str, gvr: GVR, k: ObjectKey, user: User) -> ApiError | None:
        seen.append((verb, gvr, k, user.name))
        if verb == "create":
            return ApiError(429, "TooManyRequests", "slow down", retry_after=2)
        return None

    server.add_request_hook(hook)
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, cm("a"))
    assert err.value.code == 429 and err.value.retry_after == 2
    with pytest.raises(ApiError):
        server.get(CONFIGMAPS, key("a"))
    assert seen[0] == ("create", CONFIGMAPS, key("a"), "admin")


def test_after_write_commits_then_fails(server: APIServer) -> None:
    server.add_request_hook(
        lambda verb, gvr, k, user: (
            AfterWrite(ApiError(504, "Timeout", "timeout")) if verb == "create" else None
        )
    )
    with pytest.raises(ApiError) as err:
        server.create(CONFIGMAPS, cm("a"))
    assert err.value.code == 504
    assert server.get(CONFIGMAPS, key("a"))["metadata"]["name"] == "a"


def test_write_observer_sees_every_write(widgets: APIServer) -> None:
    records: list[WriteRecord] = []
    widgets.add_write_observer(records.append)
    widgets.create(WIDGETS, widget(size=1), field_manager="me")
    widgets.patch(WIDGETS, key("w1"), {"status": {"ready": True}}, "merge", subresource="status")
    widgets.delete(WIDGETS, key("w1"))
    assert [(r.verb, r.subresource) for r in records] == [
        ("create", ""),
        ("patch", "status"),
        ("delete", ""),
    ]
    assert records[0].before is None and records[0].after is not None
    assert records[0].field_manager == "me" and records[0].gvr == WIDGETS
    assert records[2].after is None and records[2].rv == widgets.current_resource_version()
    assert records[1].before is not None and records[1].after is not None
    assert records[1].after["status"] == {"ready": True}


def test_history_snapshots_are_never_mutated(widgets: APIServer) -> None:
    """Every write stores a fresh object: what a GET returned at some resourceVersion is exactly
    what get_at returns for it later, however many controller and user writes happened since."""
    seen: list[tuple[str, ObjectKey, GVR, dict[str, Any]]] = []

    def remember(gvr: GVR, k: ObjectKey) -> None:
        seen.append((widgets.current_resource_version(), k, gvr, widgets.get(gvr, k)))

    widgets.create(NAMESPACES, {"metadata": {"name": "team"}})
    remember(NAMESPACES, ObjectKey("", "team"))
    body = widget("w1", namespace="team", size=1)
    body["metadata"]["finalizers"] = ["example.org/hold"]
    widgets.create(WIDGETS, body)
    remember(WIDGETS, key("w1", "team"))
    widgets.patch(
        WIDGETS, key("w1", "team"), {"status": {"ready": True}}, "merge", subresource="status"
    )
    remember(WIDGETS, key("w1", "team"))
    widgets.patch(
        WIDGETS,
        key("w1", "team"),
        {"apiVersion": "example.org/v1", "kind": "Widget", "spec": {"color": "red"}},
        "apply",
        field_manager="a",
    )
    remember(WIDGETS, key("w1", "team"))
    widgets.delete(NAMESPACES, ObjectKey("", "team"))
    remember(NAMESPACES, ObjectKey("", "team"))
    widgets.tick()
    remember(NAMESPACES, ObjectKey("", "team"))
    remember(WIDGETS, key("w1", "team"))
    widgets.patch(WIDGETS, key("w1", "team"), {"metadata": {"finalizers": None}}, "merge")
    widgets.tick()
    for rv, k, gvr, then in seen:
        assert widgets.get_at(gvr, k, rv) == then, (rv, k)
