"""require-public-path-redundancy."""

from __future__ import annotations

import pytest

from policy.rules import require_public_path_redundancy

POLICY = require_public_path_redundancy.POLICY
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
PROD_ROOT = ("pulumi:pulumi:Stack", "platform-prod", {"environment": "prod"})


def _public(deployment: dict) -> dict:
    deployment["metadata"]["labels"]["deploy.platform/exposure"] = "public"
    return deployment


@pytest.fixture
def budget() -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "platform"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}}


def _stack(deployment, *extra):
    return [PROD_ROOT, (DEPLOYMENT, "web", deployment), *extra]


def test_require_public_path_redundancy_passes_two_replicas_under_a_budget(check_stack, deployment, budget):
    assert check_stack(POLICY, _stack(_public(deployment), (PDB, "web", budget))) == []


def test_require_public_path_redundancy_rejects_a_single_replica_in_prod(check_stack, deployment, budget):
    _public(deployment)["spec"]["replicas"] = 1
    assert check_stack(POLICY, _stack(deployment, (PDB, "web", budget))) == [
        "service 'web' is on the public path with 1 replica(s); at least 2 are required"
    ]


def test_require_public_path_redundancy_rejects_a_public_deployment_without_a_budget(check_stack, deployment):
    assert check_stack(POLICY, _stack(_public(deployment))) == [
        "service 'web' is on the public path without a PodDisruptionBudget selecting its pods"
    ]


def test_require_public_path_redundancy_rejects_a_budget_for_other_pods(check_stack, deployment, budget):
    budget["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "api"}
    assert check_stack(POLICY, _stack(_public(deployment), (PDB, "web", budget))) == [
        "service 'web' is on the public path without a PodDisruptionBudget selecting its pods"
    ]


def test_require_public_path_redundancy_counts_the_edge_as_public_without_the_label(check_stack, deployment):
    deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "edge"
    deployment["spec"]["replicas"] = 1
    assert len(check_stack(POLICY, _stack(deployment))) == 2


def test_require_public_path_redundancy_ignores_internal_deployments_and_canaries(check_stack, deployment):
    deployment["spec"]["replicas"] = 1
    assert check_stack(POLICY, _stack(deployment)) == []
    _public(deployment)["spec"]["template"]["metadata"]["labels"]["deploy.platform/track"] = "canary"
    assert check_stack(POLICY, _stack(deployment)) == []


@pytest.mark.parametrize("environment", ["dev", "staging"])
def test_require_public_path_redundancy_does_not_apply_to_dev_and_staging(check_stack, deployment, environment):
    _public(deployment)["spec"]["replicas"] = 1
    root = ("pulumi:pulumi:Stack", f"platform-{environment}", {"environment": environment})
    assert check_stack(POLICY, [root, (DEPLOYMENT, "web", deployment)]) == []


def test_require_public_path_redundancy_checks_a_stack_that_does_not_name_its_environment(check_stack, deployment):
    _public(deployment)["spec"]["replicas"] = 1
    assert len(check_stack(POLICY, [(DEPLOYMENT, "web", deployment)])) == 2
