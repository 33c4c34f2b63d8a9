"""require-non-root-user: no container runs as root, except a contained volume-owner step."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._hardening import each_container, effective, is_contained_root_init

NAME = "require-non-root-user"


def _problem(container, pod) -> str | None:
    user, non_root = effective(container, pod, "runAsUser"), effective(container, pod, "runAsNonRoot")
    if user == 0:
        if is_contained_root_init(container):
            return None
        return ("runs as root (runAsUser: 0); only an init container that drops ALL capabilities, adds at most "
                "CHOWN, has a read-only root filesystem and no privilege escalation may")
    if non_root is not True:
        return "does not enforce a non-root user (securityContext.runAsNonRoot is not true)"
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, container, pod in each_container(args):
        problem = _problem(container, pod)
        if problem:
            report_violation(f"{who} {problem}", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every Kubernetes container runs as an enforced non-root user.",
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        "Set securityContext.runAsNonRoot: true and a non-zero runAsUser/runAsGroup (pod or container level). "
        "If a volume must be handed to that user first, do it in an init container that runs as root with "
        "capabilities drop [ALL] add [CHOWN], readOnlyRootFilesystem: true and allowPrivilegeEscalation: false."
    ),
    url=doc_url(NAME),
)
