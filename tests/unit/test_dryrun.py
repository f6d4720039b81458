"""`kubectl bind plan` (kbcore/views/dryrun.py): the konnector's next step for every key, computed by
the kernel from live reads, with no writes.

In kbsim, with the konnector stopped: at rest the dry run finds nothing to do; after a user
change it shows exactly the actions the konnector then performs when it starts again; it
never writes (every write to either simulated cluster is observed); and a failed snapshot LIST
is reported instead of being taken for an empty cluster.
"""

from __future__ import annotations

from typing import Any

from kbcore import diff
from kbcore import objects as o
from kbcore.actions import AddFinalizer, Apply, Create, Update, UpdateStatus
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey, ObjectRef
from kbcore.reads import Failed
from kbcore.runtime.keys import ConnectionKey, InstanceKey, describe_key
from kbcore.runtime.worker import Ask, drive
from kbcore.views import dryrun
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
    (conn,) = [k for k in result.pending if k.key == ConnectionKey("provider")]
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
    conn = next(k for k in result.keys if k.key == ConnectionKey("provider"))
    assert conn.pending and "Ready=False" in dryrun.describe_action(conn.actions[0])
    # Its credentials are not vouched for, so nothing is synced through it (stop-on-disengage).
    assert not any(isinstance(k.key, InstanceKey) for k in result.keys)


def test_heartbeat_renewal_is_routine() -> None:
    w = bound()
    w.advance(60)  # the Lease is older than a third of its duration: it would be renewed
    result = plan(w)
    assert result.converged
    assert len(result.routine) == 1
    assert "renewing 1 heartbeat Lease(s)" in dryrun.report(result)[-1]


# -- the fields each write would change (rule 6) ------------------------------------------------


def open_widgets() -> World:
    """As `bound`, but Widgets keep any spec (nested objects, lists) and w1 has one."""
    w = bw.world()
    provider = w.clusters["provider"]
    crd = provider.get(bw.CRDS, ObjectKey("", "widgets.example.org"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    provider.update(bw.CRDS, crd)
    bw.start(w)
    bw.apply_bundle(w, bw.the_bundle(["widgets.example.org"]))
    assert w.settle(60)
    spec = {
        "size": "small",
        "color": "red",
        "tuning": {"cpu": {"limit": 2, "request": 1}, "zones": ["a", "b", "c"]},
        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
    }
    w.user_call(lambda: w.clusters["consumer"].create(bw.WIDGETS, bw.widget("w1", spec=spec)))
    assert w.settle(60)
    # A field the provider copy gets from an apply alone (`spec` came with its Create).
    w1 = bw.get(w, "consumer", bw.WIDGETS, ObjectKey("team-x", "w1"))
    assert w1 is not None
    w1["spec"]["extra"] = True
    w.user_call(lambda: w.clusters["consumer"].update(bw.WIDGETS, w1))
    assert w.settle(60)
    bw.stop(w)
    return w


def without_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in dryrun._SERVER_FIELDS}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def test_a_planned_apply_lists_the_fields_it_changes_and_the_server_agrees() -> None:
    w = open_widgets()
    consumer_key, provider_key = ObjectKey("team-x", "w1"), ObjectKey("team-x", "w1")
    w1 = bw.get(w, "consumer", bw.WIDGETS, consumer_key)
    assert w1 is not None
    w1["spec"] = {
        "size": "large",  # changed
        # extra: dropped; only our apply owns it, so the apply removes it
        # color: dropped, but our Create owns it too: the server keeps it, and so does the plan
        "tuning": {"cpu": {"limit": 4, "request": 1}, "zones": ["a", "c"]},  # nested; a list
        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 8443}, {"name": "x"}],
        "owner": {"team": "x"},  # added
    }
    w.user_call(lambda: w.clusters["consumer"].update(bw.WIDGETS, w1))
    before = bw.get(w, "provider", bw.WIDGETS, provider_key)
    assert before is not None

    result = plan(w)
    lines = dryrun.report(result)
    apply_line = "  - apply widgets.example.org team-x/w1 on the provider"
    at = lines.index(apply_line)
    shown = lines[at + 1 : at + 9]
    assert shown == [
        "      spec.extra: true -> (none)",
        '      spec.owner: (none) -> {"team":"x"}',
        "      spec.ports[1].port: 443 -> 8443",
        '      spec.ports[2]: (none) -> {"name":"x"}',
        '      spec.size: "small" -> "large"',
        "      spec.tuning.cpu.limit: 2 -> 4",
        '      spec.tuning.zones[1]: "b" -> (none)',
        lines[at + 8],
    ]
    assert not lines[at + 8].startswith("      ")  # nothing else on the provider copy
    # `-o json` carries the same lines, per action.
    (k,) = [k for k in result.pending if describe_key(k.key).endswith("team-x/w1")]
    changes = dryrun.to_json(result)["keys"][result.keys.index(k)]["changes"]
    i = next(i for i, a in enumerate(k.actions) if a.target.cluster == "provider")
    assert changes[i] == [line.strip() for line in shown[:7]]

    # The konnector, started again, changes exactly those fields of the provider copy.
    bw.start(w)
    assert w.settle(60)
    after = bw.get(w, "provider", bw.WIDGETS, provider_key)
    assert after is not None
    old, new = without_server_fields(before), without_server_fields(after)
    assert ["      " + line for line in diff.render(diff.changes(old, new), old, new)] == shown[:7]


def test_the_plan_shows_changed_fields_and_never_a_secrets_data() -> None:
    widget = ObjectRef("provider", bw.WIDGETS, ObjectKey("team-x", "w1"))
    secret = ObjectRef("provider", bw.SECRETS, ObjectKey("team-x", "creds"))
    live_widget = {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "team-x", "resourceVersion": "7", "uid": "u1"},
        "spec": {"a": {"b": {"c": 1}}, "list": [1, 2, 3], "keep": "x"},
        "status": {"phase": "Old"},
    }
    updated = o.deepcopy(live_widget)
    updated["metadata"]["resourceVersion"] = "8"  # the server's field: not shown
    updated["spec"] = {"a": {"b": {"c": 2}}, "list": [1, 3, 4], "keep": "x"}
    updated["status"] = {"phase": "New"}  # ignored by an update of the main resource
    password, new_password = "czNjcjN0", "bjN3LXMzY3IzdA=="
    live_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "creds",
            "namespace": "team-x",
            "labels": {"tier": "1"},
            "annotations": {diff.LAST_APPLIED: f'{{"data":{{"password":"{password}"}}}}'},
        },
        "data": {"password": password},
    }
    want_secret = o.deepcopy(live_secret)
    want_secret["metadata"]["labels"] = {"tier": "2"}
    want_secret["metadata"]["annotations"] = {
        diff.LAST_APPLIED: f'{{"data":{{"password":"{new_password}"}}}}'
    }
    want_secret["data"] = {"password": new_password, "user": "YWRtaW4="}
    want_secret["stringData"] = {"token": "plain-text-token"}
    key = InstanceKey(bw.WIDGETS, ObjectKey("team-x", "w1"))
    dry = dryrun.DryRun(
        (
            dryrun.KeyPlan(
                key,
                (
                    Update(widget, updated, "kube-bind-konnector"),
                    UpdateStatus(widget, updated),
                    Apply(secret, want_secret, "kube-bind-related", force=True),
                ),
                why="rule 4",
                before=(live_widget, live_widget, live_secret),
            ),
        )
    )
    assert dryrun.report(dry) == [
        "instance widgets.example.org team-x/w1  (rule 4)",
        "  - update widgets.example.org team-x/w1 on the provider",
        "      spec.a.b.c: 1 -> 2",
        "      spec.list[1]: 2 -> 3",
        "      spec.list[2]: 3 -> 4",
        "  - update the status of widgets.example.org team-x/w1 on the provider",
        '      status.phase: "Old" -> "New"',
        "  - apply Secret team-x/creds on the provider",
        "      data.password: (changed)",
        "      data.user: (changed)",
        f'      metadata.annotations["{diff.LAST_APPLIED}"]: (changed)',
        '      metadata.labels.tier: "1" -> "2"',
        "      stringData: (changed)",
        "1 of 1 key(s) have work to do",
    ]
    text = "\n".join(dryrun.report(dry)) + o.canonical_json(dryrun.to_json(dry))
    for value in (password, new_password, "YWRtaW4=", "plain-text-token"):
        assert value not in text
