"""The restore drill, on demand: run the database's restore-drill job now and judge its RTO/RPO.

The program schedules a monthly restore drill per database (components/backups.py: verify the
newest dump's checksum, restore it into a scratch database, count its tables, print one JSON line
with `rto_seconds` and `rpo_seconds`). `deployctl drill restore` starts that same job from its
CronJob, optionally after a fresh backup from the backup CronJob, waits for it, reads its report
and writes evidence judged against `drills.restoreSeconds` (RTO) and `backup.maxAgeHours` (RPO).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from components.config import KubernetesTarget, PlatformConfig
from deployctl.evidence import Evidence
from deployctl.workspace import DeployError


@dataclass(frozen=True)
class JobResult:
    name: str
    succeeded: bool
    seconds: float
    log: str


class KubernetesJobs:
    """Runs a Job from a CronJob's template with kubectl, as the program's pre-deploy backup does."""

    def __init__(self, settings: KubernetesTarget, stack: str):
        if settings.render_to_directory:
            raise DeployError(f"{stack}: kubernetes.renderToDirectory is set, so nothing of it runs in a cluster "
                              "to drill; drill the stack that applies those manifests")
        self.stack = stack
        self.base = settings.kubectl()

    def _kubectl(self, *args: str, timeout: float = 120) -> str:
        try:
            proc = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise DeployError(f"{self.stack}: kubectl not found on PATH (source scripts/env.sh)") from None
        if proc.returncode != 0:
            raise DeployError(f"{self.stack}: kubectl {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def run(self, cronjob: str, timeout: float, on_progress: Callable[[str], None] = lambda _: None) -> JobResult:
        name = f"{cronjob}-deployctl-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"[:63]
        self._kubectl("create", "job", name, f"--from=cronjob/{cronjob}")
        on_progress(f"started job {name}")
        started = time.monotonic()
        while True:
            status = json.loads(self._kubectl("get", "job", name, "-o", "json"))["status"]
            conditions = {c["type"]: c for c in status.get("conditions", []) if c.get("status") == "True"}
            if "Complete" in conditions or "Failed" in conditions:
                break
            if time.monotonic() - started > timeout:
                self._kubectl("delete", "job", name, "--wait=false")
                return JobResult(name, False, round(time.monotonic() - started, 3),
                                 f"did not finish within {timeout:.0f}s; deleted")
            time.sleep(1)
        seconds = round(time.monotonic() - started, 3)
        succeeded = "Complete" in conditions
        try:
            log = self._kubectl("logs", f"job/{name}", "--tail=200")
        except DeployError:
            if succeeded:
                raise
            # A job that gave up has usually lost its pods, and their logs with them.
            failed = conditions["Failed"]
            log = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')} (kubectl -n <ns> describe job {name})"
        return JobResult(name, succeeded, seconds, log)


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


def restore_drill(config: PlatformConfig, stack: str, database: str | None = None, backup_first: bool = False,
                  jobs: KubernetesJobs | None = None, on_progress: Callable[[str], None] = lambda _: None
                  ) -> Evidence:
    if config.target != "kubernetes" or config.kubernetes is None:
        raise DeployError(f"{stack}: restore drills run the restore-drill job on Kubernetes; on the Docker target "
                          "run the restore-drill container's script by hand (docs/runbooks/backup-restore.md)")
    if not config.databases:
        raise DeployError(f"{stack}: the stack has no databases to drill")
    if database is not None and database not in config.databases:
        raise DeployError(f"{stack}: no database '{database}' (databases: {', '.join(sorted(config.databases))})")
    jobs = jobs or KubernetesJobs(config.kubernetes, stack)
    threshold = config.drills.restore_seconds
    evidence = Evidence(kind="drill-restore", stack=stack, threshold_seconds=threshold)
    results, passed = {}, True
    for name in [database] if database else sorted(config.databases):
        rpo_limit = config.databases[name].backup.max_age_hours * 3600
        record: dict = {"rto_threshold_seconds": threshold, "rpo_threshold_seconds": rpo_limit}
        if backup_first:
            on_progress(f"{name}: taking a fresh backup first")
            backup = jobs.run(f"backup-{name}", timeout=threshold, on_progress=on_progress)
            record["backup"] = {"job": backup.name, "succeeded": backup.succeeded, "seconds": backup.seconds}
            if not backup.succeeded:
                record.update(passed=False, error=f"backup job failed: {backup.log.strip()[-400:]}")
                results[name], passed = record, False
                continue
        on_progress(f"{name}: restoring the newest dump into a scratch database")
        drill = jobs.run(f"restore-drill-{name}", timeout=threshold, on_progress=on_progress)
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
