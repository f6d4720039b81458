"""The one-time builds of the test binaries say what they do (hack/k8s/build.sh for the API
servers and kubectl, hack/helm/build.sh for helm, hack/dex/build.sh for Dex): what is built,
where, that it is a one-time cost, one line per stage and per binary, and a heartbeat while the
compiler is silent, since a cold build is minutes of `go build` that print nothing and look like
a hang.

The scripts run against a stand-in `go` on PATH that records its calls and writes tiny
executables, so nothing is compiled here; its first build waits until the heartbeat has spoken
(an event, not a sleep), so the heartbeat is seen however fast or slow the machine is.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_GO = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_GO_CALLS"
case "$1" in
  version) echo "go version go1.26.8 linux/amd64" ;;
  env) echo "/fake/$2" ;;
  mod) ;;
  build)
    out=""
    while [[ $# -gt 0 ]]; do [[ $1 == -o ]] && { out=$2; shift; }; shift; done
    # The first build waits (at most 30 s) for the test to have seen a heartbeat line.
    for _ in $(seq 300); do [[ -e $FAKE_GO_HEARD ]] && break; sleep 0.1; done
    printf '#!/bin/sh\necho fake 1.0\n' > "$out" && chmod +x "$out" ;;
  *) echo "fake go: unexpected $*" >&2; exit 3 ;;
esac
"""


def run_build(
    script: str, out_var: str, tmp: Path, heartbeat_of: str
) -> tuple[int, list[str], list[str], list[str]]:
    """Run `script` with the stand-in go; returns (exit status, stderr lines, stdout lines, the
    go calls made). When a line says "still <heartbeat_of>", the stand-in's build may finish."""
    fake = tmp / "fakebin"
    fake.mkdir(exist_ok=True)
    (fake / "go").write_text(FAKE_GO)
    (fake / "go").chmod(0o755)
    calls, heard = tmp / "calls", tmp / "heard"
    calls.write_text("")
    env = {
        **os.environ,
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        out_var: str(tmp / "out"),
        "KUBE_BIND_PROGRESS_SECONDS": "1",
        "FAKE_GO_CALLS": str(calls),
        "FAKE_GO_HEARD": str(heard),
    }
    proc = subprocess.Popen(
        ["bash", str(ROOT / script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None and proc.stdout is not None
    err = []
    for line in proc.stderr:
        err.append(line.rstrip("\n"))
        if f"still {heartbeat_of}" in line:
            heard.touch()
    out = proc.stdout.read().splitlines()
    return proc.wait(), err, out, calls.read_text().splitlines()


def built(script: str, out_var: str, tmp: Path, heartbeat_of: str) -> tuple[list[str], list[str]]:
    """`run_build` of a first build, which must succeed and print where the binaries are: its
    stderr lines and the go calls it made."""
    code, err, out, calls = run_build(script, out_var, tmp, heartbeat_of)
    assert code == 0, "\n".join(err)
    assert out[-1] == str(tmp / "out")
    return err, calls


K8S = ["kube-apiserver", "kube-controller-manager", "kubectl", "etcd"]


def test_the_api_server_build_says_what_where_and_how_long_then_one_line_per_binary(
    tmp_path: Path,
) -> None:
    err, calls = built("hack/k8s/build.sh", "K8SBIN_DIR", tmp_path, "compiling kube-apiserver")
    text = "\n".join(err)
    assert f"k8sbin: building {' '.join(K8S)} (Kubernetes v" in text
    assert f"source into {tmp_path / 'out'}" in text
    assert "A one-time cost: about 10 minutes on 2 cores the first time" in text
    for stage in ("[1/3] downloading Go modules", "[2/3] compiling", "[3/3] installing into"):
        assert f"k8sbin: {stage}" in text, stage
    for i, binary in enumerate(K8S, 1):
        assert f"k8sbin:   compiling {binary} ({i} of 4)" in err
        assert any(line.startswith(f"k8sbin:   compiling {binary}: done in ") for line in err)
        assert os.access(tmp_path / "out" / binary, os.X_OK)
    assert any(line.startswith("k8sbin:   still compiling kube-apiserver (0 min ") for line in err)
    assert [c.split()[-1] for c in calls if c.startswith("build")] == [f"./cmd/{b}" for b in K8S]

    # Built once: the next run only says where the binaries are, and compiles nothing.
    code, err, out, calls = run_build("hack/k8s/build.sh", "K8SBIN_DIR", tmp_path, "-")
    assert (code, out[-1]) == (0, str(tmp_path / "out"))
    assert err == [f"k8sbin: real API servers and kubectl for the tests: cached in {out[-1]}"]
    assert calls == []


def test_the_helm_build_says_what_where_and_how_long(tmp_path: Path) -> None:
    err, calls = built("hack/helm/build.sh", "HELM_BIN_DIR", tmp_path, "compiling helm")
    text = "\n".join(err)
    assert f"from source into {tmp_path / 'out'}" in text
    assert "A one-time cost: a few minutes on 2 cores" in text
    assert "helm: [1/2] downloading Go modules" in err[3]
    assert "helm: [2/2] compiling helm" in err
    assert any(line.startswith("helm:   still compiling helm (0 min ") for line in err)
    assert any(line.startswith("helm:   compiling helm: done in ") for line in err)
    assert len([c for c in calls if c.startswith("build")]) == 1

    code, err, out, calls = run_build("hack/helm/build.sh", "HELM_BIN_DIR", tmp_path, "-")
    assert (code, err, calls) == (0, [f"helm: helm for the chart tests: cached in {out[-1]}"], [])


def test_the_dex_build_says_what_where_and_how_long(tmp_path: Path) -> None:
    err, calls = built("hack/dex/build.sh", "DEX_BIN_DIR", tmp_path, "compiling dex")
    text = "\n".join(err)
    assert "dexbin: building Dex v2.45.1 (v0.0.0-" in text
    assert f"dexbin:   into {tmp_path / 'out'}," in err
    assert "A one-time" in text and "cost: a few minutes on 2 cores the first time" in text
    assert "dexbin: [2/2] compiling dex" in err
    assert any(line.startswith("dexbin:   still compiling dex (0 min ") for line in err)
    assert any(line.startswith("dexbin:   compiling dex: done in ") for line in err)
    (build,) = [c for c in calls if c.startswith("build")]
    assert "-X main.version=v2.45.1" in build and build.endswith("github.com/dexidp/dex/cmd/dex")

    code, err, out, calls = run_build("hack/dex/build.sh", "DEX_BIN_DIR", tmp_path, "-")
    assert (code, err, calls) == (0, [f"dexbin: Dex for the OIDC tests: cached in {out[-1]}"], [])


@pytest.mark.parametrize("script", ["hack/k8s/build.sh", "hack/helm/build.sh", "hack/dex/build.sh"])
def test_a_failed_download_stops_the_heartbeat_and_says_why(script: str, tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "go").write_text(
        '#!/usr/bin/env bash\n[[ $1 == mod ]] && { echo "proxy down" >&2; exit 1; }\necho x\n'
    )
    (fake / "go").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
        "K8SBIN_DIR": str(tmp_path / "out"),
        "HELM_BIN_DIR": str(tmp_path / "out"),
        "DEX_BIN_DIR": str(tmp_path / "out"),
    }
    res = subprocess.run(
        ["bash", str(ROOT / script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1
    assert "proxy down" in res.stderr
    assert "ERROR: could not download the Go modules" in res.stderr
    assert not (tmp_path / "out").exists()
