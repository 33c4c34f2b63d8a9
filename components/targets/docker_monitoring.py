"""The Docker stack's own Prometheus and Alertmanager, with the alert rules rendered to a file, and
the exporters the rules read: node_exporter (the host's disks), postgres_exporter per database
(the same command and labels as Kubernetes', kubernetes_exporters.py) and the blackbox exporter
probing HTTPS through the edge (components/monitoring.py renders their configuration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_docker as docker
import yaml
from pulumi import ResourceOptions

from components.config import HealthCheck, Resources
from components.monitoring import (
    NODE_EXPORTER_PORT,
    POSTGRES_EXPORTER_PORT,
    blackbox_workload,
    postgres_exporter_name,
    prometheus_config,
)
from components.targets.base import MonitoringBundle, WorkloadSpec, standard_labels
from components.targets.docker_containers import PROBE, cpus, labels
from components.versioning import image_reference, version_annotations

if TYPE_CHECKING:
    from components.targets.docker import DockerRuntime


def monitoring(target: "DockerRuntime", bundle: MonitoringBundle, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
    settings = bundle.settings
    alertmanager = target.workload(WorkloadSpec(
        name="alertmanager", service="alertmanager", component="monitoring",
        image=image_reference(settings.alertmanager_image, settings.alertmanager_version),
        version=settings.alertmanager_version, port=9093,
        command=["alertmanager", "--config.file=/etc/alertmanager/alertmanager.yml",
                 "--storage.path=/alertmanager"],
        files={"/etc/alertmanager/alertmanager.yml": bundle.alertmanager_config},
        health_check=HealthCheck(path="/-/ready"), internal_network=True,
    ), parent)
    exporters = _exporters(target, bundle, parent)
    prometheus = target.workload(WorkloadSpec(
        name="prometheus", service="prometheus", component="monitoring",
        image=image_reference(settings.prometheus_image, settings.prometheus_version),
        version=settings.prometheus_version, port=9090,
        command=["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                 "--storage.tsdb.retention.time=15d"],
        files={"/etc/prometheus/prometheus.yml": prometheus_config(
                   bundle, "/etc/prometheus/rules.yml", target.service_address("alertmanager", 9093),
                   target.service_address, exporters=True),
               "/etc/prometheus/rules.yml": yaml.safe_dump(dict(bundle.rule_file), sort_keys=False)},
        health_check=HealthCheck(path="/-/ready"), internal_network=True,  # scrapes the exporters beside the databases
    ), parent)
    return [*alertmanager.resources, *exporters, *prometheus.resources]


def _exporters(target: "DockerRuntime", bundle: MonitoringBundle, parent: pulumi.Resource) -> list[pulumi.Resource]:
    settings = bundle.settings
    created = _node_exporter(target, settings, parent)
    pg_image = image_reference(settings.postgres_exporter_image, settings.postgres_exporter_version)
    for db in bundle.databases:
        created += target.workload(WorkloadSpec(
            name=postgres_exporter_name(db.database), service=postgres_exporter_name(db.database),
            component="monitoring", image=pg_image, version=settings.postgres_exporter_version,
            port=POSTGRES_EXPORTER_PORT,
            command=["postgres-exporter", f"--web.listen-address=:{POSTGRES_EXPORTER_PORT}"],
            env={"DATA_SOURCE_URI": f"{db.host}:{db.port}/{db.dbname}?sslmode=disable",
                 "DATA_SOURCE_USER": db.user},
            secret_env={"DATA_SOURCE_PASS": db.password},  # DATA_SOURCE_PASS_FILE names the file
            resources=Resources(cpu_request="10m", cpu_limit="200m", memory_request="32Mi", memory_limit="64Mi"),
            health_check=HealthCheck(path="/metrics", port=POSTGRES_EXPORTER_PORT),
            clients_of=(db.labels.get("service", ""),), internal_network=True,
        ), parent).resources
    if bundle.probes:
        created += target.workload(blackbox_workload(bundle), parent).resources
    return created


def _node_exporter(target: "DockerRuntime", settings, parent: pulumi.Resource) -> list[pulumi.Resource]:
    """node_exporter reads the host's filesystems through a read-only bind mount of its root."""
    node_image = image_reference(settings.node_exporter_image, settings.node_exporter_version)
    image = target.image(node_image, parent)
    container_labels = {**standard_labels(target.stack, "node-exporter", "monitoring", settings.node_exporter_version),
                        **version_annotations(settings.node_exporter_version)}
    return [image, docker.Container(
        "node-exporter", name=f"{target.stack}-node-exporter", image=node_image,
        entrypoints=["node-exporter", "--path.rootfs=/host", f"--web.listen-address=:{NODE_EXPORTER_PORT}",
                     "--no-collector.textfile", "--no-collector.systemd",  # no textfiles, no systemd here
                     # The host's filesystems, not the files Docker binds into this container.
                     r"--collector.filesystem.mount-points-exclude=^/(dev|proc|run|sys|var/lib/docker/.+)($|/)"
                     r"|^/etc/(hostname|hosts|resolv\.conf)$"],
        labels=labels(container_labels), restart="unless-stopped", memory=64, memory_swap=64, cpus=cpus("200m"),
        log_driver="json-file", log_opts={"max-size": "10m", "max-file": "3"},
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=target.backend.name, aliases=["node-exporter"])],
        mounts=[docker.ContainerMountArgs(type="bind", source="/", target="/host", read_only=True)],
        # Every long-running container has a health check (policy require-health-checks).
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", "sh", "-c", PROBE.format(timeout=5, port=NODE_EXPORTER_PORT, path="/metrics")],
            interval="15s", timeout="6s", retries=3, start_period="10s"),
        wait=False, opts=ResourceOptions(parent=parent, provider=target.provider, depends_on=[image]))]
