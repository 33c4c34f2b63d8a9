"""Run a one-off job now, with an image chosen per run: a Docker one-off container or a Kubernetes
Job. Beside components/targets/jobs.py (which runs the stack's *scheduled* jobs now), and used by
the migration step (components/migration_run.py, inside `pulumi up`) and by `deployctl rollback
--restore-data` (a script run in the backup job's own environment, which holds the dumps).

The settings come from the target (`RuntimeTarget.one_off_job`), as JSON: which CLI, network,
namespace, labels, environment and where the secrets are. On Docker the secret values travel on
the container's stdin (never in its environment, argv or `docker inspect`); on Kubernetes the pod
reads them from a Secret the program created.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from components.targets.jobs import JOB_SCRIPT, JobError, JobResult, docker_container

Log = Callable[[str], None]

# Reads `export NAME='value'` lines from stdin, then runs the job's own argv.
_LOAD_SECRETS = 'eval "$(cat)"; exec "$@"'


def _stamp() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d%H%M%S}"


def run_one_off(settings: dict[str, Any], image: str, command: Sequence[str], timeout: float,
                log: Log = lambda _: None) -> JobResult:
    if settings["target"] == "docker":
        return _docker_run(settings, image, list(command), timeout, log)
    return KubernetesJob(settings).run(image, list(command), timeout, log)


def _docker_run(settings: dict[str, Any], image: str, command: list[str], timeout: float, log: Log) -> JobResult:
    name = f"{settings['name']}-{_stamp()}"
    labels = [arg for key, value in sorted(settings.get("labels", {}).items()) for arg in ("--label", f"{key}={value}")]
    env = [arg for key, value in sorted(settings.get("env", {}).items()) for arg in ("-e", f"{key}={value}")]
    argv = [*settings["docker"], "run", "--rm", "-i", "--name", name, "--network", settings["network"], *labels, *env,
            # Hardened like the stack's containers: nothing to escalate to, nothing written but /tmp.
            "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--memory", settings.get("memory", "256m"), "--entrypoint", "sh", image, "-c", _LOAD_SECRETS, "sh", *command]
    secrets = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(settings.get("secrets", {}).items()))
    log(f"docker run {image} {shlex.join(command)} (container {name})")
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, input=secrets, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise JobError("the docker CLI is not on PATH") from None
    except subprocess.TimeoutExpired:
        subprocess.run([*settings["docker"], "rm", "-f", name], capture_output=True)
        return JobResult(name, False, round(time.monotonic() - started, 3), f"did not finish within {timeout:.0f}s; removed")
    return JobResult(name, proc.returncode == 0, round(time.monotonic() - started, 3), proc.stdout + proc.stderr)


class KubernetesJob:
    """A Job built here (hardened as the program's pods are), followed to Complete or Failed."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings

    def _kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        try:
            proc = subprocess.run([*self.settings["kubectl"], *args], input=stdin, capture_output=True, text=True,
                                  timeout=120)
        except FileNotFoundError:
            raise JobError("kubectl not found on PATH (source scripts/env.sh)") from None
        if check and proc.returncode != 0:
            raise JobError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def manifest(self, name: str, image: str, command: list[str], timeout: float) -> dict[str, Any]:
        s = self.settings
        env = [{"name": key, "value": value} for key, value in sorted(s.get("env", {}).items())]
        env += [{"name": key, "valueFrom": {"secretKeyRef": {"name": s["secret"], "key": key}}}
                for key in sorted(s.get("secret_keys", []))]
        uid = s.get("uid", 65534)
        container = {
            "name": s.get("component", "job"), "image": image, "command": command, "env": env,
            "resources": s.get("resources"), "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}}
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": s["namespace"], "labels": s.get("labels", {})},
                "spec": {
                    # Once: a migration that failed in its transaction would only fail again.
                    "backoffLimit": 0, "activeDeadlineSeconds": int(timeout), "ttlSecondsAfterFinished": 7 * 86400,
                    "template": {"metadata": {"labels": s.get("labels", {})}, "spec": {
                        "restartPolicy": "Never", "automountServiceAccountToken": False,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]}}}}

    def run(self, image: str, command: list[str], timeout: float, log: Log) -> JobResult:
        name = f"{self.settings['name']}-{_stamp()}"[:63]
        return self.submit(self.manifest(name, image, command, timeout), timeout, log)

    def submit(self, manifest: dict[str, Any], timeout: float, log: Log) -> JobResult:
        name = manifest["metadata"]["name"]
        self._kubectl("create", "-f", "-", stdin=json.dumps(manifest))
        log(f"started job {name}")
        started = time.monotonic()
        while True:
            status = json.loads(self._kubectl("get", "job", name, "-o", "json"))["status"]
            conditions = {c["type"] for c in status.get("conditions", []) if c.get("status") == "True"}
            if conditions & {"Complete", "Failed"}:
                break
            if time.monotonic() - started > timeout + 30:
                self._kubectl("delete", "job", name, "--wait=false", check=False)
                return JobResult(name, False, round(time.monotonic() - started, 3), f"did not finish within {timeout:.0f}s")
            time.sleep(1)
        logs = self._kubectl("logs", f"job/{name}", "--tail=400", check=False)
        return JobResult(name, "Complete" in conditions, round(time.monotonic() - started, 3), logs)

    def run_in_cronjob(self, cronjob: str, script: str | None, env: dict[str, str], timeout: float,
                       log: Log) -> JobResult:
        """A Job made from the CronJob's own template (its volume, env, identity), with `env` added
        and, when given, `script` instead of the job's own command."""
        spec = json.loads(self._kubectl("get", "cronjob", cronjob, "-o", "json"))["spec"]["jobTemplate"]["spec"]
        spec["backoffLimit"] = 0
        pod = spec["template"]["spec"]
        pod["restartPolicy"] = "Never"
        container = pod["containers"][0]
        container["env"] = [*container.get("env", []), *({"name": k, "value": v} for k, v in sorted(env.items()))]
        if script is not None:
            container["command"] = ["sh", "-c", script]
        name = f"{cronjob}-now-{_stamp()}"[:63]
        manifest = {"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": name, "namespace": self.settings["namespace"],
                                 "labels": spec["template"].get("metadata", {}).get("labels", {})},
                    "spec": spec}
        return self.submit(manifest, timeout, log)


def run_in_job_environment(settings: dict[str, Any], job: str, script: str | None, timeout: float,
                           log: Log = lambda _: None, env: dict[str, str] | None = None) -> JobResult:
    """Run the stack's scheduled job `job` now with `env` added (or `script` in its place), where
    it runs: `docker exec` into its container (components/targets/jobs.py names it), or a Job from
    its CronJob. The restore job holds the dumps and the database credentials."""
    env = env or {}
    if settings["target"] == "docker":
        container = docker_container(settings["stack"], job)
        log(f"running {'a script' if script else JOB_SCRIPT} in container {container}")
        started = time.monotonic()
        argv = [*settings["docker"], "exec", "-i", *[arg for k, v in sorted(env.items()) for arg in ("-e", f"{k}={v}")],
                container, "sh", *(["-s"] if script is not None else [JOB_SCRIPT])]
        try:
            proc = subprocess.run(argv, input=script or "", capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return JobResult(container, False, round(time.monotonic() - started, 3), f"did not finish within {timeout:.0f}s")
        if proc.returncode != 0 and ("No such container" in proc.stderr or "is not running" in proc.stderr):
            raise JobError(f"job container {container} is not running on the Docker host: deploy the stack first")
        return JobResult(container, proc.returncode == 0, round(time.monotonic() - started, 3), proc.stdout + proc.stderr)
    return KubernetesJob(settings).run_in_cronjob(job, script, env, timeout, log)
