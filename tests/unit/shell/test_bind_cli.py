"""The `kubectl bind` command line (kbshell/bind.py) where no cluster is needed: flags, exit
statuses, and errors that name the problem and the fix."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore import rbac
from kbcore.kubeconfig import SecretProblem, sanitize
from kbshell import bind

KUBECONFIG: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "p",
    "clusters": [{"name": "p", "cluster": {"server": "https://127.0.0.1:1"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
    "contexts": [{"name": "p", "context": {"cluster": "p", "user": "u"}}],
}


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return bind.main(list(argv), out), out.getvalue()


def test_rbac_prints_the_kernels_objects_with_what_each_rule_is_for() -> None:
    code, text = cli("rbac", "--api", "widgets.example.org", "--user", "alice", "--name", "kb")
    assert code == 0
    rules = rbac.provider_rules(["widgets.example.org"])
    assert [d for d in yaml.safe_load_all(text) if d] == rbac.rbac_objects(
        rules, name="kb", subject=rbac.Subject("User", "alice")
    )
    assert "# get,create,update,delete leases.coordination.k8s.io: Connection: heartbeat" in text


def test_rbac_for_a_binding_and_related_resources() -> None:
    code, text = cli(
        "rbac", "--api", "widgets.example.org", "-n", "team-x",
        "--related", "secrets:FromConsumer", "--service-account", "sys/k",
    )  # fmt: skip
    assert code == 0
    docs = [d for d in yaml.safe_load_all(text) if d]
    roles = {(d["kind"], d["metadata"].get("namespace", "")) for d in docs}
    assert ("Role", "team-x") in roles
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "k", "namespace": "sys"}]


@pytest.mark.parametrize(
    "argv",
    [
        ["rbac", "--api", "widgets"],  # not <plural>.<group>
        ["rbac", "--api", "w.example.org", "--related", "pods:FromConsumer"],
        ["rbac", "--api", "w.example.org", "--service-account", "no-slash"],
    ],
)
def test_bad_rbac_flags_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = cli(*argv)
    assert code == 2
    assert "kubectl bind: error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--api", "a.b"],  # no --provider-kubeconfig
        ["--provider-kubeconfig", "f", "--api", "a.b", "--all"],
        ["--api", "a.b", "status"],  # a bind flag before another command
        ["-n", "x", "plan"],
        ["rbac"],  # --api is required
        ["unbind"],  # NAME is required
        ["plan", "-o", "yaml"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli(*argv)
    assert exit_.value.code == 2


def test_a_missing_provider_kubeconfig_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli("--provider-kubeconfig", str(tmp_path / "nope"), "--api", "a.b")
    err = capsys.readouterr().err
    assert code == 1 and out == ""
    assert f"cannot read the provider kubeconfig {tmp_path / 'nope'}" in err and "fix:" in err


def test_a_refused_kubeconfig_shows_the_konnectors_reason_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {**KUBECONFIG, "users": [{"name": "u", "user": {"tokenFile": "/etc/token"}}]}
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump(doc))
    reason = sanitize(doc)
    assert isinstance(reason, SecretProblem)
    code, _ = cli("--provider-kubeconfig", str(path), "--api", "a.b", "-o", "yaml")
    err = capsys.readouterr().err
    assert code == 1
    assert f"the konnector would refuse the provider kubeconfig {path}: {reason.message}" in err
    assert "fix: the konnector accepts inline credentials only" in err


def test_a_provider_nobody_listens_on_is_unreachable_with_its_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    doc = {
        **KUBECONFIG,
        "clusters": [{"name": "p", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
    }
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump(doc))
    code, _ = cli("--provider-kubeconfig", str(path), "--api", "a.b", "-o", "yaml")
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot reach the provider at https://127.0.0.1:{port}: connection refused" in err
    assert "fix: check that the provider's API server is up" in err


def test_without_a_consumer_kubeconfig_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    code, _ = cli("status")
    err = capsys.readouterr().err
    assert code == 1
    assert (
        "no consumer kubeconfig" in err and "fix: pass --kubeconfig FILE, or set KUBECONFIG" in err
    )


def test_a_bad_consumer_context_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "k"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    code, _ = cli("status", "--kubeconfig", str(path), "--context", "nope")
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot load the consumer kubeconfig" in err and "kubectl config get-contexts" in err
