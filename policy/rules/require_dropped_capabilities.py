"""require-dropped-capabilities: containers drop every Linux capability."""

from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._hardening import ROOT_INIT_CAPABILITIES, capabilities, each_container, effective

NAME = "require-dropped-capabilities"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for who, container, pod in each_container(args):
        drop, add = capabilities(container)
        if "ALL" not in drop:
            report_violation(f"{who} does not drop all capabilities (securityContext.capabilities.drop "
                             "lacks ALL)", None)
        # A capability only works for root; the one root step may keep CHOWN (require-non-root-user).
        allowed = ROOT_INIT_CAPABILITIES if container.init and effective(container, pod, "runAsUser") == 0 else set()
        extra = sorted(add - allowed)
        if extra:
            report_violation(f"{who} adds capabilities {', '.join(extra)}", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that every Kubernetes container drops ALL capabilities and adds none back.",
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        "Set securityContext.capabilities.drop: [ALL] and add nothing. A port below 1024 needs no "
        "NET_BIND_SERVICE: set the pod sysctl net.ipv4.ip_unprivileged_port_start=0. Only an init container "
        "running as root to hand a volume to the pod's user may add CHOWN."
    ),
    url=doc_url(NAME),
)
