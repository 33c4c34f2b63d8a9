"""require-public-path-redundancy: in prod, the public path survives losing any one pod.

A stack policy. The public path is the edge and the services it routes to (the program labels
their Deployments deploy.platform/exposure=public). In prod each of their stable Deployments runs
at least MIN_REPLICAS replicas and a PodDisruptionBudget selects its pods, so a node drain or
an eviction never takes it down. Stacks whose `environment` output is dev or staging are not
checked; a stack that does not say which environment it is is checked (fails closed).
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import PolicyResource, ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from ._docs import doc_url
from ._workloads import (
    K8S_DEPLOYMENT,
    as_mapping,
    component_of,
    dig,
    kubernetes_labels,
    service_name,
)

NAME = "require-public-path-redundancy"
EXPOSURE_LABEL = "deploy.platform/exposure"
TRACK_LABEL = "deploy.platform/track"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
ROOT_STACK = "pulumi:pulumi:Stack"
UNCHECKED_ENVIRONMENTS = frozenset({"dev", "staging"})
MIN_REPLICAS = 2


def _environment(resources: list[PolicyResource]):
    for resource in resources:
        if resource.resource_type == ROOT_STACK:
            return resource.props.get("environment")
    return None


def _is_public(labels: Mapping) -> bool:
    return labels.get(EXPOSURE_LABEL) == "public" or component_of(labels) == "edge"


def _selects(pdb: Mapping, namespace, labels: Mapping) -> bool:
    """Whether the budget's matchLabels select these pod labels (the program writes no expressions)."""
    if (dig(pdb, "metadata", "namespace") or "default") != namespace:
        return False
    match = as_mapping(dig(pdb, "spec", "selector", "matchLabels"))
    return bool(match) and all(labels.get(key) == value for key, value in match.items())


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if _environment(args.resources) in UNCHECKED_ENVIRONMENTS:
        return
    budgets = [r.props for r in args.resources if r.resource_type == PDB]
    for resource in args.resources:
        if resource.resource_type != K8S_DEPLOYMENT:
            continue
        labels = kubernetes_labels(resource.resource_type, resource.props)
        if not _is_public(labels) or labels.get(TRACK_LABEL, "stable") != "stable":
            continue
        service = service_name(labels, resource.name)
        replicas = dig(resource.props, "spec", "replicas")
        replicas = 1 if replicas is None else replicas
        if replicas < MIN_REPLICAS:
            report_violation(f"service '{service}' is on the public path with {int(replicas)} replica(s); "
                             f"at least {MIN_REPLICAS} are required", resource.urn)
        namespace = dig(resource.props, "metadata", "namespace") or "default"
        pod_labels = as_mapping(dig(resource.props, "spec", "template", "metadata", "labels"))
        if not any(_selects(pdb, namespace, pod_labels) for pdb in budgets):
            report_violation(f"service '{service}' is on the public path without a PodDisruptionBudget "
                             "selecting its pods", resource.urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description="Checks that in prod every public-path Deployment runs at least two replicas under a PodDisruptionBudget.",
    validate=validate,
    severity=Severity.MEDIUM,
    remediation_steps=(
        "Run the edge and every public service with replicas >= 2 in prod and add a PodDisruptionBudget "
        "(maxUnavailable: 1) whose selector matches the Deployment's pods; the program's Kubernetes target "
        "does both for the services the edge routes to."
    ),
    url=doc_url(NAME),
)
