"""Scheduled PostgreSQL backups with checksums and pruning, plus restore drills.

The runbook this replaces: dump nightly, write a sha256 beside each dump, keep
seven days, never delete the newest good dump, and prove once a month that the
newest dump restores (measuring how long it took and how old the dump was).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi import ResourceOptions

from components.config import DatabaseSpec, HealthCheck, MonitoringSpec, Resources
from components.targets.base import JobSpec, RuntimeTarget, Volume, WorkloadSpec
from components.versioning import image_reference

BACKUP_ROOT = "/backups"
EXPORTER_PORT = 9102


@dataclass(frozen=True)
class BackupScheduleArgs:
    database: str
    workload: str  # the database workload's service name (postgres-<name>)
    spec: DatabaseSpec
    host: str
    password: pulumi.Input[str]
    monitoring: MonitoringSpec = MonitoringSpec()


class BackupSchedule(pulumi.ComponentResource):
    def __init__(self, name: str, args: BackupScheduleArgs, target: RuntimeTarget,
                 opts: ResourceOptions | None = None):
        super().__init__("platform:backup:BackupSchedule", name, None, opts)
        spec = args.spec
        volume = Volume(name=f"backups-{args.database}", mount_path=BACKUP_ROOT, size=spec.storage_size)
        common = dict(
            service=args.workload,
            image=image_reference(spec.image, spec.version),
            version=spec.version,
            env={"PGHOST": args.host, "PGPORT": str(spec.port), "PGDATABASE": spec.database,
                 "PGUSER": spec.user, "BACKUP_DIR": f"{BACKUP_ROOT}/{args.database}", "DATABASE": args.database,
                 "RETENTION_DAYS": str(spec.backup.retention_days)},
            secret_env={"PGPASSWORD": args.password},
            resources=Resources(cpu_request="50m", cpu_limit="500m", memory_request="64Mi", memory_limit="256Mi"),
            volume=volume,
            clients_of=(args.workload,),
            extra_labels={"deploy.platform/database": args.workload},
        )
        self.backup = target.scheduled_job(JobSpec(
            name=f"backup-{args.database}", component="backup", schedule=spec.backup.schedule,
            command=["sh", "-c", backup_script()], **common), parent=self)
        self.restore_drill = target.scheduled_job(JobSpec(
            name=f"restore-drill-{args.database}", component="restore-drill",
            schedule=spec.backup.restore_drill_schedule,
            command=["sh", "-c", restore_drill_script()], **common), parent=self)
        # The scheduled jobs leave their result in a file; this serves it to Prometheus, so
        # BackupStale and BackupFailed see real runs (components/alerting/catalogue.py).
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
            extra_labels={"deploy.platform/database": args.workload},
        ), parent=self)
        self.schedule = spec.backup.schedule
        self.retention_days = spec.backup.retention_days
        self.register_outputs({"schedule": self.schedule, "retention_days": self.retention_days})


# On Docker the password arrives as a file (docs/conventions.md); libpq reads PGPASSWORD.
LOAD_PASSWORD = '[ -n "${PGPASSWORD_FILE:-}" ] && PGPASSWORD="$(cat "$PGPASSWORD_FILE")" && export PGPASSWORD'


# Written on every exit, success or not: the exporter serves it as /metrics.
WRITE_METRICS = "\n".join([
    'metrics() {',
    '  mkdir -p "$BACKUP_DIR/.metrics"',
    '  last=$(cat "$BACKUP_DIR/last_success" 2>/dev/null || echo 0)',
    '  printf \'platform_backup_last_success_timestamp_seconds{database="%s"} %s\\n'
    'platform_backup_last_run_status{database="%s"} %s\\n\' "$DATABASE" "$last" "$DATABASE" "$1" '
    '> "$BACKUP_DIR/.metrics/metrics.tmp"',
    '  mv "$BACKUP_DIR/.metrics/metrics.tmp" "$BACKUP_DIR/.metrics/metrics"',
    '}',
    "trap 'code=$?; if [ $code -eq 0 ]; then metrics 1; else metrics 0; fi' EXIT",
])


def backup_script() -> str:
    """pg_dump to a temp name, rename when complete, checksum, record success, prune."""
    return "\n".join([
        "set -eu",
        WRITE_METRICS,
        LOAD_PASSWORD,
        'ts=$(date -u +%Y%m%dT%H%M%SZ)',
        'mkdir -p "$BACKUP_DIR" && cd "$BACKUP_DIR"',
        'pg_dump --format=custom --file="$ts.dump.partial"',
        # Only a complete dump gets the final name, so pruning and restores never see half a file.
        'mv "$ts.dump.partial" "$ts.dump"',
        'sha256sum "$ts.dump" > "$ts.dump.sha256"',
        'date -u +%s > last_success',
        'newest=$(ls -1 *.dump | sort | tail -n 1)',
        # Retention never removes the newest good dump, however old it is.
        'find . -maxdepth 1 -name "*.dump" -mtime "+$((RETENTION_DAYS - 1))" ! -name "$newest" '
        '-exec sh -c \'rm -f "$1" "$1.sha256"\' _ {} \\;',
        'echo "backup $ts ok: $(wc -c < "$ts.dump") bytes"',
    ])


def restore_drill_script() -> str:
    """Verify the newest dump's checksum, restore it into a scratch database, query, report RTO/RPO."""
    scratch = "restore_drill_$(date -u +%Y%m%d%H%M%S)"
    return "\n".join([
        "set -eu",
        LOAD_PASSWORD,
        'cd "$BACKUP_DIR"',
        'newest=$(ls -1 *.dump | sort | tail -n 1)',
        'sha256sum -c "$newest.sha256"',
        'start=$(date +%s)',
        f'scratch={scratch}',
        'createdb "$scratch"',
        'trap \'dropdb --if-exists "$scratch"\' EXIT',
        'pg_restore --no-owner --dbname="$scratch" "$newest"',
        'tables=$(psql -tA -d "$scratch" -c "select count(*) from information_schema.tables '
        'where table_schema not in (\'pg_catalog\', \'information_schema\')")',
        'end=$(date +%s)',
        'age=$(( end - $(date -r "$newest" +%s) ))',
        'printf \'{"drill":"restore","dump":"%s","tables":%s,"rto_seconds":%s,"rpo_seconds":%s}\\n\' '
        '"$newest" "$tables" "$((end - start))" "$age"',
    ])

