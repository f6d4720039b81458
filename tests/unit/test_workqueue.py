"""The work queue keeps client-go's promises: dedupe, one worker per key, nothing lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kbcore.runtime.workqueue import WorkQueue


def test_dedupes_waiting_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert [q.get(0), q.get(0), q.get(0)] == ["a", "b", None]


def test_key_in_process_is_not_handed_out_twice_and_readd_is_not_lost() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(0) == "a"
    q.add("a")  # a change arrives while a worker holds the key
    assert q.get(0) is None
    q.done("a")
    assert q.get(0) == "a"


def test_add_after_waits_and_the_earliest_due_time_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 10, now=0)
    q.add_after("a", 5, now=0)
    q.add_after("a", 20, now=0)
    assert q.next_due() == 5
    assert q.get(4.9) is None
    assert q.get(5) == "a"


def test_rate_limited_backoff_doubles_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue()
    delays = [q.add_rate_limited("a", now=0) for _ in range(4)]
    assert delays == [0.005, 0.01, 0.02, 0.04]
    assert q.failures("a") == 4
    q.forget("a")
    assert q.add_rate_limited("a", now=0) == 0.005


def test_backoff_is_capped() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(2000):
        delay = q.add_rate_limited("a", now=1e9)
    assert delay == 1000.0


def test_token_bucket_limits_many_keys() -> None:
    q: WorkQueue[int] = WorkQueue()
    delays = [q.add_rate_limited(i, now=0) for i in range(120)]
    assert max(delays[:100]) == 0.005  # within the burst: only the per-item delay
    assert delays[110] > 1.0  # beyond it: 10 per second


def test_per_key_backoff_without_the_bucket_neither_waits_for_nor_drains_it() -> None:
    # Replans back off per key only: a burst of them must not throttle other keys' retries.
    q: WorkQueue[int] = WorkQueue()
    delays = [q.add_rate_limited(i, now=0, bucket=False) for i in range(120)]
    assert max(delays) == 0.005
    assert [q.add_rate_limited(0, now=0, bucket=False) for _ in range(3)] == [0.01, 0.02, 0.04]
    assert max(q.add_rate_limited(i, now=0) for i in range(200, 300)) == 0.005


ops = st.lists(
    st.tuples(st.sampled_from(["add", "get", "done", "after"]), st.integers(0, 3), st.floats(0, 5)),
    max_size=60,
)


@given(ops)
def test_no_key_is_processed_twice_at_once_and_every_add_is_eventually_served(
    script: list[tuple[str, int, float]],
) -> None:
    q: WorkQueue[int] = WorkQueue()
    now = 0.0
    processing: set[int] = set()
    owed: set[int] = set()  # keys added since they were last handed out
    for op, key, t in script:
        now += t / 10
        if op == "add":
            q.add(key)
            owed.add(key)
        elif op == "after":
            q.add_after(key, t, now)
            owed.add(key)
        elif op == "get":
            got = q.get(now)
            if got is not None:
                assert got not in processing
                processing.add(got)
                owed.discard(got)
        elif key in processing:
            processing.discard(key)
            q.done(key)
    for key in list(processing):
        q.done(key)
    # Drain: everything owed comes out once the clock passes every due time.
    served: set[int] = set()
    while (k := q.get(now + 1000)) is not None:
        served.add(k)
        q.done(k)
    assert owed <= served
