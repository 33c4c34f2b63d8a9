"""The Docker stack's own Prometheus and Alertmanager, with the alert rules rendered to a file, and
the exporters the rules read: node_exporter (the host's disks), postgres_exporter per database
and the blackbox exporter probing HTTPS through the edge (the same workloads as Kubernetes',
components/monitoring.py), all scraped through the prometheus.yml rendered here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pulumi
import pulumi_docker as docker
import yaml
from pulumi import ResourceOptions

from components.config import HealthCheck, MonitoringSpec
from components.monitoring import (
    BLACKBOX,
    BLACKBOX_EXPORTER_PORT,
    EDGE_TLS_PORT,
    POSTGRES_EXPORTER_PORT,
    PROBE_JOB,
    blackbox_workload,
    module_name,
    postgres_exporter_job,
    postgres_exporter_name,
    postgres_exporter_workload,
)
from components.targets.base import MonitoringBundle, Volume, WorkloadSpec, standard_labels
from components.targets.docker_containers import PROBE, cpus, labels
from components.versioning import image_reference, version_annotations

if TYPE_CHECKING:
    from components.targets.docker import DockerRuntime

# What Kubernetes would request for it; a Docker named volume is not sized (15 days of this stack's
# series stay far below it).
PROMETHEUS_STORAGE = "2Gi"
NODE_EXPORTER_PORT = 9100  # its upstream default; Kubernetes has no per-stack node_exporter


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
                   target.service_address),
               "/etc/prometheus/rules.yml": yaml.safe_dump(dict(bundle.rule_file), sort_keys=False)},
        health_check=HealthCheck(path="/-/ready"), internal_network=True,  # scrapes the exporters beside the databases
        # Its scrape config names every service's version, so a release replaces the container: on
        # a volume the series, and the `for:` state of pending alerts, outlive it (without one every
        # deploy emptied Prometheus, and range rules such as restarts over 15m forgot the release).
        volume=Volume(name="prometheus-data", mount_path="/prometheus", size=PROMETHEUS_STORAGE),
        # Where deployctl asks it for a canary's rates (rollout.prometheus.url), when set.
        published_ports={9090: settings.prometheus_host_port} if settings.prometheus_host_port else {},
    ), parent)
    return [*alertmanager.resources, *exporters, *prometheus.resources]


def _exporters(target: "DockerRuntime", bundle: MonitoringBundle, parent: pulumi.Resource) -> list[pulumi.Resource]:
    settings = bundle.settings
    created = _node_exporter(target, settings, parent)
    for db in bundle.databases:
        created += target.workload(postgres_exporter_workload(bundle, db), parent).resources
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


def prometheus_config(bundle: MonitoringBundle, rule_path: str, alertmanager: str,
                      address: Callable[[str, int], str]) -> str:
    """prometheus.yml: every scrape target and the exporters this module runs (`address(workload,
    port)` -> host:port)."""
    interval = f"{bundle.settings.scrape_interval_seconds}s"
    jobs = []
    for t in sorted(bundle.scrape_targets, key=lambda t: (t.job, t.workload)):
        canary = t.labels.get("track") == "canary"
        job: dict[str, Any] = {"job_name": f"{t.job}-canary" if canary else t.job,
                               "static_configs": [{"targets": [address(t.workload, t.port)], **_labels(t.labels)}]}
        if canary:  # its own scrape job (names are unique), the service's `job` label
            job["relabel_configs"] = [{"target_label": "job", "replacement": t.job}]
        jobs.append(job)
    jobs += _exporter_jobs(bundle, address)
    return yaml.safe_dump({
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "external_labels": dict(bundle.external_labels)},
        "rule_files": [rule_path],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": jobs,
    }, sort_keys=False)


def _labels(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"labels": dict(labels)} if labels else {}


def node_exporter_labels(settings: MonitoringSpec) -> dict[str, str]:
    return {"service": "node-exporter", "version": settings.node_exporter_version}


def _exporter_jobs(bundle: MonitoringBundle, address) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = [{
        "job_name": "node",
        "static_configs": [{"targets": [address("node-exporter", NODE_EXPORTER_PORT)],
                            "labels": node_exporter_labels(bundle.settings)}]}]
    jobs += [{"job_name": postgres_exporter_job(db.database),
              "static_configs": [{"targets": [address(postgres_exporter_name(db.database), POSTGRES_EXPORTER_PORT)],
                                  "labels": dict(db.labels)}]}
             for db in bundle.databases]
    if bundle.probes:
        # The blackbox exporter reaches the edge inside the stack's network; `instance` is the public URL.
        jobs.append({
            "job_name": PROBE_JOB, "metrics_path": "/probe",
            "static_configs": [{"targets": [f"https://{address('edge', EDGE_TLS_PORT)}{probe.path}"],
                                "labels": {"instance": probe.url, "__param_module": module_name(probe.host),
                                           **probe.labels}} for probe in bundle.probes],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"target_label": "__address__", "replacement": address(BLACKBOX, BLACKBOX_EXPORTER_PORT)},
            ]})
    return jobs
