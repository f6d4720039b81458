"""Shared pytest fixtures. Real clusters: see tests/harness/clusters.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.clusters import ClusterError, Clusters, build_binaries, start_clusters

REAL_CLUSTER_FIXTURE = "real_clusters"
_build_error: ClusterError | None = None


def _uses_real_clusters(item: pytest.Item) -> bool:
    return REAL_CLUSTER_FIXTURE in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark real-cluster tests and build the binaries here, before any test runs.

    A cold build takes far longer than the per-test timeout, which would count it if the
    fixture did the build; hooks are not timed. A failed build fails those tests (in the
    fixture) with the error, and leaves every other test alone.
    """
    global _build_error
    selected = [item for item in items if _uses_real_clusters(item)]
    for item in selected:
        item.add_marker(pytest.mark.realcluster)
    if not selected or config.option.collectonly:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    # Show build.sh's progress on the terminal: a silent 10-minute pause looks like a hang.
    suspended = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with suspended:
        try:
            build_binaries()
        except ClusterError as exc:
            _build_error = exc


@pytest.fixture(scope="session")
def real_clusters(request: pytest.FixtureRequest) -> Iterator[Clusters]:
    """A ``provider`` and a ``consumer`` cluster for the whole session (``clusters.provider``)."""
    if _build_error is not None:
        pytest.fail(str(_build_error), pytrace=False)
    clusters = start_clusters(["provider", "consumer"], bin_dir=build_binaries())
    _say(request.config, f"real clusters {', '.join(clusters)} up in "
         f"{clusters.startup_seconds:.1f}s ({clusters.base_dir})")  # fmt: skip
    yield clusters
    # Keep data and logs when something failed, for a look afterwards (the next run sweeps them).
    failed = request.session.testsfailed > 0
    clusters.stop(keep_dir=failed)
    if failed:
        _say(request.config, f"real cluster logs kept in {clusters.base_dir}")


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
    """Attach the tails of the cluster logs to the report of a failed real-cluster test."""
    report = yield
    if report.failed and _uses_real_clusters(item):
        clusters = getattr(item, "funcargs", {}).get(REAL_CLUSTER_FIXTURE)
        if isinstance(clusters, Clusters):
            report.sections.append(("real cluster logs (tail)", clusters.log_tails()))
    return report
