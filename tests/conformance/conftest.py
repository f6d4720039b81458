"""Fixtures of the conformance suite: `api` runs every test once per backend.

`api` is parametrized with "kbsim" (a fresh in-memory APIServer per test) and "real" (the
session's real provider cluster, see tests/conftest.py). Each test gets its own namespace, so
tests never see each other's objects on the shared real cluster; CRDs get a unique group.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kbcore.errors import ApiError
from kbcore.objects import GVR
from tests import crds
from tests.conformance.adapters import KbsimClient, RealClient
from tests.conformance.client import CRDS, NAMESPACES, Api, unique

REAL_CLUSTER_FIXTURE = "real_clusters"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Make the "real" items request `real_clusters` statically.

    The `api` fixture asks for it (getfixturevalue) only when its param is "real", which the
    root conftest cannot see: it builds the binaries before any test runs (and attaches the
    cluster logs to failures) for the items whose `fixturenames` include it. Adding it to
    those items only (tryfirst: before the root hook looks) makes them ordinary real-cluster
    tests, while `-k kbsim` or `-m "not realcluster"` runs never start a cluster.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("api") != "real":
            continue
        names = getattr(item, "fixturenames", None)
        if names is not None and REAL_CLUSTER_FIXTURE not in names:
            # A new list: parametrized items share the one computed for their function.
            item.fixturenames = [REAL_CLUSTER_FIXTURE, *names]  # type: ignore[attr-defined]


@pytest.fixture(params=["kbsim", pytest.param("real", marks=pytest.mark.realcluster)])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    namespace = unique("conf")
    client: KbsimClient | RealClient
    if request.param == "kbsim":
        client = KbsimClient.new(namespace)
    else:
        clusters = request.getfixturevalue(REAL_CLUSTER_FIXTURE)
        client = RealClient(clusters.provider, namespace)
    client.create(NAMESPACES, {"metadata": {"name": namespace}})
    try:
        yield client
    finally:
        # Not waited for: kube-controller-manager empties and removes it in the background.
        try:
            client.delete(NAMESPACES, namespace)
        except ApiError as err:
            if err.code != 404:
                raise
        finally:
            client.close()


def widget_crd(group: str, *, plural: str = "widgets", kind: str = "Widget") -> dict[str, Any]:
    """A namespaced CRD with a /status subresource and a small structural schema."""
    schema = crds.obj(
        {
            "spec": crds.obj(
                {
                    "size": {"type": "integer"},
                    "color": {"type": "string"},
                    "shape": {"type": "string"},
                }
            ),
            "status": crds.obj({"ready": {"type": "boolean"}, "observed": {"type": "integer"}}),
        }
    )
    return crds.crd(
        plural,
        kind,
        group=group,
        singular=kind.lower(),
        list_kind=f"{kind}List",
        versions=[crds.version(schema=schema)],
    )


def new_group() -> str:
    """An API group no other test uses."""
    return f"{unique('t')}.conformance.example.com"


def install_crd(api: Api, crd: dict[str, Any]) -> str:
    """Create `crd` and wait until it is established; returns its name."""
    api.create(CRDS, crd)
    api.wait_established(crd["metadata"]["name"])
    return str(crd["metadata"]["name"])


def install_widgets(api: Api) -> GVR:
    """Create a Widget CRD in a group of its own and wait until it is served."""
    group = new_group()
    install_crd(api, widget_crd(group))
    return GVR(group, "v1", "widgets")


@pytest.fixture
def widgets(api: Api) -> Iterator[GVR]:
    """The GVR of a freshly established Widget CRD (namespaced, with /status)."""
    gvr = install_widgets(api)
    yield gvr
    try:
        api.delete(CRDS, f"{gvr.resource}.{gvr.group}")
    except ApiError as err:
        if err.code != 404:
            raise
