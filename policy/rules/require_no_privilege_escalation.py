"""require-no-privilege-escalation: no process can gain more privileges than its parent."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._hardening import container_security, each_container

NAME = "require-no-privilege-escalation"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, container, _ in each_container(args):
        # Unset means allowed (no_new_privs is not set): it must be false explicitly.
        if container_security(container).get("allowPrivilegeEscalation") is not False:
            report_violation(f"{who} does not set securityContext.allowPrivilegeEscalation: false", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every Kubernetes container sets allowPrivilegeEscalation to false explicitly.",
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        "Set securityContext.allowPrivilegeEscalation: false on every container, init containers included; "
        "left unset, setuid binaries in the image can gain privileges."
    ),
    url=doc_url(NAME),
)
