"""kbshell's client reads and writes objects as deep as an API server stores (10,000 levels).

Python's json module and the kubernetes package recurse, about a thousand levels; the client
decodes with `kbcore.objects.parse_json` and encodes deep bodies with `json_text`. A local HTTP
server stands in for the API server: it answers every request with the body it was sent.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kbcore import objects as o
from kbcore.control.kubeconfig import Credentials
from kbcore.errors import ApiError
from kbcore.limits import MAX_JSON_DEPTH
from kbcore.objects import GVR
from kbshell.client import KubeClient

WIDGETS = GVR("example.org", "v1", "widgets")


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers a PUT with its own body (200), or with a deep Status (422) at path /fail."""

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        code = 422 if "fail" in self.path else 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def client() -> Iterator[tuple[KubeClient, list[bytes]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    kube = KubeClient.from_credentials(Credentials(server=f"http://{host}:{port}", token="t"))
    try:
        yield kube, server.bodies  # type: ignore[attr-defined]
    finally:
        kube.close()
        server.shutdown()
        thread.join()


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"a": value}
    return value


def widget(status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.org/v1",
        "kind": "Widget",
        "metadata": {"namespace": "default", "name": "w1", "resourceVersion": "7"},
        "status": status,
    }


@pytest.mark.parametrize("levels", [3, MAX_JSON_DEPTH - 2])
def test_a_status_as_deep_as_a_server_stores_goes_and_comes_back(
    client: tuple[KubeClient, list[bytes]], levels: int
) -> None:
    kube, sent = client
    body = widget(deep(levels))
    got = kube.update(WIDGETS, body, subresource="status")
    assert o.json_equal(got, body)
    assert o.json_equal(o.parse_json(sent[-1]), body)


def test_a_deep_error_status_is_read_as_the_servers_answer(
    client: tuple[KubeClient, list[bytes]],
) -> None:
    kube, _ = client
    status = {
        "kind": "Status",
        "code": 422,
        "reason": "Invalid",
        "message": "no",
        "details": deep(MAX_JSON_DEPTH - 2),
    }
    body = widget(None) | status
    body["metadata"]["name"] = "fail"
    with pytest.raises(ApiError) as err:
        kube.update(WIDGETS, body)
    assert (err.value.code, err.value.reason, err.value.message) == (422, "Invalid", "no")
