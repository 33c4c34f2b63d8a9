"""Staging and prod side by side on one Docker host, as seed 001 runs them: a version staging
verified is promoted to prod on the same engine, each stack keeps its own networks, names, ports
and volumes, and destroying one leaves the other serving."""

from __future__ import annotations

import time

import pytest

from cluster import http_get
from docker_host import Traffic, deploy_to_docker, write_report
from engine import Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "docker-promo-db-password-3e8a", "sessionSigningKey": "docker-promo-signing-4d2f"}
VERSION_A = "1.5.0"
STAGING, PROD = "staging", "prod"
EDGES = {STAGING: (18180, 18543, "172.30.141.0/24", "shop.staging.localhost"),
         PROD: (18280, 18643, "172.30.142.0/24", "shop.example.com")}


def api(stack: str) -> str:
    return f"https://127.0.0.1:{EDGES[stack][1]}/api/healthz"


@pytest.fixture(scope="module")
def stacks(tmp_path_factory, docker_host):
    """staging running version A of the api (smoke-tested, so verified); prod empty until promoted
    (prod runs only versions staging verified: its program refuses any other)."""
    for stack in (STAGING, PROD):
        docker_host.remove_stack_leftovers(stack, ports=EDGES[stack][:2])
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("docker-promotion"))
    for stack, (http_port, https_port, subnet, _host) in EDGES.items():
        project.init_stack(stack, SECRETS)
        deploy_to_docker(project, stack, docker_host.host, http_port, https_port, subnet)
    project.set_config(STAGING, "services.api.version", VERSION_A)
    project.pulumi("up", "--yes", "--skip-preview", "-s", STAGING, "--message", f"api {VERSION_A}", timeout=900)
    yield project
    for stack in (PROD, STAGING):
        project.pulumi("destroy", "--yes", "--skip-preview", "-s", stack, check=False, timeout=600)
        docker_host.remove_stack_leftovers(stack)


def api_versions(stack: str, requests: int = 12) -> set[str | None]:
    """What the api answers through the stack's edge, over enough requests to reach every replica."""
    host = EDGES[stack][3]
    answers = [http_get(api(stack), host) for _ in range(requests)]
    assert all(answer.status == 200 for answer in answers), [answer.status for answer in answers]
    return {answer.version for answer in answers}


def test_staging_smoke_test_passes_and_exports_version_a_as_verified(stacks):
    assert stacks.outputs(STAGING)["verifiedVersions"]["api"] == VERSION_A


def test_promotion_puts_exactly_what_staging_verified_into_prod_on_the_same_host(stacks, docker_host):
    assert docker_host.containers(PROD) == {}
    stacks.deployctl("promote", STAGING, PROD, timeout=900)
    assert stacks.outputs(PROD)["versions"]["api"] == VERSION_A
    images = {name: container["Config"]["Image"] for name, container in docker_host.containers(PROD).items()
              if container["Config"]["Labels"].get("app.kubernetes.io/name") == "api" and container["State"]["Running"]}
    assert len(images) == 3 and all(image.endswith(f"/shop/api:{VERSION_A}") for image in images.values()), images
    assert api_versions(PROD) == {VERSION_A}
    assert api_versions(STAGING) == {VERSION_A}


def test_the_two_stacks_have_their_own_containers_networks_ports_and_volumes(stacks, docker_host):
    for kind in ("network", "volume"):
        names = {stack: set(docker_host.docker(kind, "ls", "-q" if kind == "volume" else "--format={{.Name}}",
                                                "--filter", f"label=deploy.platform/stack={stack}").split())
                 for stack in EDGES}
        assert names[STAGING] and names[PROD] and not names[STAGING] & names[PROD], (kind, names)
        assert all(name.startswith(f"{stack}-") for stack in EDGES for name in names[stack]), (kind, names)
    containers = {stack: docker_host.containers(stack) for stack in EDGES}
    assert all(name.startswith(f"{stack}-") for stack in EDGES for name in containers[stack])
    published = {stack: {binding["HostPort"] for container in containers[stack].values()
                         for bindings in (container["NetworkSettings"]["Ports"] or {}).values() if bindings
                         for binding in bindings} for stack in EDGES}
    assert published == {stack: {str(EDGES[stack][0]), str(EDGES[stack][1])} for stack in EDGES}


def test_destroying_prod_leaves_staging_running_and_serving(stacks, docker_host):
    before = {name: container["Id"] for name, container in docker_host.containers(STAGING).items()}
    host = EDGES[STAGING][3]
    with Traffic(api(STAGING), host, rate=20) as traffic:
        stacks.pulumi("destroy", "--yes", "--skip-preview", "-s", PROD, timeout=600)
        time.sleep(2)  # a little traffic after the last deletion too
    write_report(traffic.report("docker: staging while prod is destroyed on the same host"))
    assert traffic.failures == []
    assert docker_host.containers(PROD) == {}
    after = {name: container["Id"] for name, container in docker_host.containers(STAGING).items()}
    assert after == before
    assert api_versions(STAGING) == {VERSION_A}
