"""require-read-only-root-filesystem."""

from __future__ import annotations

import pytest

from policy.rules import require_read_only_root_filesystem

POLICY = require_read_only_root_filesystem.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"

GOOD = [
    ("docker_api", "docker:index/container:Container", "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", "kubernetes:apps/v1:StatefulSet", "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_read_only_root_filesystem_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


@pytest.mark.parametrize("value", [False, None], ids=["false", "unset"])
def test_require_read_only_root_filesystem_rejects_a_writable_root(check, deployment, value):
    context = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    if value is None:
        del context["readOnlyRootFilesystem"]
    else:
        context["readOnlyRootFilesystem"] = value
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' has a writable root filesystem (securityContext.readOnlyRootFilesystem is not true)"
    ]


def test_require_read_only_root_filesystem_checks_init_containers(check, deployment):
    del deployment["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' has a writable root filesystem "
        "(securityContext.readOnlyRootFilesystem is not true)"
    ]
