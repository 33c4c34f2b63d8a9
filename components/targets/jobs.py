"""Run one of the stack's scheduled jobs now, outside a Pulumi update: the seam deployctl's drills use.

The program declares each job once (components/backups.py) and each target schedules it its own
way: Kubernetes as a CronJob, from whose template a Job is created; Docker as a long-running
crond container that holds the job's script at JOB_SCRIPT, run now with `docker exec`. The
program's pre-deploy backup (components/predeploy.py) and `deployctl drill restore` both start a
job through the functions here, so "run the backup now" means the same thing everywhere.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Mapping, Protocol

from components.config import DockerTarget, KubernetesTarget, PlatformConfig
from components.config.targets import docker_cli

# Where the Docker target's job containers keep the job's script (crond runs it on schedule).
JOB_SCRIPT = "/etc/platform/job.sh"


class JobError(RuntimeError):
    """A job could not be started or watched (not: the job ran and failed; that is a JobResult)."""


@dataclass(frozen=True)
class JobResult:
    name: str
    succeeded: bool
    seconds: float
    log: str


class JobRunner(Protocol):
    def run(self, job: str, timeout: float, on_progress: Callable[[str], None] = lambda _: None,
            env: Mapping[str, str] | None = None) -> JobResult:
        """Run `job` now; `env` adds to or overrides its environment for this run only."""
        ...


def docker_container(stack: str, job: str) -> str:
    """The Docker target's container that holds `job` (components/targets/docker_cronjobs.py names it so)."""
    return f"{stack}-{job}"


def docker_job_command(host: str | None, stack: str, job: str, timeout: float | None = None,
                       env: Mapping[str, str] | None = None) -> list[str]:
    """Runs the job's script now inside its container; busybox `timeout` bounds it there."""
    bound = ["timeout", str(max(1, int(timeout)))] if timeout else []
    extra = [arg for key, value in sorted((env or {}).items()) for arg in ("-e", f"{key}={value}")]
    return [*docker_cli(host), "exec", *extra, docker_container(stack, job),
            *bound, "sh", JOB_SCRIPT]


def kubernetes_job_script(kubectl: list[str], cronjob: str, timeout_seconds: int = 900) -> str:
    """A shell script that runs a Job from the CronJob's own template and waits for it to complete."""
    cli = shlex.join(kubectl)
    return (f'job="{cronjob}-predeploy-$(date +%s)"; {cli} create job "$job" --from=cronjob/{cronjob} && '
            f'{cli} wait --for=condition=complete --timeout={timeout_seconds}s "job/$job"')


def job_from_cronjob(cronjob: dict, name: str, env: Mapping[str, str]) -> dict:
    """What `kubectl create job --from=cronjob/...` makes, with `env` set in every container
    (kubectl's --from takes no overrides)."""
    template = json.loads(json.dumps(cronjob["spec"]["jobTemplate"]))
    for container in template["spec"]["template"]["spec"]["containers"]:
        kept = [entry for entry in container.get("env", []) if entry.get("name") not in env]
        container["env"] = kept + [{"name": key, "value": value} for key, value in sorted(env.items())]
    metadata = cronjob["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "spec": template["spec"], "metadata": {
        "name": name, "namespace": metadata.get("namespace"),
        "labels": template.get("metadata", {}).get("labels", {}),
        "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": metadata["name"],
                             "uid": metadata["uid"], "controller": False}]}}


class KubernetesJobs:
    """Runs a Job from a CronJob's template with kubectl and follows it to Complete or Failed."""

    def __init__(self, settings: KubernetesTarget, stack: str):
        if settings.render_to_directory:
            raise JobError(f"{stack}: kubernetes.renderToDirectory is set, so nothing of it runs in a cluster "
                           "to drill; drill the stack that applies those manifests")
        self.stack = stack
        self.base = settings.kubectl()

    def _kubectl(self, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
        try:
            proc = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout, input=stdin)
        except FileNotFoundError:
            raise JobError(f"{self.stack}: kubectl not found on PATH (source scripts/env.sh)") from None
        if proc.returncode != 0:
            raise JobError(f"{self.stack}: kubectl {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def run(self, job: str, timeout: float, on_progress: Callable[[str], None] = lambda _: None,
            env: Mapping[str, str] | None = None) -> JobResult:
        name = f"{job}-deployctl-{datetime.now(timezone.utc):%Y%m%d%H%M%S}"[:63]
        if env:
            cronjob = json.loads(self._kubectl("get", "cronjob", job, "-o", "json"))
            self._kubectl("create", "-f", "-", stdin=json.dumps(job_from_cronjob(cronjob, name, env)))
        else:
            self._kubectl("create", "job", name, f"--from=cronjob/{job}")
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
        except JobError:
            if succeeded:
                raise
            # A job that gave up has usually lost its pods, and their logs with them.
            failed = conditions["Failed"]
            log = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')} (kubectl -n <ns> describe job {name})"
        return JobResult(name, succeeded, seconds, log)


class DockerJobs:
    """Runs the job's script inside its crond container (`docker exec`), as crond would on schedule."""

    def __init__(self, settings: DockerTarget, stack: str):
        self.settings = settings
        self.stack = stack

    def run(self, job: str, timeout: float, on_progress: Callable[[str], None] = lambda _: None,
            env: Mapping[str, str] | None = None) -> JobResult:
        container = docker_container(self.stack, job)
        on_progress(f"running {JOB_SCRIPT} in container {container}")
        started = time.monotonic()
        argv = docker_job_command(self.settings.host, self.stack, job, timeout=timeout, env=env)
        try:
            # The in-container `timeout` ends the script; the outer bound covers a hung engine.
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 60)
        except FileNotFoundError:
            raise JobError(f"{self.stack}: the docker CLI is not on PATH") from None
        except subprocess.TimeoutExpired:
            return JobResult(container, False, round(time.monotonic() - started, 3),
                             f"did not finish within {timeout:.0f}s")
        seconds = round(time.monotonic() - started, 3)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0 and ("No such container" in proc.stderr or "is not running" in proc.stderr):
            raise JobError(f"{self.stack}: job container {container} is not running on the Docker host "
                           f"({proc.stderr.strip()[-300:]}); deploy the stack first")
        return JobResult(container, proc.returncode == 0, seconds, log)


def job_runner(config: PlatformConfig, stack: str) -> JobRunner:
    """The stack's own way of running a job now, chosen by its target."""
    if config.target == "kubernetes":
        if config.kubernetes is None:
            raise JobError(f"{stack}: target is kubernetes but the stack has no kubernetes settings")
        return KubernetesJobs(config.kubernetes, stack)
    return DockerJobs(config.docker or DockerTarget(), stack)
