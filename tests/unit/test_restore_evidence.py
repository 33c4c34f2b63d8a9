"""What the restore drill and the live restore judge and record about volumes and the stack
history, and how a job is run now with extra environment on each target (no cluster, no engine)."""

from __future__ import annotations

import copy
import json

import pytest

from components.config import PlatformConfig
from components.config.loading import parse_platform_config
from components.targets.jobs import docker_job_command, job_from_cronjob
from deployctl.drills import JobResult, release_at, restore_backup, restore_drill
from deployctl.history import Release
from deployctl.workspace import DeployError
from support import raw_stack_config

TAKEN = 1_764_640_000  # 2025-12-02T01:46:40Z
VOLUME = {"files": 2, "files_verified": 2, "kib": 300, "file_list_sha256": "ab" * 32}


def report(into: str = "scratch", volumes: dict | None = None) -> str:
    return json.dumps({"drill": "restore", "into": into, "backup": "20251202T014640Z", "dump": "20251202T014640Z.dump",
                       "backup_finished_at": TAKEN, "tables": 3, "volumes": volumes if volumes is not None else {},
                       "rto_seconds": 4, "rpo_seconds": 600})


class Jobs:
    def __init__(self, log: str, succeeded: bool = True):
        self.log, self.succeeded, self.calls = log, succeeded, []

    def run(self, job, timeout, on_progress=lambda _: None, env=None):
        self.calls.append((job, env))
        return JobResult(f"{job}-test", self.succeeded, 1.0, "restore OK\n" + self.log)


def config(with_volume: bool = True) -> PlatformConfig:
    raw = copy.deepcopy(raw_stack_config("dev"))
    if with_volume:
        raw["services"]["api"]["volumes"] = {"uploads": {"mountPath": "/data/uploads"}}
    return parse_platform_config(raw, "dev")


def release(number: int, end: str, result: str = "succeeded", api: str = "1.4.2") -> Release:
    return Release(number=number, kind="update", result=result, message=f"update {number}", start_time=end,
                   end_time=end, config={"platform:services": {"value": json.dumps({"api": {"version": api}})}})


HISTORY = [release(1, "2025-12-01T10:00:00.000Z", api="1.4.2"), release(2, "2025-12-02T01:00:00.000Z", api="1.5.0"),
           release(3, "2025-12-02T01:30:00.000Z", result="failed", api="1.6.0"),
           release(4, "2025-12-02T03:00:00.000Z", api="1.6.0")]


def test_the_drill_names_the_update_whose_configuration_was_deployed_when_the_backup_was_taken():
    found = release_at(HISTORY, TAKEN)
    assert found["update"] == 2 and found["versions"] == {"api": "1.5.0"}  # 3 failed, 4 came later
    assert len(found["config_sha256"]) == 64 and found["recover_config"].endswith("--to-version 2")


def test_no_update_is_named_when_history_has_none_before_the_backup():
    assert release_at(HISTORY, TAKEN - 86400 * 2) is None


def test_the_drill_passes_with_every_volume_restored_and_verified_and_records_them():
    evidence = restore_drill(config(), "dev", jobs=Jobs(report(volumes={"api-uploads": VOLUME})), releases=HISTORY)
    main = evidence.details["databases"]["main"]
    assert evidence.passed is True and main["volumes"]["api-uploads"] == VOLUME
    assert main["backup_set"] == "20251202T014640Z" and main["stack_update"]["update"] == 2


def test_fails_when_a_declared_volume_is_missing_from_the_restored_set():
    evidence = restore_drill(config(), "dev", jobs=Jobs(report(volumes={})))
    main = evidence.details["databases"]["main"]
    assert evidence.passed is False and main["missing_volumes"] == ["api-uploads"]
    assert "missing ['api-uploads']" in main["error"]


def test_fails_when_a_restored_volume_has_unverified_files():
    broken = {**VOLUME, "files_verified": 1}
    evidence = restore_drill(config(), "dev", jobs=Jobs(report(volumes={"api-uploads": broken})))
    assert evidence.passed is False


def test_a_stack_without_volumes_passes_on_the_database_alone():
    assert restore_drill(config(with_volume=False), "dev", jobs=Jobs(report())).passed is True


def test_the_live_restore_runs_the_restore_job_with_restore_into_live_and_the_chosen_set():
    jobs = Jobs(report(into="live", volumes={"api-uploads": VOLUME}))
    record = restore_backup(config(), "dev", "main", "20251202T014640Z", jobs=jobs, releases=HISTORY)
    assert jobs.calls == [("restore-drill-main", {"RESTORE_INTO": "live", "RESTORE_BACKUP": "20251202T014640Z"})]
    assert record["rpo_seconds"] == 600 and record["stack_update"]["update"] == 2


def test_fails_loudly_when_the_live_restore_job_fails():
    with pytest.raises(DeployError, match="restoring main from backup 20251202T014640Z failed"):
        restore_backup(config(), "dev", "main", "20251202T014640Z", jobs=Jobs("pg_restore: error", succeeded=False))


def test_docker_runs_a_job_now_with_extra_environment_for_that_run_only():
    argv = docker_job_command(None, "dev", "restore-drill-main", env={"RESTORE_INTO": "live"})
    assert argv[:4] == ["docker", "exec", "-e", "RESTORE_INTO=live"] and argv[4] == "dev-restore-drill-main"


def test_kubernetes_builds_the_job_from_the_cronjob_template_with_the_extra_environment():
    cronjob = {"metadata": {"name": "restore-drill-main", "namespace": "shop-dev", "uid": "u-1"}, "spec": {
        "jobTemplate": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
            {"name": "restore-drill", "env": [{"name": "RESTORE_INTO", "value": "scratch"}, {"name": "PGHOST", "value": "db"}]}]}}}}}}
    job = job_from_cronjob(cronjob, "restore-drill-main-deployctl-1", {"RESTORE_INTO": "live"})
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "PGHOST", "value": "db"}, {"name": "RESTORE_INTO", "value": "live"}]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    # The CronJob itself is left as it was.
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "scratch"
