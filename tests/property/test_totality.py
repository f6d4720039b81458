"""Totality on hostile depth and size (`kbcore.limits`): every planner returns, at any depth.

An API server stores JSON nested 10,000 levels deep; Python recurses about a thousand frames.
Each test puts a value nested that deep wherever a JSON value can nest in a planner's input
(spec, status, metadata and its annotations and managedFields, the Connection and binding
objects, and every answer a read can bring: CRDs and their schemas, OpenAPI and discovery
documents, related Secrets) and requires a Plan or a refusal, never an exception, and never a
write an API server would have to refuse (`kbcore.limits` rule 3). The last tests show the
suite has the power to fail: with a recursive helper put back, it does.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kbcore import objects
from kbcore.actions import Apply, Create, MergePatch, Plan, Update, UpdateStatus
from kbcore.api import conditions
from kbcore.control.binding import BindingView, plan_binding
from kbcore.control.connection import ConnectionView, plan_connection
from kbcore.control.kubeconfig import Credentials, credentials_for
from kbcore.limits import MAX_JSON_DEPTH, MAX_SCHEMA_DEPTH, body_problem, json_depth
from kbcore.reads import Discovery, OpenAPIDoc
from kbcore.runtime.requests import to_request
from kbcore.schema import openapi
from kbcore.schema import policy as schema
from kbcore.sync.instance import plan_instance
from tests.property.seeded_bugs import FINDING_BUDGET
from tests.property.strategies import instance_views, json_scalars
from tests.property.test_control_laws import GOOD_KUBECONFIG, drive, hostile, plausible

DEPTH = 10_000
"""The depth the law is stated at: as deep as an API server decodes."""

DEEP = settings(max_examples=max(20, settings.default.max_examples // 3))
"""Each example walks tens of thousands of levels; a third of the profile's examples (100 in
CI) already draws every place and pattern many times over."""

# --- deep values ------------------------------------------------------------------------------

_STEPS = st.sampled_from(["map:a", "map:spec", "map:properties", "map:f:a", "list"])


def nest(depth: int, pattern: list[str] | tuple[str, ...], leaf: Any) -> Any:
    """`leaf` inside `depth` containers, their kinds cycling through `pattern`."""
    value = leaf
    for i in range(depth):
        step = pattern[i % len(pattern)]
        value = [value] if step == "list" else {step[4:]: value}
    return value


@attrs.frozen
class Deep:
    """A deep value by its recipe: hypothesis prints and shrinks these few fields, not ten
    thousand levels (which its reporter could not print either)."""

    depth: int
    pattern: tuple[str, ...]
    leaf: Any

    def value(self) -> Any:
        return nest(self.depth, self.pattern, self.leaf)


def deep_values(depths: tuple[int, ...] = (DEPTH,)) -> st.SearchStrategy[Deep]:
    return st.builds(
        Deep,
        st.sampled_from(depths),
        st.lists(_STEPS, min_size=1, max_size=3).map(tuple),
        json_scalars,
    )


def within_limits(*values: Any) -> bool:
    """Could an API server hold all of these (so every write of them must be sendable)?"""
    return all(json_depth(v, MAX_JSON_DEPTH) <= MAX_JSON_DEPTH for v in values)


def graft(obj: dict[str, Any], where: tuple[str, ...], value: Any) -> None:
    """Put `value` at `where` in `obj`, making maps on the way (replacing what is not one)."""
    node = obj
    for key in where[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[where[-1]] = value


OBJECT_PLACES = st.sampled_from(
    [
        ("spec",),
        ("spec", "x"),
        ("status",),
        ("status", "conditions"),
        ("data",),
        ("data", "x"),
        ("metadata",),
        ("metadata", "annotations"),
        ("metadata", "annotations", "example.org/a"),
        ("metadata", "labels", "a"),
        ("metadata", "managedFields"),
        ("metadata", "finalizers"),
        ("metadata", "ownerReferences"),
        ("extra",),
    ]
)


def writes(plan: Plan) -> Iterator[Any]:
    """Every body or patch a plan would send."""
    for a in plan.actions:
        if isinstance(a, Apply | Create | Update | UpdateStatus):
            yield a.body
        elif isinstance(a, MergePatch):
            yield a.patch


def assert_total(plan: Plan, *, sendable: bool = True) -> None:
    """A Plan whose every action becomes a request; with `sendable` (the inputs are what an
    API server can hold) every write is one a server can read."""
    assert isinstance(plan, Plan)
    for a in plan.actions:
        to_request(a, 0.0)
    if sendable:
        for body in writes(plan):
            assert body_problem(body) == "", body_problem(body)


# --- plan_instance ----------------------------------------------------------------------------


@DEEP
@given(
    view=instance_views(),
    side=st.sampled_from(["consumer", "provider"]),
    where=OBJECT_PLACES,
    deep=deep_values((420, MAX_JSON_DEPTH - 3, DEPTH)),
)
def test_plan_instance_is_total_at_any_depth(
    view: Any, side: str, where: tuple[str, ...], deep: Deep
) -> None:
    """Even past what a server holds: rule 7 refuses what it could not write."""
    obj = view.consumer if side == "consumer" else view.provider
    assume(obj is not None)
    graft(obj, where, deep.value())
    assert_total(plan_instance(view))


BOTH_SIDES = {"view": instance_views(), "deep": deep_values((DEPTH, MAX_JSON_DEPTH - 5))}


def deep_on_both_sides(view: Any, deep: Deep) -> None:
    """Both sides deep (the comparisons walk both): the status of each, the spec of one;
    as deep as a server holds (written, so measured) and deeper (refused by rule 7)."""
    assume(view.provider is not None)
    graft(view.consumer, ("status",), deep.value())
    graft(view.provider, ("status",), deep.value())
    graft(view.consumer, ("spec", "deep"), deep.value())
    assert_total(plan_instance(view))


test_plan_instance_is_total_on_deep_consumer_and_copy_at_once = DEEP(
    given(**BOTH_SIDES)(deep_on_both_sides)
)


# --- plan_connection and plan_binding ----------------------------------------------------------


def _deep_schema(depth: int) -> dict[str, Any]:
    """A schema `depth` JSON levels deep: `{type: object, properties: {x: ...}}` all the way."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth // 2):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def exported_crd(schema_value: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "widgets.example.org",
            "uid": "r",
            "labels": {"core.kube-bind.io/exported": "true", "core.kube-bind.io/managed": "true"},
        },
        "spec": {
            "group": "example.org",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema_value},
                }
            ],
        },
    }


def omni_document(component: Any) -> dict[str, Any]:
    """One document that reads as /apis, a group-version's discovery, the /openapi/v3 index
    and a group-version's OpenAPI document at once (the property tests answer every read with
    the same value), with `component` as the Widget schema."""
    return {
        "metadata": {"name": "x", "uid": "r"},
        "groups": [
            {
                "name": "example.org",
                "versions": [{"version": "v1"}],
                "preferredVersion": {"version": "v1"},
            }
        ],
        "resources": [
            {"name": "widgets", "kind": "Widget", "namespaced": True},
            {"name": "widgets/status", "kind": "Widget"},
        ],
        "paths": {"apis/example.org/v1": {"serverRelativeURL": "/openapi/v3/apis/example.org/v1"}},
        "components": {
            "schemas": {
                "org.example.v1.Widget": {
                    **(component if isinstance(component, dict) else {"x": component}),
                    "x-kubernetes-group-version-kind": [
                        {"group": "example.org", "version": "v1", "kind": "Widget"}
                    ],
                }
            }
        },
    }


@attrs.frozen
class Answer:
    """What a hostile provider (or consumer) answers every read with, by its recipe."""

    kind: str
    deep: Deep
    where: tuple[str, ...]

    def value(self) -> Any:
        deep = self.deep.value()
        if self.kind == "crd":
            return exported_crd(deep)
        if self.kind == "crd with a deep schema":
            return exported_crd(_deep_schema(self.deep.depth // 2))
        if self.kind == "openapi":
            return omni_document(deep)
        if self.kind == "openapi with a deep schema":
            return omni_document(_deep_schema(self.deep.depth // 2))
        if self.kind == "secret":
            secret = {
                "metadata": {
                    "name": "s",
                    "namespace": "team-a",
                    "uid": "r",
                    "labels": {"app": "x"},
                },
                "type": "Opaque",
                "data": {"k": "dg=="},
            }
            graft(secret, self.where, deep)
            return secret
        return deep if isinstance(deep, dict) else {"items": deep}


ANSWERS = st.builds(
    Answer,
    st.sampled_from(
        [
            "crd",
            "crd with a deep schema",
            "openapi",
            "openapi with a deep schema",
            "secret",
            "value",
        ]
    ),
    deep_values((DEPTH, MAX_JSON_DEPTH - 5)),
    OBJECT_PLACES,
)


CONNECTION_PLACES = st.sampled_from(
    [
        ("spec",),
        ("spec", "schema"),
        ("spec", "autoBind"),
        ("status",),
        ("status", "exportedAPIs"),
        ("status", "conditions"),
        ("metadata", "annotations"),
        ("metadata", "finalizers"),
        ("extra",),
    ]
)
BINDING_PLACES = st.sampled_from(
    [
        ("spec",),
        ("spec", "apis"),
        ("spec", "relatedResources"),
        ("spec", "connectionRef"),
        ("status",),
        ("status", "boundAPIs"),
        ("status", "conditions"),
        ("metadata", "annotations"),
        ("extra",),
    ]
)
SOURCES = st.sampled_from(["CRD", "OpenAPI", "Auto"])


@DEEP
@given(
    conn=st.one_of(hostile("Connection", "p"), plausible("Connection", "p")),
    where=CONNECTION_PLACES,
    deep=deep_values((DEPTH, MAX_JSON_DEPTH - 5)),
    source=SOURCES,
    answer=ANSWERS,
)
def test_plan_connection_is_total_at_any_depth(
    conn: dict[str, Any], where: tuple[str, ...], deep: Deep, source: str, answer: Answer
) -> None:
    if isinstance(conn.get("spec"), dict):
        conn["spec"]["schema"] = {"source": source}
    graft(conn, where, deep.value())
    junk = answer.value()
    secret = {
        "metadata": {"namespace": "kube-bind", "name": "kc"},
        "data": {"kubeconfig": GOOD_KUBECONFIG},
    }
    view = ConnectionView(
        connection=conn,
        konnector_namespace="kube-bind",
        secret=secret,
        credentials=credentials_for(conn, secret, "kube-bind"),
        observed={},
        now=0.0,
    )
    plan = drive(plan_connection, view, junk)
    assert_total(plan, sendable=within_limits(conn, junk))


@DEEP
@given(
    binding=st.one_of(
        plausible("ClusterBinding", "b"), hostile("ClusterBinding", "b"), plausible("Binding", "b")
    ),
    conn=plausible("Connection", "p"),
    where=BINDING_PLACES,
    deep=deep_values((DEPTH, MAX_JSON_DEPTH - 5)),
    answer=ANSWERS,
    deleting=st.booleans(),
)
def test_plan_binding_is_total_at_any_depth(
    binding: dict[str, Any],
    conn: dict[str, Any],
    where: tuple[str, ...],
    deep: Deep,
    answer: Answer,
    deleting: bool,
) -> None:
    binding["metadata"]["finalizers"] = ["core.kube-bind.io/cleanup"]
    if binding["kind"] == "Binding":
        binding["metadata"]["namespace"] = "team-a"
    if deleting:
        binding["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    graft(binding, where, deep.value())
    junk = answer.value()
    view = BindingView(
        binding=binding,
        connection=conn,
        credentials=Credentials(server="https://p.example"),
        observed={},
        now=0.0,
        konnector_namespace="kube-bind",
    )
    plan = drive(plan_binding, view, junk)
    assert_total(plan, sendable=within_limits(binding, conn, junk))


# --- the schema kernels ------------------------------------------------------------------------

SCHEMA_PLACES = st.sampled_from(
    [
        ("properties", "spec"),
        ("properties", "spec", "items"),
        ("properties", "spec", "additionalProperties"),
        ("properties", "spec", "default"),
        ("properties", "spec", "enum"),
        ("x-kubernetes-validations",),
    ]
)


@given(
    where=SCHEMA_PLACES, deep=deep_values((MAX_SCHEMA_DEPTH + 1, 420, DEPTH)), update=st.booleans()
)
def test_a_schema_too_deep_is_refused_naming_the_api_and_the_limit(
    where: tuple[str, ...], deep: Deep, update: bool
) -> None:
    root: dict[str, Any] = {"type": "object"}
    graft(root, where, deep.value())
    crd = exported_crd(root)
    refusal = schema.refuse_provider_crd(crd)
    assert refusal is not None and refusal.reason == conditions.INVALID_SCHEMA
    assert "widgets.example.org" in refusal.message and '"v1"' in refusal.message
    assert f"more than {MAX_SCHEMA_DEPTH} levels" in refusal.message
    install = schema.plan_install(crd, None, connection="p", create=True, update=update)
    assert install.refusal == refusal and install.actions == () and not install.installed


@given(depth=st.integers(1, MAX_SCHEMA_DEPTH - 2))
def test_a_schema_within_the_limit_is_installed(depth: int) -> None:
    crd = exported_crd(nest(depth, ["map:properties", "map:x"], {"type": "object"}))
    install = schema.plan_install(crd, None, connection="p", create=True, update=True)
    assert install.refusal is None and len(install.actions) == 1


@given(deep=deep_values((MAX_SCHEMA_DEPTH + 1, DEPTH)), where=SCHEMA_PLACES)
def test_openapi_synthesis_stops_at_the_schema_depth_and_says_so(
    deep: Deep, where: tuple[str, ...]
) -> None:
    component: dict[str, Any] = {"type": "object"}
    graft(component, where, _deep_schema(deep.depth) if deep.leaf is None else deep.value())
    doc = omni_document(component)
    observed: dict[Any, Any] = {
        Discovery("provider", "/apis"): doc,
        Discovery("provider", "/apis/example.org/v1"): doc,
        OpenAPIDoc("provider", "/openapi/v3"): doc,
        OpenAPIDoc("provider", "/openapi/v3/apis/example.org/v1"): doc,
    }
    (api,) = openapi.synthesize(observed, "provider").apis
    installed = schema.plan_install(api.crd, None, connection="p", create=True, update=True)
    # What synthesis keeps is installed, unless a deep enum or default value came with it.
    refused = installed.refusal is not None
    assert refused == (
        json_depth(api.crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"], MAX_SCHEMA_DEPTH)
        > MAX_SCHEMA_DEPTH
    )
    deep_schema = where[-1] in ("spec", "items", "additionalProperties") and deep.leaf is None
    if deep_schema:
        assert not refused
        assert any(f"nests deeper than {MAX_SCHEMA_DEPTH} levels" in loss for loss in api.losses)


# --- the suite can fail: recursive helpers put back --------------------------------------------


def _recursive_json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_recursive_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_recursive_json_equal, a, b))
    return type(a) is type(b) and bool(a == b)


RECURSIVE_HELPERS: dict[str, tuple[str, Callable[..., Any]]] = {
    "recursive deepcopy": ("deepcopy", copy.deepcopy),
    "recursive json_equal": ("json_equal", _recursive_json_equal),
    "recursive canonical_json": (
        "canonical_json",
        lambda v, ensure_ascii=True: json.dumps(
            v, sort_keys=True, separators=(",", ":"), ensure_ascii=ensure_ascii
        ),
    ),
}


@pytest.mark.parametrize("bug", sorted(RECURSIVE_HELPERS))
def test_the_totality_property_catches_a_recursive_helper(
    bug: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, recursive = RECURSIVE_HELPERS[bug]
    monkeypatch.setattr(objects, name, recursive)
    with pytest.raises(RecursionError):
        FINDING_BUDGET(given(**BOTH_SIDES)(deep_on_both_sides))()


def test_the_kubeconfig_of_a_deep_secret_is_a_secret_problem() -> None:
    """A kubeconfig nested deeper than the shell's YAML reader follows is a problem on the
    Connection, not an exception (the shell's loader raises; the kernel turns it into words)."""
    text = "clusters: " + "[" * 5000 + "]" * 5000
    conn = {
        "metadata": {"name": "p"},
        "spec": {"kubeconfigSecretRef": {"namespace": "kube-bind", "name": "kc"}},
    }
    secret = {
        "metadata": {"namespace": "kube-bind", "name": "kc"},
        "data": {"kubeconfig": base64.b64encode(text.encode()).decode()},
    }
    problem = credentials_for(conn, secret, "kube-bind")
    assert not isinstance(problem, Credentials)
    assert "is not YAML" in problem.message
