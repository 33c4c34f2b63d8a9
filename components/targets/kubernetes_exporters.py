"""postgres_exporter per database on Kubernetes, scraped by the stack's own Prometheus.

The same exporter, command and labels as the Docker target's (components/targets/docker_monitoring.py), so
both targets feed the database rules the same series: `pg_up` and the connection counts
(DatabaseDown, DatabaseConnectionsHigh), scraped as job `postgres-<db>` with the database's
`database`, `service` and `version` set by relabeling, as the Docker scrape config's static labels
do. Without it DatabaseDown's absent() guard fires on every healthy stack. The blackbox exporter is
components/targets/kubernetes_probes.py; node_exporter reads a node, not a stack (a cluster add-on's
job, one DaemonSet per cluster), so NodeDiskAlmostFull has no series here until one exists
(docs/monitoring-kubernetes.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.config import HealthCheck, Resources
from components.monitoring import POSTGRES_EXPORTER_PORT, postgres_exporter_name
from components.targets.base import MonitoringBundle, ScrapeTarget, WorkloadSpec
from components.targets.kubernetes_network import NAME_LABEL, scrape_policy
from components.versioning import image_reference

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

# What the exporter needs for a scrape every interval (the Docker target's limits).
EXPORTER_RESOURCES = Resources(cpu_request="10m", cpu_limit="200m", memory_request="32Mi", memory_limit="64Mi")


def database_exporters(target: "KubernetesRuntime", bundle: MonitoringBundle, labels: dict[str, str],
                       parent: pulumi.Resource) -> list[pulumi.Resource]:
    """One postgres_exporter per database, its PodMonitor and the policy that lets Prometheus scrape it."""
    created: list[pulumi.Resource] = []
    for db in bundle.databases:
        created += _postgres_exporter(target, bundle, db, labels, parent)
    return created


def _static(labels) -> list[dict[str, str]]:
    """Relabelings that set fixed labels on every series of a target, as a static_config's `labels` do."""
    return [{"targetLabel": key, "replacement": value} for key, value in sorted(labels.items())]


def _pod_monitor(target, name: str, workload: str, endpoints: list[dict], labels, parent) -> pulumi.Resource:
    return k8s.apiextensions.CustomResource(
        f"scrape-{name}", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
        metadata={"name": f"platform-{name}", "namespace": target.namespace_name, "labels": labels},
        spec={"selector": {"matchLabels": {NAME_LABEL: workload}}, "podMetricsEndpoints": endpoints},
        opts=target.opts(parent))


def _postgres_exporter(target, bundle: MonitoringBundle, db, labels, parent) -> list[pulumi.Resource]:
    settings, name, job = bundle.settings, postgres_exporter_name(db.database), f"postgres-{db.database}"
    created = list(target.workload(WorkloadSpec(
        name=name, service=name, component="monitoring",
        image=image_reference(settings.postgres_exporter_image, settings.postgres_exporter_version),
        version=settings.postgres_exporter_version, port=POSTGRES_EXPORTER_PORT,
        command=["postgres-exporter", f"--web.listen-address=:{POSTGRES_EXPORTER_PORT}"],
        env={"DATA_SOURCE_URI": f"{db.host}:{db.port}/{db.dbname}?sslmode=disable", "DATA_SOURCE_USER": db.user},
        secret_env={"DATA_SOURCE_PASS": db.password},
        resources=EXPORTER_RESOURCES,
        health_check=HealthCheck(path="/metrics", port=POSTGRES_EXPORTER_PORT),
        clients_of=(db.labels.get("service", ""),),  # the database's network policy lets its clients in
    ), parent).resources)
    created.append(_pod_monitor(target, job, name, [{
        "targetPort": POSTGRES_EXPORTER_PORT, "path": "/metrics",
        "relabelings": [{"targetLabel": "job", "replacement": job}, *_static(db.labels)]}], labels, parent))
    created.append(scrape_policy(target, ScrapeTarget(job=job, workload=name, port=POSTGRES_EXPORTER_PORT),
                                 labels, parent))
    return created
