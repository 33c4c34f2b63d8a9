"""The restore drill, on demand, and the restore itself: the database's restore job run now.

The program schedules a monthly restore drill per database (components/backups.py, scripts in
components/backup_scripts.py): verify the newest backup set's checksums, restore its dump into a
scratch database and each volume archived with it (components/config/volumes.py) into a scratch directory,
check every restored file against the sha256 taken at backup time, and print one JSON line with
`rto_seconds` and `rpo_seconds`. `deployctl drill restore` runs that same job now through the
stack's target (components/targets/jobs.py: a Job from the CronJob on Kubernetes, the job
container's script on Docker), optionally after a fresh backup, and writes evidence judged against
`drills.restoreSeconds` (RTO) and `backup.maxAgeHours` (RPO). The evidence names the stack-history
update whose configuration was deployed when the restored backup was taken (`deployctl rollback
--to-version N` re-applies it), so data and configuration are recovered as one release.

`restore_backup` runs the same job with RESTORE_INTO=live: the set's dump over the live database
and its archives over the live volumes (what `deployctl rollback --restore-data` reuses).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Callable, Sequence

from components.config import PlatformConfig
from components.config.volumes import volumes_backed_up_with
from components.targets.jobs import JobError, JobResult, JobRunner, job_runner
from deployctl.evidence import Evidence
from deployctl.history import Release
from deployctl.workspace import DeployError

__all__ = ["JobResult", "drill_report", "release_at", "restore_backup", "restore_drill"]


def drill_report(log: str) -> dict | None:
    """The restore job's JSON line (`{"drill":"restore",...}`), the last one if it retried."""
    reports = []
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("{") and '"drill"' in line:
            try:
                reports.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return reports[-1] if reports else None


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def release_at(releases: Sequence[Release], epoch: float) -> dict | None:
    """The stack-history update whose configuration was deployed at `epoch` (the newest update
    that succeeded by then), as the evidence names it; None when history knows none."""
    found = None
    for release in releases:
        finished = _epoch(release.end_time)
        if release.succeeded and finished is not None and finished <= epoch:
            found = release
    if found is None:
        return None
    config = json.dumps(found.plain_config(), sort_keys=True).encode()
    return {"update": found.number, "message": found.message, "finished_at": found.end_time,
            "versions": found.versions, "config_sha256": hashlib.sha256(config).hexdigest(),
            "recover_config": f"deployctl rollback <stack> --to-version {found.number}"}


def _run(jobs: JobRunner, job: str, timeout: float, on_progress: Callable[[str], None],
         env: dict[str, str] | None = None) -> JobResult:
    try:
        return jobs.run(job, timeout=timeout, on_progress=on_progress, env=env) if env else \
            jobs.run(job, timeout=timeout, on_progress=on_progress)
    except JobError as error:
        raise DeployError(str(error)) from None


def _checked(config: PlatformConfig, stack: str, database: str | None, jobs: JobRunner | None) -> JobRunner:
    if not config.databases:
        raise DeployError(f"{stack}: the stack has no databases to restore")
    if database is not None and database not in config.databases:
        raise DeployError(f"{stack}: no database '{database}' (databases: {', '.join(sorted(config.databases))})")
    try:
        return jobs or job_runner(config, stack)
    except JobError as error:
        raise DeployError(str(error)) from None


def _judge(config: PlatformConfig, name: str, report: dict, releases: Sequence[Release]) -> dict:
    """What the report says about the database and the volumes archived with it."""
    record: dict = {"report": report, "rto_seconds": float(report["rto_seconds"]),
                    "rpo_seconds": float(report["rpo_seconds"]), "backup_set": report.get("backup")}
    expected = [v.volume_name for v in volumes_backed_up_with(config, name)]
    restored = report.get("volumes") or {}
    record["volumes"] = restored
    record["missing_volumes"] = [v for v in expected if v not in restored]
    record["volumes_verified"] = not record["missing_volumes"] and all(
        entry.get("files_verified") == entry.get("files") for entry in restored.values())
    taken = report.get("backup_finished_at")
    record["stack_update"] = release_at(releases, float(taken)) if taken is not None else None
    return record


def restore_drill(config: PlatformConfig, stack: str, database: str | None = None, backup_first: bool = False,
                  jobs: JobRunner | None = None, on_progress: Callable[[str], None] = lambda _: None,
                  releases: Sequence[Release] = ()) -> Evidence:
    jobs = _checked(config, stack, database, jobs)
    threshold = config.drills.restore_seconds
    evidence = Evidence(kind="drill-restore", stack=stack, threshold_seconds=threshold)
    results, passed = {}, True
    for name in [database] if database else sorted(config.databases):
        rpo_limit = config.databases[name].backup.max_age_hours * 3600
        record: dict = {"rto_threshold_seconds": threshold, "rpo_threshold_seconds": rpo_limit}
        if backup_first:
            on_progress(f"{name}: taking a fresh backup first")
            backup = _run(jobs, f"backup-{name}", threshold, on_progress)
            record["backup"] = {"job": backup.name, "succeeded": backup.succeeded, "seconds": backup.seconds}
            if not backup.succeeded:
                record.update(passed=False, error=f"backup job failed: {backup.log.strip()[-400:]}")
                results[name], passed = record, False
                continue
        on_progress(f"{name}: restoring the newest backup into a scratch database and directory")
        drill = _run(jobs, f"restore-drill-{name}", threshold, on_progress)
        report = drill_report(drill.log) if drill.succeeded else None
        record.update(job=drill.name, job_seconds=drill.seconds)
        if report is None:
            record.update(passed=False, error=f"restore drill job failed: {drill.log.strip()[-400:]}")
        else:
            record.update(_judge(config, name, report, releases))
            record["passed"] = (record["rto_seconds"] <= threshold and record["rpo_seconds"] <= rpo_limit
                                and record["volumes_verified"])
            if not record["volumes_verified"]:
                record["error"] = (f"volumes not restored and verified: missing {record['missing_volumes']}"
                                   if record["missing_volumes"] else "a restored volume has unverified files")
        results[name] = record
        passed = passed and record["passed"]
    evidence.finish(passed=passed, databases=results)
    return evidence


def restore_backup(config: PlatformConfig, stack: str, database: str, backup_set: str | None = None,
                   jobs: JobRunner | None = None, on_progress: Callable[[str], None] = lambda _: None,
                   releases: Sequence[Release] = (), timeout: float | None = None) -> dict:
    """Restore `backup_set` (`<YYYYmmddTHHMMSSZ>`, default the newest good one) of `database` over
    the live database and the live volumes archived with it. Returns the judged report (`backup_set`,
    `rpo_seconds`: the data written since that backup is lost, `volumes`, `stack_update`: the
    history update whose configuration belongs to that data); raises DeployError when it fails."""
    jobs = _checked(config, stack, database, jobs)
    env = {"RESTORE_INTO": "live", **({"RESTORE_BACKUP": backup_set} if backup_set else {})}
    on_progress(f"{database}: restoring backup {backup_set or '(newest good)'} over the live data")
    result = _run(jobs, f"restore-drill-{database}", timeout or config.drills.restore_seconds * 4, on_progress, env)
    report = drill_report(result.log) if result.succeeded else None
    if report is None or report.get("into") != "live":
        raise DeployError(f"{stack}: restoring {database} from backup {backup_set or '(newest)'} failed: "
                          f"{result.log.strip()[-600:]}")
    record = _judge(config, database, report, releases)
    if not record["volumes_verified"]:
        raise DeployError(f"{stack}: {database} restored, but its volumes were not all restored and verified: "
                          f"{record['missing_volumes'] or record['volumes']}")
    record.update(job=result.name, restored_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return record
