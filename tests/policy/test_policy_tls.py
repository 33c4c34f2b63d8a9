"""require-tls: edge containers and Ingresses serve TLS and the stack holds a certificate (stack policy)."""

from __future__ import annotations

from policy_helpers import UNKNOWN

from policy.rules import require_tls
from policy.rules.require_tls import NO_CERTIFICATE

POLICY = require_tls.POLICY
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"


def _without(stack, resource_type):
    return [r for r in stack if r[0] != resource_type]


def _edge_label(docker_edge: dict) -> dict:
    return next(e for e in docker_edge["labels"] if e["label"] == "deploy.platform/tls")


def test_require_tls_passes_known_good_stack(check_stack, good_stack):
    assert check_stack(POLICY, good_stack) == []


def test_require_tls_rejects_edge_container_without_tls_label(check_stack, good_stack, docker_edge):
    docker_edge["labels"].remove(_edge_label(docker_edge))
    assert check_stack(POLICY, good_stack) == [
        "service 'edge' is an edge container without the label deploy.platform/tls=enabled"
    ]


def test_require_tls_rejects_edge_container_with_tls_disabled(check_stack, good_stack, docker_edge):
    _edge_label(docker_edge)["value"] = "disabled"
    assert check_stack(POLICY, good_stack) == [
        "service 'edge' is an edge container without the label deploy.platform/tls=enabled"
    ]


def test_require_tls_ignores_tls_label_on_non_edge_containers(check_stack, good_stack, docker_api):
    assert all(e["label"] != "deploy.platform/tls" for e in docker_api["labels"])
    assert check_stack(POLICY, good_stack) == []


def test_require_tls_rejects_ingress_without_tls(check_stack, good_stack, ingress):
    del ingress["spec"]["tls"]
    assert check_stack(POLICY, good_stack) == ["service 'web' ingress has no spec.tls, so it serves plain HTTP"]


def test_require_tls_rejects_ingress_with_empty_tls(check_stack, good_stack, ingress):
    ingress["spec"]["tls"] = []
    assert check_stack(POLICY, good_stack) == ["service 'web' ingress has no spec.tls, so it serves plain HTTP"]


def test_require_tls_rejects_ingress_host_not_covered_by_tls(check_stack, good_stack, ingress):
    ingress["spec"]["rules"][0]["host"] = "www.example.com"
    assert check_stack(POLICY, good_stack) == [
        "service 'web' ingress does not cover host 'www.example.com' in spec.tls"
    ]


def test_require_tls_rejects_host_two_labels_below_a_wildcard(check_stack, good_stack, ingress):
    ingress["spec"]["rules"][1]["host"] = "eu.v1.api.example.com"
    assert check_stack(POLICY, good_stack) == [
        "service 'web' ingress does not cover host 'eu.v1.api.example.com' in spec.tls"
    ]


def test_require_tls_fails_stack_with_edge_but_no_certificate(check_stack, good_stack):
    assert check_stack(POLICY, _without(good_stack, CERTIFICATE)) == [NO_CERTIFICATE]


def test_require_tls_accepts_platform_tls_resource_as_certificate(check_stack, good_stack):
    stack = _without(good_stack, CERTIFICATE) + [("platform:tls:Certificate", "edge-tls", {})]
    assert check_stack(POLICY, stack) == []


def test_require_tls_needs_no_certificate_in_stack_without_edge(check_stack, statefulset, cronjob):
    stack = [
        ("kubernetes:apps/v1:StatefulSet", "postgres-main", statefulset),
        ("kubernetes:batch/v1:CronJob", "postgres-main-backup", cronjob),
    ]
    assert check_stack(POLICY, stack) == []


def test_require_tls_counts_kubernetes_edge_workload_as_an_edge(check_stack, deployment):
    deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "edge"
    assert check_stack(POLICY, [("kubernetes:apps/v1:Deployment", "web", deployment)]) == [NO_CERTIFICATE]


def test_require_tls_ignores_unknown_labels_on_resources_it_does_not_check(check_stack, good_stack):
    network = {"name": "platform-staging", "labels": [{"label": "owner", "value": UNKNOWN}]}
    assert check_stack(POLICY, good_stack + [("docker:index/network:Network", "net", network)]) == []
