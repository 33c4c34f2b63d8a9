"""The product on a real Docker engine (devenv/docker/engine.sh), through the real Pulumi
engine and the docker and command providers: first launch, HTTPS at the edge, isolation of the
database network, and releases that switch with no failed request."""

from __future__ import annotations

import time

import pytest

from cluster import http_get
from docker_host import DockerHost, Traffic, deploy_to_docker, start_engine, write_report
from engine import Project

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "docker-e2e-db-password-5c1d", "sessionSigningKey": "docker-e2e-signing-key-0b7e"}
STACK = "staging"
HTTP_PORT, HTTPS_PORT = 18080, 18443
HOST = "shop.staging.localhost"
API = f"https://127.0.0.1:{HTTPS_PORT}/api/healthz"


@pytest.fixture(scope="module")
def docker_host() -> DockerHost:
    return DockerHost(start_engine())


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_host):
    """staging on the Docker engine, deployed once from empty for the module's tests."""
    docker_host.remove_stack_leftovers(STACK)
    docker_host.forget_images()
    project = Project(tmp_path_factory.mktemp("docker-host"))
    project.init_stack(STACK, SECRETS)
    deploy_to_docker(project, STACK, docker_host.host, HTTP_PORT, HTTPS_PORT)
    started = time.monotonic()
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=900)
    project.first_up_seconds = time.monotonic() - started
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def test_from_empty_every_container_is_healthy_and_the_api_answers_over_https(stack, docker_host):
    containers = docker_host.containers(STACK)
    with_checks = {name: c["State"]["Health"]["Status"] for name, c in containers.items() if c["State"].get("Health")}
    deadline = time.monotonic() + 60
    while any(status != "healthy" for status in with_checks.values()) and time.monotonic() < deadline:
        time.sleep(2)
        with_checks = {name: c["State"]["Health"]["Status"] for name, c in docker_host.containers(STACK).items()
                       if c["State"].get("Health")}
    assert with_checks and all(status == "healthy" for status in with_checks.values()), with_checks
    answer = http_get(API, HOST)
    assert answer.status == 200 and answer.version == "1.4.2" and answer.seconds < 3
    print(f"docker: up from empty took {stack.first_up_seconds:.1f}s")


def test_http_redirects_to_https_on_the_published_https_port(stack):
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}/api/healthz", headers={"Host": HOST})
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=3)
        raise AssertionError("HTTP answered without redirecting")
    except urllib.error.HTTPError as redirect:
        assert redirect.code in (301, 308)
        assert redirect.headers["Location"].startswith("https://")


def test_no_secret_value_appears_in_docker_inspect(stack, docker_host):
    inspected = docker_host.docker("inspect", *docker_host.containers(STACK))
    for value in SECRETS.values():
        assert value not in inspected


def test_a_version_update_switches_with_no_failed_request(stack, docker_host):
    stack.set_config(STACK, "services.api.version", "1.5.0")
    with Traffic(API, HOST) as traffic:
        time.sleep(1)
        stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)
        time.sleep(1)
    write_report(traffic.report("docker version update 1.4.2 -> 1.5.0"))
    assert traffic.sent >= 20 and traffic.failures == []
    assert http_get(API, HOST).version == "1.5.0"
    names = [name for name in docker_host.containers(STACK) if name.startswith(f"{STACK}-api-")]
    assert names and all(name.startswith(f"{STACK}-api-1-5-0-") for name in names)  # the old slot is gone


def test_a_broken_release_fails_fast_and_never_takes_traffic(stack, docker_host):
    stack.set_config(STACK, "services.api.version", "1.7.0-broken")
    with Traffic(API, HOST) as traffic:
        started = time.monotonic()
        failed = stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
        seconds = time.monotonic() - started
    write_report(traffic.report(f"docker broken release (update failed after {seconds:.1f}s)"))
    assert failed.code != 0 and "release not ready" in failed.output
    assert traffic.failures == [] and traffic.versions() == {"1.5.0"}
    stack.set_config(STACK, "services.api.version", "1.5.0")
    stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)
