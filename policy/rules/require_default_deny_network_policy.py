"""require-default-deny-network-policy: a namespace with workloads denies all traffic by default.

A stack policy: whether a namespace is isolated depends on the NetworkPolicies beside its
workloads. The default deny selects every pod (empty podSelector), covers Ingress and Egress and
allows nothing; the paths workloads need are opened by further policies.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from ._docs import doc_url
from ._workloads import as_list, as_mapping, dig, is_kubernetes_workload

NAME = "require-default-deny-network-policy"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def is_default_deny(props: Mapping) -> bool:
    spec = as_mapping(props.get("spec"))
    selector = as_mapping(spec.get("podSelector"))
    return (not as_mapping(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))
            and {"Ingress", "Egress"} <= set(as_list(spec.get("policyTypes")))
            and not as_list(spec.get("ingress")) and not as_list(spec.get("egress")))


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    workloads: dict[str, list[str]] = {}  # namespace -> workload names
    denied: set[str] = set()
    for resource in args.resources:
        namespace = dig(resource.props, "metadata", "namespace") or "default"
        if resource.resource_type == NETWORK_POLICY and is_default_deny(resource.props):
            denied.add(namespace)
        elif is_kubernetes_workload(resource.resource_type):
            workloads.setdefault(namespace, []).append(resource.name)
    for namespace, names in sorted(workloads.items()):
        if namespace not in denied:
            report_violation(
                f"namespace '{namespace}' runs {', '.join(sorted(names))} without a default-deny NetworkPolicy "
                "(podSelector {}, policyTypes [Ingress, Egress], no rules)", None)


POLICY = StackValidationPolicy(
    name=NAME,
    description="Checks that every namespace with Kubernetes workloads has a default-deny NetworkPolicy.",
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        "Add a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules to the namespace "
        "(the program's Kubernetes target creates `default-deny`), then open each path a workload needs "
        "(DNS, edge -> services, clients -> database, Prometheus -> metrics) with its own policy."
    ),
    url=doc_url(NAME),
)
