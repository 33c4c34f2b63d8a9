"""The Kubernetes target's network paths (docs/security.md): the namespace denies all traffic,
both directions, for every pod; DNS is open to all; each path a workload needs (the world -> edge
-> public services, database clients -> database, Prometheus -> metrics ports, the edge -> ACME
solvers) is opened by a NetworkPolicy next to that workload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.targets.base import ScrapeTarget, WorkloadSpec, database_client_label
from components.targets.kubernetes_tls import SOLVER_PORT

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

meta = k8s.meta.v1
net = k8s.networking.v1

NAME_LABEL = "app.kubernetes.io/name"
# cert-manager labels every HTTP-01 solver pod it starts with this.
ACME_SOLVER_SELECTOR = {"acme.cert-manager.io/http01-solver": "true"}
LABELS_ACME = {"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/component": "tls"}


def namespace_policies(target: "KubernetesRuntime", parent: pulumi.Resource) -> None:
    """Default deny, both directions, for every pod of the namespace; then DNS for all.
    Each path a workload needs is opened next to that workload."""
    labels = {"app.kubernetes.io/part-of": "platform", "deploy.platform/stack": target.stack}
    net.NetworkPolicy("default-deny", metadata=target.metadata("default-deny", labels), spec=net.NetworkPolicySpecArgs(
        pod_selector=meta.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]), opts=target.opts(parent))
    dns = net.NetworkPolicyPeerArgs(
        namespace_selector=meta.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": "kube-system"}),
        pod_selector=meta.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}))
    net.NetworkPolicy("allow-dns", metadata=target.metadata("allow-dns", labels), spec=net.NetworkPolicySpecArgs(
        pod_selector=meta.LabelSelectorArgs(), policy_types=["Egress"],
        egress=[net.NetworkPolicyEgressRuleArgs(to=[dns], ports=[
            net.NetworkPolicyPortArgs(port=53, protocol="UDP"), net.NetworkPolicyPortArgs(port=53, protocol="TCP")])]),
        opts=target.opts(parent))


def policy(target: "KubernetesRuntime", name: str, labels, parent, pod_selector: dict[str, str], *,
           ingress=None, egress=None) -> net.NetworkPolicy:
    types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
    return net.NetworkPolicy(name, metadata=target.metadata(name, labels), spec=net.NetworkPolicySpecArgs(
        pod_selector=meta.LabelSelectorArgs(match_labels=pod_selector), policy_types=types,
        ingress=ingress, egress=egress), opts=target.opts(parent))


def edge_pods() -> net.NetworkPolicyPeerArgs:
    return net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels={NAME_LABEL: "edge"}))


def tcp(port: int) -> net.NetworkPolicyPortArgs:
    return net.NetworkPolicyPortArgs(port=port, protocol="TCP")


def workload_paths(target: "KubernetesRuntime", spec: WorkloadSpec, selector, labels, public: bool,
                   parent) -> list[pulumi.Resource]:
    """The paths this workload needs through the namespace's default deny."""
    created: list[pulumi.Resource] = []
    if spec.external:
        # Anyone may reach the edge's HTTP and HTTPS ports (Service ports land on these).
        created.append(policy(target, f"{spec.name}-from-anywhere", labels, parent, selector, ingress=[
            net.NetworkPolicyIngressRuleArgs(ports=[tcp(port) for port in (80, 443)])]))
        # ...and the edge reaches the services it routes to, on their ports only.
        upstreams = [({NAME_LABEL: name}, port) for name, port in sorted(target.hardening.public_ports.items())]
        if target.acme_solvers:
            upstreams.append((ACME_SOLVER_SELECTOR, SOLVER_PORT))
        created.append(policy(target, f"{spec.name}-to-services", labels, parent, selector, egress=[
            net.NetworkPolicyEgressRuleArgs(
                to=[net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels=match))],
                ports=[tcp(port)])
            for match, port in upstreams]))
    elif public and spec.port:
        created.append(policy(target, f"{spec.name}-from-edge", labels, parent, selector, ingress=[
            net.NetworkPolicyIngressRuleArgs(from_=[edge_pods()], ports=[tcp(spec.port)])]))
    if spec.internal_only:
        created += _internal_only_policies(target, spec, selector, labels, parent)
    return created


def _internal_only_policies(target: "KubernetesRuntime", spec: WorkloadSpec, selector, labels,
                            parent) -> list[pulumi.Resource]:
    """A database: reachable on its port by its declared clients (and itself: the connection
    check runs psql inside it through the Service), and they may reach it."""
    clients = {database_client_label(spec.service): "client"}
    port = [tcp(spec.port)]
    own = net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels=selector))
    return [
        policy(target, f"{spec.name}-internal-only", labels, parent, selector, ingress=[
            net.NetworkPolicyIngressRuleArgs(from_=[net.NetworkPolicyPeerArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=clients))], ports=port),
            net.NetworkPolicyIngressRuleArgs(from_=[own], ports=port)]),
        policy(target, f"{spec.name}-clients-egress", labels, parent, clients,
               egress=[net.NetworkPolicyEgressRuleArgs(to=[own], ports=port)]),
        policy(target, f"{spec.name}-self-egress", labels, parent, selector,
               egress=[net.NetworkPolicyEgressRuleArgs(to=[own], ports=port)]),
    ]


def scrape_policy(target: "KubernetesRuntime", scraped: ScrapeTarget, labels, parent) -> pulumi.Resource:
    """Prometheus, in its own namespace or this one, reaches a workload's metrics port."""
    prometheus = [
        net.NetworkPolicyPeerArgs(namespace_selector=meta.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": target.hardening.monitoring_namespace})),
        net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels={NAME_LABEL: "prometheus"})),
    ]
    return policy(target, f"scrape-{scraped.job}", labels, parent, {NAME_LABEL: scraped.workload}, ingress=[
        net.NetworkPolicyIngressRuleArgs(from_=prometheus, ports=[tcp(scraped.port)])])


def acme_solvers_from_edge(target: "KubernetesRuntime", parent) -> pulumi.Resource:
    """cert-manager's HTTP-01 solver pods (created at challenge time, in this namespace) answer
    the challenges the edge forwards to them, and nothing else."""
    return policy(target, "acme-solvers-from-edge", LABELS_ACME, parent, ACME_SOLVER_SELECTOR, ingress=[
        net.NetworkPolicyIngressRuleArgs(from_=[edge_pods()], ports=[tcp(SOLVER_PORT)])])
