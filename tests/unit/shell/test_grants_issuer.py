"""The real shell's GrantsIssuer (kbshell/backend/issuer.py): which keys a change wakes, and that
a reconcile carries out the kernel's plan. Its caches are filled from a simulated provider (no
watch runs here), and its client is kbsim's `ServerAPI`, the same `ClusterAPI` as `KubeClient`."""

from __future__ import annotations

from typing import Any

from kbcore import objects as o
from kbcore.api.resources import COLLECTIONS, CRDS, EXPORTS, GRANTS, NAMESPACES
from kbcore.objects import ObjectKey
from kbcore.service.issuer import IssueView, plan_issue
from kbshell.backend.issuer import GrantsIssuer
from kbsim.serverapi import ServerAPI
from tests.unit.service.provider import CLUSTER_UID, IDENTITY, NOW, export, provider, run, settle


def refill(issuer: GrantsIssuer, api: ServerAPI) -> None:
    for r in issuer.controller.reflectors:
        r._cache = {o.key_of(x): x for x in api.list(r.gvr, "", "")[0]}


def world() -> tuple[Any, ServerAPI, GrantsIssuer, str]:
    server, api = provider()
    api.create(EXPORTS, export(), "test")
    coll = {"apiVersion": "catalog.kube-bind.io/v1alpha1", "kind": "Collection",
            "metadata": {"name": "all"}, "spec": {"title": "All", "exports": ["widgets"]}}  # fmt: skip
    api.create(COLLECTIONS, coll, "test")
    run(api, plan_issue, IssueView(IDENTITY, "widgets", CLUSTER_UID, {}, NOW))
    issuer = GrantsIssuer(api)  # type: ignore[arg-type]
    refill(issuer, api)
    return server, api, issuer, o.name(api.list(GRANTS, "", "")[0][0])


def test_an_export_wakes_itself_its_collections_and_its_grants() -> None:
    _, api, issuer, grant = world()
    exp = api.get(EXPORTS, ObjectKey("", "widgets"))
    assert sorted(issuer._of_export(exp)) == [
        ("collections", "all"), ("exports", "widgets"), ("grants", grant)]  # fmt: skip
    crd = api.get(CRDS, ObjectKey("", "widgets.example.org"))
    assert list(issuer._of_crd(crd)) == [("exports", "widgets")]


def test_reconciles_make_the_export_ready_and_issue_the_grant() -> None:
    server, api, issuer, grant = world()
    assert issuer.reconcile(("exports", "widgets")) is None
    assert issuer.reconcile(("collections", "all")) is None
    refill(issuer, api)
    assert issuer.reconcile(("grants", grant)) == 1.0  # pending: waiting for the token
    assert api.get(NAMESPACES, ObjectKey("", grant))["metadata"]["labels"]
    settle(server)
    refill(issuer, api)
    assert issuer.reconcile(("grants", grant)) is None
    conds = api.get(GRANTS, ObjectKey("", grant))["status"]["conditions"]
    assert [(c["type"], c["reason"]) for c in conds] == [("Ready", "Issued")]
    assert issuer.reconcile(("grants", "kb-gone000000")) is None  # deleted meanwhile: nothing
