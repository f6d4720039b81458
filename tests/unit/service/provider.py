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
from kbcore.api.resources import CRDS
from kbcore.runtime.cluster import Viewed, carry_out, planned
from kbcore.schema import crdgen
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
