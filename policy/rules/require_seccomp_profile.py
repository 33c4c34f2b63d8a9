"""require-seccomp-profile: every container runs under a seccomp profile."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._hardening import each_container, effective
from ._workloads import as_mapping

NAME = "require-seccomp-profile"
CONFINED = frozenset({"RuntimeDefault", "Localhost"})


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, container, pod in each_container(args):
        profile = as_mapping(effective(container, pod, "seccompProfile")).get("type")
        if profile not in CONFINED:
            found = f"'{profile}'" if profile else "none"
            report_violation(f"{who} runs without a seccomp profile "
                             f"(seccompProfile.type: {found}; expected RuntimeDefault or Localhost)", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every Kubernetes container runs with the RuntimeDefault or a Localhost seccomp profile.",
    validate=validate,
    severity=Severity.MEDIUM,
    remediation_steps=(
        "Set securityContext.seccompProfile.type: RuntimeDefault on the pod (or on each container); "
        "Unconfined or no profile leaves every system call open to the container."
    ),
    url=doc_url(NAME),
)
