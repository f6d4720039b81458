"""kbshell's KubeClient over the `kubernetes` package's transport, against a stub HTTP server
on 127.0.0.1 (no API server): what it sends (URL, query, body, bearer token) and what it makes
of the answers (objects, a 404 read as absent, a Status as ApiError, watch events, rule 4).

`make test` also runs this file with the lowest supported `kubernetes` release (.venv-lowest),
so the range pyproject.toml declares is the range that is tested."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kbcore import errors
from kbcore.api import keys
from kbcore.api.resources import CONFIGMAPS
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import ApiError
from kbcore.objects import GVR, ObjectKey
from kbcore.reads import Failed, Get, List
from kbcore.runtime.requests import Request
from kbshell.client import KubeClient

WIDGETS = GVR("example.org", "v1", "widgets")
TOKEN = "stub-token"
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message}  # fmt: skip


class Stub(BaseHTTPRequestHandler):
    """Answers a few fixed paths the way a kube-apiserver does; records every request."""

    seen: list[dict[str, Any]]

    def log_message(self, *_: Any) -> None:  # quiet
        pass

    def _answer(self, code: int, body: Any, *, lines: list[Any] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        if lines is None:
            data = json.dumps(body).encode()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in lines:
            chunk = (json.dumps(line) + "\n").encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        req = {
            "method": self.command,
            "path": path,
            "query": query,
            "auth": self.headers.get("Authorization"),
            "content_type": self.headers.get("Content-Type"),
            "body": json.loads(raw) if raw else None,
        }
        self.seen.append(req)
        return req

    def do_GET(self) -> None:
        req = self._record()
        if req["path"] == "/api/v1/namespaces/ns/configmaps/a":
            self._answer(200, CM)
        elif req["path"] == "/api/v1/namespaces/ns/configmaps/secret":
            self._answer(403, status(403, "Forbidden", 'configmaps "secret" is forbidden'))
        elif (
            req["path"] == "/apis/example.org/v1/namespaces/ns/widgets"
            and "watch=1" in req["query"]
        ):
            obj = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
            self._answer(200, None, lines=[{"type": "ADDED", "object": obj}])
        elif req["path"] == "/apis/example.org/v1/namespaces/ns/widgets":
            items = [{"metadata": {"name": "w", "namespace": "ns"}}]
            self._answer(
                200,
                {"apiVersion": "example.org/v1", "kind": "WidgetList",
                 "metadata": {"resourceVersion": "42"}, "items": items},
            )  # fmt: skip
        else:
            self._answer(404, status(404, "NotFound", f"{req['path']} not found"))

    def do_POST(self) -> None:
        req = self._record()
        body = req["body"]
        if body["metadata"]["name"] == "taken":
            self._answer(409, status(409, "AlreadyExists", 'configmaps "taken" already exists'))
            return
        self._answer(201, {**body, "metadata": {**body["metadata"], "resourceVersion": "7"}})

    def do_DELETE(self) -> None:
        self._record()
        self._answer(200, status(200, "", ""))


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("RecordingStub", (Stub,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def client(server: tuple[str, list[dict[str, Any]]]) -> Iterator[KubeClient]:
    with KubeClient.from_credentials(Credentials(server[0], token=TOKEN)) as c:
        yield c


def test_a_get_sends_the_bearer_token_and_returns_the_object(
    client: KubeClient, server: tuple[str, list[dict[str, Any]]]
) -> None:
    assert client.get(CONFIGMAPS, ObjectKey("ns", "a")) == CM
    (req,) = server[1]
    assert (req["method"], req["path"]) == ("GET", "/api/v1/namespaces/ns/configmaps/a")
    assert req["auth"] == f"Bearer {TOKEN}"


def test_reads_answer_as_the_kernel_expects(client: KubeClient) -> None:
    assert client.read(Get("provider", CONFIGMAPS, ObjectKey("ns", "a"))) == CM
    assert client.read(Get("provider", CONFIGMAPS, ObjectKey("ns", "gone"))) is None  # 404
    denied = client.read(Get("provider", CONFIGMAPS, ObjectKey("ns", "secret")))
    assert isinstance(denied, Failed)
    assert (denied.error.code, denied.error.reason) == (403, "Forbidden")
    # Rule 4: list items get the list's apiVersion and kind.
    assert client.read(List("provider", WIDGETS, "ns", "")) == [
        {"apiVersion": "example.org/v1", "kind": "Widget",
         "metadata": {"name": "w", "namespace": "ns"}}
    ]  # fmt: skip


def test_a_create_posts_the_body_as_json_with_the_field_manager(
    client: KubeClient, server: tuple[str, list[dict[str, Any]]]
) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "ns"}}
    created = client.perform(Request("create", "provider", CONFIGMAPS, ObjectKey("ns", "b"), body))
    assert created is not None and created["metadata"]["resourceVersion"] == "7"
    (req,) = server[1]
    assert (req["method"], req["path"]) == ("POST", "/api/v1/namespaces/ns/configmaps")
    assert req["body"] == body and req["content_type"] == "application/json"
    assert f"fieldManager={keys.FIELD_MANAGER}" in req["query"]


def test_an_error_status_is_an_api_error_with_the_servers_words(client: KubeClient) -> None:
    taken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "taken"}}
    with pytest.raises(ApiError) as info:
        client.create(CONFIGMAPS, {**taken, "metadata": {**taken["metadata"], "namespace": "ns"}})
    err = info.value
    assert (err.code, err.reason) == (409, "AlreadyExists")
    assert err.message == 'configmaps "taken" already exists'


def test_a_watch_yields_the_events_the_server_sends(client: KubeClient) -> None:
    stream = client.watch(WIDGETS, "ns", timeout_seconds=5)
    events = list(stream)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w")]
    assert stream.end_reason == "ended"


def test_a_kubeconfig_is_loaded_through_the_kubernetes_package(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server[0]}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }
    with KubeClient.from_kubeconfig(config) as c:
        assert c.get(CONFIGMAPS, ObjectKey("ns", "a")) == CM
    assert server[1][0]["auth"] == f"Bearer {TOKEN}"


def test_no_answer_is_unreachable_with_code_0() -> None:
    with KubeClient.from_credentials(Credentials("http://127.0.0.1:1")) as c:
        result = c.read(Get("provider", CONFIGMAPS, ObjectKey("ns", "a")))
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.reason) == (0, errors.UNREACHABLE)
