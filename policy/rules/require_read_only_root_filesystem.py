"""require-read-only-root-filesystem: containers write only to the volumes they declare."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._hardening import container_security, each_container

NAME = "require-read-only-root-filesystem"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, container, _ in each_container(args):
        if container_security(container).get("readOnlyRootFilesystem") is not True:
            report_violation(f"{who} has a writable root filesystem "
                             "(securityContext.readOnlyRootFilesystem is not true)", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every Kubernetes container has a read-only root filesystem.",
    validate=validate,
    severity=Severity.MEDIUM,
    remediation_steps=(
        "Set securityContext.readOnlyRootFilesystem: true on the container and mount an emptyDir where the "
        "image writes (/tmp, a socket directory) or a volume for its data."
    ),
    url=doc_url(NAME),
)
