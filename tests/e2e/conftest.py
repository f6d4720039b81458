"""Fixtures of the e2e tests: one provider and one consumer cluster for the whole session.

`clusters` is the session's pair of real clusters (tests/conftest.py starts them once, for the
conformance suite too): `clusters.provider` and `clusters.consumer` are harness `Cluster`s.
"""

from __future__ import annotations

import pytest

from tests.harness.clusters import Clusters


@pytest.fixture(scope="session")
def clusters(real_clusters: Clusters) -> Clusters:
    return real_clusters
