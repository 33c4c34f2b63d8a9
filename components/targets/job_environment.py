"""Where a stack's scheduled jobs run, chosen by its target, for running something in a job's own
environment now (components/targets/oneoff_jobs.py `run_in_job_environment`): `deployctl rollback
--restore-data` lists the backup job's dumps this way (deployctl/migrations.py), so deployctl
never builds a kubectl or docker command line itself nor looks at the target kind."""

from __future__ import annotations

from typing import Any

from components.config import PlatformConfig
from components.config.targets import docker_cli
from components.targets.jobs import JobError


def job_environment(config: PlatformConfig, stack: str) -> dict[str, Any]:
    """The settings `run_in_job_environment` takes: kubectl aimed at the stack's namespace, or the
    docker CLI aimed at its engine. A stack that only renders manifests runs no job: JobError."""
    if config.target == "kubernetes":
        if config.kubernetes is None or config.kubernetes.render_to_directory:
            raise JobError(f"{stack}: nothing of it runs in a cluster (rendered manifests): restore there")
        return {"target": "kubernetes", "kubectl": config.kubernetes.kubectl(), "namespace": config.kubernetes.namespace}
    host = config.docker.host if config.docker else None
    return {"target": "docker", "docker": docker_cli(host), "stack": stack}
