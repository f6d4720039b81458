"""The `kubectl bind` command line (kbshell/bind/) where no cluster is needed: flags, exit
statuses, and errors that name the problem and the fix."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kbcore.actions import CONSUMER
from kbcore.control.kubeconfig import SecretProblem, sanitize
from kbcore.reads import Get, Read
from kbcore.views import bundle as kb
from kbcore.views import rbac
from kbshell import bind
from tests.unit.shell.kubeconfigs import kubeconfig, place

KUBECONFIG = kubeconfig("p")


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return bind.main(list(argv), out), out.getvalue()


def bind_api(provider_kubeconfig: Path) -> tuple[int, str]:
    """`kubectl bind --api a.b -o yaml` with this provider kubeconfig."""
    return cli("--provider-kubeconfig", str(provider_kubeconfig), "--api", "a.b", "-o", "yaml")


def bind_fails(provider_kubeconfig: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`bind_api`, which must exit 1 (refused or unreachable); what it says on stderr."""
    code, _ = bind_api(provider_kubeconfig)
    assert code == 1
    return capsys.readouterr().err


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


GOOD = yaml.safe_dump(KUBECONFIG)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing", None, "{path}: cannot read it: No such file or directory"),
        ("directory", "DIR", "{path}: is a directory, not a kubeconfig file"),
        ("binary", b"\x7fELF\x02\x01\x01\x00\x00\x00", "{path}: is a binary file"),
        (
            "latin-1",
            b"apiVersion: v1\nkind: Config\nclusters: [caf\xe9]\n",
            "{path}:3:15: is not UTF-8 text (byte 0xe9)",
        ),
        (
            "malformed",
            "apiVersion: v1\nclusters: [a, b\nusers: []\n",
            "{path}:3:6: is not valid YAML: while parsing a flow sequence, expected ',' or ']', but got ':'",
        ),
        (
            "mapping-error",
            "apiVersion: v1\nkind: Config: x\n",
            "{path}:2:13: is not valid YAML: mapping values are not allowed here",
        ),
        (
            "control-char",
            "apiVersion: v1\nkind: \x07Config\n",
            "{path}:2:7: is not valid YAML: character U+0007 is not allowed",
        ),
        ("two-documents", GOOD + "---\n" + GOOD, "is not valid YAML: expected a single document"),
        (
            "list",
            "- apiVersion: v1\n- kind: Config\n",
            "{path}: is not a kubeconfig: its top level is a list, not a mapping",
        ),
        ("scalar", "just some text\n", "its top level is a string, not a mapping"),
        ("empty", "", "{path}: is empty (no YAML document in it)"),
        ("comments-only", "# nothing here\n\n", "{path}: is empty"),
        ("deep", "a: " + "[" * 5000 + "]" * 5000 + "\n", "{path}: is nested too deeply"),
    ],
)
def test_a_provider_kubeconfig_that_is_not_a_kubeconfig_file_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes | None,
    says: str,
) -> None:
    path = place(tmp_path / name, content)
    code, out = bind_api(path)
    err = capsys.readouterr().err
    assert (code, out) == (2, "")
    assert err.startswith("kubectl bind: error: cannot use the provider kubeconfig "), err
    assert says.format(path=path) in err, err
    assert "fix: pass the kubeconfig file the provider handed out" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda d: d["users"].append({"name": "u", "user": {"token": "other"}}),
            "kubeconfig has two users named 'u'",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update(server="http://127.0.0.1:1"),
            "plain http:// and the user has a bearer token",
        ),
        (
            lambda d: d["clusters"][0]["cluster"].update({"insecure-skip-tls-verify": True}),
            "insecure-skip-tls-verify: true with a bearer token",
        ),
    ],
    ids=["duplicate-user", "plain-http-token", "unverified-token"],
)
def test_kubectl_bind_refuses_what_the_konnector_refuses_with_its_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, says: str
) -> None:
    doc = yaml.safe_load(GOOD)
    change(doc)
    reason = sanitize(doc)
    assert isinstance(reason, SecretProblem) and says in reason.message
    path = place(tmp_path / "k", yaml.safe_dump(doc))
    err = bind_fails(path, capsys)
    assert f"the konnector would refuse the provider kubeconfig {path}: {reason.message}" in err


def test_insecure_but_accepted_transport_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load(GOOD)
    doc["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:1"
    doc["users"][0]["user"] = {}
    path = place(tmp_path / "k", yaml.safe_dump(doc))
    bind_api(path)
    err = capsys.readouterr().err
    assert "kubectl bind: warning: the provider server http://127.0.0.1:1 is plain http://" in err


class FakeConsumer:
    """Answers the identity reads as a cluster whose kube-system has `uid`."""

    def __init__(self, uid: str) -> None:
        self.uid = uid

    def read(self, r: Read) -> Any:
        assert isinstance(r, Get) and r.cluster == CONSUMER, r
        if r.key.name == "kube-system":
            return {"metadata": {"name": "kube-system", "uid": self.uid}}
        return None  # no kcp LogicalCluster


def test_a_provider_kubeconfig_reaching_this_cluster_is_refused_before_applying() -> None:
    offer = kb.Offer("uid-1", "CRD", ())
    with pytest.raises(bind.Failure) as failure:
        bind._refuse_self_binding(FakeConsumer("uid-1"), offer, "p.kubeconfig")  # type: ignore[arg-type]
    assert failure.value.code == 1
    assert failure.value.problem == (
        "the provider kubeconfig p.kubeconfig points at this cluster itself (cluster uid-1): "
        "a cluster is never bound to itself"
    )
    bind._refuse_self_binding(FakeConsumer("uid-2"), offer, "p.kubeconfig")  # type: ignore[arg-type]


def test_a_refused_kubeconfig_shows_the_konnectors_reason_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {**KUBECONFIG, "users": [{"name": "u", "user": {"tokenFile": "/etc/token"}}]}
    path = place(tmp_path / "k", yaml.safe_dump(doc))
    reason = sanitize(doc)
    assert isinstance(reason, SecretProblem)
    err = bind_fails(path, capsys)
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
    path = place(tmp_path / "k", yaml.safe_dump(doc))
    err = bind_fails(path, capsys)
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
    path = place(tmp_path / "k", yaml.safe_dump(KUBECONFIG))
    code, _ = cli("status", "--kubeconfig", str(path), "--context", "nope")
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot load the consumer kubeconfig" in err and "kubectl config get-contexts" in err


# --- listing what the provider exports ----------------------------------------------------------

WIDGETS = {
    "name": "widgets.example.org",
    "group": "example.org",
    "resource": "widgets",
    "scope": "Namespaced",
    "versions": ["v1", "v2"],
}
GADGETS = {**WIDGETS, "name": "gadgets.example.org", "resource": "gadgets", "scope": "Cluster"}


@pytest.fixture
def provider_offering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A provider kubeconfig file, and a provider that exports the APIs given (its answer to the
    identity and discovery reads, as `kbcore.views.bundle.provider_offer` would return it)."""
    path = tmp_path / "provider.kubeconfig"
    path.write_text(GOOD)

    def offering(*apis: dict[str, Any]) -> str:
        offer = kb.Offer("provider-uid", "CRD", tuple(apis))
        monkeypatch.setattr(bind, "_offer", lambda client, p: offer)
        return str(path)

    return offering


def test_list_shows_what_the_provider_exports_and_exits_0(
    provider_offering: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = provider_offering(GADGETS, WIDGETS)
    code, out = cli("--provider-kubeconfig", path, "--list")
    assert code == 0, capsys.readouterr().err
    assert out.splitlines() == [
        "the provider at https://127.0.0.1:1 exports (schema source CRD):",
        "  NAME                 SCOPE       VERSIONS",
        "  gadgets.example.org  Cluster     v1,v2",
        "  widgets.example.org  Namespaced  v1,v2",
        "bind with: kubectl bind --provider-kubeconfig FILE --api NAME (or --all)",
    ]


def test_list_of_a_provider_exporting_nothing_says_how_to_export(
    provider_offering: Any,
) -> None:
    code, out = cli("--provider-kubeconfig", provider_offering(), "--list")
    assert code == 0
    assert "exports no APIs" in out
    assert "kubectl label crd <name> core.kube-bind.io/exported=true" in out


def test_binding_without_a_choice_still_exits_2_and_points_at_list(
    provider_offering: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli("--provider-kubeconfig", provider_offering(WIDGETS), "-o", "yaml")
    err = capsys.readouterr().err
    assert (code, out) == (2, "")
    assert "no API chosen: pass --api NAME (one of: widgets.example.org) or --all" in err
    assert "fix: `kubectl bind --provider-kubeconfig FILE --list` lists them" in err


@pytest.mark.parametrize(
    "extra",
    [["--api", "widgets.example.org"], ["--all"], ["-o", "yaml"], ["--dry-run"], ["-n", "x"]],
)
def test_list_with_a_bind_option_is_a_usage_error(extra: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("--provider-kubeconfig", "f", "--list", *extra)
    assert exit_.value.code == 2


def test_a_reader_that_stops_early_ends_kubectl_bind_quietly() -> None:
    """`kubectl bind rbac ... | head -0`: no traceback, the status of a command killed by
    SIGPIPE (the console script is `bind.cli`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kbshell.bind", "rbac", "--api", "widgets.example.org"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr.decode()
    assert proc.stderr == b""
