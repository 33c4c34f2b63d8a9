"""The whole product on one target: databases, services on release channels,
backups and the edge proxy. `__main__.py` builds exactly one of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
from pulumi import ResourceOptions

from components.backups import BackupSchedule, BackupScheduleArgs
from components.config import PlatformConfig
from components.config.volumes import volumes_backed_up_with, volumes_of
from components.database import PostgresDatabase, PostgresDatabaseArgs
from components.edge import ADMIN_PORT, EdgeProxy, EdgeProxyArgs
from components.migrations import migrations_for, migrations_of
from components.monitoring import Monitoring, MonitoringArgs
from components.predeploy import PreDeployBackup, PreDeployBackupArgs
from components.promotion import PromotionGate, PromotionGateArgs
from components.release import ReleaseChannel, ReleaseChannelArgs
from components.smoke import CommandCheck, HttpCheck, SmokeTest, SmokeTestArgs
from components.targets import runtime_for
from components.targets.base import RuntimeTarget, ScrapeTarget
from components.tls import EdgeCertificates, EdgeCertificatesArgs


@dataclass(frozen=True)
class PlatformArgs:
    config: PlatformConfig
    stack: str
    secrets: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


class Platform(pulumi.ComponentResource):
    def __init__(self, name: str, args: PlatformArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:app:Platform", name, None, opts)
        config, child = args.config, ResourceOptions(parent=self)
        self.gate = None
        if config.promotion.staging_stack:
            self.gate = PromotionGate(f"{name}-promotion", PromotionGateArgs(config=config, stack=args.stack), child)
        gate = self.gate.approved if self.gate and config.promotion.require_verified else None
        target = runtime_for(config, args.stack, parent=self, gate=gate)

        self.databases = {
            db_name: PostgresDatabase(f"{name}-{db_name}", PostgresDatabaseArgs(
                name=db_name, spec=spec, password=args.secrets[spec.password_secret], target=target), child)
            for db_name, spec in config.databases.items()
        }
        self.backups = {
            db_name: BackupSchedule(f"{name}-{db_name}-backup", BackupScheduleArgs(
                database=db_name, workload=database.workload_name, spec=config.databases[db_name],
                host=database.host, password=args.secrets[config.databases[db_name].password_secret],
                monitoring=config.monitoring, target=target,
                volumes=tuple(volumes_backed_up_with(config, db_name))),
                ResourceOptions.merge(child, ResourceOptions(depends_on=[database])))
            for db_name, database in self.databases.items()
        }
        self.predeploy_backups = self._predeploy_backups(name, config, target, child)
        # After the backup, before any workload of the database changes: each declared migration.
        self.migrations = migrations_for(name, config, target, args.secrets, self.databases,
                                         self.predeploy_backups, self)
        self.channels = {
            service: ReleaseChannel(f"{name}-{service}", ReleaseChannelArgs(
                service=service, spec=spec, target=target,
                secret_env=self._service_secrets(spec, args.secrets, config),
                database_env=self._database_env(spec, config),
                database_workloads=tuple(self.databases[db].workload_name for db in spec.databases),
                volumes=tuple(volumes_of(config, service))),
                # Its workloads change only after its databases' pre-deploy backups and migrations.
                ResourceOptions.merge(child, ResourceOptions(depends_on=[
                    *(self.predeploy_backups[db] for db in spec.databases if db in self.predeploy_backups),
                    *migrations_of(self.migrations, config, spec.databases)])))
            for service, spec in config.services.items()
        }
        routes = [channel.route for channel in self.channels.values() if channel.route]
        self.certificates = EdgeCertificates(f"{name}-tls", EdgeCertificatesArgs(
            hosts=config.edge.hosts, tls=config.edge.tls, target=target), child)
        self.edge = EdgeProxy(f"{name}-edge", EdgeProxyArgs(
            spec=config.edge, routes=routes, target=target, certificate=self.certificates.material,
            ready=[gate for channel in self.channels.values() for gate in channel.ready]), child)

        self.monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            alerting=config.alerting, settings=config.monitoring,
            services=["edge", *config.services], databases=list(config.databases),
            scrape_targets=self._scrape_targets(config), secrets=args.secrets,
            stack=args.stack, config=config, database_workloads=self.databases, target=target), child)

        self.smoke_test = self._smoke_test(name, config, target, child)
        self.target = target.name
        self.versions = self.versions_of(config)
        # Only what this update's smoke test passed; empty where no smoke test runs.
        self.verified_versions = self.smoke_test.verified if self.smoke_test else {}
        self.verified_history = self.smoke_test.verified_history if self.smoke_test else {}
        self.canaries = {service: {"version": spec.canary.version, "weight": spec.canary.weight}
                         for service, spec in config.services.items() if spec.canary}
        self.endpoints = {"edge": self.edge.urls, **{
            service: channel.stable.address for service, channel in self.channels.items()
            if config.services[service].port}}
        self.register_outputs({"target": self.target, "versions": self.versions,
                               "verified_versions": self.verified_versions,
                               "canaries": self.canaries, "endpoints": self.endpoints})

    def _predeploy_backups(self, name, config: PlatformConfig, target, child) -> dict[str, PreDeployBackup]:
        backups = {}
        for db_name, spec in config.databases.items():
            command = target.backup_now_command(f"backup-{db_name}")
            if not spec.backup.before_deploy or command is None:
                continue
            clients = {service: service_spec.version for service, service_spec in config.services.items()
                       if db_name in service_spec.databases}
            backups[db_name] = PreDeployBackup(f"{name}-{db_name}-predeploy-backup", PreDeployBackupArgs(
                database=db_name, command=command, client_versions=clients),
                opts=ResourceOptions.merge(child, ResourceOptions(
                    depends_on=[self.databases[db_name], self.backups[db_name]])))
        return backups

    def _smoke_test(self, name: str, config: PlatformConfig, target: RuntimeTarget,
                    child: ResourceOptions) -> SmokeTest | None:
        smoke = config.smoke_test
        if not smoke.enabled:
            return None
        checks = [HttpCheck(service=service, version=spec.version, image=spec.image, url=config.health_url(service))
                  for service, spec in config.services.items() if spec.public and spec.health_check]
        commands = [CommandCheck(name=f"database {db_name}", command=command)
                    for db_name, database in self.databases.items()
                    if (command := database.connection_check(target)) is not None]
        workloads = [resource for channel in self.channels.values() for resource in channel.stable.resources]
        workloads += [resource for database in self.databases.values() for resource in database.resources]
        versions = {**self.versions_of(config), "edge": config.edge.version}
        return SmokeTest(f"{name}-smoke", SmokeTestArgs(
            checks=checks, commands=commands, versions=versions, host_header=config.edge_host_header(),
            verify_tls=smoke.verify_tls, attempts=smoke.attempts, delay_seconds=smoke.delay_seconds,
            timeout_seconds=smoke.timeout_seconds, check_version=smoke.check_version,
            settle_seconds=smoke.settle_seconds),
            opts=ResourceOptions.merge(child, ResourceOptions(depends_on=[*workloads, self.edge])))

    @staticmethod
    def versions_of(config: PlatformConfig) -> dict[str, str]:
        return {service: spec.version for service, spec in config.services.items()}

    def _scrape_targets(self, config: PlatformConfig) -> list[ScrapeTarget]:
        # Services serve /metrics on their HTTP port; the edge on Traefik's admin entry point;
        # each database's backup results through its backup-metrics exporter.
        # Each target's labels name the service and the version deployed there, so alerts name them too.
        targets = [ScrapeTarget(job=service, workload=service, port=spec.port,
                                labels={"service": service, "version": spec.version, "track": "stable"})
                   for service, spec in config.services.items() if spec.port]
        targets += [ScrapeTarget(job=service, workload=f"{service}-canary", port=spec.port,
                                 labels={"service": service, "version": spec.canary.version, "track": "canary"})
                    for service, spec in config.services.items() if spec.port and spec.canary]
        targets.append(ScrapeTarget(job="edge", workload="edge", port=ADMIN_PORT,
                                    labels={"service": "edge", "version": config.edge.version}))
        targets += [ScrapeTarget(job=f"backup-{db}", workload=backup.exporter_name, port=backup.exporter_port,
                                 labels={"service": self.databases[db].workload_name,
                                         "version": config.databases[db].version}, version_from_pod=False)
                    for db, backup in self.backups.items()]
        return targets

    def _database_env(self, spec, config: PlatformConfig) -> dict[str, str]:
        env: dict[str, str] = {}
        for db_name in spec.databases:
            # The first database a service names is its default PG* connection.
            for key, value in self.databases[db_name].client_env(config.databases[db_name]).items():
                env.setdefault(key, value)
        return env

    @staticmethod
    def _service_secrets(spec, secrets, config) -> dict[str, pulumi.Output[str]]:
        found = {env_name: secrets[key] for env_name, key in spec.secrets.items()}
        if spec.databases and "PGPASSWORD" not in found:
            found["PGPASSWORD"] = secrets[config.databases[spec.databases[0]].password_secret]
        return found

