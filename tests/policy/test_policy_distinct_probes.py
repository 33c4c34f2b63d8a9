"""require-distinct-probes."""

from __future__ import annotations

import pytest

from policy.rules import require_distinct_probes

POLICY = require_distinct_probes.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"

GOOD = [
    ("docker_api", "docker:index/container:Container", "api"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", STATEFULSET, "postgres-main"),
    ("cronjob", "kubernetes:batch/v1:CronJob", "postgres-main-backup"),
]


def _web(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_require_distinct_probes_passes_known_good_fixtures(request, check, fixture, resource_type, name):
    assert check(POLICY, resource_type, name, request.getfixturevalue(fixture)) == []


def test_require_distinct_probes_rejects_the_same_http_check_with_other_timings(check, deployment):
    web = _web(deployment)
    web["livenessProbe"] = {**web["readinessProbe"], "periodSeconds": 30, "initialDelaySeconds": 20}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' uses the same check for readiness and liveness (httpGet)"
    ]


def test_require_distinct_probes_accepts_http_readiness_with_tcp_liveness(check, deployment):
    _web(deployment)["livenessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 10}
    assert check(POLICY, DEPLOYMENT, "web", deployment) == []


def test_require_distinct_probes_rejects_the_same_command_on_a_serving_container(check, statefulset):
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 5432}]
    assert check(POLICY, STATEFULSET, "postgres-main", statefulset) == [
        "service 'postgres-main' container 'postgres' uses the same check for readiness and liveness (exec)"
    ]


def test_require_distinct_probes_exempts_containers_without_a_port(check, statefulset):
    # The fixture's database declares no port: its identical pg_isready probes are not checked.
    assert "ports" not in statefulset["spec"]["template"]["spec"]["containers"][0]
    assert check(POLICY, STATEFULSET, "postgres-main", statefulset) == []
