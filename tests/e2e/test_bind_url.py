"""`kubectl bind https://host/exports` on real servers: the real Dex, the real gateway
(`kube-bind-backend --issuer=provider` on a real provider cluster), a real consumer cluster and
the real konnector process, with `kubectl-bind` run as a user runs it.

The CLI logs in as Dex's public client `kube-bind-cli` (no redirect URIs listed: Dex accepts
any `http://localhost:PORT` then) with `--no-browser`; the test plays the browser: it opens the
printed URL, fills in Dex's password form (tests/harness/dex_login.py) and lands on the CLI's
loopback callback. What a user relies on:
 - the one-liner logs in, binds the only Export, applies the bundle, waits until Ready; a Widget
   syncs and `kubectl bind status` says Ready; the token is cached 0600 in a 0700 directory;
 - a second run reuses the cached token (no login): `kubectl bind EXPORT -o yaml` writes the
   pickup's bytes, `catalog` lists the Export, `--dry-run` binds nothing (the gateway issued
   no bundle for it);
 - an expired cached ID token is refreshed with Dex's refresh token, still without a login;
 - `-n NS` asks the gateway for a Binding; a namespace that does not exist is refused by the
   consumer's preflight before anything is minted;
 - a bundle whose provider credentials hold no RBAC (a static-issuer gateway's) is refused by
   the provider's preflight (SelfSubjectAccessReviews), naming what is denied; nothing applied;
 - bad input is exit 1 with the problem and the fix, and nothing cached or applied: an
   unreachable URL, a URL that is not a kube-bind gateway, a login cancelled at the identity
   provider (error=access_denied at the callback), one that times out, a callback port in use.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import secrets
import socket
import stat
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import yaml

from kbcore.api.resources import (
    BINDINGS,
    CLUSTERBINDINGS,
    CONNECTIONS,
    CRDS,
    EXPORTS,
    NAMESPACES,
    SECRETS,
)
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbcore.views import bundle as kb
from kbshell.bundle_yaml import bundle_yaml
from kbshell.client import KubeClient
from tests.conftest import CONFIDENTIAL_CLIENT_ID, PUBLIC_CLIENT_ID
from tests.harness.clusters import Clusters, build_binaries, free_ports, http_ok, start_clusters
from tests.harness.dex_login import new_browser, submit_password
from tests.harness.gateway import GatewayServer, callback_url
from tests.harness.konnector import REPO, WIDGETS, Konnector, eventually, wait_established
from tests.harness.oidc import ALICE, PASSWORD, Client, Dex, start_dex

pytestmark = [pytest.mark.realcluster, pytest.mark.realservice]

KUBECTL_BIND = Path(sys.executable).parent / "kubectl-bind"
EXPORT = "widgets"
TIMEOUT = 90.0


def apply(client: KubeClient, gvr: Any, obj: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply, again while a CRD just established answers 429 (storage starting)."""
    meta = obj["metadata"]

    def once() -> dict[str, Any] | None:
        try:
            return client.patch(
                gvr, ObjectKey(meta.get("namespace", ""), meta["name"]), obj, "apply", "e2e", True
            )
        except ApiError as err:
            if err.code == 429:
                return None
            raise

    return eventually(once, TIMEOUT, f"{meta['name']} applied")


@attrs.define
class Site:
    clusters: Clusters
    dex: Dex
    backend: GatewayServer
    provider: KubeClient
    consumer: KubeClient
    konnector: Konnector
    tmp: Path

    @property
    def exports_url(self) -> str:
        return self.backend.url + "/exports"

    def env(self, config: Path) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "BROWSER")}
        return {**base, "XDG_CONFIG_HOME": str(config),
                "KUBECONFIG": str(self.clusters["consumer"].kubeconfig)}  # fmt: skip


class Run:
    """`kubectl-bind ARGV` running: its stderr lines as they come, to find the login URL."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(KUBECTL_BIND), *argv], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)

    def login_url(self) -> str:
        def url() -> str | None:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.err)
                return None
            return line.strip() if line.startswith("http") else None

        return eventually(url, 30, "the login URL on stderr")

    def finish(self, timeout: float = 180) -> tuple[int, str, str]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()  # until the process closes it
        self.proc.wait(timeout)
        self.reader.join(timeout)  # every stderr line read
        return self.proc.returncode, out, "".join(self.err)


def run(site: Site, config: Path, *argv: str) -> tuple[int, str, str]:
    done = subprocess.run([str(KUBECTL_BIND), *argv], env=site.env(config), capture_output=True,
                          text=True, timeout=180, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def log_in_at_dex(url: str) -> httpx.Response:
    """The browser's part: Dex's form, then Dex's redirect to the CLI's loopback callback."""
    with new_browser() as browser:
        page = browser.get(url)
        assert page.url.path == "/dex/auth/local/login", page.text
        return submit_password(browser, page, ALICE.email, PASSWORD)


@pytest.fixture(scope="module")
def site(dex_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("bind-url")
    bin_dir = build_binaries()
    clusters = start_clusters(["provider", "consumer"], bin_dir=bin_dir)
    provider = KubeClient.from_kubeconfig_file(clusters["provider"].kubeconfig)
    consumer = KubeClient.from_kubeconfig_file(clusters["consumer"].kubeconfig)
    backend: GatewayServer | None = None
    konnector: Konnector | None = None
    try:
        widgets_crd = yaml.safe_load((REPO / "examples/scenarios/_common/widgets-crd.yaml")
                                     .read_text())  # fmt: skip
        service = [yaml.safe_load(p.read_text())
                   for p in sorted((REPO / "crds/service").glob("*.yaml"))]  # fmt: skip
        for crd in [widgets_crd, *service]:
            apply(provider, CRDS, crd)
        wait_established(provider, [c["metadata"]["name"] for c in [widgets_crd, *service]])
        apply(provider, EXPORTS, {
            "apiVersion": "catalog.kube-bind.io/v1alpha1", "kind": "Export",
            "metadata": {"name": EXPORT},
            "spec": {"title": "Widgets", "apis": [{"group": "example.org", "resource": "widgets"}]},
        })  # fmt: skip
        core = [yaml.safe_load(p.read_text()) for p in sorted((REPO / "crds").glob("*.yaml"))]
        for crd in core:  # the konnector's Helm chart's part
            apply(consumer, CRDS, crd)
        wait_established(consumer, [c["metadata"]["name"] for c in core])
        apply(consumer, NAMESPACES,
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bind"}})  # fmt: skip
        konnector = Konnector(clusters["consumer"].kubeconfig, tmp / "konnector.log").start()
        port, probe_port = free_ports(2)
        secret = secrets.token_urlsafe(24)
        # The CLI's client lists no redirect URI: Dex then takes any http://localhost:PORT.
        clients = [Client(CONFIDENTIAL_CLIENT_ID, (callback_url(port),), secret),
                   Client(PUBLIC_CLIENT_ID, ())]  # fmt: skip
        with start_dex(tmp / "dex", clients, bin_dir=dex_bin) as dex:
            backend = GatewayServer(
                tmp / "backend", port, oidc_issuer=dex.issuer, client_id=CONFIDENTIAL_CLIENT_ID,
                client_secret=secret, issuer_file=None, session_store="memory",
                issuer="provider", cli_client_id=PUBLIC_CLIENT_ID,
                extra_args=["--provider-kubeconfig", str(clusters["provider"].kubeconfig),
                            "--provider-server", clusters["provider"].url,
                            "--provider-ca-file", str(clusters["provider"].ca.cert),
                            "--health-probe-bind-address", f"127.0.0.1:{probe_port}"],
            )  # fmt: skip
            backend.start()
            eventually(lambda: http_ok(f"http://127.0.0.1:{probe_port}/readyz"), TIMEOUT,
                       "the backend's controllers synced")  # fmt: skip
            yield Site(clusters, dex, backend, provider, consumer, konnector, tmp)
    finally:
        if konnector is not None:
            konnector.stop()
        if backend is not None:
            backend.stop()
        provider.close()
        consumer.close()
        clusters.stop()


@pytest.fixture(scope="module")
def alice_config(site: Site) -> Path:
    """Alice's config dir ($XDG_CONFIG_HOME), shared by the tests that reuse her login."""
    return site.tmp / "alice-config"


def create_widget(site: Site) -> bool:
    try:
        site.consumer.create(WIDGETS, {"apiVersion": "example.org/v1", "kind": "Widget",
                                       "metadata": {"namespace": "default", "name": "w1"},
                                       "spec": {"size": "small"}})  # fmt: skip
    except ApiError as err:
        if err.code == 404:
            return False  # the konnector has not installed the CRD yet
        raise
    return True


def copies(site: Site) -> list[dict[str, Any]] | None:
    try:
        listed = site.provider.list(WIDGETS)[0]
    except ApiError as err:
        if err.code == 429:
            return None  # the provider's Widget storage is still starting
        raise
    found = [w for w in listed if w["metadata"]["name"] == "w1"]
    return found or None


def test_the_one_liner_logs_in_binds_and_waits_until_ready(site: Site, alice_config: Path) -> None:
    cli = Run([site.exports_url, "--no-browser"], site.env(alice_config))
    landing = log_in_at_dex(cli.login_url())
    assert landing.status_code == 200 and "Logged in" in landing.text
    assert landing.url.host == "localhost" and landing.url.path == "/callback"
    code, out, err = cli.finish()
    assert code == 0, out + err
    for kind in ("Secret kube-bind/", "Connection ", "ClusterBinding "):
        assert f"{kind}" in out and "applied" in out, out
    assert "Ready: the provider's APIs are bound" in out, out
    assert "preflight" not in out
    # The token is cached for the user alone.
    tokens = alice_config / "kube-bind" / "tokens"
    (cached,) = tokens.iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE((alice_config / "kube-bind").stat().st_mode) == 0o700
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o700
    # Nothing secret on the terminal: no code, no token.
    assert "code=" not in err
    assert "idToken" not in out + err
    site.konnector.wait_ready(TIMEOUT)
    eventually(lambda: create_widget(site), TIMEOUT, "Widgets served on the consumer")
    (copy,) = eventually(lambda: copies(site), TIMEOUT, "the Widget's copy on the provider")
    assert copy["metadata"]["namespace"].endswith("-default")
    code, out, err = run(site, alice_config, "status")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("Connection", EXPORT, "True"), ("ClusterBinding", EXPORT, "True")]  # fmt: skip


def issued(site: Site) -> int:
    return site.backend.log_text().count('"bundle issued"')


def test_a_second_run_reuses_the_cached_token(site: Site, alice_config: Path) -> None:
    if not (alice_config / "kube-bind" / "last.json").exists():
        test_the_one_liner_logs_in_binds_and_waits_until_ready(site, alice_config)
    before = issued(site)
    code, out, err = run(site, alice_config, "catalog")
    assert code == 0, err
    assert "Open this URL" not in err
    assert [line.split()[:2] for line in out.splitlines()] == [["KIND", "NAME"], ["Export", EXPORT]]

    code, out, err = run(site, alice_config, EXPORT, "--dry-run")
    assert code == 0, err
    assert out.startswith(f"dry run: would bind Export {EXPORT} ")
    assert "Open this URL" not in err
    assert issued(site) == before  # a dry run binds nothing

    code, out, err = run(site, alice_config, EXPORT, "-o", "yaml")
    assert code == 0, err
    assert "Open this URL" not in err
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [d["kind"] for d in docs] == ["Secret", "Connection", "ClusterBinding"]
    assert out == bundle_yaml(docs)  # the gateway's serialization, byte for byte
    assert issued(site) == before + 1


def test_bad_input_is_a_clear_error_and_nothing_is_cached(site: Site) -> None:
    config = site.tmp / "bad-config"
    (closed,) = free_ports(1)
    code, _, err = run(site, config, f"http://127.0.0.1:{closed}/exports", "--no-browser")
    assert code == 1 and "cannot reach the provider" in err and "fix:" in err, err
    code, _, err = run(site, config, site.dex.url + "/exports", "--no-browser")
    assert code == 1 and "is not a kube-bind provider" in err, err

    # Cancelled: the identity provider sends the browser back with error=access_denied.
    cli = Run([site.exports_url, "--no-browser"], site.env(config))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(cli.login_url()).query))
    back = httpx.get(query["redirect_uri"], params={"error": "access_denied",
                                                   "state": query["state"]}, trust_env=False)  # fmt: skip
    assert "Login failed" in back.text
    code, _, err = cli.finish()
    assert code == 1 and "access_denied" in err and "fix:" in err, err

    code, _, err = run(site, config, site.exports_url, "--no-browser", "--login-timeout", "1")
    assert code == 1 and "no login within 1s" in err, err

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(site, config, site.exports_url, "--no-browser",
                           "--callback-port", str(port))  # fmt: skip
    assert code == 1 and f"127.0.0.1:{port}" in err and "--callback-port" in err, err
    assert not (config / "kube-bind" / "tokens").exists() or not any(
        (config / "kube-bind" / "tokens").iterdir())  # fmt: skip


def test_a_namespaced_binding_is_asked_of_the_gateway_and_checked_first(
    site: Site, alice_config: Path
) -> None:
    if not (alice_config / "kube-bind" / "last.json").exists():
        test_the_one_liner_logs_in_binds_and_waits_until_ready(site, alice_config)
    before = issued(site)
    # Its namespace does not exist: the consumer's preflight refuses before anything is minted.
    code, out, err = run(site, alice_config, EXPORT, "-n", "nowhere")
    assert code == 1, out + err
    assert "preflight failed, nothing was applied" in err and "nowhere does not exist" in err
    assert "kubectl create namespace nowhere" in err
    assert issued(site) == before
    assert site.consumer.list(BINDINGS, "nowhere")[0] == []
    # The provider's issuer writes the Binding asked for.
    code, out, err = run(site, alice_config, EXPORT, "-n", "default", "-o", "yaml")
    assert code == 0, err
    binding = [d for d in yaml.safe_load_all(out) if d][-1]
    assert (binding["kind"], binding["metadata"]["namespace"]) == ("Binding", "default")
    assert issued(site) == before + 1


def test_an_expired_token_is_refreshed_without_a_login(site: Site, alice_config: Path) -> None:
    if not (alice_config / "kube-bind" / "last.json").exists():
        test_the_one_liner_logs_in_binds_and_waits_until_ready(site, alice_config)
    (path,) = (alice_config / "kube-bind" / "tokens").iterdir()
    entry = json.loads(path.read_text())
    assert entry["refreshToken"]  # Dex gives one for offline_access
    # An ID token past its expiry (the CLI reads only its exp; the gateway would refuse it).
    expired = "e30." + base64.urlsafe_b64encode(b'{"exp": 1}').rstrip(b"=").decode() + ".x"
    path.write_text(json.dumps({**entry, "idToken": expired}))
    code, out, err = run(site, alice_config, "catalog")
    assert code == 0, err
    assert "Open this URL" not in err and EXPORT in out
    refreshed = json.loads(path.read_text())
    assert refreshed["idToken"] not in (expired, entry["idToken"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_credentials_the_provider_denies_are_named_and_nothing_is_applied(site: Site) -> None:
    """A gateway (the static issuer) handing out a bundle whose provider user holds no RBAC:
    the provider's preflight names what is denied, and the consumer gets nothing."""
    user_kubeconfig = site.clusters["provider"].mint_kubeconfig("nobody")
    single = kb.single_context(yaml.safe_load(user_kubeconfig.read_text()))
    assert isinstance(single, dict)
    bundle = kb.bundle(connection="denied", kubeconfig_text=yaml.safe_dump(single),
                       apis=["widgets.example.org"], konnector_namespace="kube-bind",
                       binding=kb.BindingRef("denied", ""))  # fmt: skip
    issuer_file = site.tmp / "static-issuer.yaml"
    issuer_file.write_text(yaml.safe_dump({
        "catalog": [{"kind": "Export", "name": "denied", "title": "Denied",
                     "apis": ["widgets.example.org"]}],
        "bundles": {"denied": bundle},
    }))  # fmt: skip
    (port,) = free_ports(1)
    static = GatewayServer(site.tmp / "static", port, oidc_issuer=site.dex.issuer,
                           client_id=CONFIDENTIAL_CLIENT_ID, client_secret=None,
                           issuer_file=issuer_file, session_store="memory",
                           cli_client_id=PUBLIC_CLIENT_ID)  # fmt: skip
    static.start()
    try:
        config = site.tmp / "static-config"
        cli = Run([static.url + "/exports", "--no-browser"], site.env(config))
        log_in_at_dex(cli.login_url())
        code, out, err = cli.finish()
    finally:
        static.stop()
    assert code == 1, out + err
    assert "preflight failed, nothing was applied" in err
    assert "the provider denies the bundle's credentials what the konnector needs" in err
    assert "list customresourcedefinitions.apiextensions.k8s.io" in err
    assert "applied" not in out
    for gvr, name in ((CONNECTIONS, "denied"), (CLUSTERBINDINGS, "denied")):
        with pytest.raises(ApiError) as gone:
            site.consumer.get(gvr, ObjectKey("", name))
        assert gone.value.code == 404
    with pytest.raises(ApiError):
        site.consumer.get(SECRETS, ObjectKey("kube-bind", "denied-kubeconfig"))


def test_login_logs_in_anew_and_names_the_user(site: Site) -> None:
    config = site.tmp / "login-config"
    cli = Run(["login", site.exports_url, "--no-browser"], site.env(config))
    log_in_at_dex(cli.login_url())
    code, out, err = cli.finish()
    assert code == 0, err
    assert out == f"logged in to Widgets Inc. ({site.backend.url}) as {ALICE.email}\n"
    last = json.loads((config / "kube-bind" / "last.json").read_text())
    assert last == {"provider": site.backend.url}


def test_a_token_the_gateway_refuses_means_one_new_login(site: Site) -> None:
    config = site.tmp / "refused-config"
    cli = Run(["login", site.exports_url, "--no-browser"], site.env(config))
    log_in_at_dex(cli.login_url())
    assert cli.finish()[0] == 0
    (path,) = (config / "kube-bind" / "tokens").iterdir()
    entry = json.loads(path.read_text())
    # Unexpired to the CLI, but no token the gateway accepts (its signature is not Dex's).
    forged = "e30." + base64.urlsafe_b64encode(b'{"exp": 4102444800}').rstrip(b"=").decode() + ".x"
    path.write_text(json.dumps({k: v for k, v in {**entry, "idToken": forged}.items()
                                if k != "refreshToken"}))  # fmt: skip
    cli = Run(["catalog", "--no-browser"], site.env(config))
    log_in_at_dex(cli.login_url())  # the gateway said 401: the CLI logged in again
    code, out, err = cli.finish()
    assert code == 0, err
    assert EXPORT in out
    assert json.loads(path.read_text())["idToken"] != forged
