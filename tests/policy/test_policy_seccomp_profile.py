"""require-seccomp-profile."""

from __future__ import annotations

import pytest

from policy.rules import require_seccomp_profile

POLICY = require_seccomp_profile.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"

GOOD = [
    ("docker_api", "docker:index/container:Container", "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", "kubernetes:apps/v1:StatefulSet", "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


def _pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_seccomp_profile_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_seccomp_profile_rejects_a_pod_without_a_profile(check, deployment):
    del _pod(deployment)["securityContext"]["seccompProfile"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' runs without a seccomp profile (seccompProfile.type: none; "
        "expected RuntimeDefault or Localhost)",
        "service 'web' init container 'migrate' runs without a seccomp profile (seccompProfile.type: none; "
        "expected RuntimeDefault or Localhost)",
    ]


def test_require_seccomp_profile_rejects_a_container_that_opts_out_as_unconfined(check, deployment):
    _pod(deployment)["containers"][0]["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' runs without a seccomp profile (seccompProfile.type: 'Unconfined'; "
        "expected RuntimeDefault or Localhost)"
    ]


def test_require_seccomp_profile_accepts_container_level_localhost_profiles(check, deployment):
    del _pod(deployment)["securityContext"]["seccompProfile"]
    for container in (*_pod(deployment)["initContainers"], *_pod(deployment)["containers"]):
        container["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "web.json"}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == []
