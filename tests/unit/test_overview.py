"""`kubectl bind status` rows and the `unbind` forecast (kbcore/views/overview.py), on objects the
konnector wrote in kbsim; the forecast is checked against what the drain then really does."""

from __future__ import annotations

from typing import Any

from kbcore.api import keys
from kbcore.objects import ObjectKey
from kbcore.schema.crds import served_resource
from kbcore.views import bundle as kb
from kbcore.views import overview
from kbsim.world import World
from tests.unit import bindworld as bw


def bound(*, extra_binding: bool = False) -> World:
    w = bw.world()
    bw.start(w)
    bw.apply_bundle(w, bw.the_bundle(["widgets.example.org"]))
    if extra_binding:  # a Binding in team-x listing the same API (the ClusterBinding wins)
        w.user_call(
            lambda: w.clusters["consumer"].create(
                bw.BINDINGS, bw.the_bundle(["widgets.example.org"], binding=kb.BindingRef(
                    "team", "team-x"))[2])
        )  # fmt: skip
    assert w.settle(60)
    orphan = {"annotations": {keys.ANNOTATION_DELETION_POLICY: keys.DELETION_POLICY_ORPHAN}}
    consumer = w.clusters["consumer"]
    w.user_call(lambda: consumer.create(bw.NAMESPACES, bw.namespace("team-y")))
    for obj in (
        bw.widget("keep"),
        bw.widget("go"),
        bw.widget("away", "team-y"),
        {**bw.widget("orphan"), "metadata": {"namespace": "team-x", "name": "orphan", **orphan}},
    ):
        w.user_call(lambda obj=obj: consumer.create(bw.WIDGETS, obj))
    assert w.settle(60)
    return w


def rows(w: World) -> list[overview.Row]:
    c = w.clusters["consumer"]
    return overview.status_rows(
        c.list(bw.CONNECTIONS)[0], c.list(bw.CLUSTERBINDINGS)[0], c.list(bw.BINDINGS)[0]
    )


def test_status_shows_readiness_reasons_and_apis() -> None:
    w = bound()
    conn, cb = rows(w)
    assert (conn.kind, conn.name, conn.ready, conn.reason) == (
        "Connection",
        "provider",
        "True",
        "AsExpected",
    )
    assert conn.apis == "gadgets.example.org,widgets.example.org"  # what the provider exports
    assert (cb.kind, cb.name, cb.ready, cb.apis) == (
        "ClusterBinding",
        "provider",
        "True",
        "widgets.example.org",
    )
    assert cb.message == "via provider: binding ready"
    lines = overview.table([conn, cb])
    assert lines[0].split() == ["KIND", "NAME", "READY", "REASON", "MESSAGE", "APIS"]
    assert lines[1].startswith("Connection ") and lines[1].endswith(conn.apis)


def test_status_shows_why_an_api_is_not_bound() -> None:
    w = bound()
    consumer = w.clusters["consumer"]
    w.user_call(
        lambda: consumer.patch(
            bw.CLUSTERBINDINGS,
            ObjectKey("", "provider"),
            {"spec": {"apis": [{"name": "widgets.example.org"}, {"name": "nope.example.org"}]}},
            "merge",
        )
    )
    assert w.settle(60)
    _, cb = rows(w)
    assert (cb.ready, cb.reason) == ("False", "APINotExported")
    assert cb.apis == "widgets.example.org,nope.example.org(APINotExported)"


def test_status_shows_which_apis_sync_when_one_is_refused() -> None:
    def entry(name: str, *conditions: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "conditions": list(conditions)}

    ready = {"type": "Ready", "status": "True", "reason": "AsExpected", "message": ""}
    refused = {"type": "Ready", "status": "False", "reason": "IncompatibleSchemaChange",
               "message": "the provider changed spec.scope of CRD b.example.org"}  # fmt: skip
    binding = {
        "metadata": {"name": "mixed"},
        "spec": {"connectionRef": {"name": "p"},
                 "apis": [{"name": n} for n in ("a.example.org", "b.example.org", "c.example.org")]},
        "status": {
            "conditions": [{**refused, "message": "b refused; bound and syncing: a.example.org"}],
            "boundAPIs": [entry("a.example.org", ready), entry("b.example.org", refused),
                          entry("c.example.org")],
        },
    }  # fmt: skip
    (row,) = overview.status_rows([], [binding], [])
    assert (row.ready, row.reason) == ("False", "IncompatibleSchemaChange")
    # a syncs; b is refused; c has no Ready yet, so it is not shown as bound.
    assert row.apis == (
        "a.example.org,b.example.org(IncompatibleSchemaChange),c.example.org(not bound yet)"
    )


def test_a_long_message_is_shortened_and_an_unreconciled_object_says_so() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "x"}, "spec": {"connectionRef": {"name": "c"}}}
    (row,) = overview.status_rows([], [obj], [], width=30)
    assert row.ready == "Unknown" and len(row.message) == 30 and row.message.endswith("...")


def forecast(w: World, kind: str, key: ObjectKey) -> list[str]:
    c = w.clusters["consumer"]
    gvr = bw.BINDINGS if kind == "Binding" else bw.CLUSTERBINDINGS
    binding = {**c.get(gvr, key), "kind": kind}
    crd = c.get(bw.CRDS, ObjectKey("", "widgets.example.org"))
    served = served_resource(crd)
    assert served is not None
    return overview.unbind_forecast(
        binding,
        cluster_bindings=c.list(bw.CLUSTERBINDINGS)[0],
        bindings=c.list(bw.BINDINGS)[0],
        crds={"widgets.example.org": crd},
        objects={"widgets.example.org": c.list(served.gvr, key.namespace)[0]},
    )


def test_unbinding_a_clusterbinding_forecast_matches_the_drain() -> None:
    w = bound()
    (line,) = forecast(w, "ClusterBinding", ObjectKey("", "provider"))
    assert line == (
        "widgets.example.org: 3 provider copies will be deleted; 1 kept on the provider "
        f"({keys.ANNOTATION_DELETION_POLICY}: Orphan); then the consumer CRD "
        "widgets.example.org is deleted, and with it all 4 object(s) of this API on the consumer"
    )
    w.user_call(
        lambda: w.clusters["consumer"].delete(bw.CLUSTERBINDINGS, ObjectKey("", "provider"))
    )
    assert w.settle(120)
    provider = [(x["metadata"]["namespace"], x["metadata"]["name"])
                for x in w.clusters["provider"].list(bw.WIDGETS)[0]]  # fmt: skip
    assert provider == [("team-x", "orphan")]
    assert bw.get(w, "consumer", bw.CRDS, ObjectKey("", "widgets.example.org")) is None


def test_unbinding_a_binding_another_binding_covers_leaves_its_objects() -> None:
    w = bound(extra_binding=True)
    # The Binding in team-x lists the API, but the ClusterBinding covers everything: the
    # Binding's unbind touches nothing.
    (line,) = forecast(w, "Binding", ObjectKey("team-x", "team"))
    assert line == (
        "widgets.example.org: 0 provider copies will be deleted; 3 left to another binding that "
        "covers them; the 3 consumer object(s) stay"
    )
    before = len(w.clusters["provider"].list(bw.WIDGETS)[0])
    w.user_call(lambda: w.clusters["consumer"].delete(bw.BINDINGS, ObjectKey("team-x", "team")))
    assert w.settle(120)
    assert bw.get(w, "consumer", bw.BINDINGS, ObjectKey("team-x", "team")) is None
    assert len(w.clusters["provider"].list(bw.WIDGETS)[0]) == before


def test_an_api_not_installed_has_nothing_to_drain() -> None:
    binding = {"kind": "ClusterBinding", "metadata": {"name": "b"},
               "spec": {"connectionRef": {"name": "c"}, "apis": [{"name": "x.example.org"}]}}  # fmt: skip
    lines = overview.unbind_forecast(
        binding, cluster_bindings=[binding], bindings=[], crds={"x.example.org": None}, objects={}
    )
    assert lines == ["x.example.org: not installed on the consumer; nothing to drain"]
