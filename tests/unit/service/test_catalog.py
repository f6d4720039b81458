"""The issuer's Ready on Exports and Collections (kbcore/service/catalog.py), per rule."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.actions import UpdateStatus
from kbcore.api.resources import COLLECTIONS, CRDS, EXPORTS
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.reads import Failed, Get
from kbcore.service.catalog import (
    CollectionView,
    ExportView,
    export_apis,
    plan_collection,
    plan_export,
    visible_exports,
)
from tests.unit import bindworld as bw
from tests.unit.service.provider import NOW, export, provider, run


def ready(obj: dict[str, Any] | None) -> str:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return f"{cond['status']}/{cond['reason']}: {cond['message']}"
    return ""


def stored_export(name: str = "widgets", **kw: Any) -> tuple[Any, Any, dict[str, Any]]:
    server, api = provider()
    api.create(EXPORTS, export(name, **kw), "test")
    return server, api, api.get(EXPORTS, ObjectKey("", name))


def test_rule1_an_export_whose_crds_exist_is_ready() -> None:
    _, api, exp = stored_export()
    plan = run(api, plan_export, ExportView(exp, {}, NOW))
    assert [type(a) for a in plan.writes] == [UpdateStatus]
    assert ready(api.get(EXPORTS, ObjectKey("", "widgets"))).startswith("True/AsExpected")


def test_rule1_a_missing_crd_is_named() -> None:
    apis = (("example.org", "widgets"), ("example.org", "gizmos"), ("other.org", "absent"))
    _, api, exp = stored_export(apis=apis)
    run(api, plan_export, ExportView(exp, {}, NOW))
    got = ready(api.get(EXPORTS, ObjectKey("", "widgets")))
    assert (
        got
        == "False/APINotExported: no CRD on the provider for: absent.other.org, gizmos.example.org"
    )


def test_rule1_the_export_becomes_ready_when_the_crd_appears() -> None:
    _, api, exp = stored_export(apis=(("example.org", "gadgets"),))
    run(api, plan_export, ExportView(exp, {}, NOW))
    api.create(CRDS, bw.crd("gadgets", "Gadget"), "test")
    exp = api.get(EXPORTS, ObjectKey("", "widgets"))
    assert ready(exp).startswith("False/APINotExported")
    run(api, plan_export, ExportView(exp, {}, NOW + 1))
    assert ready(api.get(EXPORTS, ObjectKey("", "widgets"))).startswith("True/AsExpected")


def test_rule1a_a_cluster_scoped_api_makes_the_export_not_ready_and_hidden() -> None:
    _, api = provider()
    api.create(CRDS, bw.crd("gadgets", "Gadget", scope="Cluster"), "test")
    api.create(EXPORTS, export(apis=(("example.org", "widgets"), ("example.org", "gadgets"))), "t")
    run(api, plan_export, ExportView(api.get(EXPORTS, ObjectKey("", "widgets")), {}, NOW))
    exp = api.get(EXPORTS, ObjectKey("", "widgets"))
    assert ready(exp) == (
        "False/ClusterScopedAPI: cluster-scoped, a tenant cannot bind them: gadgets.example.org"
    )
    assert visible_exports([exp]) == []


def test_rule1a_a_missing_crd_is_reported_before_a_cluster_scoped_one() -> None:
    _, api = provider()
    api.create(CRDS, bw.crd("gadgets", "Gadget", scope="Cluster"), "test")
    api.create(EXPORTS, export(apis=(("example.org", "absent"), ("example.org", "gadgets"))), "t")
    run(api, plan_export, ExportView(api.get(EXPORTS, ObjectKey("", "widgets")), {}, NOW))
    assert ready(api.get(EXPORTS, ObjectKey("", "widgets"))).startswith("False/APINotExported")


def test_rule1_reads_are_the_listed_crds_by_name() -> None:
    plan = plan_export(ExportView(export(), {}, NOW))
    assert plan.needs == (Get("provider", CRDS, ObjectKey("", "widgets.example.org")),)


def test_rule1_a_hostile_export_lists_nothing_and_is_not_ready() -> None:
    hostile = {"metadata": {"name": "x"}, "spec": {"apis": [1, {"group": 2}, None]}}
    assert export_apis(hostile) == ()
    plan = plan_export(ExportView(hostile, {}, NOW))
    (update,) = plan.writes
    assert isinstance(update, UpdateStatus)
    assert update.body["status"]["conditions"][0]["reason"] == "APINotExported"


def test_rule3_a_plan_carried_out_is_followed_by_an_empty_one() -> None:
    _, api, exp = stored_export()
    run(api, plan_export, ExportView(exp, {}, NOW))
    again = run(
        api, plan_export, ExportView(api.get(EXPORTS, ObjectKey("", "widgets")), {}, NOW + 5)
    )
    assert again.writes == ()


def test_rule2_collection_ready_and_export_not_found() -> None:
    _, api, _ = stored_export()
    body = {"apiVersion": "catalog.kube-bind.io/v1alpha1", "kind": "Collection",
            "metadata": {"name": "c"}, "spec": {"title": "C", "exports": ["widgets", "nope"]}}  # fmt: skip
    api.create(COLLECTIONS, body, "test")
    coll = api.get(COLLECTIONS, ObjectKey("", "c"))
    run(api, plan_collection, CollectionView(coll, {}, NOW))
    assert ready(api.get(COLLECTIONS, ObjectKey("", "c"))) == (
        "False/ExportNotFound: no such Export: nope"
    )
    api.create(EXPORTS, export("nope"), "test")
    run(api, plan_collection, CollectionView(api.get(COLLECTIONS, ObjectKey("", "c")), {}, NOW))
    assert ready(api.get(COLLECTIONS, ObjectKey("", "c"))).startswith("True/AsExpected")


def test_rule4_a_catalog_lists_only_ready_exports() -> None:
    _, api, _ = stored_export(apis=(("example.org", "widgets"),))
    api.create(EXPORTS, export("broken", apis=(("example.org", "nothing"),)), "test")
    for name in ("widgets", "broken"):
        run(api, plan_export, ExportView(api.get(EXPORTS, ObjectKey("", name)), {}, NOW))
    listed, _ = api.list(EXPORTS, "", "")
    assert [e["metadata"]["name"] for e in visible_exports(listed)] == ["widgets"]
    assert visible_exports([export()]) == []  # never looked at: not shown


def test_rule5_a_failed_read_is_raised_not_taken_for_absence() -> None:
    read = Get("provider", CRDS, ObjectKey("", "widgets.example.org"))
    failed = Failed(ApiError(503, "ServiceUnavailable", "down"))
    with pytest.raises(ApiError):
        plan_export(ExportView(export(), {read: failed}, NOW))
