"""require-resource-limits: no container may starve its neighbours."""

from __future__ import annotations

from numbers import Real

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._workloads import (
    DOCKER_CONTAINER,
    dig,
    is_kubernetes_workload,
    is_workload,
    kubernetes_containers,
    labels_of,
    service_name,
    subject,
)

NAME = "require-resource-limits"
KUBERNETES_FIELDS = (("limits", "cpu"), ("limits", "memory"), ("requests", "cpu"), ("requests", "memory"))


def _set(value: object) -> bool:
    return value is not None and value != ""


def _positive_number(value: object) -> bool:
    # The engine sends numbers as floats (protobuf Struct); cpus is a string such as "0.5".
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, Real) and value > 0


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_workload(args.resource_type):
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    if args.resource_type == DOCKER_CONTAINER:
        if not _positive_number(args.props.get("memory")):
            report_violation(f"{subject(service)} has no memory limit (memory, in MB, must be > 0)", None)
        if not _positive_number(args.props.get("cpus")):
            report_violation(f"{subject(service)} has no CPU limit (cpus must be > 0)", None)
    elif is_kubernetes_workload(args.resource_type):
        for container in kubernetes_containers(args.resource_type, args.props):
            resources = container.spec.get("resources")
            missing = [f"resources.{a}.{b}" for a, b in KUBERNETES_FIELDS if not _set(dig(resources, a, b))]
            if missing:
                report_violation(f"{subject(service, container.where)} has no {', '.join(missing)}", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every container declares CPU and memory limits (and requests on Kubernetes).",
    validate=validate,
    severity=Severity.MEDIUM,
    remediation_steps=(
        "Set the service's resources in stack config: Kubernetes containers need resources.limits and "
        "resources.requests for cpu and memory; Docker containers need memory (MB) > 0 and cpus."
    ),
    url=doc_url(NAME),
)
