"""KubeClient's in-cluster token (kbshell.client rule 6): the file the kubelet rotates is re-read
once a minute and at once after a 401, and a request refused only for a token that rotated meanwhile is
sent again, once, with the new one. Against a stub HTTP server on 127.0.0.1 that accepts only the
tokens a test says; the file is rotated as the kubelet does it (a `..data` symlink swap)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.config.config_exception import ConfigException

from kbcore.api.resources import CONFIGMAPS
from kbcore.errors import ApiError
from kbcore.objects import ObjectKey
from kbshell.client import FileToken, KubeClient, _configuration

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}


class Stub(BaseHTTPRequestHandler):
    """200 with CM (or a one-event watch) for an accepted bearer token, else a 401 Status."""

    seen: list[str]
    accepted: set[str]

    def log_message(self, *_: Any) -> None:
        pass

    def _answer(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode() + (b"\n" if "watch=1" in self.path else b"")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        auth = self.headers.get("Authorization") or ""
        self.seen.append(auth)
        if auth.removeprefix("Bearer ") not in self.accepted:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 401,
                      "reason": "Unauthorized", "message": "Unauthorized"}  # fmt: skip
            self._answer(401, status)
        elif "watch=1" in self.path:
            self._answer(200, {"type": "ADDED", "object": CM})
        else:
            self._answer(200, CM)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()


@pytest.fixture
def stub() -> Iterator[tuple[str, list[str], set[str]]]:
    seen: list[str] = []
    accepted: set[str] = set()
    handler = type("TokenStub", (Stub,), {"seen": seen, "accepted": accepted})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen, accepted
    finally:
        httpd.shutdown()
        httpd.server_close()


class Volume:
    """A projected-volume directory as the kubelet's atomic writer keeps it: `token` is a
    symlink to `..data/token`, and `..data` is swapped to a new timestamped directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.n = 0

    def write(self, token: str) -> None:
        self.n += 1
        data = self.root / f"..gen{self.n}"
        data.mkdir()
        (data / "token").write_text(token)
        (self.root / "..data_tmp").symlink_to(data.name)
        os.rename(self.root / "..data_tmp", self.root / "..data")
        if not (self.root / "token").is_symlink():
            (self.root / "token").symlink_to("..data/token")

    @property
    def token(self) -> Path:
        return self.root / "token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def volume(tmp_path: Path) -> Volume:
    v = Volume(tmp_path)
    v.write("old")
    return v


def _client(url: str, token: FileToken) -> KubeClient:
    cfg = _configuration()
    cfg.host = url
    return KubeClient(ApiClient(cfg), token=token)


def test_the_file_is_re_read_only_when_a_minute_old(volume: Volume) -> None:
    clock = Clock()
    token = FileToken(volume.token, clock=clock)
    volume.write("new")
    clock.now += 59.0
    assert token.current() == "old"
    clock.now += 1.0
    assert token.current() == "new"
    assert token.reads == 2


def test_reload_says_whether_the_token_changed_and_a_failed_read_keeps_the_token(
    volume: Volume,
) -> None:
    token = FileToken(volume.token)
    assert token.reload() is False
    volume.write("new")
    assert token.reload() is True
    (volume.root / "..data").unlink()  # the file is gone for a moment
    assert token.reload() is False
    assert token.current() == "new"


def test_no_token_at_start_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        FileToken(tmp_path / "token")


def test_a_401_after_rotation_re_reads_the_file_and_sends_the_request_again(
    stub: tuple[str, list[str], set[str]], volume: Volume
) -> None:
    url, seen, accepted = stub
    accepted.add("old")
    with _client(url, FileToken(volume.token)) as client:
        assert client.get(CONFIGMAPS, ObjectKey("ns", "a")) == CM
        # Rotated, and the old token revoked at once: within the minute, before any re-read.
        volume.write("new")
        accepted.clear()
        accepted.add("new")
        created = client.create(CONFIGMAPS, CM)
        assert created == CM
        assert seen == ["Bearer old", "Bearer old", "Bearer new"]
        # From now on the new token goes first time.
        assert client.get(CONFIGMAPS, ObjectKey("ns", "a")) == CM
        assert seen[-1] == "Bearer new" and len(seen) == 4


def test_a_401_with_the_same_token_is_the_callers_and_is_not_repeated(
    stub: tuple[str, list[str], set[str]], volume: Volume
) -> None:
    url, seen, _ = stub  # accepts nothing
    with _client(url, FileToken(volume.token)) as client, pytest.raises(ApiError) as err:
        client.get(CONFIGMAPS, ObjectKey("ns", "a"))
    assert err.value.code == 401 and err.value.reason == "Unauthorized"
    assert seen == ["Bearer old"]


def test_a_watch_reconnect_sends_the_token_read_afresh(
    stub: tuple[str, list[str], set[str]], volume: Volume
) -> None:
    url, seen, accepted = stub
    accepted.update({"old", "new"})  # the kubelet's rotation: the old token still valid
    clock = Clock()
    with _client(url, FileToken(volume.token, clock=clock)) as client:
        assert [e["type"] for e in client.watch(CONFIGMAPS, "ns")] == ["ADDED"]
        volume.write("new")
        clock.now += 60.0
        assert [e["type"] for e in client.watch(CONFIGMAPS, "ns")] == ["ADDED"]
    assert seen == ["Bearer old", "Bearer new"]


def test_in_cluster_reads_the_service_environment_and_the_directory(
    volume: Volume,
) -> None:
    (volume.root / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
    with KubeClient.in_cluster(directory=str(volume.root), environ=environ) as client:
        assert client.server == "https://127.0.0.1:6443"
        assert client.token is not None and client.token.path == str(volume.token)
        assert client.token.current() == "old"
    with pytest.raises(ConfigException, match="host/port is not set"):
        KubeClient.in_cluster(directory=str(volume.root), environ={})
