"""postgres_exporter per database on Kubernetes, scraped by the stack's own Prometheus.

The same exporter, command and labels as the Docker target's (postgres_exporter_workload in
components/monitoring.py), so both targets feed the database rules the same series: `pg_up` and the connection counts
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

from components.monitoring import (
    POSTGRES_EXPORTER_PORT,
    postgres_exporter_job,
    postgres_exporter_name,
    postgres_exporter_workload,
)
from components.targets.base import MonitoringBundle, ScrapeTarget
from components.targets.kubernetes_network import NAME_LABEL, scrape_policy

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

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
    name, job = postgres_exporter_name(db.database), postgres_exporter_job(db.database)
    # The database's network policy lets the exporter in as one of its clients (clients_of).
    created = list(target.workload(postgres_exporter_workload(bundle, db), parent).resources)
    created.append(_pod_monitor(target, job, name, [{
        "targetPort": POSTGRES_EXPORTER_PORT, "path": "/metrics",
        "relabelings": [{"targetLabel": "job", "replacement": job}, *_static(db.labels)]}], labels, parent))
    created.append(scrape_policy(target, ScrapeTarget(job=job, workload=name, port=POSTGRES_EXPORTER_PORT),
                                 labels, parent))
    return created
