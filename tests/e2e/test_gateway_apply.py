"""``POST /api/apply`` with the real client against a real consumer API server: the gateway app
in-process (tests/unit/backend/fakes.py: its OIDC provider and store), the consumer the
session's real cluster with the konnector's CRDs. What the unit tests fake (the connection,
server-side apply, the API server's answers) is real here."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
import yaml

from kbcore.api.resources import CLUSTERBINDINGS, CONNECTIONS, CRDS, NAMESPACES, SECRETS
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.views.bundle import bundle
from kbshell.backend.apply import FIELD_MANAGER, Applier
from kbshell.backend.issuing import CatalogEntry, Identity
from kbshell.client import KubeClient
from tests.harness.clusters import REPO_ROOT, Clusters
from tests.harness.konnector import wait_established
from tests.unit.backend.fakes import World

pytestmark = pytest.mark.realcluster


class OneBundleIssuer:
    """Binds ``widgets`` to a real one-apply bundle named after the test's suffix."""

    def __init__(self, name: str) -> None:
        self.name = name

    def catalog(self, identity: Identity) -> list[CatalogEntry]:
        return [CatalogEntry("Export", "widgets")]

    def bind(
        self, identity: Identity, export: str, consumer_cluster_uid: str, *, namespace: str = ""
    ) -> list[dict[str, Any]]:
        provider = {
            "apiVersion": "v1", "kind": "Config", "current-context": "p",
            "clusters": [{"name": "p", "cluster": {"server": "https://provider.example:6443"}}],
            "users": [{"name": "p", "user": {"token": "provider-token"}}],
            "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
        }  # fmt: skip
        return bundle(connection=self.name, kubeconfig_text=yaml.safe_dump(provider),
                      apis=["widgets.example.com"])  # fmt: skip


def _ssa(client: KubeClient, gvr: Any, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    client.patch(gvr, ObjectKey(meta.get("namespace", ""), meta["name"]), obj, "apply", "e2e", True)


def test_apply_puts_the_bundle_on_a_real_consumer(real_clusters: Clusters) -> None:
    cluster = real_clusters.consumer
    admin = KubeClient.from_kubeconfig_file(cluster.kubeconfig)
    core = [yaml.safe_load(p.read_text()) for p in sorted((REPO_ROOT / "crds").glob("*.yaml"))]
    for crd in core:
        _ssa(admin, CRDS, crd)
    wait_established(admin, [crd["metadata"]["name"] for crd in core])
    _ssa(admin, NAMESPACES,
         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bind"}})  # fmt: skip
    name = f"apply-{uuid.uuid4().hex[:8]}"
    world = World(applier=Applier())
    world.gateway.issuer = OneBundleIssuer(name)
    kubeconfig = yaml.safe_load(cluster.kubeconfig_text())  # inline client certificate and CA
    try:
        with world.browser() as alice:
            assert world.log_in(alice).status_code == 303
            body = {"export": "widgets", "consumerClusterUID": "u", "kubeconfig": kubeconfig}
            resp = alice.post("/api/apply", json=body)
            assert resp.status_code == 200, resp.text
            assert [a["kind"] for a in resp.json()["applied"]] == [
                "Secret", "Connection", "ClusterBinding"]  # fmt: skip
            connection = admin.get(CONNECTIONS, ObjectKey("", name))
            managers = {m["manager"] for m in connection["metadata"]["managedFields"]}
            assert FIELD_MANAGER in managers
            assert admin.get(CLUSTERBINDINGS, ObjectKey("", name))["spec"]["apis"] == [
                {"name": "widgets.example.com"}]  # fmt: skip
            # A user the consumer refuses: the API server's 403 is the answer, nothing applied.
            limited = yaml.safe_load(cluster.mint_kubeconfig(f"nobody-{name}").read_text())
            resp = alice.post("/api/apply", json={**body, "kubeconfig": limited})
            assert resp.status_code == 422, resp.text
            assert resp.json()["error"] == "apply_refused"
            assert "403 Forbidden" in resp.json()["message"] and resp.json()["applied"] == []
    finally:
        for gvr, key in ((CLUSTERBINDINGS, ObjectKey("", name)), (CONNECTIONS, ObjectKey("", name)),
                         (SECRETS, ObjectKey("kube-bind", f"{name}-kubeconfig"))):  # fmt: skip
            with contextlib.suppress(ApiError):
                admin.delete(gvr, key)
        admin.close()
