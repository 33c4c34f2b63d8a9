"""require-dropped-capabilities."""

from __future__ import annotations

import pytest

from policy.rules import require_dropped_capabilities

POLICY = require_dropped_capabilities.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"

GOOD = [
    ("docker_api", "docker:index/container:Container", "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", STATEFULSET, "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


def _web(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_dropped_capabilities_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_dropped_capabilities_rejects_a_container_that_keeps_the_default_set(check, deployment):
    del _web(deployment)["capabilities"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' does not drop all capabilities (securityContext.capabilities.drop lacks ALL)"
    ]


def test_require_dropped_capabilities_rejects_dropping_only_some(check, deployment):
    _web(deployment)["capabilities"] = {"drop": ["NET_RAW"]}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' does not drop all capabilities (securityContext.capabilities.drop lacks ALL)"
    ]


def test_require_dropped_capabilities_rejects_a_capability_added_back(check, deployment):
    _web(deployment)["capabilities"] = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "sys_admin"]}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' adds capabilities NET_BIND_SERVICE, SYS_ADMIN"
    ]


def test_require_dropped_capabilities_lets_a_root_init_container_keep_chown_only(check, statefulset):
    pod = statefulset["spec"]["template"]["spec"]
    owner = {"name": "volume-owner", "securityContext": {"runAsUser": 0,
                                                         "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}}
    pod["initContainers"] = [owner]
    assert check(POLICY, STATEFULSET, "postgres-main", statefulset) == []
    owner["securityContext"]["capabilities"]["add"] = ["CHOWN", "FOWNER"]
    assert check(POLICY, STATEFULSET, "postgres-main", statefulset) == [
        "service 'postgres-main' init container 'volume-owner' adds capabilities FOWNER"
    ]


def test_require_dropped_capabilities_refuses_chown_to_a_non_root_container(check, deployment):
    _web(deployment)["capabilities"] = {"drop": ["ALL"], "add": ["CHOWN"]}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == ["service 'web' container 'web' adds capabilities CHOWN"]
