"""A provider API server (kbsim) with the service CRDs and Widgets, for the issuer's planners.

The planners are pure; these tests answer their reads and carry out their plans on a real
(simulated) API server, so "a plan carried out is followed by an empty one" is checked against
what a server stores, defaults and refuses, not against a hand-written fake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from kbcore import objects as o
from kbcore.actions import Plan
from kbcore.api.iam import OIDCIdentity
from kbcore.api.resources import CRDS, EXPORTS, GRANTS
from kbcore.objects import GVR, ObjectKey
from kbcore.runtime.cluster import Viewed, carry_out, get_or_none, planned
from kbcore.schema import crdgen
from kbcore.service.catalog import ExportView, plan_export
from kbcore.service.issuer import GrantView, IssueView, grant_export, plan_grant, plan_issue
from kbcore.sync.tenancy import home_namespace
from kbsim.apiserver import APIServer
from kbsim.serverapi import ServerAPI
from tests.unit import bindworld as bw

V = TypeVar("V", bound=Viewed)
NOW = 1_800_000_000.0
WIDGETS_API = "widgets.example.org"


def provider(*, widgets: bool = True) -> tuple[APIServer, ServerAPI]:
    server = APIServer("provider", clock=lambda: NOW, seed=1)
    for crd in crdgen.service_crds():
        server.create(CRDS, o.deepcopy(dict(crd)))
    if widgets:
        server.create(CRDS, bw.crd("widgets", "Widget"))
    settle(server)
    return server, ServerAPI(server)


def settle(server: APIServer) -> None:
    """Run the server's own controllers (CRD establishing, GC, tokens) until they are idle."""
    for _ in range(50):
        if not server.tick():
            return
    raise AssertionError("the server's controllers never settled")


def run(api: ServerAPI, planner: Callable[[V], Plan], view: V, now: float = NOW) -> Plan:
    """Plan on `api` and carry the plan out; the plan."""
    plan = planned(api, planner, view)
    carry_out(api, plan, now)
    return plan


def export(name: str = "widgets", apis: tuple[tuple[str, str], ...] = (("example.org", "widgets"),),
           **spec: Any) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "catalog.kube-bind.io/v1alpha1",
        "kind": "Export",
        "metadata": {"name": name},
        "spec": {
            "title": name.title(),
            "apis": [{"group": g, "resource": r} for g, r in apis],
            **spec,
        },
    }


# -- a Grant on the provider ------------------------------------------------------------------

IDENTITY = OIDCIdentity(issuer="https://dex.example", subject="alice")
CLUSTER_UID = "6f1c0f6e-0000-4000-8000-000000000001"


def get(api: ServerAPI, gvr: GVR, key: ObjectKey) -> dict[str, Any] | None:
    return get_or_none(api, gvr, key)


def issue(api: ServerAPI, *, ready_export: bool = True, **spec: Any) -> str:
    """An Export (Ready unless told) and the Grant of IDENTITY/CLUSTER_UID for it; its name."""
    api.create(EXPORTS, export(**spec), "test")
    if ready_export:
        run(api, plan_export, ExportView(api.get(EXPORTS, ObjectKey("", "widgets")), {}, NOW))
    run(api, plan_issue, IssueView(IDENTITY, "widgets", CLUSTER_UID, {}, NOW))
    return home_namespace(IDENTITY.issuer, IDENTITY.subject, CLUSTER_UID, "widgets")


def grant_pass(api: ServerAPI, name: str, now: float = NOW) -> Plan:
    """One reconcile of Grant `name` by the issuer, carried out."""
    grant = api.get(GRANTS, ObjectKey("", name))
    exp = get(api, EXPORTS, ObjectKey("", grant_export(grant)))
    return run(api, plan_grant, GrantView(grant, exp, {}, now), now)


def converge(server: APIServer, api: ServerAPI, name: str, now: float = NOW) -> None:
    """Reconcile the Grant and run the server's controllers until neither writes."""
    for _ in range(10):
        writes = grant_pass(api, name, now).writes
        settle(server)
        if not writes:
            return
    raise AssertionError("the Grant never converged")
