"""The provider's gateway as a real process: ``kube-bind-backend`` under uvicorn on 127.0.0.1.

One :class:`GatewayServer` is one replica, with its files in a directory of its own::

    <dir>/gateway.log              its JSON log lines (stdout and stderr)
    <dir>/client-secret            the OIDC client secret (--oidc-client-secret-file)

Its port is chosen before it starts (:func:`gateway_ports`), because the OIDC provider must know
the replica's redirect URI (``<url>/api/callback``) before the gateway first sends a user there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tests.harness.clusters import Process, free_ports, http_ok
from tests.harness.oidc import Service

GATEWAY = Path(sys.executable).parent / "kube-bind-backend"


def gateway_ports(count: int) -> list[int]:
    return free_ports(count)


def callback_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/callback"


class GatewayServer(Service):
    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        oidc_issuer: str,
        client_id: str,
        client_secret: str | None,
        issuer_file: Path | None,
        session_store: str,
        accept_audiences: Sequence[str] = (),
        rate_limit: int = 10,
        extra_args: Sequence[str] = (),
        issuer: str = "",
        cli_client_id: str = "",
    ) -> None:
        """`issuer` is the --issuer flag's value; by default the static one of `issuer_file`."""
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            str(GATEWAY),
            "--listen-address", f"127.0.0.1:{port}",
            "--external-url", self.url,
            "--oidc-issuer-url", oidc_issuer,
            "--oidc-client-id", client_id,
            "--issuer", issuer or f"static:{issuer_file}",
            "--session-store", session_store,
            "--bind-rate-limit", str(rate_limit),
            "--provider-name", "Widgets Inc.",
            "--health-probe-bind-address", "127.0.0.1:0",
        ]  # fmt: skip
        if client_secret is not None:
            secret_file = self.dir / "client-secret"
            secret_file.write_text(client_secret)
            secret_file.chmod(0o600)
            argv += ["--oidc-client-secret-file", str(secret_file)]
        if cli_client_id:
            argv += ["--oidc-cli-client-id", cli_client_id]
        for audience in accept_audiences:
            argv += ["--oidc-accept-audience", audience]
        argv += extra_args
        self.log_path = self.dir / "gateway.log"
        self.process = Process(f"gateway:{port}", argv, self.log_path, self.dir)

    def ready(self) -> bool:
        return http_ok(self.url + "/api/healthz")

    def log_text(self) -> str:
        return self.log_path.read_text()
