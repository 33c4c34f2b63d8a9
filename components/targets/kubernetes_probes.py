"""HTTPS probes through the edge on Kubernetes: the blackbox exporter, as on Docker.

The stack's blackbox exporter (the same image and `blackbox.yml` as the Docker target's,
components/monitoring.py) probes every public endpoint on every edge host through the edge's
Service, port 443, with the host's name as SNI and Host header, so `probe_ssl_earliest_cert_expiry`
is the certificate clients get: what the certificate expiry alerts read. The stack's Prometheus
(a Prometheus Operator object selecting this namespace's PodMonitors) scrapes it through one
PodMonitor whose endpoints are the probes: `/probe` with the module and target as parameters,
relabelled like the Docker scrape job (`job="blackbox"`, the public URL as `instance`, the probed
service's `service` and `version`), so one rule file fits both targets.
Ref: https://github.com/prometheus/blackbox_exporter#prometheus-configuration
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.monitoring import (
    BLACKBOX,
    BLACKBOX_EXPORTER_PORT,
    EDGE_TLS_PORT,
    PROBE_JOB,
    blackbox_workload,
    module_name,
)
from components.targets.base import MonitoringBundle, ProbeTarget, ScrapeTarget
from components.targets.kubernetes_network import NAME_LABEL, edge_pods, policy, scrape_policy, tcp

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

def probe_monitor_spec(probes: Sequence[ProbeTarget], edge_address: str) -> dict:
    """The PodMonitor's spec: one endpoint per probe (`edge_address`: the edge Service's host:port)."""
    endpoints = []
    for probe in probes:
        relabelings = [{"targetLabel": "job", "replacement": PROBE_JOB},
                       {"targetLabel": "instance", "replacement": probe.url},
                       *({"targetLabel": key, "replacement": value} for key, value in sorted(probe.labels.items()))]
        endpoints.append({"targetPort": BLACKBOX_EXPORTER_PORT, "path": "/probe",
                          "params": {"module": [module_name(probe.host)], "target": [f"https://{edge_address}{probe.path}"]},
                          "relabelings": relabelings})
    return {"selector": {"matchLabels": {"app.kubernetes.io/name": BLACKBOX}}, "podMetricsEndpoints": endpoints}


def edge_probe_address(service_address) -> str:
    """host:port of the edge's HTTPS Service port, given the runtime's service_address(name, port)."""
    return service_address("edge", EDGE_TLS_PORT)


def probe_scrape_target() -> ScrapeTarget:
    """The exporter as a scrape target (what the namespace's network policy opens to Prometheus)."""
    return ScrapeTarget(job=PROBE_JOB, workload=BLACKBOX, port=BLACKBOX_EXPORTER_PORT)


def blackbox_probes(target: "KubernetesRuntime", bundle: MonitoringBundle, labels,
                    parent: pulumi.Resource) -> list[pulumi.Resource]:
    """The blackbox exporter probing every public endpoint through the edge Service, its
    PodMonitor and network paths."""
    if not bundle.probes:
        return []
    handle = target.workload(blackbox_workload(bundle), parent)
    selector = {NAME_LABEL: BLACKBOX}
    monitor = k8s.apiextensions.CustomResource(
        "scrape-blackbox", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
        metadata={"name": "platform-blackbox", "namespace": target.namespace_name, "labels": labels},
        spec=probe_monitor_spec(bundle.probes, edge_probe_address(target.service_address)), opts=target.opts(parent))
    to_edge = policy(target, f"{BLACKBOX}-to-edge", labels, parent, selector, egress=[
        k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[edge_pods()], ports=[tcp(443)])])
    scraped = scrape_policy(target, probe_scrape_target(), labels, parent)
    return [*handle.resources, monitor, to_edge, scraped]
