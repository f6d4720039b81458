"""Unit tests of `kbcore.sync.coverage.resolve_coverage` (upstream's "ResolveConnection")."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from kbcore.objects import GVR
from kbcore.sync.coverage import NOT_COVERED, Coverage, conflict_policy, lists_api, resolve_coverage
from tests import crds

GR = "widgets.example.org"


def binding(
    name: str,
    *,
    namespace: str = "",
    apis: Any = (GR,),
    policy: Any = None,
    ready: bool = True,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        meta["finalizers"] = ["core.kube-bind.io/cleanup"]
    spec: dict[str, Any] = {
        "connectionRef": {"name": "demo-provider"},
        "apis": [{"name": a} for a in apis] if isinstance(apis, tuple) else apis,
    }
    if policy is not None:
        spec["conflictPolicy"] = policy
    kind = "Binding" if namespace else "ClusterBinding"
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return {
        "apiVersion": "core.kube-bind.io/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def is_ready(b: Mapping[str, Any]) -> bool:
    conds = b.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def resolve(ns: str, cbs: list[dict[str, Any]], bs: list[dict[str, Any]]) -> Coverage:
    return resolve_coverage(GR, ns, cbs, bs, is_ready)


def test_nothing_covers_by_default() -> None:
    assert resolve("team-a", [], []) == NOT_COVERED
    assert resolve("", [], []) == NOT_COVERED


def test_cluster_binding_covers_every_namespace_and_cluster_scope() -> None:
    cbs = [binding("widgets", policy="Adopt")]
    expected = Coverage(True, "Adopt", "ClusterBinding/widgets")
    assert resolve("team-a", cbs, []) == expected
    assert resolve("", cbs, []) == expected


def test_cluster_binding_beats_binding() -> None:
    cbs = [binding("widgets", policy="Fail")]
    bs = [binding("local", namespace="team-a", policy="Adopt")]
    assert resolve("team-a", cbs, bs) == Coverage(True, "Fail", "ClusterBinding/widgets")


def test_a_not_ready_cluster_binding_still_wins() -> None:
    cbs = [binding("widgets", ready=False)]
    bs = [binding("local", namespace="team-a")]
    assert resolve("team-a", cbs, bs) == Coverage(False, "Fail", "ClusterBinding/widgets")


def test_deleting_cluster_binding_is_ignored() -> None:
    cbs = [binding("widgets", deleting=True)]
    bs = [binding("local", namespace="team-a", policy="Adopt")]
    assert resolve("team-a", cbs, bs) == Coverage(True, "Adopt", "Binding/team-a/local")
    assert resolve("team-b", cbs, bs) == NOT_COVERED


def test_deleting_binding_is_ignored() -> None:
    bs = [binding("local", namespace="team-a", deleting=True)]
    assert resolve("team-a", [], bs) == NOT_COVERED


def test_binding_covers_only_its_namespace() -> None:
    bs = [binding("local", namespace="team-a")]
    assert resolve("team-a", [], bs) == Coverage(True, "Fail", "Binding/team-a/local")
    assert resolve("team-b", [], bs) == NOT_COVERED


def test_binding_never_covers_cluster_scoped_objects() -> None:
    bs = [binding("local", namespace="team-a")]
    assert resolve("", [], bs) == NOT_COVERED


def test_a_binding_that_does_not_list_the_api_is_skipped() -> None:
    cbs = [binding("aaa", apis=("gadgets.example.org",)), binding("zzz", policy="Adopt")]
    assert resolve("team-a", cbs, []) == Coverage(True, "Adopt", "ClusterBinding/zzz")


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["b-widgets", "a-widgets", "c-widgets"]))
)
def test_cluster_bindings_are_consulted_in_name_order(order: tuple[str, ...]) -> None:
    policies = {"a-widgets": "Adopt", "b-widgets": "Fail", "c-widgets": "Fail"}
    cbs = [binding(n, policy=policies[n], ready=n != "a-widgets") for n in order]
    assert resolve("team-a", cbs, []) == Coverage(False, "Adopt", "ClusterBinding/a-widgets")


@pytest.mark.parametrize("order", list(itertools.permutations(["y", "x", "z"])))
def test_bindings_are_consulted_in_name_order(order: tuple[str, ...]) -> None:
    bs = [binding(n, namespace="team-a", policy="Adopt" if n == "x" else "Fail") for n in order]
    bs.append(binding("a", namespace="team-b"))
    assert resolve("team-a", [], bs) == Coverage(True, "Adopt", "Binding/team-a/x")


@pytest.mark.parametrize(
    ("spec_policy", "expected"),
    [(None, "Fail"), ("", "Fail"), (7, "Fail"), ("Adopt", "Adopt"), ("Fail", "Fail")],
)
def test_conflict_policy_defaults_to_fail(spec_policy: Any, expected: str) -> None:
    assert conflict_policy(binding("x", policy=spec_policy)) == expected


@pytest.mark.parametrize(
    "b",
    [
        {},
        {"spec": None},
        {"spec": "x"},
        {"spec": {"apis": None}},
        {"spec": {"apis": {"name": GR}}},
        {"spec": {"apis": [GR, None, 3, {"name": 1}]}},
    ],
)
def test_malformed_bindings_list_nothing(b: dict[str, Any]) -> None:
    assert not lists_api(b, GR)
    assert conflict_policy(b) == "Fail"
    assert resolve("team-a", [b], [b]) == NOT_COVERED


def test_lists_api_matches_the_crd_name_exactly() -> None:
    b = binding("x", apis=("widgets.example.org", "gadgets"))
    assert lists_api(b, "widgets.example.org")
    assert lists_api(b, "gadgets")
    assert not lists_api(b, "widgets")
    assert not lists_api(b, "widgets.example.org.evil")


def test_served_resource_prefers_the_storage_version_and_ignores_deleting_crds() -> None:
    from kbcore.schema.crds import ServedResource, served_resource

    crd = crds.crd(
        versions=[
            {"name": "v1alpha1", "served": True, "storage": False},
            {"name": "v1", "served": True, "storage": True},
            {"name": "v2", "served": False, "storage": False},
        ]
    )
    assert served_resource(crd) == ServedResource(GVR("example.org", "v1", "widgets"), True)
    deleting = {**crd, "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert served_resource(deleting) is None
    assert served_resource({"spec": {"versions": [{"name": "v1", "served": False}]}}) is None
    assert served_resource({"spec": "junk"}) is None
