"""The restore drill, on demand: run the database's restore-drill job now and judge its RTO/RPO.

The program schedules a monthly restore drill per database (components/backups.py: verify the
newest dump's checksum, restore it into a scratch database, count its tables, print one JSON line
with `rto_seconds` and `rpo_seconds`). `deployctl drill restore` runs that same job now through the
stack's target (components/targets/jobs.py: a Job from the CronJob on Kubernetes, the job
container's script on Docker), optionally after a fresh backup, reads its report and writes
evidence judged against `drills.restoreSeconds` (RTO) and `backup.maxAgeHours` (RPO).
"""

from __future__ import annotations

import json
from typing import Callable

from components.config import PlatformConfig
from components.targets.jobs import JobError, JobResult, JobRunner, job_runner
from deployctl.evidence import Evidence
from deployctl.workspace import DeployError

__all__ = ["JobResult", "drill_report", "restore_drill"]


def drill_report(log: str) -> dict | None:
    """The restore drill's JSON line (`{"drill":"restore",...}`), the last one if it retried."""
    reports = []
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("{") and '"drill"' in line:
            try:
                reports.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return reports[-1] if reports else None


def _run(jobs: JobRunner, job: str, timeout: float, on_progress: Callable[[str], None]) -> JobResult:
    try:
        return jobs.run(job, timeout=timeout, on_progress=on_progress)
    except JobError as error:
        raise DeployError(str(error)) from None


def restore_drill(config: PlatformConfig, stack: str, database: str | None = None, backup_first: bool = False,
                  jobs: JobRunner | None = None, on_progress: Callable[[str], None] = lambda _: None
                  ) -> Evidence:
    if not config.databases:
        raise DeployError(f"{stack}: the stack has no databases to drill")
    if database is not None and database not in config.databases:
        raise DeployError(f"{stack}: no database '{database}' (databases: {', '.join(sorted(config.databases))})")
    try:
        jobs = jobs or job_runner(config, stack)
    except JobError as error:
        raise DeployError(str(error)) from None
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
        on_progress(f"{name}: restoring the newest dump into a scratch database")
        drill = _run(jobs, f"restore-drill-{name}", threshold, on_progress)
        report = drill_report(drill.log) if drill.succeeded else None
        record.update(job=drill.name, job_seconds=drill.seconds)
        if report is None:
            record.update(passed=False, error=f"restore drill job failed: {drill.log.strip()[-400:]}")
        else:
            rto, rpo = float(report["rto_seconds"]), float(report["rpo_seconds"])
            record.update(report=report, rto_seconds=rto, rpo_seconds=rpo,
                          passed=rto <= threshold and rpo <= rpo_limit)
        results[name] = record
        passed = passed and record["passed"]
    evidence.finish(passed=passed, databases=results)
    return evidence
