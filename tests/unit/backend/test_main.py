"""`kube-bind-backend`'s flags: a bad one is exit 2 with a line saying what to fix; an
unreachable OIDC provider is exit 1 with a JSON log line. (Serving: tests/e2e/test_gateway.py.)"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kbshell.backend.main import main
from tests.harness.gateway import GATEWAY
from tests.harness.konnector import eventually


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """main() routes the root logger to stderr (here: the capture): undo it afterwards."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    yield
    root.handlers[:] = before[0]
    root.setLevel(before[1])


@pytest.fixture
def issuer_file(tmp_path: Path) -> Path:
    path = tmp_path / "issuer.yaml"
    path.write_text("catalog: []\nbundles: {}\n")
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def args(issuer_file: Path, **overrides: str) -> list[str]:
    flags = {
        "--external-url": "https://bind.example.com",
        "--oidc-issuer-url": f"http://127.0.0.1:{closed_port()}/dex",
        "--oidc-client-id": "kube-bind-gateway",
        "--issuer": f"static:{issuer_file}",
        **overrides,
    }
    return [part for flag, value in flags.items() for part in (flag, value)]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--external-url", "ftp://x", "--external-url 'ftp://x': give an http(s) URL"),
        ("--external-url", "https://x/?a=b", "give an http(s) URL without query"),
        ("--listen-address", "8080", "--listen-address: bind address must be HOST:PORT"),
        ("--listen-address", "0", "--listen-address: the gateway cannot be disabled"),
        ("--issuer", "kube:x", "--issuer 'kube:x': the issuers are provider and static:FILE"),
        ("--issuer", "static:/nonexistent.yaml", "--issuer: cannot read /nonexistent.yaml"),
        ("--session-store", "memcached://x", "--session-store 'memcached://x': memory or a redis"),
        ("--bind-rate-limit", "0", "--bind-rate-limit must be at least 1"),
        ("--bind-rate-window", "0", "--bind-rate-window must be positive"),
        ("--oidc-client-secret-file", "/nonexistent", "cannot read /nonexistent"),
        ("--reap-ttl", "soon", "--reap-ttl: not a duration: 'soon' (e.g. 90s, 30m, 1h)"),
        ("--reap-ttl", "0s", "--reap-ttl: not a positive duration: '0s'"),
        ("--allow-email", "alice", "--allow-email 'alice': give an address"),
        ("--allow-email-domain", "a@b.c", "--allow-email-domain 'a@b.c': give a domain"),
        ("--allow-group", " ", "--allow-group: give a value"),
        ("--pickup-ttl", "0", "--pickup-ttl must be more than 0"),
    ],
)
def test_a_bad_flag_is_exit_2_saying_what_to_fix(
    issuer_file: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert main(args(issuer_file, **{flag: value})) == 2
    err = capsys.readouterr().err
    assert err.startswith("kube-bind-backend: error: ")
    assert message in err


def test_a_reaper_without_a_provider_cluster_is_exit_2(
    issuer_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    missing = tmp_path / "missing"
    flags = {"--reap": "revoke", "--provider-kubeconfig": str(missing)}
    assert main(args(issuer_file, **flags)) == 2
    err = capsys.readouterr().err
    assert f"--provider-kubeconfig {missing}: cannot load the provider's credentials" in err


def test_an_empty_client_secret_file_is_refused(
    issuer_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "secret"
    empty.write_text("\n")
    assert main(args(issuer_file, **{"--oidc-client-secret-file": str(empty)})) == 2
    assert f"{empty} is empty" in capsys.readouterr().err


def test_an_unreachable_oidc_provider_is_exit_1_with_a_json_log_line(
    issuer_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(issuer_file)) == 1
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert (record["level"], record["msg"]) == ("error", "cannot use the OIDC provider")
    assert "cannot read the OIDC discovery document" in record["error"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--run", "gateway,reaper-x"], "--run: 'reaper-x' is not a component"),
        (["--run", "issuer", "--provider-kubeconfig", "/nonexistent/kubeconfig"],
         "--provider-kubeconfig /nonexistent/kubeconfig: cannot load the provider's credentials"),
        (["--run", "issuer"], "--provider-kubeconfig (in-cluster): cannot load"),
        (["--health-probe-bind-address", "8081"], "--health-probe-bind-address: bind address"),
        (["--metrics-bind-address", "x"], "--metrics-bind-address: bind address"),
    ],
)  # fmt: skip
def test_bad_component_flags_are_exit_2(
    issuer_file: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(issuer_file) + flags) == 2
    assert message in capsys.readouterr().err


def test_the_provider_issuer_needs_the_external_address_and_a_readable_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: p\n"
        "clusters: [{name: p, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: p, user: {token: t}}]\n"
        "contexts: [{name: p, context: {cluster: p, user: p}}]\n"
    )
    base = args(tmp_path, **{"--issuer": "provider", "--provider-kubeconfig": str(kubeconfig)})
    assert main(base) == 2
    assert "--issuer=provider needs --provider-server" in capsys.readouterr().err
    server = ["--provider-server", "https://provider.example.com:6443"]
    assert main(base + server + ["--provider-ca-file", str(tmp_path / "none.pem")]) == 2
    assert "--provider-ca-file: cannot read" in capsys.readouterr().err
    assert main(base + server + ["--bind-timeout", "0"]) == 2
    assert "--bind-timeout must be positive" in capsys.readouterr().err


def test_only_the_controllers_need_no_oidc_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """Without the gateway, the OIDC flags are not asked for: what fails is the provider."""
    assert main(["--run", "issuer", "--provider-kubeconfig", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "gateway needs" not in err
    assert "cannot load the provider's credentials" in err


def test_the_gateway_names_the_flags_it_misses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--issuer", "static:/x"]) == 2
    assert "the gateway needs --external-url, --oidc-issuer-url, --oidc-client-id" in (
        capsys.readouterr().err
    )


def test_the_controllers_alone_serve_probes_not_ready_until_synced_and_stop_on_sigterm(
    tmp_path: Path,
) -> None:
    """`--run=issuer` against a provider that does not answer: alive, not ready (its caches
    never sync), and SIGTERM stops it with status 0."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: p\n"
        f"clusters: [{{name: p, cluster: {{server: 'https://127.0.0.1:{closed_port()}'}}}}]\n"
        "users: [{name: p, user: {token: t}}]\n"
        "contexts: [{name: p, context: {cluster: p, user: p}}]\n"
    )
    port = closed_port()
    proc = subprocess.Popen(
        [str(GATEWAY), "--run", "issuer",
         "--provider-kubeconfig", str(kubeconfig),
         "--health-probe-bind-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        def status(path: str) -> int | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
            except httpx.TransportError:
                return None

        assert eventually(lambda: status("/healthz"), 30, "/healthz answers") == 200
        assert status("/readyz") == 503
        # The metrics on the probes' listener (no --metrics-bind-address).
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        assert scrape.status_code == 200 and "kubebind_backend_build_info{" in scrape.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert '"issuer controllers starting"' in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reap-once"], "--reap-once needs --reap dry-run, revoke or delete"),
        (["--reap-once", "--reap", "revoke", "--reap-ttl", "soon"], "--reap-ttl: not a duration"),
        (["--reap-once", "--reap", "dry-run", "--provider-kubeconfig", "/nonexistent/kc"],
         "--provider-kubeconfig /nonexistent/kc: cannot load the provider's credentials"),
    ],
)  # fmt: skip
def test_reap_once_asks_only_for_the_reapers_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No gateway flags: a single reaper pass needs a mode, a TTL and the provider."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err
