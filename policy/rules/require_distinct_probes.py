"""require-distinct-probes: readiness and liveness ask different questions.

Readiness takes a pod out of traffic while it is unhealthy; liveness restarts it. The same check
for both restarts pods for what only needed a pause (a slow dependency), in a loop. Compared as
kube-score's pod-probes-identical does: the same HTTP path and port, TCP port or command.
Containers without a port are exempt: nothing routes to them, so readiness gates nothing and
the health command is the one signal their image has (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Severity

from ._docs import doc_url
from ._workloads import (
    K8S_DEPLOYMENT,
    K8S_STATEFULSET,
    as_list,
    as_mapping,
    kubernetes_containers,
    labels_of,
    service_name,
    subject,
)

NAME = "require-distinct-probes"
PROBED_TYPES = frozenset({K8S_DEPLOYMENT, K8S_STATEFULSET})


def _handler(probe: Mapping) -> tuple | None:
    http, tcp, exec_ = (as_mapping(probe.get(key)) for key in ("httpGet", "tcpSocket", "exec"))
    if http:
        return ("httpGet", http.get("path") or "/", http.get("port"))
    if tcp:
        return ("tcpSocket", tcp.get("port"))
    if exec_:
        return ("exec", tuple(as_list(exec_.get("command"))))
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in PROBED_TYPES:
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    for container in kubernetes_containers(args.resource_type, args.props, include_init=False):
        if not as_list(container.spec.get("ports")):
            continue
        readiness = as_mapping(container.spec.get("readinessProbe"))
        liveness = as_mapping(container.spec.get("livenessProbe"))
        if readiness and liveness and _handler(readiness) == _handler(liveness):
            report_violation(f"{subject(service, container.where)} uses the same check for readiness and liveness "
                             f"({_handler(readiness)[0]})", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that a serving container's liveness probe is not the same check as its readiness probe.",
    validate=validate,
    severity=Severity.MEDIUM,
    remediation_steps=(
        "Keep the health check for readiness and probe liveness with something the process answers as long as "
        "it is not wedged, such as tcpSocket on its port."
    ),
    url=doc_url(NAME),
)
