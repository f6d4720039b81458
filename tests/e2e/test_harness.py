"""Smoke test of the real-cluster harness (tests/harness/clusters.py).

Proves what later e2e tests rely on: two independent clusters start, a cluster's identity
(kube-system UID) survives an apiserver restart, minted users are subject to RBAC, and
kube-controller-manager finalizes namespaces and collects garbage.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from tests.harness.clusters import Cluster, Clusters, api_client, mint_kubeconfig

pytestmark = pytest.mark.realcluster


def request(client: ApiClient, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Dict-level request through the kubernetes client: (HTTP status, decoded JSON).

    The client's own authentication (here client certificates from the kubeconfig) and
    TLS settings apply; nothing is turned into model classes.
    """
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    method, url, headers, body, _ = client.param_serialize(
        method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    response = client.call_api(method, url, header_params=headers, body=body)
    data = response.read()
    return response.status, json.loads(data) if data else None


def call(client: ApiClient, method: str, path: str, body: Any = None) -> Any:
    status, data = request(client, method, path, body)
    assert 200 <= status < 300, f"{method} {path}: HTTP {status}: {data}"
    return data


def status_of(client: ApiClient, method: str, path: str, body: Any = None) -> int:
    return request(client, method, path, body)[0]


def eventually(check: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)


@pytest.fixture
def provider(real_clusters: Clusters) -> Cluster:
    return real_clusters["provider"]


@pytest.fixture
def admin(provider: Cluster) -> Iterator[ApiClient]:
    with api_client(provider.kubeconfig) as client:
        yield client


def kube_system_uid(client: ApiClient) -> str:
    return str(call(client, "GET", "/api/v1/namespaces/kube-system")["metadata"]["uid"])


def test_two_independent_clusters_start(real_clusters: Clusters) -> None:
    assert set(real_clusters) == {"provider", "consumer"}
    uids = {}
    for name, cluster in real_clusters.items():
        with api_client(cluster.kubeconfig) as client:
            uids[name] = kube_system_uid(client)
            version = call(client, "GET", "/version")
            # build.sh stamps the version; unstamped binaries report v0.0.0-master.
            assert version["gitVersion"].startswith("v1."), version
    assert uids["provider"] != uids["consumer"]
    assert real_clusters.provider.port != real_clusters.consumer.port


def test_kube_system_uid_stable_across_apiserver_restart(
    provider: Cluster, admin: ApiClient
) -> None:
    before = kube_system_uid(admin)
    for crash in (False, True):
        provider.restart_apiserver(crash=crash)  # fails unless ready again within its timeout
        # The same client object reconnects: its connection pool retries on a fresh socket.
        assert kube_system_uid(admin) == before, f"crash={crash}"


def test_restricted_user_is_denied_until_rbac_allows(
    real_clusters: Clusters, provider: Cluster, admin: ApiClient
) -> None:
    ns = f"rbac-{uuid.uuid4().hex[:8]}"
    call(admin, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    user = f"restricted-{ns}"
    kubeconfig = mint_kubeconfig(provider, user, groups=("kbind-restricted",))
    with api_client(kubeconfig) as restricted:
        assert status_of(restricted, "GET", "/api/v1/namespaces") == 403
        assert status_of(restricted, "GET", f"/api/v1/namespaces/{ns}/configmaps") == 403

        rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]
        call(admin, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
             {"metadata": {"name": "cm-reader"}, "rules": rules})  # fmt: skip
        binding = {
            "metadata": {"name": "cm-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "cm-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
        call(admin, "POST", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
             binding)  # fmt: skip
        # The RBAC authorizer reads from an informer, so the grant lands shortly after.
        eventually(
            lambda: status_of(restricted, "GET", f"/api/v1/namespaces/{ns}/configmaps") == 200,
            what="RoleBinding takes effect",
        )
        assert status_of(restricted, "GET", "/api/v1/namespaces") == 403

    # Each cluster has its own CA: a provider client certificate is unknown to the consumer
    # (the consumer's CA is trusted here, so this is the client cert being rejected).
    config = yaml.safe_load(provider.kubeconfig.read_text())
    consumer_config = yaml.safe_load(real_clusters.consumer.kubeconfig.read_text())
    config["clusters"][0]["cluster"] = consumer_config["clusters"][0]["cluster"]
    crossed = provider.dir / "users" / "provider-admin-at-consumer.kubeconfig"
    crossed.write_text(yaml.safe_dump(config))
    with api_client(crossed) as client:
        assert status_of(client, "GET", "/api/v1/namespaces") == 401
    call(admin, "DELETE", f"/api/v1/namespaces/{ns}")


def test_namespace_deletion_and_garbage_collection(admin: ApiClient) -> None:
    ns = f"gc-{uuid.uuid4().hex[:8]}"
    call(admin, "POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    owner = call(admin, "POST", cms, {"metadata": {"name": "owner"}, "data": {"a": "1"}})
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    call(admin, "POST", cms, {"metadata": {"name": "dependent", "ownerReferences": [ref]}})

    # garbagecollector: deleting the owner removes the dependent.
    call(admin, "DELETE", f"{cms}/owner")
    eventually(
        lambda: status_of(admin, "GET", f"{cms}/dependent") == 404,
        what="garbage collector deletes the dependent ConfigMap",
    )

    # namespace controller: a namespace with content is emptied and then removed.
    call(admin, "POST", cms, {"metadata": {"name": "content"}, "data": {"b": "2"}})
    call(admin, "DELETE", f"/api/v1/namespaces/{ns}")
    eventually(
        lambda: status_of(admin, "GET", f"/api/v1/namespaces/{ns}") == 404,
        what=f"namespace {ns} with a ConfigMap inside is finalized",
    )
