"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import pytest

from cluster import Cluster
from docker_host import DockerHost, start_engine
from engine import Project
from fake_edge import FakeEdge

# Test-only secret values for the stacks the e2e tests create (never real ones).
SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The local cluster scripts/setup.sh started; a clear failure when it is not running."""
    cluster = Cluster()
    cluster.require_ready()
    return cluster


@pytest.fixture(scope="session")
def docker_host() -> DockerHost:
    """The project's Docker engine (devenv/docker/engine.sh), started if it is not running."""
    return DockerHost(start_engine())


@pytest.fixture
def staging(tmp_path):
    """A staging stack rendering to a directory, smoke-tested through the fake edge."""
    project = Project(tmp_path)
    project.init_stack("staging", SECRETS)
    edge = FakeEdge(project.dir / "rendered" / "staging" / "1-manifest")
    project.render_only("staging", smoke_base_url=edge.url)
    project.edge = edge
    yield project
    edge.close()
