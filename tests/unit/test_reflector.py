"""kbcore.runtime.reflector: the cache bookkeeping both shells apply to lists and watch events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.runtime import reflector as r


def obj(name: str, rv: int, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv), "labels": labels}
    }


def apply(cache: dict[ObjectKey, Any], deltas: Any) -> dict[ObjectKey, Any]:
    out = dict(cache)
    for d in deltas:
        if d.new is None:
            out.pop(d.key, None)
        else:
            out[d.key] = d.new
    return out


def everything(_: Any) -> bool:
    return True


def test_relist_reports_vanished_keys_as_deleted() -> None:
    cache = {ObjectKey("ns", "a"): obj("a", 1), ObjectKey("ns", "b"): obj("b", 2)}
    deltas = r.relist(cache, [obj("b", 3), obj("c", 4)])
    assert {(d.change, d.key.name) for d in deltas} == {
        (r.Change.DELETED, "a"),
        (r.Change.MODIFIED, "b"),
        (r.Change.ADDED, "c"),
    }


def test_a_replayed_event_is_ignored_but_never_moves_the_resume_point_back() -> None:
    cache = {ObjectKey("ns", "a"): obj("a", 5)}
    out = r.on_event(cache, "7", {"type": "MODIFIED", "object": obj("a", 4)}, everything)
    assert out.delta is None and out.resource_version == "7"


def test_an_object_leaving_the_selector_is_deleted() -> None:
    cache = {ObjectKey("ns", "a"): obj("a", 1, app="x")}
    out = r.on_event(
        cache,
        "1",
        {"type": "MODIFIED", "object": obj("a", 2)},
        lambda o: o["metadata"]["labels"].get("app") == "x",
    )
    assert out.delta is not None and out.delta.change is r.Change.DELETED


def test_gone_asks_for_a_relist_and_other_errors_raise() -> None:
    gone = r.on_event({}, "3", {"type": "ERROR", "object": {"code": 410}}, everything)
    assert gone.relist and gone.resource_version == "3"
    with pytest.raises(ApiError) as err:
        r.on_event({}, "3", {"type": "ERROR", "object": {"code": 500, "reason": "X"}}, everything)
    assert err.value.code == 500


def test_bookmark_only_advances() -> None:
    out = r.on_event({}, "3", {"type": "BOOKMARK", "object": obj("", 9)}, everything)
    assert out.delta is None and out.resource_version == "9"


names = st.sampled_from(["a", "b", "c"])
events = st.lists(
    st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), names), max_size=12
).map(
    # A server's history: resourceVersions strictly increase.
    lambda evs: [{"type": t, "object": obj(n, i + 1)} for i, (t, n) in enumerate(evs)]
)


@given(history=events, dup=st.lists(st.integers(0, 11), max_size=6))
def test_duplicated_events_change_nothing(history: list[Any], dup: list[int]) -> None:
    """Law: delivering some events twice (a reconnect replays them) gives the same cache and
    resume point as delivering each once."""

    def run(stream: list[Any]) -> tuple[dict[ObjectKey, Any], str]:
        cache: dict[ObjectKey, Any] = {}
        rv = ""
        for ev in stream:
            out = r.on_event(cache, rv, ev, everything)
            cache = apply(cache, [out.delta] if out.delta else [])
            rv = out.resource_version
        return cache, rv

    replayed = list(history)
    for i in dup:
        if i < len(history):
            replayed.insert(min(i + 1, len(replayed)), history[i])
    assert run(replayed) == run(history)


@given(
    before=st.lists(st.tuples(names, st.integers(1, 5)), max_size=3),
    after=st.lists(st.tuples(names, st.integers(1, 5)), max_size=3),
)
def test_relist_makes_the_cache_exactly_the_list(before: Any, after: Any) -> None:
    cache = {ObjectKey("ns", n): obj(n, rv) for n, rv in before}
    items = list({n: obj(n, rv) for n, rv in after}.values())
    assert apply(cache, r.relist(cache, items)) == {
        ObjectKey("ns", i["metadata"]["name"]): i for i in items
    }
