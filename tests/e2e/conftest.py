"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import pytest

from cluster import Cluster


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The local cluster scripts/setup.sh started; a clear failure when it is not running."""
    cluster = Cluster()
    cluster.require_ready()
    return cluster
