"""A scheduled job on the Docker host (backups, restore drills). Docker has no scheduler: a
long-running container runs crond with the job's schedule, and holds the job's script at
JOB_SCRIPT, where a run now finds it too (components/targets/jobs.py).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_docker as docker
from pulumi import ResourceOptions

from components.config import memory_mebibytes
from components.targets.base import JobSpec, standard_labels
from components.targets.docker_containers import cpus, envs, labels, uploads
from components.targets.jobs import JOB_SCRIPT, docker_container
from components.versioning import version_annotations

if TYPE_CHECKING:
    from components.targets.docker import DockerRuntime


def scheduled_job(target: "DockerRuntime", spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
    image = target.image(spec.image, parent)
    container_labels = {**standard_labels(target.stack, spec.service, spec.component, spec.version),
                        **version_annotations(spec.version), **spec.extra_labels,
                        "deploy.platform/schedule": spec.schedule}
    # crond runs one line per job: the job's script lives in a file, its output goes to the container log.
    script = spec.command[2] if list(spec.command[:2]) == ["sh", "-c"] else shlex.join(spec.command)
    crontab = f"{spec.schedule} sh {JOB_SCRIPT} > /proc/1/fd/1 2>&1\n"
    job = docker.Container(
        spec.name,
        name=docker_container(target.stack, spec.name),
        image=spec.image,
        entrypoints=["crond", "-f", "-c", "/etc/crontabs"],
        envs=envs(spec.env, spec.secret_env),
        labels=labels(container_labels),
        restart="unless-stopped",
        memory=int(memory_mebibytes(spec.resources.memory_limit)),
        memory_swap=int(memory_mebibytes(spec.resources.memory_limit)),
        cpus=cpus(spec.resources.cpu_limit),
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "5"},
        networks_advanced=target.networks(False, spec.internal_network, spec.clients_of, spec.name),
        uploads=[docker.ContainerUploadArgs(file="/etc/crontabs/root", content=crontab),
                 docker.ContainerUploadArgs(file=JOB_SCRIPT, content=script),
                 *uploads({}, spec.secret_env)],
        volumes=target.volumes.mounts(spec.volume, spec.data_volumes, spec.service, parent),
        opts=ResourceOptions(parent=parent, provider=target.provider, depends_on=[image]),
    )
    return [image, job]
