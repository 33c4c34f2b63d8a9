"""require-non-root-user."""

from __future__ import annotations

import pytest

from policy.rules import require_non_root_user

POLICY = require_non_root_user.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
CRONJOB = "kubernetes:batch/v1:CronJob"

GOOD = [
    ("docker_api", "docker:index/container:Container", "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", STATEFULSET, "postgres-main"),
    ("cronjob", CRONJOB, "postgres-main-backup"),
]


def _pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _volume_owner(**context) -> dict:
    security = {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}, **context}
    return {"name": "volume-owner", "image": "db", "securityContext": security}


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_non_root_user_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_non_root_user_rejects_a_pod_that_does_not_enforce_non_root(check, deployment):
    del _pod(deployment)["securityContext"]["runAsNonRoot"]
    for container in (*_pod(deployment)["initContainers"], *_pod(deployment)["containers"]):
        del container["securityContext"]["runAsNonRoot"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' does not enforce a non-root user (securityContext.runAsNonRoot is not true)",
        "service 'web' init container 'migrate' does not enforce a non-root user "
        "(securityContext.runAsNonRoot is not true)",
    ]


def test_require_non_root_user_takes_the_pod_level_setting_when_the_container_has_none(check, deployment):
    for container in (*_pod(deployment)["initContainers"], *_pod(deployment)["containers"]):
        del container["securityContext"]["runAsNonRoot"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == []


def test_require_non_root_user_lets_a_container_override_the_pod_to_false(check, deployment):
    _pod(deployment)["containers"][0]["securityContext"]["runAsNonRoot"] = False
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' does not enforce a non-root user (securityContext.runAsNonRoot is not true)"
    ]


def test_require_non_root_user_rejects_a_main_container_running_as_root(check, statefulset):
    _pod(statefulset)["containers"][0]["securityContext"]["runAsUser"] = 0
    (message,) = check(POLICY, STATEFULSET, "postgres-main", statefulset)
    assert message.startswith("service 'postgres-main' container 'postgres' runs as root (runAsUser: 0)")


def test_require_non_root_user_accepts_the_contained_volume_owner_init_container(check, statefulset):
    _pod(statefulset)["initContainers"] = [_volume_owner()]
    assert check(POLICY, STATEFULSET, "postgres-main", statefulset) == []


@pytest.mark.parametrize("context", [
    {"capabilities": {"drop": ["ALL"], "add": ["CHOWN", "DAC_OVERRIDE"]}},
    {"capabilities": {"add": ["CHOWN"]}},
    {"readOnlyRootFilesystem": False},
    {"allowPrivilegeEscalation": True},
], ids=["extra-capability", "nothing-dropped", "writable-root", "escalation"])
def test_require_non_root_user_rejects_a_root_init_container_that_is_not_contained(check, statefulset, context):
    _pod(statefulset)["initContainers"] = [_volume_owner(**context)]
    (message,) = check(POLICY, STATEFULSET, "postgres-main", statefulset)
    assert message.startswith("service 'postgres-main' init container 'volume-owner' runs as root")


def test_require_non_root_user_checks_cronjob_pods(check, cronjob):
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    template["securityContext"]["runAsUser"] = 0
    del template["containers"][0]["securityContext"]["runAsNonRoot"]
    (message,) = check(POLICY, CRONJOB, "postgres-main-backup", cronjob)
    assert message.startswith("service 'postgres-main-backup' container 'backup' runs as root")
