"""The `konnector` command line (kbshell/main.py) on bad input, where no cluster is needed:
the exit statuses docs/user-guide.md documents, and messages that name the flag or file."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kbshell import main as konnector
from tests.unit.shell.kubeconfigs import kubeconfig, place

KUBECONFIG = kubeconfig("c")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """main() routes the root logger to stderr; put it back for the other tests."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    yield
    root.handlers[:] = before[0]
    root.setLevel(before[1])


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    return str(place(tmp_path / "consumer.kubeconfig", yaml.safe_dump(KUBECONFIG)))


@pytest.mark.parametrize("flag", ["--metrics-bind-address", "--health-probe-bind-address"])
@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("notanaddr", "bind address must be HOST:PORT, :PORT or 0, got 'notanaddr'"),
        (":http", "bind address must be HOST:PORT, :PORT or 0"),
        ("127.0.0.1:70000", "port out of range in bind address '127.0.0.1:70000'"),
        ("::1:8081", "IPv6 host must be in brackets"),
    ],
)
def test_a_malformed_bind_address_is_a_usage_error_naming_the_flag(
    flag: str, address: str, says: str, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        konnector.main(["--kubeconfig", kubeconfig, flag, address])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"konnector: error: argument {flag}: {says}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--metrics-bind-address", "--health-probe-bind-address"])
def test_an_address_in_use_is_a_clear_error_naming_the_flag(
    flag: str, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = (
            "--health-probe-bind-address"
            if flag == "--metrics-bind-address"
            else ("--metrics-bind-address")
        )
        code = konnector.main(
            ["--kubeconfig", kubeconfig, "--log-format", "text", flag, f"127.0.0.1:{port}",
             other, "0"]
        )  # fmt: skip
    err = capsys.readouterr().err
    serves = "metrics" if flag == "--metrics-bind-address" else "probes"
    assert code == 1
    (line,) = [line for line in err.splitlines() if '"cannot open a listener"' in line]
    assert f'error="cannot serve {serves} on 127.0.0.1:{port}: Address already in use"' in line
    assert f"flag={flag}" in line
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("missing", None, "{path}: cannot read it: No such file or directory"),
        ("directory", "DIR", "{path}: is a directory, not a kubeconfig file"),
        ("binary", b"\x00\x01\x02", "{path}: is a binary file"),
        ("latin-1", b"kind: Config\nname: \xe9\n", "{path}:2:7: is not UTF-8 text (byte 0xe9)"),
        ("malformed", "clusters: [\n", "{path}:2:1: is not valid YAML"),
        ("list", "- a\n", "{path}: is not a kubeconfig: its top level is a list"),
        ("empty", "", "{path}: is empty"),
    ],
)
def test_a_consumer_kubeconfig_that_is_not_a_kubeconfig_file_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes | None,
    says: str,
) -> None:
    path = place(tmp_path / name, content)
    code = konnector.main(["--kubeconfig", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"konnector: error: --kubeconfig: {says.format(path=path)}"), err
    assert "Traceback" not in err


def test_a_bad_kubeconfig_from_the_environment_names_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone"))
    assert konnector.main([]) == 2
    assert f"konnector: error: $KUBECONFIG: {tmp_path / 'gone'}: cannot read it" in (
        capsys.readouterr().err
    )


def test_a_kubeconfig_the_client_cannot_use_is_a_usage_error(
    kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = konnector.main(["--kubeconfig", kubeconfig, "--context", "nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"konnector: error: cannot use the consumer kubeconfig {kubeconfig}: " in err
    assert "nope" in err and "Traceback" not in err


def test_no_consumer_cluster_at_all_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert konnector.main([]) == 2
    assert "pass --kubeconfig, set KUBECONFIG, or run in a Pod" in capsys.readouterr().err
