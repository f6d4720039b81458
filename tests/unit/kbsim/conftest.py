"""Fixtures for kbsim.apiserver tests: a server on a virtual clock and a Widget CRD."""

from __future__ import annotations

from typing import Any

import pytest

from kbcore.api.resources import CONFIGMAPS as CONFIGMAPS
from kbcore.api.resources import CRDS
from kbcore.api.resources import NAMESPACES as NAMESPACES
from kbcore.api.resources import SECRETS as SECRETS
from kbcore.objects import GVR, ObjectKey
from kbsim.apiserver import APIServer
from tests import crds

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z

WIDGETS = GVR("example.org", "v1", "widgets")
GADGETS = GVR("example.org", "v1", "gadgets")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


WIDGET_SCHEMA: dict[str, Any] = crds.obj(
    {
        "spec": crds.obj(
            {
                "size": {"type": "integer", "minimum": 0},
                "color": {"type": "string", "enum": ["red", "blue", "green"]},
                "mode": {"type": "string", "default": "auto"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "ports": crds.list_map(
                    "name",
                    {"name": {"type": "string"}, "port": {"type": "integer"}},
                    required=["name"],
                ),
                "free": crds.preserved(),
            }
        ),
        "status": crds.obj({"ready": {"type": "boolean"}, "observed": {"type": "integer"}}),
    }
)


def crd(
    plural: str = "widgets",
    kind: str = "Widget",
    *,
    group: str = "example.org",
    scope: str = "Namespaced",
    status: bool = True,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    version = crds.version(schema=schema or WIDGET_SCHEMA, status=status)
    return crds.crd(plural, kind, group=group, scope=scope, versions=[version])


def widget(name: str = "w1", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def key(name: str, namespace: str = "default") -> ObjectKey:
    return ObjectKey(namespace, name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> APIServer:
    return APIServer("test", clock=clock, seed=7)


def establish(server: APIServer, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create a CRD and run the controllers until it is served."""
    created = server.create(CRDS, body or crd())
    while server.pending_work():
        server.tick()
    return created


@pytest.fixture
def widgets(server: APIServer) -> APIServer:
    """A server with the Widget CRD established (status subresource enabled)."""
    establish(server)
    return server
