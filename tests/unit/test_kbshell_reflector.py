"""kbshell's reflector thread against a scripted client: which failure leads to what.

The real-cluster tests (tests/e2e/test_kbshell_client.py) show the reflector surviving restarts
and partitions; these pin down each recovery rule of `kbshell.reflector` exactly, with a client
whose lists and watches answer from a script.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest

from kbcore.api.resources import CONFIGMAPS
from kbcore.errors import ApiError
from kbcore.objects import GVR, Obj
from kbshell.client import KubeClient
from kbshell.reflector import Reflector

T = TypeVar("T")


def cm(name: str, rv: int, **data: str) -> Obj:
    meta = {"name": name, "namespace": "ns", "resourceVersion": str(rv)}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def event(kind: str, obj: Obj) -> Obj:
    return {"type": kind, "object": obj}


GONE = event("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})
UNREACHABLE = ApiError(0, "Unreachable", "127.0.0.1:1: connection refused")


class Stream:
    """A watch that yields its events, then (if `hold`) stays open until closed."""

    def __init__(self, events: list[Obj], hold: bool) -> None:
        self._events = list(events)
        self._hold = hold
        self._closed = threading.Event()
        self.end_reason = ""

    def __iter__(self) -> Iterator[Obj]:
        yield from self._events
        if self._hold:
            self._closed.wait(30)
        self.end_reason = "ended"

    def close(self) -> None:
        self._closed.set()


class ScriptedClient:
    """Answers lists and watches from scripts; once a script runs out, lists fail and watches
    stay open and quiet."""

    def __init__(self, lists: list[Any], watches: list[Any]) -> None:
        self.lists = lists
        self.watches = watches
        self.watched_from: list[str] = []
        self.listed = 0

    def list(
        self, gvr: GVR, namespace: str = "", label_selector: str = ""
    ) -> tuple[list[Obj], str]:
        self.listed += 1
        answer = self.lists.pop(0) if self.lists else ApiError(500, "InternalError", "no script")
        if isinstance(answer, Exception):
            raise answer
        return cast(tuple[list[Obj], str], answer)

    def watch(self, gvr: GVR, *, resource_version: str, **_: Any) -> Stream:
        self.watched_from.append(resource_version)
        answer = self.watches.pop(0) if self.watches else Stream([], hold=True)
        if isinstance(answer, Exception):
            raise answer
        return cast(Stream, answer)


class Record:
    def __init__(self, fail_on: str = "") -> None:
        self.events: list[tuple[str, str]] = []
        self.errors: list[Exception] = []
        self.relists: list[int] = []
        self._fail_on = fail_on

    def __call__(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        name = ((new or old) or {})["metadata"]["name"]
        self.events.append((kind, name))
        if f"{kind} {name}" == self._fail_on:
            raise RuntimeError(f"handler bug on {kind} {name}")


def eventually(check: Callable[[], T], timeout: float = 5.0) -> T:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return result


@pytest.fixture
def run() -> Iterator[Callable[..., tuple[Reflector, Record]]]:
    started: list[Reflector] = []

    def start(client: ScriptedClient, record: Record | None = None) -> tuple[Reflector, Record]:
        record = record or Record()
        reflector = Reflector(
            cast(KubeClient, client),
            CONFIGMAPS,
            on_event=record,
            name="scripted",
            backoff=(0.01, 0.05),
            on_error=record.errors.append,
            on_relist=lambda: record.relists.append(1),
        )
        reflector.start()
        started.append(reflector)
        return reflector, record

    yield start
    for reflector in started:
        assert reflector.stop(5)


def test_a_410_event_relists_and_reports_what_vanished(run: Any) -> None:
    client = ScriptedClient(
        lists=[([cm("a", 5), cm("b", 6)], "10"), ([cm("b", 11, x="1")], "20")],
        watches=[Stream([event("MODIFIED", cm("b", 11, x="1")), GONE], hold=False)],
    )
    reflector, record = run(client)
    eventually(lambda: client.watched_from == ["10", "20"])
    assert record.events == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "a")]
    assert reflector.relists == 1 and reflector.resource_version == "20"
    assert record.relists == [1]  # what feeds kubebind_watch_relists_total
    assert [o["metadata"]["name"] for o in reflector.items()] == ["b"]
    assert record.errors == []  # a 410 is routine, not a failure


def test_a_watch_refused_with_410_relists_at_once(run: Any) -> None:
    gone = ApiError(410, "Expired", "too old resource version")
    client = ScriptedClient(lists=[([cm("a", 5)], "10"), ([], "30")], watches=[gone])
    reflector, record = run(client)
    eventually(lambda: client.watched_from == ["10", "30"])
    assert record.events == [("ADDED", "a"), ("DELETED", "a")]
    assert reflector.relists == 1 and record.errors == []


def test_an_unreachable_server_is_watched_again_from_the_same_point(run: Any) -> None:
    """An outage costs no relist: the server replays from the resourceVersion, or says 410."""
    client = ScriptedClient(lists=[([cm("a", 5)], "10")], watches=[UNREACHABLE, UNREACHABLE])
    reflector, record = run(client)
    eventually(lambda: len(client.watched_from) == 3)
    assert client.watched_from == ["10", "10", "10"]
    assert client.listed == 1 and reflector.relists == 0
    assert record.errors == [UNREACHABLE, UNREACHABLE]


def test_other_failures_relist_after_a_wait(run: Any) -> None:
    denied = ApiError(403, "Forbidden", "cannot watch configmaps")
    error_event = event("ERROR", {"kind": "Status", "code": 500, "reason": "InternalError"})
    client = ScriptedClient(
        lists=[
            ([cm("a", 5)], "10"),
            ApiError(503, "ServiceUnavailable", "x"),
            ([], "12"),
            ([], "13"),
        ],
        watches=[denied, Stream([error_event], hold=False)],
    )
    reflector, record = run(client)
    eventually(lambda: client.watched_from == ["10", "12", "13"])
    assert [e.code for e in record.errors if isinstance(e, ApiError)] == [403, 503, 500]
    assert record.events == [("ADDED", "a"), ("DELETED", "a")]
    assert reflector.relists == 2  # the failed list is not counted


def test_a_watch_that_ends_at_once_is_a_failure_not_a_hot_loop(run: Any) -> None:
    empty = [Stream([], hold=False) for _ in range(3)]
    client = ScriptedClient(lists=[([], "10")], watches=empty)
    reflector, record = run(client)
    eventually(lambda: len(client.watched_from) == 4)
    assert [type(e) for e in record.errors] == [ConnectionError] * 3
    assert reflector.relists == 0


def test_a_failing_handler_is_reported_and_the_cache_goes_on(run: Any) -> None:
    client = ScriptedClient(
        lists=[([cm("a", 5)], "10")],
        watches=[Stream([event("ADDED", cm("b", 11)), event("ADDED", cm("c", 12))], hold=True)],
    )
    reflector, record = run(client, Record(fail_on="ADDED b"))
    eventually(lambda: len(record.events) == 3)
    assert record.events == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert [str(e) for e in record.errors] == ["handler bug on ADDED b"]
    assert sorted(map(str, reflector.keys())) == ["ns/a", "ns/b", "ns/c"]
    assert reflector.synced.is_set()


def test_a_bad_label_selector_fails_at_construction() -> None:
    with pytest.raises(ValueError):
        Reflector(
            cast(KubeClient, ScriptedClient([], [])),
            CONFIGMAPS,
            label_selector="app in (web",
            on_event=Record(),
            name="bad",
        )
