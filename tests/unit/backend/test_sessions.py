"""The memory store's rules (kbshell.backend.sessions); the Redis store's are proven on a real
redis-server in tests/e2e/test_gateway.py."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from kbshell.backend.sessions import MemoryStore
from tests.unit.backend.fakes import Clock


def test_an_entry_is_there_until_its_ttl_and_then_gone() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.put("session:a", "alice", ttl=10)
    clock.advance(9.9)
    assert store.get("session:a") == "alice"
    clock.advance(0.1)
    assert store.get("session:a") is None
    assert store.take("session:a") is None


def test_take_gives_the_value_once() -> None:
    store = MemoryStore(clock=Clock())
    store.put("pickup:x", "bundle", ttl=300)
    assert store.take("pickup:x") == "bundle"
    assert store.take("pickup:x") is None
    assert store.get("pickup:x") is None


def test_of_concurrent_takes_exactly_one_wins() -> None:
    store = MemoryStore()
    store.put("pickup:x", "bundle", ttl=300)
    got: list[str | None] = []
    barrier = threading.Barrier(16)

    def take() -> None:
        barrier.wait()
        got.append(store.take("pickup:x"))

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (got.count("bundle"), got.count(None)) == (1, 15)


@given(st.lists(st.floats(min_value=0, max_value=30), max_size=30))
def test_count_is_a_fixed_window_the_first_count_starts(gaps: list[float]) -> None:
    """Rule 3: counts in one window add up; the window ends TTL after its first count, however
    often it was counted since."""
    clock = Clock()
    store = MemoryStore(clock=clock)
    window_start, expected = None, 0
    for gap in gaps:
        clock.advance(gap)
        if window_start is None or clock.now >= window_start + 60:
            window_start, expected = clock.now, 0
        expected += 1
        assert store.count("rate:k", ttl=60) == expected


def test_expired_entries_do_not_pile_up() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    for i in range(100):
        store.put(f"login:{i}", "x", ttl=1)
    clock.advance(2)
    store.put("login:new", "x", ttl=1)
    assert list(store._entries) == ["login:new"]
