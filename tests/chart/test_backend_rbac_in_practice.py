"""The backend chart's RBAC, proven on a real provider: sufficient, and every grant needed.

`helm install` puts `charts/backend` on a fresh provider cluster (its CRDs, ServiceAccount,
ClusterRole and binding). The real `kube-bind-backend --issuer=provider --run=issuer` then runs
with a token of the chart's ServiceAccount (TokenRequest API) and the flags the chart's
Deployment passes, and the gateway's bind path, `ProviderIssuer`, runs in-process as the same
ServiceAccount. A scenario walks through what the backend does on a provider: an Export and a
Collection become Ready, the catalog lists them, a bind mints a Grant and its credentials (the
token controller fills the token), a tenant's namespace claim is granted, RBAC drift is put back
(rules and subjects updated, bindings with a changed roleRef deleted and made again), a
revocation deletes the token Secret and ServiceAccount, a re-bind re-issues them, and one pass
of the reaper in the chart's mode (revoke; `--reap-once` as the same ServiceAccount) revokes the
Grant, which no konnector heart-beats for.

The provider API server audits the ServiceAccount's requests, the ground truth:
 - sufficient: the scenario completes and no request of the backend was refused (403);
 - minimal: every (rule, resource, verb) of the ClusterRole was the only grant authorizing at
   least one request, except `escalate` and `bind`, which no request names (the RBAC storage
   checks them when a Role or binding is written): they are proven needed by taking them away,
   after which writing the tenant's Role and RoleBinding as the backend is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore.api.resources import (
    BOUND_NAMESPACES,
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    COLLECTIONS,
    CRDS,
    EXPORTS,
    GRANTS,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.service.claims import ROLE_NAME
from kbcore.service.issuer import SERVICE_ACCOUNT, TOKEN_SECRET, plan_revoke
from kbcore.timestamps import parse_rfc3339
from kbshell.backend.issuing import Identity
from kbshell.backend.provider_issuer import ProviderIssuer
from kbshell.client import KubeClient
from tests.chart.audited import (
    NAMESPACE,
    RELEASE,
    WIDGETS_CRD,
    assert_every_grant_needed,
    audit_events,
    audit_policy,
    denied,
    gone,
    service_account_kubeconfig,
    service_account_user,
)
from tests.chart.conftest import BACKEND, REPO, Helm, Obj, by_kind, one
from tests.harness.clusters import Clusters, build_binaries, free_ports, start_clusters
from tests.harness.konnector import eventually, wait_established

pytestmark = pytest.mark.realcluster

CHART = BACKEND.path
SA_NAME = f"{RELEASE}-backend"
SA_USER = service_account_user(NAMESPACE, SA_NAME)
TIMEOUT = 30.0
VALUES = {
    "run": ["issuer"],
    "provider": {"server": "https://provider.example.com:6443"},
    "logFormat": "json",
    "reaper": {"mode": "revoke", "ttl": "1h"},
}
AUDIT_POLICY = audit_policy(SA_USER)
ALICE = Identity("https://dex.example.com", "alice-subject", "alice@example.com")


@pytest.fixture
def audited_provider() -> Iterator[Clusters]:
    clusters = start_clusters(["provider"], bin_dir=build_binaries(), audit_policy=AUDIT_POLICY)
    try:
        yield clusters
    finally:
        clusters.stop()


def test_the_backend_chart_rbac_is_sufficient_and_every_grant_is_needed(
    helm: Helm, audited_provider: Clusters, tmp_path: Path
) -> None:
    provider = audited_provider.provider
    objs = helm.template(VALUES, release=RELEASE, namespace=NAMESPACE, chart=CHART)
    helm.run(
        "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace",
        "-f", str(helm.values_file(VALUES)), "--kubeconfig", str(provider.kubeconfig),
    )  # fmt: skip
    admin = KubeClient.from_kubeconfig_file(str(provider.kubeconfig))
    backend: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "backend.log"
    try:
        wait_established(
            admin,
            [o["metadata"]["name"] for o in by_kind(objs, "CustomResourceDefinition")],
        )
        admin.create(CRDS, yaml.safe_load(WIDGETS_CRD.read_text()))
        wait_established(admin, ["widgets.example.org"])
        kubeconfig = service_account_kubeconfig(
            provider, tmp_path / "sa.kc", NAMESPACE, SA_NAME, "provider"
        )
        backend = _start_backend(objs, kubeconfig, log_path)
        sa = KubeClient.from_kubeconfig_file(str(kubeconfig))
        home = _scenario(admin, sa)
        _one_reaper_pass(admin, objs, kubeconfig, home)
        _stop(backend)
        backend = None
        log = log_path.read_text()
        # A refusal is logged as "403 Forbidden: ..."; "403" alone also matches a timestamp.
        assert "Forbidden" not in log, log[-4000:]
        events = audit_events(provider, SA_USER)
        refused = denied(events)
        assert not refused, f"the chart's RBAC refused the backend: {refused}"
        role = one(objs, "ClusterRole")
        assert_every_grant_needed(
            events, [role], NAMESPACE, who="backend", unrequested_verbs=("escalate", "bind")
        )
        _escalate_and_bind_are_needed(admin, sa, role, home)
    finally:
        if backend is not None:
            _stop(backend)
        admin.close()


def _scenario(admin: KubeClient, sa: KubeClient) -> str:
    """The backend's work, each step waiting for its effect; returns the Grant's name."""
    admin.create(
        EXPORTS,
        {
            "apiVersion": EXPORTS.api_version,
            "kind": "Export",
            "metadata": {"name": "widgets"},
            "spec": {"title": "Widgets", "apis": [{"group": "example.org", "resource": "widgets"}]},
        },
    )
    admin.create(
        COLLECTIONS,
        {
            "apiVersion": COLLECTIONS.api_version,
            "kind": "Collection",
            "metadata": {"name": "all"},
            "spec": {"title": "All", "exports": ["widgets"]},
        },
    )
    for gvr, name in ((EXPORTS, "widgets"), (COLLECTIONS, "all")):
        eventually(lambda gvr=gvr, name=name: _ready(admin.get(gvr, ObjectKey("", name))),
                   TIMEOUT, f"{gvr.resource} {name} Ready")  # fmt: skip

    # The gateway's path: the catalog, then a bind (Grant created, token awaited).
    issuer = ProviderIssuer(sa, server="https://provider.example.com:6443", timeout=TIMEOUT)
    assert {(e.kind, e.name) for e in issuer.catalog(ALICE)} == {
        ("Export", "widgets"),
        ("Collection", "all"),
    }
    cluster_uid = str(uuid.uuid4())
    bundle = issuer.bind(ALICE, "widgets", cluster_uid)
    assert any(o.get("kind") == "Secret" for o in bundle)
    (grant,) = admin.list(GRANTS, "", "")[0]
    home = grant["metadata"]["name"]

    # A tenant's namespace claim: <home>-default, its Role and RoleBinding.
    admin.create(
        BOUND_NAMESPACES,
        {
            "apiVersion": BOUND_NAMESPACES.api_version,
            "kind": "BoundNamespace",
            "metadata": {"name": "default", "namespace": home},
            "spec": {},
        },
    )
    claim_key = ObjectKey(home, "default")
    eventually(lambda: _ready(admin.get(BOUND_NAMESPACES, claim_key)), TIMEOUT, "claim granted")
    claimed = f"{home}-default"
    assert not gone(admin, ROLES, ObjectKey(claimed, ROLE_NAME))

    # Drift, put back on the Grant's next reconcile (a change of the Grant wakes it).
    pokes = iter(range(1000))

    def poke() -> None:
        note = {"metadata": {"annotations": {"test/poke": str(next(pokes))}}}
        admin.patch(GRANTS, ObjectKey("", home), note, "merge")

    for gvr, key in ((ROLES, ObjectKey(home, home)), (CLUSTER_ROLES, ObjectKey("", home))):
        want = admin.get(gvr, key)["rules"]
        drifted = admin.get(gvr, key)
        drifted["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
        admin.update(gvr, drifted)
        poke()
        eventually(lambda gvr=gvr, key=key, want=want: admin.get(gvr, key)["rules"] == want,
                   TIMEOUT, f"{gvr.resource} rules put back")  # fmt: skip
    for gvr, key in (
        (ROLE_BINDINGS, ObjectKey(home, home)),
        (CLUSTER_ROLE_BINDINGS, ObjectKey("", home)),
    ):
        good = admin.get(gvr, key)
        want = good["subjects"]
        drifted = {**good, "subjects": [{"kind": "User", "name": "mallory",
                                         "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip
        admin.update(gvr, drifted)
        poke()
        eventually(lambda gvr=gvr, key=key, want=want: admin.get(gvr, key)["subjects"] == want,
                   TIMEOUT, f"{gvr.resource} subjects put back")  # fmt: skip
        # roleRef is immutable: a binding pointing elsewhere is deleted and made again.
        uid = admin.get(gvr, key)["metadata"]["uid"]
        admin.delete(gvr, key)
        eventually(lambda gvr=gvr, key=key: gone(admin, gvr, key), TIMEOUT, "binding deleted")
        other = o_copy(good)
        other["roleRef"] = {**good["roleRef"], "name": "view"}
        for field in ("uid", "resourceVersion", "creationTimestamp", "managedFields"):
            other["metadata"].pop(field, None)
        admin.create(gvr, other)
        poke()

        def remade(gvr: Any = gvr, key: ObjectKey = key, uid: str = uid, good: Obj = good) -> bool:
            try:
                now = admin.get(gvr, key)
            except ApiError:
                return False  # deleted; the issuer's plan asked for the pass that makes it
            return bool(now["metadata"]["uid"] != uid and now["roleRef"] == good["roleRef"])

        eventually(remade, TIMEOUT, f"{gvr.resource} with the right roleRef made again")

    # Revocation deletes the credentials; a re-bind re-issues them.
    current = admin.get(GRANTS, ObjectKey("", home))
    revoke = plan_revoke(current, "test revocation", time.time())
    assert revoke is not None
    admin.update(GRANTS, revoke.body, subresource="status")
    eventually(lambda: gone(admin, SECRETS, ObjectKey(home, TOKEN_SECRET)), TIMEOUT, "revoked")
    eventually(lambda: gone(admin, SERVICE_ACCOUNTS, ObjectKey(home, SERVICE_ACCOUNT)),
               TIMEOUT, "ServiceAccount deleted")  # fmt: skip
    again = issuer.bind(ALICE, "widgets", cluster_uid)
    assert any(o.get("kind") == "Secret" for o in again)
    return home


def _one_reaper_pass(admin: KubeClient, objs: list[Obj], kubeconfig: Path, home: str) -> None:
    """The chart's reaper mode, one pass as the ServiceAccount with a TTL of 1 s: the Grant,
    re-issued with no konnector's Lease, is stale once it was issued more than 1 s ago."""
    (container,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    mode = [a for a in container["args"] if a.startswith("--reap=")]
    assert mode == ["--reap=revoke"]

    def issued_over_a_second_ago() -> bool:
        issued = (admin.get(GRANTS, ObjectKey("", home)).get("status") or {}).get("issuedAt")
        at = parse_rfc3339(issued) if isinstance(issued, str) else None
        return at is not None and time.time() - at > 1.5

    eventually(issued_over_a_second_ago, TIMEOUT, "the Grant issued over a second ago")
    done = subprocess.run(
        [sys.executable, "-m", "kbshell.backend", "--reap-once", *mode, "--reap-ttl=1s",
         f"--provider-kubeconfig={kubeconfig}"],
        capture_output=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip
    out = done.stderr.decode()
    assert done.returncode == 0, out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(x["grant"], x["mode"]) for x in lines if x.get("msg") == "stale Grant"] == [
        (home, "Revoke")
    ]
    conds = {c["type"]: c for c in admin.get(GRANTS, ObjectKey("", home))["status"]["conditions"]}
    assert (conds["Revoked"]["status"], conds["Revoked"]["reason"]) == ("True", "HeartbeatExpired")
    eventually(lambda: gone(admin, SECRETS, ObjectKey(home, TOKEN_SECRET)), TIMEOUT, "reaped")


def _escalate_and_bind_are_needed(admin: KubeClient, sa: KubeClient, role: Obj, home: str) -> None:
    """Without `escalate` the backend cannot write the tenant's Role, without `bind` it cannot
    bind it: the RBAC storage refuses both (403)."""
    tenant_role = admin.get(ROLES, ObjectKey(f"{home}-default", ROLE_NAME))
    reduced = admin.get(CLUSTER_ROLES, ObjectKey("", role["metadata"]["name"]))
    reduced["rules"] = [r for r in reduced["rules"] if not {"escalate", "bind"} & set(r["verbs"])]
    assert len(reduced["rules"]) == len(role["rules"]) - 1
    admin.update(CLUSTER_ROLES, reduced)
    namespace = f"{home}-default"
    probe_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "probe", "namespace": namespace},
        "rules": tenant_role["rules"],
    }
    probe_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "probe", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": home}],
    }

    def refused(gvr: Any, body: Obj) -> str | None:
        try:
            sa.create(gvr, body)
        except ApiError as err:
            return err.message if err.code == 403 else None
        # The authorizer's cache lags the reduced role: try again. The admin removes the probe,
        # since the reduced role may no longer let the backend delete what it just created.
        admin.delete(gvr, ObjectKey(namespace, "probe"))
        return None

    message = eventually(lambda: refused(ROLES, probe_role), TIMEOUT, "Role refused")
    assert "attempting to grant RBAC permissions not currently held" in message
    message = eventually(lambda: refused(ROLE_BINDINGS, probe_binding), TIMEOUT, "bind refused")
    assert "attempting to grant RBAC permissions not currently held" in message


def o_copy(obj: Obj) -> Obj:
    out: Obj = json.loads(json.dumps(obj))
    return out


def _ready(obj: Obj) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _start_backend(objs: list[Obj], kubeconfig: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """The backend as the chart's Deployment runs it: its command's module and its flags (the
    probe address a free loopback port here, the credentials the ServiceAccount's token)."""
    (container,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["command"][1:] == ["-m", "kbshell.backend"]
    (probe,) = free_ports(1)
    args = [
        a
        for a in container["args"]
        if not a.startswith(("--health-probe-bind-address", "--listen-address"))
    ]
    argv = [sys.executable, "-m", "kbshell.backend", *args,
            f"--health-probe-bind-address=127.0.0.1:{probe}",
            f"--provider-kubeconfig={kubeconfig}"]  # fmt: skip
    log = log_path.open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    import urllib.request

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{probe}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    eventually(ready, TIMEOUT, "the backend's /readyz")
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
