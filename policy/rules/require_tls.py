"""require-tls: whatever the stack exposes is served over TLS with a managed certificate.

A stack policy, because "a certificate exists" is a property of the whole stack.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import PolicyResource, ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from ._docs import doc_url
from ._workloads import (
    CERT_MANAGER_CERTIFICATE,
    DOCKER_CONTAINER,
    K8S_INGRESS,
    TLS_LABEL,
    as_list,
    as_mapping,
    component_of,
    is_workload,
    labels_of,
    service_name,
    subject,
)

NAME = "require-tls"
PLATFORM_TLS_PREFIX = "platform:tls:"

NO_CERTIFICATE = (
    "the stack exposes an edge but has no TLS certificate "
    f"(a {CERT_MANAGER_CERTIFICATE} or a {PLATFORM_TLS_PREFIX}* resource)"
)


def _host_covered(host: str, tls_hosts: set[str]) -> bool:
    if host in tls_hosts:
        return True
    # A wildcard covers exactly one more DNS label: *.example.com covers app.example.com.
    _, dot, parent = host.partition(".")
    return bool(dot) and f"*.{parent}" in tls_hosts


def _ingress_problems(service: str, props: Mapping) -> list[str]:
    spec = as_mapping(props.get("spec"))
    tls = [as_mapping(entry) for entry in as_list(spec.get("tls"))]
    if not tls:
        return [f"{subject(service, 'ingress')} has no spec.tls, so it serves plain HTTP"]
    tls_hosts = {host for entry in tls for host in as_list(entry.get("hosts")) if isinstance(host, str)}
    problems = []
    for rule in as_list(spec.get("rules")):
        host = as_mapping(rule).get("host")
        if isinstance(host, str) and host and not _host_covered(host, tls_hosts):
            problems.append(f"{subject(service, 'ingress')} does not cover host '{host}' in spec.tls")
    return problems


def _is_edge(resource: PolicyResource, labels: Mapping) -> bool:
    return resource.resource_type == K8S_INGRESS or component_of(labels) == "edge"


def _has_certificate(resource: PolicyResource) -> bool:
    return resource.resource_type == CERT_MANAGER_CERTIFICATE or resource.resource_type.startswith(PLATFORM_TLS_PREFIX)


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    has_edge = has_certificate = False
    for resource in args.resources:
        has_certificate = has_certificate or _has_certificate(resource)
        if resource.resource_type != K8S_INGRESS and not is_workload(resource.resource_type):
            continue  # read labels only where they matter: an unknown label elsewhere would void the policy
        labels = labels_of(resource.resource_type, resource.props)
        if not _is_edge(resource, labels):
            continue
        has_edge = True
        service = service_name(labels, resource.name)
        if resource.resource_type == K8S_INGRESS:
            for problem in _ingress_problems(service, resource.props):
                report_violation(problem, resource.urn)
        elif resource.resource_type == DOCKER_CONTAINER and labels.get(TLS_LABEL) != "enabled":
            message = f"{subject(service)} is an edge container without the label {TLS_LABEL}=enabled"
            report_violation(message, resource.urn)
    if has_edge and not has_certificate:
        report_violation(NO_CERTIFICATE, None)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "Checks that the edge serves TLS: edge containers and Ingresses enable it and a certificate resource exists."
    ),
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        f"Label the Docker edge container {TLS_LABEL}=enabled and configure it with the certificate; give every "
        "Ingress a spec.tls entry whose hosts cover all its rule hosts; create the certificate in the stack "
        f"(cert-manager Certificate, or the program's {PLATFORM_TLS_PREFIX}* component)."
    ),
    url=doc_url(NAME),
)
