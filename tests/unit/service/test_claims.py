"""A claim's Role (kbcore/service/claims.py rule 4) holds the Export's related resources, and
nothing for them when the Export lists none (kbcore/views/rbac.py `related_rules`)."""

from __future__ import annotations

from typing import Any

from kbcore.api.resources import BOUND_NAMESPACES, ROLES
from kbcore.objects import ObjectKey
from kbcore.service.catalog import export_related
from kbcore.service.claims import ROLE_NAME, ClaimView, plan_claim
from kbcore.sync.tenancy import Tenant, claim_body
from kbcore.views.rbac import RelatedAccess
from tests.unit.service.provider import CLUSTER_UID, NOW, WIDGETS_API, converge, issue, provider
from tests.unit.service.provider import run as run_plan

UP = {"resource": "configmaps", "direction": "FromConsumer",
      "selector": {"labelSelector": {"matchLabels": {"a": "b"}}}}  # fmt: skip
DOWN = {"resource": "secrets", "direction": "FromProvider"}


def claimed_role(**spec: Any) -> list[dict[str, Any]]:
    server, api = provider()
    home = issue(api, **spec)
    converge(server, api, home)
    body = claim_body(Tenant(home, (WIDGETS_API,)), "team-x", CLUSTER_UID)
    api.create(BOUND_NAMESPACES, body, "konnector")
    claim = api.get(BOUND_NAMESPACES, ObjectKey(home, "team-x"))
    run_plan(api, plan_claim, ClaimView(claim, {}, NOW))
    rules: list[dict[str, Any]] = api.get(ROLES, ObjectKey(f"{home}-team-x", ROLE_NAME))["rules"]
    return rules


def test_without_related_resources_the_role_is_the_apis_only() -> None:
    assert [r["resources"] for r in claimed_role()] == [["widgets"]]


def test_the_role_allows_each_related_kind_as_its_direction_needs() -> None:
    rules = claimed_role(relatedResources=[UP, DOWN])
    by = {r["resources"][0]: r["verbs"] for r in rules}
    assert by == {
        "configmaps": ["get", "list", "create", "patch", "delete"],
        "secrets": ["list"],
        "widgets": ["get", "list", "watch", "create", "patch", "delete"],
    }
    assert all(r["apiGroups"] == [""] for r in rules if r["resources"] != ["widgets"])


def test_export_related_skips_malformed_entries() -> None:
    export = {"spec": {"relatedResources": [
        UP, DOWN, DOWN, {"resource": "pods", "direction": "FromProvider"},
        {"resource": "secrets", "direction": "Sideways"}, "x",
        {"group": "apps", "resource": "secrets", "direction": "FromProvider"}]}}  # fmt: skip
    assert export_related(export) == (
        RelatedAccess("configmaps", "FromConsumer"),
        RelatedAccess("secrets", "FromProvider"),
    )
    assert export_related(None) == ()
