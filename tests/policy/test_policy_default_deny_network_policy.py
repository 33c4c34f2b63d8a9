"""require-default-deny-network-policy."""

from __future__ import annotations

import pytest

from policy.rules import require_default_deny_network_policy

POLICY = require_default_deny_network_policy.POLICY
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
MESSAGE = ("namespace 'platform' runs postgres-main, postgres-main-backup, web without a default-deny NetworkPolicy "
           "(podSelector {}, policyTypes [Ingress, Egress], no rules)")


def _without_default_deny(stack):
    return [resource for resource in stack if resource[0] != NETWORK_POLICY]


def test_require_default_deny_network_policy_passes_the_known_good_stack(check_stack, good_stack):
    assert check_stack(POLICY, good_stack) == []


def test_require_default_deny_network_policy_rejects_a_namespace_without_one(check_stack, good_stack):
    assert check_stack(POLICY, _without_default_deny(good_stack)) == [MESSAGE]


@pytest.mark.parametrize("change", [
    lambda spec: spec.update(podSelector={"matchLabels": {"app.kubernetes.io/name": "web"}}),
    lambda spec: spec.update(policyTypes=["Ingress"]),
    lambda spec: spec.update(ingress=[{}]),
    lambda spec: spec.update(egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]),
], ids=["selects-some-pods", "ingress-only", "allows-all-ingress", "allows-all-egress"])
def test_require_default_deny_network_policy_rejects_a_policy_that_does_not_deny_everything(
        check_stack, good_stack, default_deny, change):
    change(default_deny["spec"])
    assert check_stack(POLICY, good_stack) == [MESSAGE]


def test_require_default_deny_network_policy_wants_it_in_the_workloads_namespace(check_stack, good_stack, default_deny):
    default_deny["metadata"]["namespace"] = "other"
    assert check_stack(POLICY, good_stack) == [MESSAGE]


def test_require_default_deny_network_policy_ignores_stacks_without_kubernetes_workloads(check_stack, docker_api):
    assert check_stack(POLICY, [("docker:index/container:Container", "api", docker_api)]) == []
