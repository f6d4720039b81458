"""Two consumers bound to one provider's Widgets, isolated (kbcore/sync/tenancy.py), on real
API servers with the real konnector processes and the backend's claims issuer.

Each consumer gets what an issuer mints for a boundary: a home namespace, a ServiceAccount with
a token Secret the token controller fills, exactly `rbac.tenant_rules` for it, a Grant, and a
bundle whose Connection carries `spec.tenant`. The provider's API server audits every request of
a ServiceAccount: the audit log, not the konnector's word, shows that each konnector touched
only its own boundary and was never refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

from kbcore.api.resources import CRDS, GRANTS, NAMESPACES, SECRETS
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.schema import crdgen
from kbcore.sync.tenancy import Tenant, home_namespace
from kbcore.views import bundle as kb
from kbcore.views import rbac
from kbshell.backend.issuer import ClaimsIssuer
from kbshell.client import KubeClient
from tests.harness.clusters import Cluster, Clusters, build_binaries, start_clusters
from tests.harness.konnector import (
    CLUSTERBINDINGS,
    CONNECTIONS,
    REPO,
    WIDGETS,
    Konnector,
    eventually,
    wait_established,
)
from tests.unit import bindworld as bw

pytestmark = pytest.mark.realcluster

SERVICEACCOUNTS = GVR("", "v1", "serviceaccounts")
RBAC = bw.RBAC_RESOURCES
API = "widgets.example.org"
SA = "konnector"
TIMEOUT = 90.0
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "userGroups": ["system:serviceaccounts"]}, {"level": "None"}],
}


@pytest.fixture(scope="module")
def tenant_clusters() -> Iterator[Clusters]:
    clusters = start_clusters(
        ["provider", "alice", "bob"], bin_dir=build_binaries(), audit_policy=AUDIT_POLICY
    )
    try:
        yield clusters
    finally:
        clusters.stop()


def apply(client: KubeClient, gvr: GVR, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return client.patch(
        gvr, ObjectKey(meta.get("namespace", ""), meta["name"]), obj, "apply", "e2e", True
    )


class Tenancy:
    """One consumer cluster bound through its own boundary on the shared provider."""

    def __init__(self, provider: Cluster, consumer: Cluster, who: str, tmp: Path) -> None:
        self.provider = KubeClient.from_kubeconfig_file(provider.kubeconfig)
        self.consumer = KubeClient.from_kubeconfig_file(consumer.kubeconfig)
        uid = self.consumer.get(NAMESPACES, ObjectKey("", "kube-system"))["metadata"]["uid"]
        self.home = home_namespace("https://dex.example", who, uid, "widgets")
        self.tenant = Tenant(self.home, (API,))
        self.user = f"system:serviceaccount:{self.home}:{SA}"
        self._mint(provider, uid, who)
        self._bind(consumer, tmp)

    def _mint(self, provider: Cluster, uid: str, who: str) -> None:
        """What the issuer mints for the boundary (kbcore/service/issuer.py's job)."""
        p, home = self.provider, self.home
        apply(p, NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": home}})
        apply(p, SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                   "metadata": {"name": SA, "namespace": home}})  # fmt: skip
        apply(p, SECRETS, {"apiVersion": "v1", "kind": "Secret",
                           "type": "kubernetes.io/service-account-token",
                           "metadata": {"name": f"{SA}-token", "namespace": home,
                                        "annotations": {"kubernetes.io/service-account.name": SA}}})  # fmt: skip
        subject = rbac.Subject("ServiceAccount", SA, home)
        for obj in rbac.rbac_objects(rbac.tenant_rules(self.tenant), name=home, subject=subject):
            if obj["kind"] != "Namespace":
                apply(p, RBAC[obj["kind"]], obj)
        spec = {"identity": {"issuer": "https://dex.example", "subject": who}, "export": "widgets",
                "consumerClusterUID": uid}  # fmt: skip
        apply(p, GRANTS, {"apiVersion": "iam.kube-bind.io/v1alpha1", "kind": "Grant",
                          "metadata": {"name": home}, "spec": spec})  # fmt: skip
        status = {"namespace": home, "serviceAccountName": SA, "apis": [API]}
        p.patch(GRANTS, ObjectKey("", home), {"status": status}, "merge", subresource="status")

        def token() -> str | None:
            data = p.get(SECRETS, ObjectKey(home, f"{SA}-token")).get("data") or {}
            return base64.b64decode(data["token"]).decode() if "token" in data else None

        self.kubeconfig = {
            "apiVersion": "v1", "kind": "Config", "current-context": "provider",
            "clusters": [{"name": "provider", "cluster": {
                "server": provider.url,
                "certificate-authority-data": base64.b64encode(provider.ca.cert.read_bytes()).decode()}}],
            "users": [{"name": SA, "user": {"token": eventually(token, TIMEOUT, "token Secret filled")}}],
            "contexts": [{"name": "provider", "context": {"cluster": "provider", "user": SA}}],
        }  # fmt: skip

    def _bind(self, consumer: Cluster, tmp: Path) -> None:
        c = self.consumer
        core = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
        for crd in core:
            apply(c, CRDS, crd)
        wait_established(c, [crd["metadata"]["name"] for crd in core])
        apply(
            c,
            NAMESPACES,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bind"}},
        )
        docs = kb.bundle(connection="provider", kubeconfig_text=yaml.safe_dump(self.kubeconfig),
                         apis=[API], konnector_namespace="kube-bind", tenant=self.tenant)  # fmt: skip
        kinds = {"Secret": SECRETS, "Connection": CONNECTIONS, "ClusterBinding": CLUSTERBINDINGS}
        for doc in docs:
            apply(c, kinds[doc["kind"]], doc)
        self.konnector = Konnector(consumer.kubeconfig, tmp / f"konnector-{self.home}.log").start()

    def widget(self, name: str, size: str, namespace: str = "default") -> None:
        self.consumer.create(WIDGETS, {"apiVersion": "example.org/v1", "kind": "Widget",
                                       "metadata": {"namespace": namespace, "name": name},
                                       "spec": {"size": size}})  # fmt: skip

    def copy(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        try:
            return self.provider.get(WIDGETS, ObjectKey(f"{self.home}-{namespace}", name))
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def close(self) -> None:
        self.konnector.stop()
        self.provider.close()
        self.consumer.close()


def audited(cluster: Cluster, user: str) -> list[dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    for line in cluster.audit_log.read_text().splitlines():
        ev = json.loads(line)
        if ev.get("user", {}).get("username") == user and "objectRef" in ev:
            events[ev["auditID"]] = ev
    return list(events.values())


class Boundary(Protocol):
    """A tenant boundary as the audit checks see it: its home namespace."""

    @property
    def home(self) -> str: ...


def outside(ev: dict[str, Any], t: Boundary) -> bool:
    """A request that reaches outside `t`'s boundary (its namespaces, its CRDs by name, the
    cluster identity); tests/e2e/test_service_flow.py checks its konnectors with it too."""
    ref = ev["objectRef"]
    ns, name, resource = ref.get("namespace", ""), ref.get("name", ""), ref.get("resource", "")
    if resource == "namespaces":  # a namespace is requested "in" itself
        return name != "kube-system" or ev["verb"] != "get"
    if ns:
        return not (ns == t.home or ns.startswith(f"{t.home}-"))
    if resource == "customresourcedefinitions":
        return name != API or ev["verb"] != "get"
    return resource != "logicalclusters"


def test_two_consumers_of_one_export_are_isolated(
    tenant_clusters: Clusters, tmp_path: Path
) -> None:
    provider = tenant_clusters["provider"]
    admin = KubeClient.from_kubeconfig_file(provider.kubeconfig)
    for crd in [yaml.safe_load((REPO / "examples/scenarios/_common/widgets-crd.yaml").read_text()),
                *crdgen.service_crds()]:  # fmt: skip
        apply(admin, CRDS, dict(crd))
    wait_established(admin, [API, "grants.iam.kube-bind.io", "boundnamespaces.iam.kube-bind.io"])
    issuer = ClaimsIssuer(admin)
    issuer.start()
    alice = Tenancy(provider, tenant_clusters["alice"], "alice", tmp_path)
    bob = Tenancy(provider, tenant_clusters["bob"], "bob", tmp_path)
    try:
        assert alice.home != bob.home
        for t, size in ((alice, "small"), (bob, "large")):
            t.konnector.wait_ready(TIMEOUT)
            eventually(lambda t=t: t.consumer.get(CLUSTERBINDINGS, ObjectKey("", "provider"))
                       .get("status", {}).get("conditions"), TIMEOUT, "binding status")  # fmt: skip
            eventually(lambda t=t, size=size: _try(t.widget, "w1", size), TIMEOUT, "Widgets served")

        # The same name in the same consumer namespace: two copies, each in its boundary.
        for t, size in ((alice, "small"), (bob, "large")):
            got = eventually(lambda t=t: t.copy("w1"), TIMEOUT, f"{t.home}'s copy")
            assert got["spec"] == {"size": size}
        assert [w["metadata"]["namespace"] for w in admin.list(WIDGETS)[0]
                if w["metadata"]["name"] == "w1"] == sorted([f"{alice.home}-default", f"{bob.home}-default"])  # fmt: skip

        # Status comes back to its own consumer only.
        admin.patch(WIDGETS, ObjectKey(f"{alice.home}-default", "w1"), {"status": {"phase": "Up"}},
                    "merge", subresource="status")  # fmt: skip
        eventually(lambda: alice.consumer.get(WIDGETS, ObjectKey("default", "w1")).get("status"),
                   TIMEOUT, "alice's status")  # fmt: skip
        assert "status" not in bob.consumer.get(WIDGETS, ObjectKey("default", "w1"))

        # A second namespace is claimed and granted while the konnector runs.
        alice.consumer.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-x"}}
        )
        alice.widget("w2", "medium", "team-x")
        eventually(lambda: alice.copy("w2", "team-x"), TIMEOUT, "alice's copy in team-x")
        conn = alice.consumer.get(CONNECTIONS, ObjectKey("", "provider"))
        eventually(lambda: len(alice.consumer.get(CONNECTIONS, ObjectKey("", "provider"))["status"]
                               .get("tenantNamespaces", [])) == 2, TIMEOUT, "two granted namespaces")  # fmt: skip
        assert conn["spec"]["tenant"]["namespace"] == alice.home

        # The provider's audit log: each konnector stayed inside its boundary, never refused.
        for t in (alice, bob):
            events = audited(provider, t.user)
            assert len(events) > 10, f"too few audited requests of {t.user}"
            assert [e["requestURI"] for e in events if outside(e, t)] == []
            assert [
                e["requestURI"] for e in events if e.get("responseStatus", {}).get("code") == 403
            ] == []
            other = bob if t is alice else alice
            assert not [
                e for e in events if e["objectRef"].get("namespace", "").startswith(other.home)
            ]
    finally:
        alice.close()
        bob.close()
        issuer.stop()
        admin.close()


def _try(create: Any, *args: Any) -> bool:
    try:
        create(*args)
    except ApiError as err:
        if err.code == 404:
            return False  # the CRD is not served yet
        raise
    return True
