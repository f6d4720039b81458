"""The whole service flow on real servers: a user logs in through the real Dex, the real
`kube-bind-backend --issuer=provider` (gateway, GrantsIssuer and ClaimsIssuer in one process)
lists the provider's Export, mints a Grant for the consumer cluster and hands its bundle out
once; `kubectl apply` puts it on the consumer and the real konnector syncs Widgets through the
boundary the backend minted.

Nothing here mints credentials or RBAC by hand: the provider's administrator installs the
service CRDs, a Widget CRD and one Export, and everything else is the backend's and the
provider's kube-controller-manager's (the token controller, the garbage collector). The
provider's audit log, not the konnector's word, shows each konnector stayed in its boundary.
The real reaper (`kube-bind-backend --reap-once`) then finds the Grant of a konnector that
stopped, in a dry run and in revoke mode, and leaves the one that heart-beats alone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import yaml

from kbcore.api.resources import (
    CRDS,
    EXPORTS,
    GRANTS,
    LEASES,
    NAMESPACES,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.service.issuer import SERVICE_ACCOUNT, TOKEN_SECRET
from kbcore.service.reaper import heartbeat
from kbshell.client import KubeClient
from tests.conftest import CONFIDENTIAL_CLIENT_ID
from tests.e2e.test_gateway import new_browser, post_password, to_dex_form
from tests.e2e.test_tenancy import AUDIT_POLICY, audited, outside
from tests.harness.clusters import (
    Cluster,
    Clusters,
    build_binaries,
    free_ports,
    http_ok,
    start_clusters,
)
from tests.harness.gateway import GATEWAY, GatewayServer, callback_url
from tests.harness.konnector import (
    CLUSTERBINDINGS,
    CONNECTIONS,
    REPO,
    WIDGETS,
    Konnector,
    eventually,
    wait_established,
)
from tests.harness.oidc import ALICE, BOB, Client, Dex, User, start_dex

pytestmark = [pytest.mark.realcluster, pytest.mark.realservice]

API = "widgets.example.org"
EXPORT = "widgets"
TIMEOUT = 90.0


def apply(client: KubeClient, gvr: Any, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return client.patch(
        gvr, ObjectKey(meta.get("namespace", ""), meta["name"]), obj, "apply", "e2e", True
    )


def kubectl(binary: Path, cluster: Cluster, *args: str, stdin: str = "") -> str:
    """The real kubectl as the cluster's admin; its output, or the test fails with stderr."""
    done = subprocess.run(
        [str(binary), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin.encode(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


HIDDEN = "gadgets"
"""An Export of an API the provider does not serve (no CRD): hidden, and bound as if unknown."""


def export_body(name: str = EXPORT, resource: str = "widgets") -> dict[str, Any]:
    return {
        "apiVersion": "catalog.kube-bind.io/v1alpha1",
        "kind": "Export",
        "metadata": {"name": name},
        "spec": {"title": name.title(), "description": f"{name.title()} as a service",
                 "apis": [{"group": "example.org", "resource": resource}]},
    }  # fmt: skip


@attrs.define
class Bound:
    """One consumer bound through the gateway: what the user saw and what runs for it."""

    user: User
    cluster: Cluster
    consumer: KubeClient
    uid: str
    catalog: dict[str, Any]
    bundle: list[dict[str, Any]]
    second_pickup: int
    konnector: Konnector

    @property
    def connection(self) -> dict[str, Any]:
        (conn,) = [d for d in self.bundle if d["kind"] == "Connection"]
        return conn

    @property
    def home(self) -> str:
        return str(self.connection["spec"]["tenant"]["namespace"])

    @property
    def sa_user(self) -> str:
        return f"system:serviceaccount:{self.home}:konnector"


@attrs.define
class Site:
    clusters: Clusters
    dex: Dex
    backend: GatewayServer
    probe_port: int
    provider: KubeClient
    kubectl: Path
    tmp: Path
    bound: dict[str, Bound] = attrs.field(factory=dict)

    @contextlib.contextmanager
    def log_in(self, user: User) -> Iterator[httpx.Client]:
        """A browser that logged in at Dex through the gateway's /exports (no real browser)."""
        with new_browser() as browser:
            page = to_dex_form(browser, self.backend.url + "/exports")
            landing = post_password(browser, page, user)
            assert landing.status_code == 200, landing.text
            assert f"Logged in as {user.email}" in landing.text
            yield browser

    def bind(self, browser: httpx.Client, uid: str) -> tuple[list[dict[str, Any]], int]:
        """POST /api/bind, then the pickup twice: (the bundle, the second pickup's status)."""
        resp = browser.post(self.backend.url + "/api/bind",
                            json={"export": EXPORT, "consumerClusterUID": uid})  # fmt: skip
        assert resp.status_code == 201, resp.text
        url = resp.json()["pickupURL"]
        first = browser.get(url, headers={"Accept": "application/yaml"})
        assert first.status_code == 200, first.text
        second = browser.get(url, headers={"Accept": "application/yaml"})
        return [d for d in yaml.safe_load_all(first.text) if d], second.status_code

    def consumer(self, user: User, cluster: str) -> Bound:
        """`user` binds the Export into `cluster` (once per module) with the real kubectl, and
        the real konnector runs there."""
        if cluster in self.bound:
            return self.bound[cluster]
        c = self.clusters[cluster]
        consumer = KubeClient.from_kubeconfig_file(c.kubeconfig)
        uid = consumer.get(NAMESPACES, ObjectKey("", "kube-system"))["metadata"]["uid"]
        core = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
        for crd in core:  # the konnector's Helm chart's part
            apply(consumer, CRDS, crd)
        wait_established(consumer, [crd["metadata"]["name"] for crd in core])
        apply(consumer, NAMESPACES,
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bind"}})  # fmt: skip
        with self.log_in(user) as browser:
            catalog = browser.get(self.backend.url + "/api/catalog").json()
            bundle, second = self.bind(browser, uid)
        out = kubectl(self.kubectl, c, "apply", "-f", "-",
                      stdin="---\n".join(yaml.safe_dump(d) for d in bundle))  # fmt: skip
        assert out.count("created") == 3, out
        konnector = Konnector(c.kubeconfig, self.tmp / f"konnector-{cluster}.log").start()
        bound = Bound(user, c, consumer, uid, catalog, bundle, second, konnector)
        self.bound[cluster] = bound
        return bound


@pytest.fixture(scope="module")
def site(dex_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("service-flow")
    bin_dir = build_binaries()
    clusters = start_clusters(["provider", "alice", "bob"], bin_dir=bin_dir,
                              audit_policy=AUDIT_POLICY)  # fmt: skip
    provider = clusters["provider"]
    admin = KubeClient.from_kubeconfig_file(provider.kubeconfig)
    backend: GatewayServer | None = None
    site: Site | None = None
    try:
        # The provider guide's step 1, as an administrator does it.
        widgets_crd = REPO / "examples/scenarios/_common/widgets-crd.yaml"
        for path in (REPO / "crds/service", widgets_crd):
            kubectl(bin_dir / "kubectl", provider, "apply", "-f", str(path))
        crds = [widgets_crd, *sorted((REPO / "crds/service").glob("*.yaml"))]
        wait_established(admin, [yaml.safe_load(p.read_text())["metadata"]["name"] for p in crds])
        apply(admin, EXPORTS, export_body())
        apply(admin, EXPORTS, export_body(HIDDEN, "gadgets"))
        port, probe_port = free_ports(2)
        secret = secrets.token_urlsafe(24)
        client = Client(CONFIDENTIAL_CLIENT_ID, (callback_url(port),), secret)
        with start_dex(tmp / "dex", [client], bin_dir=dex_bin) as dex:
            backend = GatewayServer(
                tmp / "backend", port, oidc_issuer=dex.issuer, client_id=CONFIDENTIAL_CLIENT_ID,
                client_secret=secret, issuer_file=None, session_store="memory",
                issuer="provider",
                extra_args=["--provider-kubeconfig", str(provider.kubeconfig),
                            "--provider-server", provider.url,
                            "--provider-ca-file", str(provider.ca.cert),
                            "--health-probe-bind-address", f"127.0.0.1:{probe_port}"],
            )  # fmt: skip
            backend.start()
            eventually(lambda: http_ok(f"http://127.0.0.1:{probe_port}/readyz"), TIMEOUT,
                       "the backend's controllers synced")  # fmt: skip
            site = Site(clusters, dex, backend, probe_port, admin, bin_dir / "kubectl", tmp)
            yield site
    finally:
        for b in site.bound.values() if site else ():
            b.konnector.stop()
            b.consumer.close()
        if backend is not None:
            backend.stop()
        admin.close()
        clusters.stop()


def copy_of(site: Site, b: Bound, name: str, namespace: str = "default") -> dict[str, Any] | None:
    try:
        return site.provider.get(WIDGETS, ObjectKey(f"{b.home}-{namespace}", name))
    except ApiError as err:
        if err.code == 404:
            return None
        raise


def create_widget(b: Bound, name: str, size: str) -> bool:
    try:
        b.consumer.create(WIDGETS, {"apiVersion": "example.org/v1", "kind": "Widget",
                                    "metadata": {"namespace": "default", "name": name},
                                    "spec": {"size": size}})  # fmt: skip
    except ApiError as err:
        if err.code == 404:
            return False  # the konnector has not installed the CRD yet
        if err.code == 409:
            return True  # an earlier test made it
        raise
    return True


def synced(site: Site, b: Bound, size: str) -> dict[str, Any]:
    """The konnector of `b` is ready and its Widget `w1` has reached its home on the provider."""
    b.konnector.wait_ready(TIMEOUT)
    eventually(lambda: create_widget(b, "w1", size), TIMEOUT, "Widgets served on the consumer")
    return eventually(lambda: copy_of(site, b, "w1"), TIMEOUT, f"the copy in {b.home}-default")


def many(events: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return events if len(events) > 10 else None


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def test_a_user_logs_in_binds_once_and_the_konnector_syncs_through_the_minted_grant(
    site: Site,
) -> None:
    alice = site.consumer(ALICE, "alice")
    (entry,) = alice.catalog["exports"]
    assert (entry["name"], entry["title"], entry["apis"]) == (EXPORT, "Widgets", [API])
    assert alice.second_pickup == 410
    grant = site.provider.get(GRANTS, ObjectKey("", alice.home))
    assert grant["spec"]["consumerClusterUID"] == alice.uid
    assert grant["spec"]["identity"]["issuer"] == site.dex.issuer
    assert grant["spec"]["identity"]["email"] == ALICE.email
    # The kubeconfig names the provider's external address and CA (the flags), as the token.
    (secret,) = [d for d in alice.bundle if d["kind"] == "Secret"]
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == site.clusters["provider"].url
    assert base64.b64decode(cluster["certificate-authority-data"]) == (
        site.clusters["provider"].ca.cert.read_bytes()
    )

    # A UID that is not a lowercase UUID is refused before anything is written.
    with site.log_in(ALICE) as browser:
        bad = browser.post(site.backend.url + "/api/bind",
                           json={"export": EXPORT, "consumerClusterUID": alice.uid.upper()})  # fmt: skip
        unknown = browser.post(site.backend.url + "/api/bind",
                               json={"export": "nothing", "consumerClusterUID": alice.uid})  # fmt: skip
        # The Export of an API the provider does not serve says so, and is not offered: the
        # catalog leaves it out and binding it is refused exactly as an unknown one.
        eventually(lambda: conditions(site.provider.get(EXPORTS, ObjectKey("", HIDDEN)))
                   .get("Ready", {}).get("reason") == "APINotExported", TIMEOUT,
                   "the hidden Export's condition")  # fmt: skip
        hidden = browser.post(site.backend.url + "/api/bind",
                              json={"export": HIDDEN, "consumerClusterUID": alice.uid})  # fmt: skip
    assert (bad.status_code, bad.json()["error"]) == (422, "Invalid")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "UnknownExport")
    assert (hidden.status_code, hidden.json()["error"]) == (404, "UnknownExport")
    assert hidden.json()["message"].replace(HIDDEN, "nothing") == unknown.json()["message"]
    assert [g["metadata"]["name"] for g in site.provider.list(GRANTS)[0]] == [alice.home]

    copy = synced(site, alice, "small")
    assert copy["spec"] == {"size": "small"}
    site.provider.patch(WIDGETS, ObjectKey(f"{alice.home}-default", "w1"),
                        {"status": {"phase": "Up"}}, "merge", subresource="status")  # fmt: skip
    eventually(lambda: (alice.consumer.get(WIDGETS, ObjectKey("default", "w1")).get("status")
                        or {}).get("phase") == "Up", TIMEOUT, "the status back on the consumer")  # fmt: skip


def test_a_second_consumer_is_isolated_and_no_konnector_leaves_its_boundary(site: Site) -> None:
    alice = site.consumer(ALICE, "alice")
    bob = site.consumer(BOB, "bob")
    assert bob.home != alice.home
    synced(site, alice, "small")
    copy = synced(site, bob, "large")
    assert copy["spec"] == {"size": "large"}
    assert (copy_of(site, alice, "w1") or {}).get("spec") == {"size": "small"}
    # The same name in the same consumer namespace: one copy in each home, nowhere else.
    assert sorted(w["metadata"]["namespace"] for w in site.provider.list(WIDGETS)[0]
                  if w["metadata"]["name"] == "w1") == sorted(
        [f"{alice.home}-default", f"{bob.home}-default"])  # fmt: skip
    eventually(lambda: (bob.consumer.get(CLUSTERBINDINGS, ObjectKey("", EXPORT)).get("status")
                        or {}).get("conditions"), TIMEOUT, "bob's binding status")  # fmt: skip
    provider = site.clusters["provider"]
    for b in (alice, bob):
        other = bob if b is alice else alice
        events = eventually(lambda b=b: many(audited(provider, b.sa_user)), TIMEOUT,
                            f"{b.sa_user}'s audited requests")  # fmt: skip
        assert [e["requestURI"] for e in events if outside(e, b)] == []
        assert [e["requestURI"] for e in events
                if e.get("responseStatus", {}).get("code") == 403] == []  # fmt: skip
        assert not [e for e in events
                    if e["objectRef"].get("namespace", "").startswith(other.home)]  # fmt: skip


def test_binding_again_reuses_the_same_grant_and_home(site: Site) -> None:
    alice = site.consumer(ALICE, "alice")
    before = {g["metadata"]["name"] for g in site.provider.list(GRANTS)[0]}
    with site.log_in(ALICE) as browser:
        again, second = site.bind(browser, alice.uid)
    assert second == 410
    (conn,) = [d for d in again if d["kind"] == "Connection"]
    assert conn["spec"]["tenant"]["namespace"] == alice.home
    assert {g["metadata"]["name"] for g in site.provider.list(GRANTS)[0]} == before
    (old,) = [d for d in alice.bundle if d["kind"] == "Secret"]
    (new,) = [d for d in again if d["kind"] == "Secret"]
    assert new["data"] == old["data"]  # the same ServiceAccount, the same token


REAP_TTL = 40.0
"""Over a running konnector's renewal period (it renews a Lease older than 20 s on its 30 s
pass), so the konnector that runs stays fresh while the stopped one goes stale."""


def heartbeat_age(site: Site, b: Bound) -> float | None:
    """Seconds since `b`'s konnector last renewed its Lease, as the reaper reads it (rule 1)."""
    grant = site.provider.get(GRANTS, ObjectKey("", b.home))
    beat = heartbeat(grant, site.provider.list(LEASES, b.home)[0])
    return None if beat is None else time.time() - beat


def stale_and_fresh(site: Site, stale: Bound, fresh: Bound) -> bool:
    """`stale`'s heartbeat is older than the TTL while `fresh`'s leaves a reaper pass 15 s."""
    old, new = heartbeat_age(site, stale), heartbeat_age(site, fresh)
    return old is not None and old > REAP_TTL and new is not None and new < REAP_TTL - 15


def reap_once(site: Site, mode: str) -> list[dict[str, Any]]:
    """The real reaper, one pass (`kube-bind-backend --reap-once`): its "stale Grant" lines."""
    done = subprocess.run(
        [str(GATEWAY), "--reap-once", f"--reap={mode}", f"--reap-ttl={REAP_TTL:g}s",
         "--provider-kubeconfig", str(site.clusters["provider"].kubeconfig)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    out = done.stderr.decode()
    assert done.returncode == 0, out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("msg") == "stale Grant"]


def credentials(site: Site, b: Bound) -> list[str]:
    """Which of the tenant's ServiceAccount and token Secret exist on the provider."""
    out = []
    for gvr, name in ((SERVICE_ACCOUNTS, SERVICE_ACCOUNT), (SECRETS, TOKEN_SECRET)):
        try:
            site.provider.get(gvr, ObjectKey(b.home, name))
            out.append(name)
        except ApiError as err:
            if err.code != 404:
                raise
    return out


def refused(b: Bound) -> dict[str, Any] | None:
    """`b`'s Connection reports that the provider refused its konnector (401)."""
    conn = b.consumer.get(CONNECTIONS, ObjectKey("", EXPORT))
    connected = conditions(conn).get("Connected") or {}
    if connected.get("status") == "False" and "401" in connected.get("message", ""):
        return connected
    return None


def test_the_reaper_dry_run_names_the_stopped_konnectors_grant_and_writes_nothing(
    site: Site,
) -> None:
    alice, bob = site.consumer(ALICE, "alice"), site.consumer(BOB, "bob")
    synced(site, alice, "small")
    synced(site, bob, "large")
    alice.konnector.kill()  # stops heart-beating; bob's konnector keeps renewing
    eventually(lambda: stale_and_fresh(site, alice, bob), REAP_TTL + TIMEOUT,
               "alice's Lease older than the TTL, bob's fresh")  # fmt: skip
    before = site.provider.get(GRANTS, ObjectKey("", alice.home))

    (line,) = reap_once(site, "dry-run")
    assert (line["grant"], line["namespace"], line["mode"]) == (alice.home, alice.home, "DryRun")
    assert line["heartbeatAge"] > REAP_TTL
    assert line["why"].startswith("no heartbeat for ")
    after = site.provider.get(GRANTS, ObjectKey("", alice.home))
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "Stale" not in conditions(after) and "Revoked" not in conditions(after)
    assert credentials(site, alice) == [SERVICE_ACCOUNT, TOKEN_SECRET]


def test_the_reaper_revokes_the_stale_grant_and_the_konnector_is_refused_after(
    site: Site,
) -> None:
    alice, bob = site.consumer(ALICE, "alice"), site.consumer(BOB, "bob")
    assert not alice.konnector.alive  # stopped by the dry run's test
    eventually(lambda: stale_and_fresh(site, alice, bob), REAP_TTL + TIMEOUT,
               "alice's Lease older than the TTL, bob's fresh")  # fmt: skip
    bob_before = site.provider.get(GRANTS, ObjectKey("", bob.home))

    (line,) = reap_once(site, "revoke")
    assert (line["grant"], line["mode"]) == (alice.home, "Revoke")
    conds = conditions(site.provider.get(GRANTS, ObjectKey("", alice.home)))
    assert (conds["Stale"]["status"], conds["Stale"]["reason"]) == ("True", "HeartbeatExpired")
    assert (conds["Revoked"]["status"], conds["Revoked"]["reason"]) == (
        "True", "HeartbeatExpired")  # fmt: skip
    # The issuer then cuts the credentials; the tenant's data stays.
    eventually(lambda: credentials(site, alice) == [], TIMEOUT, "alice's credentials deleted")
    assert copy_of(site, alice, "w1") is not None

    # The konnector, started again, is refused, and its Connection says so.
    alice.konnector.start()
    connected = eventually(lambda: refused(alice), TIMEOUT, "alice's Connection reports 401")
    assert "Unauthorized" in connected["message"]

    # Bob, heart-beating, is untouched: no condition of the reaper's, his credentials stay.
    bob_after = site.provider.get(GRANTS, ObjectKey("", bob.home))
    assert "Stale" not in conditions(bob_after) and "Revoked" not in conditions(bob_after)
    assert bob_after["status"].get("issuedAt") == bob_before["status"].get("issuedAt")
    assert credentials(site, bob) == [SERVICE_ACCOUNT, TOKEN_SECRET]
    assert refused(bob) is None


def test_deleting_the_grant_refuses_the_konnector_and_its_connection_says_so(
    site: Site,
) -> None:
    bob = site.consumer(BOB, "bob")
    synced(site, bob, "large")
    site.provider.delete(GRANTS, ObjectKey("", bob.home))
    connected = eventually(lambda: refused(bob), TIMEOUT, "bob's Connection reports the refusal")
    assert "Unauthorized" in connected["message"]
    eventually(lambda: copy_of(site, bob, "w1") is None, TIMEOUT, "bob's data collected")
    # Alice's boundary is untouched.
    assert copy_of(site, site.consumer(ALICE, "alice"), "w1") is not None
