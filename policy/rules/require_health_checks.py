"""require-health-checks: long-running services tell the platform when they are ready and alive."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._workloads import (
    DOCKER_CONTAINER,
    K8S_DEPLOYMENT,
    K8S_STATEFULSET,
    ONE_SHOT_COMPONENTS,
    as_list,
    as_mapping,
    component_of,
    kubernetes_containers,
    labels_of,
    service_name,
    subject,
)

NAME = "require-health-checks"
# Jobs, CronJobs and init containers run to completion: there is nothing to probe.
PROBED_TYPES = frozenset({K8S_DEPLOYMENT, K8S_STATEFULSET})
PROBES = ("readinessProbe", "livenessProbe")


def _docker_problem(props) -> str | None:
    tests = list(as_list(as_mapping(props.get("healthcheck")).get("tests")))
    if not tests:
        return "has no healthcheck (healthcheck.tests is empty)"
    if tests == ["NONE"]:
        return "disables its healthcheck (healthcheck.tests is [\"NONE\"])"
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != DOCKER_CONTAINER and args.resource_type not in PROBED_TYPES:
        return
    labels = labels_of(args.resource_type, args.props)
    if component_of(labels) in ONE_SHOT_COMPONENTS:
        return
    service = service_name(labels, args.name)
    if args.resource_type == DOCKER_CONTAINER:
        problem = _docker_problem(args.props)
        if problem:
            report_violation(f"{subject(service)} {problem}", None)
        return
    for container in kubernetes_containers(args.resource_type, args.props, include_init=False):
        missing = [probe for probe in PROBES if not container.spec.get(probe)]
        if missing:
            report_violation(f"{subject(service, container.where)} has no {', '.join(missing)}", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description=(
        "Checks that every long-running container has a health check (readiness and liveness probes on Kubernetes)."
    ),
    validate=validate,
    severity=Severity.MEDIUM,
    remediation_steps=(
        "Give the service a health check in stack config: Kubernetes Deployment and StatefulSet containers "
        "need readinessProbe and livenessProbe; Docker containers need healthcheck.tests (e.g. "
        "[\"CMD\", \"curl\", \"-f\", \"http://localhost:8080/health\"]), never [\"NONE\"]."
    ),
    url=doc_url(NAME),
)
