"""kbshell's shared queue: kbcore's WorkQueue made safe for reflector and worker threads."""

from __future__ import annotations

import threading
import time

from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.keys import ENGAGE, BindingKey, ConnectionKey, InstanceKey
from kbcore.runtime.requests import Next, Verdict
from kbcore.runtime.worker import Outcome
from kbshell.ops import Metrics
from kbshell.queue import SharedQueue


def test_an_idle_worker_wakes_when_a_key_is_added() -> None:
    q = SharedQueue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
    t.start()
    time.sleep(0.05)  # let it block first: the point is waking a blocked get
    q.add(ConnectionKey("a"))
    t.join(5)
    assert got == [ConnectionKey("a")]


def test_a_delayed_key_is_handed_out_when_due_not_before() -> None:
    now = [100.0]
    q = SharedQueue(clock=lambda: now[0])
    q.add_after(ConnectionKey("a"), 30.0)
    now[0] = 129.9
    assert q.get(timeout=0) is None
    now[0] = 130.0
    assert q.get(timeout=0) == ConnectionKey("a")


def test_a_blocked_worker_wakes_when_a_delayed_key_falls_due() -> None:
    q = SharedQueue()
    due = time.time() + 0.3
    q.add_after(ConnectionKey("a"), 0.3)
    assert q.get(timeout=5) == ConnectionKey("a")  # no add wakes it: the due time does
    assert time.time() >= due


def test_one_worker_per_key_and_no_change_lost() -> None:
    q = SharedQueue()
    key = InstanceKey(GVR("example.org", "v1", "widgets"), ObjectKey("default", "x"))
    q.add(key)
    assert q.get(timeout=1) == key
    q.add(key)  # changed again while in process: not handed to a second worker ...
    assert q.get(timeout=0.1) is None
    q.settle(key, Outcome(), {})
    assert q.get(timeout=1) == key  # ... but queued again once the first is done


def test_a_failed_outcome_backs_off_and_counts_a_retry() -> None:
    m = Metrics()
    q = SharedQueue(m)
    key = BindingKey("ClusterBinding", "", "b")
    q.add(key)
    assert q.get(timeout=1) == key
    q.settle(key, Outcome(verdict=Verdict(Next.WAIT, 0.2)), {})
    assert q.get(timeout=0.05) is None
    assert q.get(timeout=5) == key
    assert b'workqueue_retries_total{name="konnector"} 1.0' in m.render()


def test_a_verified_connection_wakes_the_engagement_pass() -> None:
    q = SharedQueue()
    verified: dict[str, str | None] = {}
    key = ConnectionKey("c")
    q.add(key)
    q.get(timeout=1)
    q.settle(key, Outcome(verified=("c", "fp")), verified)
    assert verified == {"c": "fp"}
    assert q.get(timeout=1) == ENGAGE


def test_close_releases_blocked_workers() -> None:
    q = SharedQueue()
    done = threading.Event()

    def worker() -> None:
        q.get()
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.05)
    q.close()
    assert done.wait(5)
