"""Monitoring: the alert rules and Alertmanager routing from components/alerting, delivered to
the target — a PrometheusRule and an Alertmanager secret for the cluster's Prometheus Operator
on Kubernetes, the stack's own Prometheus, Alertmanager and exporters on Docker.

Every alert names the stack (Prometheus' external label `stack`), the service and the version
running when it fired (the scrape target labels `service` and `version`, set from the stack's
config; docs/alerting.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pulumi
import yaml
from pulumi import ResourceOptions

from components.alerting import (
    build_rule_groups,
    render_alertmanager_config,
    render_prometheus_rule_file,
)
from components.config import AlertingSpec, HealthCheck, MonitoringSpec, PlatformConfig, Resources
from components.config.tls import edge_certificate_verifiable
from components.targets.base import (
    MonitoringBundle,
    PostgresExporterTarget,
    ProbeTarget,
    RuntimeTarget,
    ScrapeTarget,
    WorkloadSpec,
)
from components.versioning import image_reference

# What both targets' exporters are (the Docker target's own scrape config and node_exporter:
# components/targets/docker_monitoring.py). Where they listen: their upstream default ports.
POSTGRES_EXPORTER_PORT = 9187
BLACKBOX_EXPORTER_PORT = 9115
EDGE_TLS_PORT = 443  # the edge's HTTPS entry point inside the stack's network
BLACKBOX_CONFIG = "/etc/blackbox-exporter/blackbox.yml"  # the directory the image has
BLACKBOX = "blackbox-exporter"  # the workload probing the public endpoints, on both targets
PROBE_JOB = "blackbox"  # its scrape job: the `job` the certificate rules select on (alerting/service_rules.py)
# What an exporter needs for a scrape every interval.
EXPORTER_RESOURCES = Resources(cpu_request="10m", cpu_limit="200m", memory_request="32Mi", memory_limit="64Mi")


@dataclass(frozen=True)
class MonitoringArgs:
    alerting: AlertingSpec
    settings: MonitoringSpec
    services: Sequence[str]
    databases: Sequence[str]
    scrape_targets: Sequence[ScrapeTarget]
    secrets: Mapping[str, pulumi.Output[str]]
    stack: str
    config: PlatformConfig
    database_workloads: Mapping[str, Any]  # database name -> PostgresDatabase (workload_name, host, port)
    target: RuntimeTarget


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:monitoring:Monitoring", name, None, opts)
        # The version each job's stable target runs (ServiceDown names it even when no target is left).
        jobs = {t.job: t.labels.get("version", "") for t in args.scrape_targets if t.labels.get("track") != "canary"}
        # Only scraped services have an `up` series: a service without a port (the worker) is not watched by
        # ServiceDown, where it could never fire; its container still counts for the restart rule.
        scraped = {service: jobs[service] for service in args.services if service in jobs}
        containers = [*args.services, *(args.database_workloads[db].workload_name for db in args.databases)]
        groups = build_rule_groups(args.alerting.thresholds, scraped, list(args.databases), containers)
        self.rule_file = render_prometheus_rule_file(groups)
        self.alert_names = [rule.name for group in groups for rule in group.rules]
        alertmanager_config = _alertmanager_yaml(args.alerting, args.secrets)
        args.target.monitoring(MonitoringBundle(
            rule_file=self.rule_file,
            alertmanager_config=alertmanager_config,
            scrape_targets=args.scrape_targets,
            settings=args.settings,
            external_labels={"stack": args.stack},
            probes=probe_targets(args.config),
            databases=[_postgres_target(db, args.config, args.database_workloads[db], args.secrets)
                       for db in args.databases],
            edge_tls_verified=edge_certificate_verifiable(args.config.edge.tls),
        ), parent=self)
        self.register_outputs({"alert_names": self.alert_names})


def probe_targets(config: PlatformConfig) -> list[ProbeTarget]:
    """Every public endpoint on every edge host, as users reach it: the service's health path under its prefix."""
    probes = []
    for host in config.edge.hosts:
        for service, spec in sorted(config.services.items()):
            if not spec.public:
                continue
            # The smoke test's URL: the health path under the service's prefix.
            health = spec.health_check.path if spec.health_check and spec.health_check.path else "/"
            path = spec.path_prefix.rstrip("/") + health
            probes.append(ProbeTarget(url=f"https://{host}:{config.edge.https_port}{path}", host=host, path=path,
                                      labels={"service": service, "version": spec.version}))
    return probes


def _postgres_target(db: str, config: PlatformConfig, database, secrets) -> PostgresExporterTarget:
    spec = config.databases[db]
    return PostgresExporterTarget(
        database=db, host=database.host, port=database.port, user=spec.user, dbname=spec.database,
        password=secrets[spec.password_secret],
        labels={"database": db, "service": database.workload_name, "version": spec.version})


def _alertmanager_yaml(alerting: AlertingSpec, secrets: Mapping[str, pulumi.Output[str]]) -> pulumi.Output[str]:
    def secret(key: str | None) -> pulumi.Input[str | None]:
        return secrets[key] if key else None

    # Rendered inside apply because the webhook URL and SMTP password are secrets; the result stays secret.
    return pulumi.Output.secret(pulumi.Output.all(
        secret(alerting.webhook_url_secret_key), secret(alerting.smtp_password_secret),
        secret(alerting.heartbeat_url_secret_key),
    ).apply(lambda values: yaml.safe_dump(render_alertmanager_config(
        alerting, webhook_url=values[0], smtp_password=values[1], heartbeat_url=values[2]), sort_keys=False)))


def module_name(host: str) -> str:
    """The blackbox module probing one edge host (its Host header and TLS server name)."""
    return "https_" + re.sub(r"[^a-z0-9]+", "_", host.lower()).strip("_")


def blackbox_config(bundle: MonitoringBundle) -> str:
    """blackbox.yml: one HTTPS module per edge host, so the probe sends the host's name (SNI and Host)."""
    modules = {}
    for host in sorted({probe.host for probe in bundle.probes}):
        modules[module_name(host)] = {"prober": "http", "timeout": "5s", "http": {
            "preferred_ip_protocol": "ip4", "fail_if_not_ssl": True,
            "headers": {"Host": host},
            # local-ca: no public CA signed the edge's certificate; its expiry is still measured.
            "tls_config": {"server_name": host, "insecure_skip_verify": not bundle.edge_tls_verified}}}
    return yaml.safe_dump({"modules": modules or {"https": {"prober": "http"}}}, sort_keys=True)


def blackbox_workload(bundle: MonitoringBundle) -> WorkloadSpec:
    """The blackbox exporter both targets run: one module per edge host (blackbox_config)."""
    settings = bundle.settings
    return WorkloadSpec(
        name=BLACKBOX, service=BLACKBOX, component="monitoring",
        image=image_reference(settings.blackbox_exporter_image, settings.blackbox_exporter_version),
        version=settings.blackbox_exporter_version, port=BLACKBOX_EXPORTER_PORT,
        command=["blackbox-exporter", f"--config.file={BLACKBOX_CONFIG}",
                 f"--web.listen-address=:{BLACKBOX_EXPORTER_PORT}"],
        files={BLACKBOX_CONFIG: blackbox_config(bundle)},
        resources=EXPORTER_RESOURCES,
        health_check=HealthCheck(path="/-/healthy", port=BLACKBOX_EXPORTER_PORT),
        internal_network=True,  # beside the other exporters the stack's Prometheus scrapes
    )


def postgres_exporter_name(database: str) -> str:
    return f"postgres-exporter-{database}"


def postgres_exporter_job(database: str) -> str:
    """The scrape job of one database's exporter: the `job` of its `pg_up` and connection series."""
    return f"postgres-{database}"


def postgres_exporter_workload(bundle: MonitoringBundle, db: PostgresExporterTarget) -> WorkloadSpec:
    """The postgres_exporter both targets run for one database: the same command, connection and
    labels, so both feed the database rules the same series (DatabaseDown, DatabaseConnectionsHigh)."""
    settings, name = bundle.settings, postgres_exporter_name(db.database)
    return WorkloadSpec(
        name=name, service=name, component="monitoring",
        image=image_reference(settings.postgres_exporter_image, settings.postgres_exporter_version),
        version=settings.postgres_exporter_version, port=POSTGRES_EXPORTER_PORT,
        command=["postgres-exporter", f"--web.listen-address=:{POSTGRES_EXPORTER_PORT}"],
        env={"DATA_SOURCE_URI": f"{db.host}:{db.port}/{db.dbname}?sslmode=disable", "DATA_SOURCE_USER": db.user},
        secret_env={"DATA_SOURCE_PASS": db.password},  # on Docker DATA_SOURCE_PASS_FILE names the file
        resources=EXPORTER_RESOURCES,
        health_check=HealthCheck(path="/metrics", port=POSTGRES_EXPORTER_PORT),
        clients_of=(db.labels.get("service", ""),),  # the database lets its clients in
        internal_network=True,
    )
