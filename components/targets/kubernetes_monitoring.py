"""The stack's own Prometheus and Alertmanager on Kubernetes, as Prometheus Operator objects.

The operator (a cluster add-on: devenv/cluster/addons/prometheus-operator on the local cluster)
turns them into pods. One pair per stack namespace, like the Docker target's own containers
(docs/monitoring-kubernetes.md says why not one Prometheus for the whole cluster):

- `Prometheus/platform` loads exactly this namespace's objects labelled
  `app.kubernetes.io/part-of: platform`: the PrometheusRule and the PodMonitors `monitoring()`
  creates. No namespace selector, so another stack's rules never evaluate against this stack's
  series (the rules select on `job`, not on the namespace).
- `Alertmanager/platform` reads the Secret `alertmanager-platform` (key `alertmanager.yaml`),
  the operator's convention for an Alertmanager named `platform`: the routing the program renders.
- A ServiceAccount and Role let Prometheus discover the pods and the Alertmanager endpoints of
  its own namespace, nothing else.
- Network paths through the namespace's default deny (enforced on a real cluster; the local one's
  bridge CNI accepts policies without enforcing them): Prometheus to the API server (discovery) and
  to this namespace's pods (scrapes, Alertmanager); Alertmanager from Prometheus, and out to the
  receivers (webhooks, SMTP relays: outside the cluster, at any address).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.config import MonitoringSpec
from components.targets.base import MonitoringBundle
from components.targets.kubernetes_exporters import database_exporters
from components.targets.kubernetes_network import scrape_policy
from components.targets.kubernetes_probes import blackbox_probes
from components.versioning import image_reference

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

NAME = "platform"
ALERTMANAGER_SECRET = f"alertmanager-{NAME}"  # what the operator reads for Alertmanager/platform
SERVICE_ACCOUNT = f"prometheus-{NAME}"
SELECTOR = {"matchLabels": {"app.kubernetes.io/part-of": "platform"}}
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def _version(version: str) -> dict[str, str]:
    """The operator picks flags and config fields by `version`; a digest tells it nothing, so then
    it is left out (the operator assumes its own default version)."""
    return {"version": f"v{version}"} if _SEMVER.match(version) else {}


def monitoring(target: "KubernetesRuntime", bundle: MonitoringBundle,
               parent: pulumi.Resource) -> list[pulumi.Resource]:
    """A PrometheusRule and the Alertmanager config secret, for the cluster's Prometheus Operator."""
    labels = {"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/component": "monitoring",
              "deploy.platform/stack": target.stack}
    created: list[pulumi.Resource] = [k8s.apiextensions.CustomResource(
        "alert-rules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
        metadata={"name": "platform-alerts", "namespace": target.namespace_name, "labels": labels},
        spec=dict(bundle.rule_file), opts=target.opts(parent))]
    for scraped in bundle.scrape_targets:
        if scraped.labels.get("track") == "canary":
            continue  # canary pods carry the service's app.kubernetes.io/name: its PodMonitor scrapes them
        created.append(_pod_monitor(target, scraped, labels, parent))
        created.append(scrape_policy(target, scraped, labels, parent))
    # postgres_exporter per database, as on Docker (components/targets/kubernetes_exporters.py).
    created += database_exporters(target, bundle, labels, parent)
    if not target.settings.render_to_directory:
        # alertmanager-<name> with alertmanager.yaml is the Prometheus Operator's convention.
        created.append(k8s.core.v1.Secret(
            "alertmanager-config", metadata=target.metadata(ALERTMANAGER_SECRET, labels),
            string_data={"alertmanager.yaml": bundle.alertmanager_config}, opts=target.opts(parent)))
    # The stack's own Prometheus and Alertmanager, run by the cluster's Prometheus Operator
    # (docs/monitoring-kubernetes.md).
    created += stack_pipeline(target.namespace_name, target.stack, labels, bundle.settings, target.opts(parent))
    created += blackbox_probes(target, bundle, labels, parent)
    return created


def _pod_monitor(target: "KubernetesRuntime", scraped, labels, parent) -> pulumi.Resource:
    """One PodMonitor per job: the rules select by `job`, so it is set explicitly; `service` and
    `version` come from the pod's own labels, so an alert names what ran in the pod that fired."""
    return k8s.apiextensions.CustomResource(
        f"scrape-{scraped.job}", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
        metadata={"name": f"platform-{scraped.job}", "namespace": target.namespace_name, "labels": labels},
        spec={"selector": {"matchLabels": {"app.kubernetes.io/name": scraped.workload}},
              "podMetricsEndpoints": [{"targetPort": scraped.port, "path": "/metrics", "relabelings": [
                  {"targetLabel": "job", "replacement": scraped.job},
                  {"targetLabel": "service", "replacement": scraped.labels.get("service", scraped.job)},
                  {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_version"],
                   "targetLabel": "version"} if scraped.version_from_pod else
                  {"targetLabel": "version", "replacement": scraped.labels.get("version", "")},
                  {"sourceLabels": ["__meta_kubernetes_pod_label_deploy_platform_track"],
                   "targetLabel": "track"},
              ]}]},
        opts=target.opts(parent))


def stack_pipeline(namespace: str, stack: str, labels: dict[str, str], settings: MonitoringSpec,
                   opts: ResourceOptions) -> Sequence[pulumi.Resource]:
    interval = f"{settings.scrape_interval_seconds}s"
    metadata = {"namespace": namespace, "labels": labels}
    account = k8s.core.v1.ServiceAccount(
        "prometheus-account", metadata={"name": SERVICE_ACCOUNT, **metadata}, opts=opts)
    role = k8s.rbac.v1.Role(
        "prometheus-discovery", metadata={"name": SERVICE_ACCOUNT, **metadata},
        rules=[
            {"apiGroups": [""], "resources": ["pods", "services", "endpoints"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        ], opts=opts)
    binding = k8s.rbac.v1.RoleBinding(
        "prometheus-discovery", metadata={"name": SERVICE_ACCOUNT, **metadata},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
        subjects=[{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
        opts=ResourceOptions.merge(opts, ResourceOptions(depends_on=[role, account])))
    alertmanager = k8s.apiextensions.CustomResource(
        "alertmanager", api_version="monitoring.coreos.com/v1", kind="Alertmanager",
        metadata={"name": NAME, **metadata},
        spec={
            "image": image_reference(settings.alertmanager_image, settings.alertmanager_version),
            **_version(settings.alertmanager_version),
            "replicas": 1,
            "configSecret": ALERTMANAGER_SECRET,
            "retention": "120h",
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
        }, opts=opts)
    prometheus = k8s.apiextensions.CustomResource(
        "prometheus", api_version="monitoring.coreos.com/v1", kind="Prometheus",
        metadata={"name": NAME, **metadata},
        spec={
            "image": image_reference(settings.prometheus_image, settings.prometheus_version),
            **_version(settings.prometheus_version),
            "replicas": 1,
            "serviceAccountName": SERVICE_ACCOUNT,
            "scrapeInterval": interval,
            "evaluationInterval": interval,
            # Namespace selectors left out: this namespace only.
            "podMonitorSelector": SELECTOR,
            "ruleSelector": SELECTOR,
            # Every alert names the stack it came from, whatever the target's labels.
            "externalLabels": {"stack": stack},
            "alerting": {"alertmanagers": [{"namespace": namespace, "name": "alertmanager-operated",
                                            "port": "web", "apiVersion": "v2"}]},
            "retention": "24h",
            "resources": {"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"memory": "512Mi"}},
        }, opts=ResourceOptions.merge(opts, ResourceOptions(depends_on=[binding, alertmanager])))
    return [account, role, binding, alertmanager, prometheus, *_network_paths(metadata, opts)]


def _network_paths(metadata: dict, opts: ResourceOptions) -> list[pulumi.Resource]:
    """The operator labels each pod with app.kubernetes.io/name (prometheus, alertmanager) and
    app.kubernetes.io/instance (the object's name).
    Ref: prometheus-operator v0.79.2 pkg/prometheus/server/operator.go and pkg/alertmanager/operator.go,
    makeSelectorLabels."""
    net = k8s.networking.v1
    prometheus = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": NAME}
    alertmanager = {"app.kubernetes.io/name": "alertmanager", "app.kubernetes.io/instance": NAME}

    def policy(name: str, pods: dict[str, str], **spec) -> pulumi.Resource:
        types = [kind for kind, key in (("Ingress", "ingress"), ("Egress", "egress")) if key in spec]
        return net.NetworkPolicy(name, metadata={"name": name, **metadata}, spec={
            "podSelector": {"matchLabels": pods}, "policyTypes": types, **spec}, opts=opts)

    return [
        policy("prometheus-egress", prometheus, egress=[
            {"to": [{"podSelector": {}}]},  # scrapes (each target's own policy lets Prometheus in) and Alertmanager
            # The API server, for discovery: its address is the cluster's, so any address on its usual ports.
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"},
                                                                   {"port": 6443, "protocol": "TCP"}]}]),
        policy("alertmanager-ingress", alertmanager, ingress=[
            {"from": [{"podSelector": {"matchLabels": prometheus}}], "ports": [{"port": 9093, "protocol": "TCP"}]}]),
        policy("alertmanager-egress", alertmanager, egress=[{}]),  # receivers: anywhere
    ]
