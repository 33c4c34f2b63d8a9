"""Pure logic behind `deployctl drill restore`, edge path stripping and rollout settings."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from components.config import PlatformConfig
from components.edge import render_dynamic_config
from components.release import Route
from components.config.loading import ConfigError, parse_platform_config
from deployctl.drills import JobResult, drill_report, restore_drill
from deployctl.workspace import DeployError
from support import raw_stack_config

REPORT = '{"drill":"restore","dump":"20261123T161318Z.dump","tables":3,"rto_seconds":%d,"rpo_seconds":%d}'


class FakeJobs:
    """Stands in for kubectl: each CronJob name answers with a canned job result."""

    def __init__(self, **logs: tuple[bool, str]):
        self.logs, self.ran = logs, []

    def run(self, cronjob, timeout, on_progress=lambda _: None):
        self.ran.append(cronjob)
        succeeded, log = self.logs[cronjob.replace("-", "_")]
        return JobResult(f"{cronjob}-test", succeeded, 1.0, log)


def dev_config(**changes) -> PlatformConfig:
    raw = copy.deepcopy(raw_stack_config("dev"))
    raw.update(changes)
    return parse_platform_config(raw, "dev")


def test_drill_report_is_the_last_json_line_of_the_job_log():
    log = "20261123T161318Z.dump: OK\n" + REPORT % (5, 60) + "\n" + REPORT % (7, 61) + "\n"
    assert drill_report(log)["rto_seconds"] == 7


def test_drill_report_is_none_when_the_job_printed_no_report():
    assert drill_report("sha256sum: WARNING: 1 computed checksum did NOT match\n") is None


def test_restore_drill_passes_within_rto_and_rpo():
    jobs = FakeJobs(restore_drill_main=(True, REPORT % (42, 3600)))
    evidence = restore_drill(dev_config(), "dev", jobs=jobs)
    main = evidence.details["databases"]["main"]
    assert evidence.passed is True
    assert (main["rto_seconds"], main["rpo_seconds"], main["rpo_threshold_seconds"]) == (42, 3600, 26 * 3600)


def test_restore_drill_fails_when_the_newest_dump_is_older_than_the_backup_max_age():
    jobs = FakeJobs(restore_drill_main=(True, REPORT % (42, 27 * 3600)))
    assert restore_drill(dev_config(), "dev", jobs=jobs).passed is False


def test_restore_drill_fails_when_restoring_takes_longer_than_drills_restore_seconds():
    jobs = FakeJobs(restore_drill_main=(True, REPORT % (120, 60)))
    assert restore_drill(dev_config(drills={"restoreSeconds": 100}), "dev", jobs=jobs).passed is False


def test_restore_drill_fails_when_its_job_fails_and_keeps_the_log_tail():
    jobs = FakeJobs(restore_drill_main=(False, "pg_restore: error: could not read input file"))
    evidence = restore_drill(dev_config(), "dev", jobs=jobs)
    assert evidence.passed is False
    assert "could not read input file" in evidence.details["databases"]["main"]["error"]


def test_backup_first_runs_the_backup_job_before_the_drill():
    jobs = FakeJobs(backup_main=(True, "backup 20261123T161318Z ok: 847 bytes"),
                    restore_drill_main=(True, REPORT % (1, 2)))
    restore_drill(dev_config(), "dev", backup_first=True, jobs=jobs)
    assert jobs.ran == ["backup-main", "restore-drill-main"]


def test_a_failed_fresh_backup_fails_the_drill_without_restoring_an_old_dump():
    jobs = FakeJobs(backup_main=(False, "pg_dump: error: connection refused"))
    evidence = restore_drill(dev_config(), "dev", backup_first=True, jobs=jobs)
    assert evidence.passed is False and jobs.ran == ["backup-main"]


def test_restore_drill_refuses_an_unknown_database():
    with pytest.raises(DeployError, match="no database 'orders'"):
        restore_drill(dev_config(), "dev", database="orders", jobs=FakeJobs())


def test_the_edge_strips_the_path_prefix_only_where_asked():
    routes = [Route("api", "/api", True, "http://api:8080", None, 0, "/healthz"),
              Route("web", "/", False, "http://web:8080", None, 0, "/healthz")]
    http = yaml.safe_load(render_dynamic_config(["shop.localhost"], routes, dev_config().edge.tls))["http"]
    assert http["routers"]["api"]["middlewares"] == ["api-strip-prefix"]
    assert http["middlewares"]["api-strip-prefix"] == {"stripPrefix": {"prefixes": ["/api"]}}
    assert "middlewares" not in http["routers"]["web"]


def test_rollout_steps_must_increase():
    with pytest.raises(ConfigError, match="platform:rollout.steps"):
        dev_config(rollout={"steps": [50, 10, 100]})


def test_rollout_settings_default_to_ten_fifty_hundred_with_95_percent_success():
    rollout = dev_config().rollout
    assert (rollout.steps, rollout.success_rate, rollout.timeout_rate) == ([10, 50, 100], 0.95, 0.05)


def test_a_stopping_edge_keeps_accepting_while_it_leaves_the_service():
    from components.edge import render_static_config
    entry_points = yaml.safe_load(render_static_config(dev_config().edge.tls, 30443))["entryPoints"]
    for name in ("web", "websecure"):
        assert entry_points[name]["transport"]["lifeCycle"]["requestAcceptGraceTimeout"] == "5s"


def test_a_failed_job_whose_pods_are_gone_is_reported_by_its_failure_condition(monkeypatch):
    from components.targets.jobs import JobError, KubernetesJobs
    jobs = KubernetesJobs(dev_config().kubernetes, "dev")
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit"}]}}

    def kubectl(*args, timeout=120):
        if args[0] == "get":
            return json.dumps(failed)
        if args[0] == "logs":
            raise JobError("dev: kubectl logs failed: timed out waiting for the condition")
        return ""

    monkeypatch.setattr(jobs, "_kubectl", kubectl)
    result = jobs.run("restore-drill-main", timeout=60)
    assert not result.succeeded
    assert result.log.startswith("BackoffLimitExceeded: Job has reached the specified backoff limit")


def test_the_docker_target_runs_a_job_inside_its_crond_container_bounded_by_the_timeout():
    from components.targets.jobs import JOB_SCRIPT, docker_job_command
    assert docker_job_command("ssh://ops@host", "staging", "restore-drill-main", timeout=3600) == [
        "docker", "--host", "ssh://ops@host", "exec", "staging-restore-drill-main",
        "timeout", "3600", "sh", JOB_SCRIPT]


def test_a_drill_on_a_docker_stack_whose_job_container_is_missing_names_the_container(monkeypatch):
    import subprocess
    from components.targets.jobs import DockerJobs, JobError
    from components.config import DockerTarget

    def no_container(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 1, "", "Error response from daemon: No such container: "
                                           "staging-backup-main")

    monkeypatch.setattr(subprocess, "run", no_container)
    with pytest.raises(JobError, match="staging-backup-main is not running"):
        DockerJobs(DockerTarget(), "staging").run("backup-main", timeout=60)
