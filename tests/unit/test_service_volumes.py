"""Declared service volumes: the model (components/config/volumes.py) and what each target makes
of them under mocks: the service mounts its volume, its database's backup and restore jobs mount
the same one and are told to archive it."""

from __future__ import annotations

import pytest

from components.config import BackupPolicy, PlatformConfig
from components.config.volumes import ServiceVolume, volumes_backed_up_with
from components.config.loading import ConfigError, load
from support import DEV_SECRETS, deploy_stack, on_docker, raw_stack_config, run_program, set_stack_config

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
COMMAND = "command:local:Command"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRON_JOB = "kubernetes:batch/v1:CronJob"
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
UPLOADS = {"uploads": {"mountPath": "/data/uploads", "size": "2Gi"}}


def with_uploads(raw: dict) -> None:
    raw["services"]["api"]["volumes"] = UPLOADS


def staging(**changes) -> PlatformConfig:
    raw = raw_stack_config("staging")
    raw["services"]["api"]["volumes"] = changes.get("volumes", UPLOADS)
    return PlatformConfig.model_validate(raw)


def load_error(change) -> str:
    raw = raw_stack_config("staging")
    change(raw)
    set_stack_config({f"platform:{key}": value for key, value in raw.items()}, DEV_SECRETS)
    with pytest.raises(ConfigError) as error:
        run_program(lambda: load("staging"))
    return str(error.value)


def test_defaults_back_a_volume_up_with_the_services_first_database():
    config = staging()
    assert config.services["api"].volumes["uploads"] == ServiceVolume(mount_path="/data/uploads", size="2Gi")
    [volume] = volumes_backed_up_with(config, "main")
    assert (volume.volume_name, volume.mount_path) == ("api-uploads", "/data/uploads")


def test_a_volume_with_backup_false_is_mounted_but_not_archived():
    config = staging(volumes={"cache": {"mountPath": "/data/cache", "backup": False}})
    assert volumes_backed_up_with(config, "main") == []


def test_retention_defaults_are_daily_and_seven_days_with_no_count_limit():
    policy = BackupPolicy()
    assert (policy.schedule, policy.retention_days, policy.retention_count) == ("0 2 * * *", 7, None)


def test_rejects_a_volume_on_a_service_without_a_database_naming_the_stack_file_and_key():
    message = load_error(lambda raw: raw["services"]["web"].update(volumes={"media": {"mountPath": "/data/media"}}))
    assert "Pulumi.staging.yaml" in message and "platform:services.web.volumes.media" in message
    assert "backupWith" in message


def test_rejects_an_unknown_backup_database_naming_the_key():
    message = load_error(lambda raw: raw["services"]["api"].update(
        volumes={"uploads": {"mountPath": "/data/uploads", "backupWith": "orders"}}))
    assert "platform:services.api.volumes.uploads.backupWith" in message and "'orders' is not a database" in message


def test_rejects_a_mount_path_over_the_image_files():
    message = load_error(lambda raw: raw["services"]["api"].update(volumes={"code": {"mountPath": "/app/data"}}))
    assert "platform:services.api.volumes.code.mountPath" in message and "under /app" in message


def test_docker_service_and_backup_job_mount_the_same_named_volume(mocks):
    deploy_stack("staging", lambda raw: (on_docker(raw), with_uploads(raw)))
    [volume] = [v for v in mocks.of_type(VOLUME) if v.inputs["name"] == "staging-api-uploads"]
    api = [c for c in mocks.of_type(CONTAINER) if c.name.startswith("api-")]
    assert len(api) == 2  # both replicas of the release slot: a volume keeps the service slotted
    for container in api:
        assert {"volumeName": "staging-api-uploads", "containerPath": "/data/uploads"} in [
            {k: m[k] for k in ("volumeName", "containerPath")} for m in container.inputs["volumes"]]
    for job in ("backup-main", "restore-drill-main"):
        registered = mocks.named(CONTAINER, job)
        paths = {m["volumeName"]: m["containerPath"] for m in registered.inputs["volumes"]}
        assert paths["staging-api-uploads"] == "/volumes/api-uploads"
        assert "VOLUMES=api-uploads" in registered.inputs["envs"]
    # The volume's root is handed to the image's user before the service starts.
    owner = mocks.named(COMMAND, "volume-api-uploads-owner")
    assert "chown" in owner.inputs["create"] and owner.inputs["environment"] == {"VOLUME": "staging-api-uploads"}


def test_kubernetes_service_and_backup_job_share_one_claim(mocks):
    deploy_stack("staging", with_uploads)
    [claim] = [c for c in mocks.of_type(CLAIM) if c.name == "api-uploads"]
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "2Gi"
    pod = mocks.named(DEPLOYMENT, "api").inputs["spec"]["template"]["spec"]
    assert {"name": "api-uploads", "persistentVolumeClaim": {"claimName": "api-uploads"}} in pod["volumes"]
    assert {"name": "api-uploads", "mountPath": "/data/uploads"} in pod["containers"][0]["volumeMounts"]
    # The pod's own user (nobody) owns the volume's root; the service does not run as the database user.
    assert pod["securityContext"]["runAsUser"] == 65534
    assert any("/data/uploads" in " ".join(c["command"]) for c in pod["initContainers"])
    job = mocks.named(CRON_JOB, "backup-main").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {"name": "api-uploads", "mountPath": "/volumes/api-uploads"} in job["containers"][0]["volumeMounts"]
    assert {"name": "VOLUMES", "value": "api-uploads"} in job["containers"][0]["env"]


def test_kubernetes_restore_job_runs_as_the_volumes_owner_and_reaches_the_dumps_through_their_group(mocks):
    deploy_stack("staging", with_uploads)

    def pod(job):
        return mocks.named(CRON_JOB, job).inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]

    restore, backup = pod("restore-drill-main"), pod("backup-main")
    # A live restore rewrites the api's files: as their owner (nobody), in the dumps' group (postgres).
    assert (restore["securityContext"]["runAsUser"], restore["securityContext"]["runAsGroup"]) == (65534, 999)
    assert restore["securityContext"]["fsGroup"] == 999
    # The backup only reads the volumes; both keep the dumps owned by the database user.
    assert (backup["securityContext"]["runAsUser"], backup["securityContext"]["runAsGroup"]) == (999, 999)
    for spec in (restore, backup):
        [owner] = spec["initContainers"]
        assert "chown 999:999" in " ".join(owner["command"])


def test_a_stack_without_volumes_gives_its_jobs_no_volume_settings(mocks):
    deploy_stack("staging", on_docker)
    assert not [e for e in mocks.named(CONTAINER, "backup-main").inputs["envs"] if e.startswith(("VOLUMES=", "RETENTION_COUNT="))]
