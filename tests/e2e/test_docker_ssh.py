"""`docker.host: ssh://user@host`, the way people run one VPS: the same stack deployed through a
real sshd (tests/e2e/sshd.py) to the engine behind it, released with no failed request, and
destroyed, every Docker call of the providers, the readiness gate and the route switch going
over ssh."""

from __future__ import annotations

import os
import time

import pytest

from cluster import http_get
from docker_host import Traffic, deploy_to_docker, write_report
from engine import Project
from sshd import start_sshd

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "docker-ssh-db-password-6a1e", "sessionSigningKey": "docker-ssh-signing-key-2c7b"}
STACK = "staging"
HTTP_PORT, HTTPS_PORT = 18380, 18743
HOST = "shop.staging.localhost"
API = f"https://127.0.0.1:{HTTPS_PORT}/api/healthz"


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory, docker_host):
    host = start_sshd(tmp_path_factory.mktemp("sshd"), docker_host.host)
    yield host
    host.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_host, ssh_host):
    docker_host.remove_stack_leftovers(STACK, ports=(HTTP_PORT, HTTPS_PORT))
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("docker-ssh"))
    project.env["PATH"] = f"{ssh_host.bin_dir}{os.pathsep}{project.env['PATH']}"
    project.env.pop("DOCKER_HOST", None)  # only the stack's ssh:// address may lead to the engine
    project.init_stack(STACK, SECRETS)
    deploy_to_docker(project, STACK, ssh_host.docker_host, HTTP_PORT, HTTPS_PORT, "172.30.143.0/24")
    started = time.monotonic()
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=900)
    project.first_up_seconds = time.monotonic() - started
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def test_over_ssh_the_stack_comes_up_and_the_api_answers_over_https(stack, docker_host):
    assert stack.outputs(STACK)["versions"]["api"] == "1.4.2"
    answer = http_get(API, HOST)
    assert answer.status == 200 and answer.version == "1.4.2"
    running = [c for c in docker_host.containers(STACK).values() if c["State"]["Running"]]
    assert len(running) >= 6
    print(f"docker over ssh: up from empty took {stack.first_up_seconds:.1f}s")


def test_over_ssh_a_version_update_switches_with_no_failed_request(stack):
    stack.set_config(STACK, "services.api.version", "1.5.0")
    with Traffic(API, HOST) as traffic:
        stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)
    write_report(traffic.report("docker over ssh: version update 1.4.2 -> 1.5.0"))
    assert traffic.failures == []
    assert http_get(API, HOST).version == "1.5.0"


def test_over_ssh_destroy_removes_every_container_of_the_stack(stack, docker_host):
    stack.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, timeout=600)
    assert docker_host.containers(STACK) == {}
