"""Scheduled backups of a PostgreSQL database and the volumes backed up with it, with checksums,
retention and restore drills.

The runbook this replaces: dump nightly with the media files beside the dump, write a sha256
beside each file, keep seven days, never delete the newest good backup, never make room by
deleting good backups, and prove once a month that the newest backup restores (measuring how long
it took and how old it was). The scripts: components/backup_scripts.py; the operator's procedure:
docs/runbooks/backups.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi import ResourceOptions

from components.backup_scripts import VOLUMES_ROOT, backup_script, restore_script
from components.config import DatabaseSpec, HealthCheck, MonitoringSpec, Resources
from components.config.volumes import BackedUpVolume
from components.targets.base import JobSpec, RuntimeTarget, Volume, WorkloadSpec
from components.versioning import image_reference

__all__ = ["BackupSchedule", "BackupScheduleArgs", "backup_script", "restore_drill_script"]

BACKUP_ROOT = "/backups"
EXPORTER_PORT = 9102


@dataclass(frozen=True)
class BackupScheduleArgs:
    database: str
    workload: str  # the database workload's service name (postgres-<name>)
    spec: DatabaseSpec
    host: str
    password: pulumi.Input[str]
    target: RuntimeTarget
    monitoring: MonitoringSpec = MonitoringSpec()
    volumes: tuple[BackedUpVolume, ...] = ()  # archived with each dump (config/volumes.py)


class BackupSchedule(pulumi.ComponentResource):
    def __init__(self, name: str, args: BackupScheduleArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:backup:BackupSchedule", name, None, opts)
        spec, target = args.spec, args.target
        volume = Volume(name=f"backups-{args.database}", mount_path=BACKUP_ROOT, size=spec.storage_size)
        # The service's own claim / Docker volume, mounted where the scripts look for it.
        data = tuple(Volume(name=v.volume_name, mount_path=f"{VOLUMES_ROOT}/{v.volume_name}", size=v.size)
                     for v in args.volumes)
        retention = spec.backup.retention_count
        common = dict(
            service=args.workload,
            image=image_reference(spec.image, spec.version),
            version=spec.version,
            env={"PGHOST": args.host, "PGPORT": str(spec.port), "PGDATABASE": spec.database,
                 "PGUSER": spec.user, "BACKUP_DIR": f"{BACKUP_ROOT}/{args.database}", "DATABASE": args.database,
                 "RETENTION_DAYS": str(spec.backup.retention_days),
                 **({"RETENTION_COUNT": str(retention)} if retention else {}),
                 **({"VOLUMES": " ".join(v.name for v in data)} if data else {})},
            secret_env={"PGPASSWORD": args.password},
            resources=Resources(cpu_request="50m", cpu_limit="500m", memory_request="64Mi", memory_limit="256Mi"),
            volume=volume,
            data_volumes=data,
            clients_of=(args.workload,),
            internal_network=True,
            extra_labels={"deploy.platform/database": args.workload},
        )
        child = self
        self.backup = target.scheduled_job(JobSpec(
            name=f"backup-{args.database}", component="backup", schedule=spec.backup.schedule,
            command=["sh", "-c", backup_script()], **common), parent=child)
        # One restore job: the monthly drill restores into scratch; deployctl runs it with
        # RESTORE_INTO=live (and RESTORE_BACKUP=<set>) to restore over the live data.
        self.restore_drill = target.scheduled_job(JobSpec(
            name=f"restore-drill-{args.database}", component="restore-drill",
            schedule=spec.backup.restore_drill_schedule,
            command=["sh", "-c", restore_script()], writes_data_volumes=bool(data), **common), parent=child)
        # The scheduled jobs leave their result in a file; this serves it to Prometheus, so
        # BackupStale and BackupFailed see real runs (components/alerting/database_rules.py).
        self.exporter_name, self.exporter_port = f"backup-metrics-{args.database}", EXPORTER_PORT
        metrics = args.monitoring
        metrics_dir = f"{volume.mount_path}/{args.database}/.metrics"
        self.exporter = target.workload(WorkloadSpec(
            name=self.exporter_name, service=self.exporter_name, component="backup",
            image=image_reference(metrics.exporter_image, metrics.exporter_version), version=metrics.exporter_version,
            port=EXPORTER_PORT,
            # The directory appears with the first backup; until then /metrics answers 404 and the
            # scrape fails, which no backup alert mistakes for a good backup.
            command=["sh", "-c", f'mkdir -p "{metrics_dir}" && exec httpd -f -p {EXPORTER_PORT} -h "{metrics_dir}"'],
            resources=Resources(cpu_request="10m", cpu_limit="100m", memory_request="16Mi", memory_limit="32Mi"),
            health_check=HealthCheck(command=["pidof", "httpd"]), shared_volume=volume,
            internal_network=True,  # beside the database it reports on, for the stack's Prometheus
            extra_labels={"deploy.platform/database": args.workload},
        ), parent=self)
        self.schedule = spec.backup.schedule
        self.retention_days = spec.backup.retention_days
        self.volumes = [v.volume_name for v in args.volumes]
        self.register_outputs({"schedule": self.schedule, "retention_days": self.retention_days,
                               "volumes": self.volumes})


def restore_drill_script() -> str:
    """The restore job's script (scratch by default: the drill)."""
    return restore_script()
