"""require-no-privilege-escalation."""

from __future__ import annotations

import pytest

from policy.rules import require_no_privilege_escalation

POLICY = require_no_privilege_escalation.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"

GOOD = [
    ("docker_api", "docker:index/container:Container", "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", "kubernetes:apps/v1:StatefulSet", "postgres-main"),
    ("cronjob", CRONJOB, "postgres-main-backup"),
]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_no_privilege_escalation_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_no_privilege_escalation_rejects_the_unset_default(check, deployment):
    del deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' does not set securityContext.allowPrivilegeEscalation: false"
    ]


def test_require_no_privilege_escalation_rejects_an_init_container_without_a_security_context(check, deployment):
    del deployment["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' does not set securityContext.allowPrivilegeEscalation: false"
    ]


def test_require_no_privilege_escalation_rejects_true_in_a_cronjob(check, cronjob):
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    assert check(POLICY, CRONJOB, "postgres-main-backup", cronjob) == [
        "service 'postgres-main-backup' container 'backup' does not set securityContext.allowPrivilegeEscalation: false"
    ]
