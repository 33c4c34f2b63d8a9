"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import cluster_alerting
import docker_alerting
from cluster import Cluster
from docker_host import DockerHost, start_engine
from engine import Project
from fake_edge import FakeEdge
from soak import Soak, soaking_modules_last

E2E = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "soak(fixture): the module judges a stack that soaks for its lane "
                            "(tests/e2e/soak.py): it runs last in the lane, and the lane's first test deploys the stack")


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected: the lane's first test is one that runs
def pytest_collection_modifyitems(config, items):
    """The lanes of `pytest -n 2 --dist loadgroup` (scripts/test.sh). A module marked
    xdist_group("cluster") or xdist_group("docker") runs in that lane, one such module after
    another on one worker, so the stacks, namespaces, node ports, host ports and subnets of the
    modules need only differ across the two lanes; the lanes' long waits (rollouts, readiness,
    alert windows) then overlap. Any other end-to-end module stays whole on one worker, so its
    module-scoped fixtures run once; unit, policy and alerting tests go wherever a worker is free.

    A module marked soak(fixture) moves to the end of its lane, and the lane's first test asks for
    `fixture` (a session fixture deploying the stack the module judges): the stack runs while the
    rest of the lane does."""
    for item in items:
        if item.path.is_relative_to(E2E) and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(f"module-{item.path.stem}"))

    def lane(item) -> str:
        return item.get_closest_marker("xdist_group").args[0] if item.path.is_relative_to(E2E) else ""

    soaking_modules_last(items, lane)


# Test-only secret values for the stacks the e2e tests create (never real ones).
SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The local cluster scripts/setup.sh started; a clear failure when it is not running."""
    cluster = Cluster()
    cluster.require_ready()
    return cluster


@pytest.fixture(scope="module", autouse=True)
def namespaces_dropped_after_each_module():
    """Whatever namespace a module deployed to and did not drop (its fixture failed before its
    own teardown) is dropped when the module ends: the next module gets the node's pods."""
    yield
    for namespace in sorted(Cluster.lent):
        Cluster().drop_namespace(namespace)


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


@pytest.fixture(scope="session")
def cluster_alerting_soak(cluster, tmp_path_factory):
    """tests/e2e/test_cluster_alerting.py's stack, deployed when the cluster lane starts."""
    receiver = cluster_alerting.WebhookReceiver()
    project = Project(tmp_path_factory.mktemp("cluster-alerting"))
    soak = Soak("cluster alerting", lambda: cluster_alerting.deploy_soaking_stack(cluster, project, receiver),
                remove=lambda: cluster.drop_namespace(cluster_alerting.SOAK_NAMESPACE))
    yield soak
    soak.remove()
    receiver.close()


@pytest.fixture(scope="session")
def docker_alerting_soak(docker_host, tmp_path_factory):
    """tests/e2e/test_docker_alerting.py's stack, deployed when the Docker lane starts."""
    receiver, mailbox = docker_alerting.Receiver(), docker_alerting.mailbox()
    project = Project(tmp_path_factory.mktemp("docker-alerting"))

    def deploy() -> Project:
        stack = docker_alerting.deploy_alerting_stack(docker_host, project, receiver, mailbox)
        stack.receiver, stack.mailbox = receiver, mailbox
        return stack

    soak = Soak("Docker alerting", deploy, remove=lambda: docker_alerting.remove_alerting_stack(docker_host, project))
    yield soak
    soak.remove()
    receiver.close()
    mailbox.close()
