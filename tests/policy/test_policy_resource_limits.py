"""require-resource-limits."""

from __future__ import annotations

import pytest

from policy.rules import require_resource_limits

POLICY = require_resource_limits.POLICY
CONTAINER = "docker:index/container:Container"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"

GOOD = [
    ("docker_api", CONTAINER, "api"),
    ("docker_edge", CONTAINER, "edge"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", "kubernetes:apps/v1:StatefulSet", "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


def _web(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_resource_limits_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_resource_limits_rejects_docker_container_without_memory(check, docker_api):
    del docker_api["memory"]
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' has no memory limit (memory, in MB, must be > 0)"]


def test_require_resource_limits_rejects_docker_container_with_zero_memory(check, docker_api):
    docker_api["memory"] = 0
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' has no memory limit (memory, in MB, must be > 0)"]


def test_require_resource_limits_rejects_docker_container_without_cpus(check, docker_api):
    del docker_api["cpus"]
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' has no CPU limit (cpus must be > 0)"]


def test_require_resource_limits_rejects_docker_container_with_unparseable_cpus(check, docker_api):
    docker_api["cpus"] = "half"
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' has no CPU limit (cpus must be > 0)"]


def test_require_resource_limits_rejects_kubernetes_container_without_memory_limit(check, deployment):
    del _web(deployment)["resources"]["limits"]["memory"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == ["service 'web' container 'web' has no resources.limits.memory"]


def test_require_resource_limits_rejects_kubernetes_container_without_requests(check, deployment):
    del _web(deployment)["resources"]["requests"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' has no resources.requests.cpu, resources.requests.memory"
    ]


def test_require_resource_limits_rejects_init_container_without_resources(check, deployment):
    del deployment["spec"]["template"]["spec"]["initContainers"][0]["resources"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' has no resources.limits.cpu, resources.limits.memory, "
        "resources.requests.cpu, resources.requests.memory"
    ]


def test_require_resource_limits_rejects_cronjob_container_with_empty_cpu_limit(check, cronjob):
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = ""
    assert check(POLICY, "kubernetes:batch/v1:CronJob", "postgres-main-backup", cronjob) == [
        "service 'postgres-main-backup' container 'backup' has no resources.limits.cpu"
    ]
