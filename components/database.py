"""PostgreSQL: one stateful workload per database, reachable only by its declared clients."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi import ResourceOptions

from components.config import DatabaseSpec, HealthCheck
from components.targets.base import RuntimeTarget, Volume, WorkloadSpec
from components.versioning import image_reference


@dataclass(frozen=True)
class PostgresDatabaseArgs:
    name: str
    spec: DatabaseSpec
    password: pulumi.Input[str]
    target: RuntimeTarget


class PostgresDatabase(pulumi.ComponentResource):
    def __init__(self, name: str, args: PostgresDatabaseArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:database:PostgresDatabase", name, None, opts)
        spec, target = args.spec, args.target
        self.workload_name = f"postgres-{args.name}"
        self.data_volume = Volume(name=f"{self.workload_name}-data", mount_path="/var/lib/postgresql/data",
                                  size=spec.storage_size)
        handle = target.workload(WorkloadSpec(
            name=self.workload_name,
            service=self.workload_name,
            component="database",
            image=image_reference(spec.image, spec.version),
            version=spec.version,
            port=spec.port,
            env={"POSTGRES_DB": spec.database, "POSTGRES_USER": spec.user,
                 "PGDATA": "/var/lib/postgresql/data/pgdata"},
            secret_env={"POSTGRES_PASSWORD": args.password},
            resources=spec.resources,
            # Postgres speaks no HTTP: pg_isready is its readiness and liveness probe.
            health_check=HealthCheck(command=["pg_isready", "-U", spec.user, "-d", spec.database],
                                     timeout_seconds=3, interval_seconds=10, retries=5, start_period_seconds=20),
            restart_policy="unless-stopped",
            log_rotation=spec.log_rotation,
            volume=self.data_volume,
            internal_only=True,
        ), parent=self)
        self.address = handle.address
        self.resources = handle.resources
        self.host = target.service_address(self.workload_name, spec.port).rsplit(":", 1)[0]
        self.port = spec.port
        self.register_outputs({"address": self.address})

    def connection_check(self, target: RuntimeTarget) -> list[str] | None:
        """A command that exits 0 when the database accepts an authenticated connection through
        its Service (run inside its own workload, where the credentials already are)."""
        script = ('PGPASSWORD="${POSTGRES_PASSWORD:-$(cat "${POSTGRES_PASSWORD_FILE:-/dev/null}")}" '
                  f'psql -h {self.host} -p {self.port} -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "select 1"')
        return target.exec_command(self.workload_name, script, stateful=True)

    def client_env(self, spec: DatabaseSpec) -> dict[str, str]:
        """Connection settings (without the password) for services that use this database."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": spec.database, "PGUSER": spec.user}

