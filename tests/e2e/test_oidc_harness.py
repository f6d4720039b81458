"""The Dex and Redis harness (tests/harness/oidc.py) itself: what a test author relies on when a
service does not come up, and when it is stopped."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.harness.oidc import Client, ServiceError, start_dex, start_redis


def test_a_config_dex_refuses_fails_the_start_at_once_with_dex_s_reason(
    dex_bin: Path, tmp_path: Path
) -> None:
    # An empty secret: neither a public client nor a confidential one, which Dex rejects.
    client = Client("gateway", ("http://127.0.0.1:1/callback",), secret="")
    with pytest.raises(ServiceError) as err:
        start_dex(tmp_path, [client], bin_dir=dex_bin)
    # The error says that Dex exited, and why, in Dex's own words from its log.
    assert "dex exited with status" in str(err.value)
    assert 'Secret or SecretEnv field is required for client "gateway"' in str(err.value)


def _accepts_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stopped_services_leave_no_process_and_free_their_ports(
    dex_bin: Path, tmp_path: Path
) -> None:
    dex = start_dex(tmp_path, [Client("cli", ("http://127.0.0.1:1/callback",))], bin_dir=dex_bin)
    store = start_redis(tmp_path)
    services = [dex, store]
    assert all(_accepts_connections(s.port) for s in services)

    for service in services:
        service.stop()
    for service in services:
        popen = service.process.popen
        assert popen is not None and popen.poll() is not None, service.process.name
        assert not _accepts_connections(service.port), service.process.name
    # Both say goodbye in their logs: a clean shutdown on SIGTERM, not a kill.
    assert "received signal terminated" in dex.process.tail()
    assert "ready to exit, bye bye" in store.process.tail()
