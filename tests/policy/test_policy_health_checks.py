"""require-health-checks."""

from __future__ import annotations

import pytest

from policy.rules import require_health_checks

POLICY = require_health_checks.POLICY
CONTAINER = "docker:index/container:Container"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"

GOOD = [
    ("docker_api", CONTAINER, "api"),
    ("docker_edge", CONTAINER, "edge"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", STATEFULSET, "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


def _component(container: dict, value: str) -> None:
    next(e for e in container["labels"] if e["label"] == "app.kubernetes.io/component")["value"] = value


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_health_checks_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_health_checks_rejects_docker_container_without_healthcheck(check, docker_api):
    del docker_api["healthcheck"]
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' has no healthcheck (healthcheck.tests is empty)"]


def test_require_health_checks_rejects_docker_healthcheck_with_empty_tests(check, docker_api):
    docker_api["healthcheck"]["tests"] = []
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' has no healthcheck (healthcheck.tests is empty)"]


def test_require_health_checks_rejects_docker_healthcheck_none(check, docker_api):
    docker_api["healthcheck"]["tests"] = ["NONE"]
    assert check(POLICY, CONTAINER, "api", docker_api) == [
        "service 'api' disables its healthcheck (healthcheck.tests is [\"NONE\"])"
    ]


def test_require_health_checks_exempts_docker_backup_container(check, docker_api):
    del docker_api["healthcheck"]
    _component(docker_api, "backup")
    assert check(POLICY, CONTAINER, "api", docker_api) == []


def test_require_health_checks_rejects_deployment_container_without_readiness_probe(check, deployment):
    del deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == ["service 'web' container 'web' has no readinessProbe"]


def test_require_health_checks_rejects_statefulset_container_without_liveness_probe(check, statefulset):
    del statefulset["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    assert check(POLICY, STATEFULSET, "postgres-main", statefulset) == [
        "service 'postgres-main' container 'postgres' has no livenessProbe"
    ]


def test_require_health_checks_rejects_container_without_any_probe(check, deployment):
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    del container["readinessProbe"], container["livenessProbe"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' has no readinessProbe, livenessProbe"
    ]


def test_require_health_checks_exempts_jobs(check, cronjob):
    job = {"metadata": {"name": "restore-drill"}, "spec": cronjob["spec"]["jobTemplate"]["spec"]}
    assert "readinessProbe" not in job["spec"]["template"]["spec"]["containers"][0]
    assert check(POLICY, "kubernetes:batch/v1:Job", "restore-drill", job) == []
