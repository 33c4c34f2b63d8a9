"""disallow-privileged-containers: no container gets the host's privileges."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._workloads import (
    DOCKER_CONTAINER,
    as_mapping,
    is_kubernetes_workload,
    is_workload,
    kubernetes_containers,
    labels_of,
    service_name,
    subject,
)

NAME = "disallow-privileged-containers"
KUBERNETES_FLAGS = ("privileged", "allowPrivilegeEscalation")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_workload(args.resource_type):
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    if args.resource_type == DOCKER_CONTAINER:
        if args.props.get("privileged") is True:
            report_violation(f"{subject(service)} runs privileged (privileged: true)", None)
    elif is_kubernetes_workload(args.resource_type):
        for container in kubernetes_containers(args.resource_type, args.props):
            context = as_mapping(container.spec.get("securityContext"))
            for flag in KUBERNETES_FLAGS:
                if context.get(flag) is True:
                    report_violation(f"{subject(service, container.where)} sets securityContext.{flag}: true", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that no container runs privileged or allows privilege escalation.",
    validate=validate,
    severity=Severity.CRITICAL,
    remediation_steps=(
        "Remove privileged: true from Docker containers; on Kubernetes set securityContext.privileged and "
        "securityContext.allowPrivilegeEscalation to false, and grant single capabilities if one is needed."
    ),
    url=doc_url(NAME),
)
