"""`kubectl bind plan` (kbcore/dryrun.py): the konnector's next step for every key, computed by
the kernel from live reads, with no writes.

In kbsim, with the konnector stopped: at rest the dry run finds nothing to do; after a user
change it shows exactly the actions the konnector then performs when it starts again; it
never writes (every write to either simulated cluster is observed); and a failed snapshot LIST
is reported instead of being taken for an empty cluster.
"""

from __future__ import annotations

from typing import Any

from kbcore import dryrun
from kbcore.actions import AddFinalizer, Create, UpdateStatus
from kbcore.errors import ApiError
from kbcore.events import describe_key
from kbcore.objects import ObjectKey
from kbcore.reads import Failed
from kbcore.worker import Ask, drive
from kbsim.world import World
from tests.unit import bindworld as bw


def bound() -> World:
    """The bundle applied, Ready, one Widget synced; then the konnector is stopped."""
    w = bw.world()
    bw.start(w)
    bw.apply_bundle(w, bw.the_bundle(["widgets.example.org"]))
    assert w.settle(60)
    w.user_call(lambda: w.clusters["consumer"].create(bw.WIDGETS, bw.widget("w1")))
    assert w.settle(60)
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey("team-x", "w1")) is not None
    bw.stop(w)
    return w


class Writes:
    def __init__(self, w: World) -> None:
        self.seen: list[str] = []
        for name, server in w.clusters.items():
            server.add_write_observer(
                lambda rec, name=name: self.seen.append(f"{name} {rec.verb} {rec.gvr} {rec.key}")
            )


def plan(w: World, answer: Any = None) -> dryrun.DryRun:
    result: dryrun.DryRun = drive(
        dryrun.dry_run("kube-bind", w.now),
        answer or bw.answer(w),
        lambda send: (_ for _ in ()).throw(AssertionError(f"a dry run sent {send!r}")),
    )
    return result


def test_at_rest_there_is_nothing_to_do_and_nothing_is_written() -> None:
    w = bound()
    writes = Writes(w)
    result = plan(w)
    assert result.converged, dryrun.report(result)
    keys = {describe_key(k.key) for k in result.keys}
    assert {"connection provider", "binding ClusterBinding provider"} <= keys
    assert "instance widgets.example.org team-x/w1" in keys
    assert dryrun.report(result)[-1].startswith("nothing to do:")
    assert writes.seen == []


def test_a_change_shows_exactly_what_the_konnector_then_does() -> None:
    w = bound()
    w.user_call(lambda: w.clusters["consumer"].create(bw.WIDGETS, bw.widget("w2")))
    writes = Writes(w)
    result = plan(w)
    assert writes.seen == []
    assert not result.converged
    (pending,) = result.pending
    assert describe_key(pending.key) == "instance widgets.example.org team-x/w2"
    assert [type(a) for a in pending.actions] == [AddFinalizer, Create]
    create = pending.actions[1]
    assert isinstance(create, Create) and create.target.cluster == "provider"
    assert create.body["spec"] == {"size": "w2"}
    lines = dryrun.report(result)
    assert "  - create widgets.example.org team-x/w2 on the provider" in lines
    assert lines[-1].startswith("1 of ")

    # The konnector, started again, does what the dry run said, in the same order.
    w.record_plans = True
    bw.start(w)
    assert w.settle(60)
    first = next(p for _, item, p in w.plans if item == pending.key and p.actions)
    assert first.actions == pending.actions
    assert bw.get(w, "provider", bw.WIDGETS, ObjectKey("team-x", "w2")) is not None


def test_a_broken_secret_shows_the_status_the_connection_would_get() -> None:
    w = bound()
    secret_key = ObjectKey("kube-bind", "provider-kubeconfig")
    w.user_call(
        lambda: w.clusters["consumer"].patch(
            bw.SECRETS, secret_key, {"data": {"kubeconfig": "bm90IHlhbWw6IFs="}}, "merge"
        )
    )
    result = plan(w)
    (conn,) = [k for k in result.pending if k.key == ("connection", "provider")]
    (update,) = conn.actions
    assert isinstance(update, UpdateStatus)
    assert dryrun.describe_action(update).endswith("(Ready=False SecretNotFound)")


def test_a_failed_snapshot_list_is_a_problem_not_an_empty_cluster() -> None:
    w = bound()
    answer = bw.answer(w)

    def denied(ask: Ask) -> Any:
        if ask.read.gvr == bw.CONNECTIONS:
            return Failed(ApiError(403, "Forbidden", "connections is forbidden"))
        return answer(ask)

    result = plan(w, denied)
    assert result.keys == () and not result.converged
    assert result.problems == (
        "cannot list connections.core.kube-bind.io on the consumer: 403 Forbidden: "
        "connections is forbidden",
    )


def test_an_unreachable_provider_is_reported_as_failing_not_as_done() -> None:
    w = bound()
    answer = bw.answer(w)

    def cut(ask: Ask) -> Any:
        if ask.read.cluster == "provider":
            return Failed(ApiError(0, "Unreachable", "provider.kbsim: connection refused"))
        return answer(ask)

    result = plan(w, cut)
    assert not result.converged
    conn = next(k for k in result.keys if k.key == ("connection", "provider"))
    assert conn.pending and "Ready=False" in dryrun.describe_action(conn.actions[0])
    # Its credentials are not vouched for, so nothing is synced through it (stop-on-disengage).
    assert not any(k.key[0] == "instance" for k in result.keys)


def test_heartbeat_renewal_is_routine() -> None:
    w = bound()
    w.advance(60)  # the Lease is older than a third of its duration: it would be renewed
    result = plan(w)
    assert result.converged
    assert len(result.routine) == 1
    assert "renewing 1 heartbeat Lease(s)" in dryrun.report(result)[-1]
