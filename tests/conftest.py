"""Shared pytest fixtures. Real clusters: see tests/harness/clusters.py; Dex and Redis, the
provider-side services: tests/harness/oidc.py."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.clusters import (
    Clusters,
    HarnessError,
    build_binaries,
    start_clusters,
)
from tests.harness.oidc import (
    Client,
    Dex,
    RedirectCatcher,
    RedisServer,
    Service,
    build_dex,
    start_dex,
    start_redis,
)

REAL_CLUSTER_FIXTURE = "real_clusters"
# The fixtures that run real servers: the marker their tests get, and the build (if any) that
# must come first. The marker goes to every test that uses one of them, directly or not.
_REAL_SERVERS: dict[str, tuple[pytest.MarkDecorator, Callable[[], Path] | None]] = {
    REAL_CLUSTER_FIXTURE: (pytest.mark.realcluster, build_binaries),
    "dex_bin": (pytest.mark.realservice, build_dex),
    "redis_server": (pytest.mark.realservice, None),
}
# The fixtures whose server logs go into the report of a failed test that used them.
_LOGGED: dict[str, str] = {
    REAL_CLUSTER_FIXTURE: "real cluster logs (tail)",
    "dex": "Dex log (tail)",
    "dex_with_consent": "Dex log (tail)",
    "redis_server": "redis-server log (tail)",
}
_build_errors: dict[str, HarnessError] = {}

PUBLIC_CLIENT_ID = "kube-bind-cli"
"""Dex's public client (no secret, PKCE alone), like a CLI or a single-page app."""
CONFIDENTIAL_CLIENT_ID = "kube-bind-gateway"
"""Dex's confidential client (a secret, and PKCE), like the gateway."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark real-server tests and build their binaries here, before any test runs.

    A cold build takes far longer than the per-test timeout, which would count it if the
    fixture did the build; hooks are not timed. A failed build fails those tests (in the
    fixture) with the error, and leaves every other test alone.
    """
    capture = config.pluginmanager.getplugin("capturemanager")
    for fixture, (marker, build) in _REAL_SERVERS.items():
        selected = [item for item in items if fixture in getattr(item, "fixturenames", ())]
        for item in selected:
            item.add_marker(marker)
        if not selected or build is None or config.option.collectonly:
            continue
        # Show build.sh's progress on the terminal: a silent 10-minute pause looks like a hang.
        suspended = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
        with suspended:
            try:
                build()
            except HarnessError as exc:
                _build_errors[fixture] = exc


def _built(fixture: str, build: Callable[[], Path]) -> Path:
    """The binary directory, or the test fails with the build's error (from the hook)."""
    if fixture in _build_errors:
        pytest.fail(str(_build_errors[fixture]), pytrace=False)
    return build()


@pytest.fixture(scope="session")
def real_clusters(request: pytest.FixtureRequest) -> Iterator[Clusters]:
    """A ``provider`` and a ``consumer`` cluster for the whole session (``clusters.provider``)."""
    bin_dir = _built(REAL_CLUSTER_FIXTURE, build_binaries)
    clusters = start_clusters(["provider", "consumer"], bin_dir=bin_dir)
    _say(request.config, f"real clusters {', '.join(clusters)} up in "
         f"{clusters.startup_seconds:.1f}s ({clusters.base_dir})")  # fmt: skip
    yield clusters
    # Keep data and logs when something failed, for a look afterwards (the next run sweeps them).
    failed = request.session.testsfailed > 0
    clusters.stop(keep_dir=failed)
    if failed:
        _say(request.config, f"real cluster logs kept in {clusters.base_dir}")


@pytest.fixture(scope="session")
def dex_bin() -> Path:
    """The directory holding the ``dex`` binary (hack/dex/build.sh, run by the hook above)."""
    return _built("dex_bin", build_dex)


@pytest.fixture(scope="session")
def redirect_catcher() -> Iterator[RedirectCatcher]:
    """The redirect URI of Dex's clients: a listener that records what Dex sends there."""
    with RedirectCatcher() as catcher:
        yield catcher


def _dex_clients(redirect_uri: str) -> list[Client]:
    return [
        Client(PUBLIC_CLIENT_ID, (redirect_uri,)),
        Client(CONFIDENTIAL_CLIENT_ID, (redirect_uri,), secret=secrets.token_urlsafe(24)),
    ]


@pytest.fixture(scope="session")
def dex(
    dex_bin: Path, redirect_catcher: RedirectCatcher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dex]:
    """Dex for the whole session: users alice and bob (tests.harness.oidc), the public and the
    confidential client above, both redirecting to ``redirect_catcher``; no consent page."""
    clients = _dex_clients(redirect_catcher.url)
    with start_dex(tmp_path_factory.mktemp("dex"), clients, bin_dir=dex_bin) as server:
        yield server


@pytest.fixture
def dex_with_consent(
    dex_bin: Path, redirect_catcher: RedirectCatcher, tmp_path: Path
) -> Iterator[Dex]:
    """Like ``dex``, but users see Dex's consent page ("Grant Access") after logging in."""
    clients = _dex_clients(redirect_catcher.url)
    with start_dex(tmp_path, clients, bin_dir=dex_bin, skip_approval=False) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """redis-server for the whole session, on 127.0.0.1, without persistence."""
    try:
        server = start_redis(tmp_path_factory.mktemp("redis"))
    except HarnessError as err:
        pytest.fail(str(err), pytrace=False)
    with server:
        yield server


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal, past output capturing (which would swallow it in a fixture)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    capture = config.pluginmanager.getplugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Attach the tails of the server logs to the report of a failed real-server test."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for fixture, title in _LOGGED.items():
            server = funcargs.get(fixture)
            if isinstance(server, Clusters | Service):
                report.sections.append((title, server.log_tails()))
    return report
