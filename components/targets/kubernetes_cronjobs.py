"""A scheduled job on Kubernetes (backups, restore drills): a CronJob whose pods mount the job's
own claim (the dumps) and the services' volumes it archives, hardened like every pod
(kubernetes_pods.py). A job runs now from the same template (components/targets/jobs.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.hardening import DATABASE_UID, UNPRIVILEGED_UID
from components.targets.base import JobSpec, database_client_label, standard_labels
from components.targets.kubernetes_pods import (
    claim_volume,
    container_security,
    pod_security,
    resources,
    scratch,
    volume_owner,
    without_version,
)
from components.versioning import version_annotations

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

meta = k8s.meta.v1
core = k8s.core.v1
batch = k8s.batch.v1


def scheduled_job(target: "KubernetesRuntime", spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
    # A job's pods have an identity of their own (app.kubernetes.io/name: the job), so the
    # database's Service and NetworkPolicy, which select its name, never include them; which
    # database a job serves is its deploy.platform/database label.
    labels = {**standard_labels(target.stack, spec.name, spec.component, spec.version),
              **spec.extra_labels, **{database_client_label(db): "client" for db in spec.clients_of}}
    unversioned = without_version(labels)
    env, secret = target.env(spec.name, spec.env, spec.secret_env, unversioned, parent)
    volumes, mounts = [], []
    if spec.volume:
        volume, mount = claim_volume(spec.volume.name, spec.volume.mount_path)
        volumes, mounts = [volume], [mount]
    for data in spec.data_volumes:  # services' volumes it archives: read, never re-owned
        volume, mount = claim_volume(data.name, data.mount_path)
        volumes.append(volume)
        mounts.append(mount)
    scratch(spec.component, volumes, mounts)
    owned = [(spec.volume.mount_path, True)] if spec.volume else []
    owner = DATABASE_UID if owned else UNPRIVILEGED_UID  # who owns the job's own volume (the dumps)
    # A job that writes the services' volumes (a live restore) runs as their user, who owns them
    # (0750 roots), and reaches the dumps through the owner's group.
    uid = UNPRIVILEGED_UID if spec.writes_data_volumes and spec.data_volumes else owner
    created: list[pulumi.Resource] = [secret] if secret else []
    if spec.volume:
        created.append(target.claim(spec.volume, unversioned, parent))
    created += [target.claim(data, unversioned, parent) for data in spec.data_volumes]
    created.append(batch.CronJob(
        spec.name,
        metadata=target.metadata(spec.name, labels, version_annotations(spec.version)),
        spec=batch.CronJobSpecArgs(
            schedule=spec.schedule,
            # Forbid, not Replace: a dump overlapping the previous one is a signal worth seeing.
            concurrency_policy="Forbid",
            # Failures are kept longer than successes: they are what someone will debug.
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=5,
            starting_deadline_seconds=3600,
            job_template=batch.JobTemplateSpecArgs(spec=batch.JobSpecArgs(
                backoff_limit=2,
                template=core.PodTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels, annotations=version_annotations(spec.version)),
                    spec=core.PodSpecArgs(
                        # Never: each retry is a new pod, so every failed attempt's log stays
                        # readable (OnFailure restarts the container in place, and the kubelet
                        # drops the earlier attempts' logs: the reason a backup failed was lost).
                        restart_policy="Never",
                        volumes=volumes or None,
                        init_containers=[volume_owner(spec.image, owner, owned, mounts)] if owned else None,
                        containers=[core.ContainerArgs(
                            name=spec.component, image=spec.image, command=list(spec.command),
                            env=env or None, resources=resources(spec.resources),
                            volume_mounts=mounts or None,
                            security_context=container_security(),
                        )],
                        # The services' volumes it archives belong to their pods' user and group
                        # (0750 roots): the job reads them as a member of that group.
                        security_context=pod_security(
                            uid, bool(owned), supplemental_groups=[UNPRIVILEGED_UID] if spec.data_volumes else (),
                            gid=owner),
                        automount_service_account_token=False,
                    ),
                ),
            )),
        ),
        opts=target.opts(parent, created),
    ))
    return created
