"""disallow-privileged-containers."""

from __future__ import annotations

import pytest

from policy.rules import disallow_privileged_containers

POLICY = disallow_privileged_containers.POLICY
CONTAINER = "docker:index/container:Container"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"

GOOD = [
    ("docker_api", CONTAINER, "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", "kubernetes:apps/v1:StatefulSet", "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_disallow_privileged_containers_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_disallow_privileged_containers_rejects_privileged_docker_container(check, docker_api):
    docker_api["privileged"] = True
    assert check(POLICY, CONTAINER, "api", docker_api) == ["service 'api' runs privileged (privileged: true)"]


def test_disallow_privileged_containers_rejects_privileged_kubernetes_container(check, deployment):
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' sets securityContext.privileged: true"
    ]


def test_disallow_privileged_containers_rejects_privilege_escalation_in_init_container(check, deployment):
    deployment["spec"]["template"]["spec"]["initContainers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' sets securityContext.allowPrivilegeEscalation: true"
    ]


def test_disallow_privileged_containers_rejects_privileged_cronjob_container(check, cronjob):
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True}
    assert check(POLICY, "kubernetes:batch/v1:CronJob", "postgres-main-backup", cronjob) == [
        "service 'postgres-main-backup' container 'backup' sets securityContext.privileged: true"
    ]
