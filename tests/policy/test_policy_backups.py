"""require-database-backups: every database has a backup schedule (stack policy)."""

from __future__ import annotations

import copy

from policy_helpers import PG_IMAGE

from policy.rules import require_database_backups

POLICY = require_database_backups.POLICY
CONTAINER = "docker:index/container:Container"
CRONJOB = "kubernetes:batch/v1:CronJob"
NO_BACKUP = (
    "database 'postgres-main' has no backup schedule (a CronJob or Docker container labelled "
    "app.kubernetes.io/component=backup and deploy.platform/database=postgres-main)"
)


def _cron_labels(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]


def _docker(labels: dict) -> dict:
    return {"image": PG_IMAGE, "labels": [{"label": k, "value": v} for k, v in labels.items()], "memory": 512, "cpus": "1"}


def test_require_database_backups_passes_known_good_stack(check_stack, good_stack):
    assert check_stack(POLICY, good_stack) == []


def test_require_database_backups_fails_database_without_backup(check_stack, good_stack):
    stack = [r for r in good_stack if r[0] != CRONJOB]
    assert check_stack(POLICY, stack) == [NO_BACKUP]


def test_require_database_backups_rejects_backup_of_another_database(check_stack, good_stack, cronjob):
    _cron_labels(cronjob)["deploy.platform/database"] = "postgres-analytics"
    cronjob["metadata"]["labels"]["deploy.platform/database"] = "postgres-analytics"
    assert check_stack(POLICY, good_stack) == [NO_BACKUP]


def test_require_database_backups_rejects_cronjob_not_labelled_backup(check_stack, good_stack, cronjob):
    _cron_labels(cronjob)["app.kubernetes.io/component"] = "worker"
    cronjob["metadata"]["labels"]["app.kubernetes.io/component"] = "worker"
    assert check_stack(POLICY, good_stack) == [NO_BACKUP]


def test_require_database_backups_accepts_docker_backup_container_for_docker_database(check_stack):
    database = {"app.kubernetes.io/name": "postgres-main", "app.kubernetes.io/component": "database"}
    backup = {"app.kubernetes.io/name": "postgres-main-backup", "app.kubernetes.io/component": "backup",
              "deploy.platform/database": "postgres-main"}
    stack = [(CONTAINER, "postgres-main", _docker(database)), (CONTAINER, "postgres-main-backup", _docker(backup))]
    assert check_stack(POLICY, stack) == []


def test_require_database_backups_fails_docker_database_named_after_resource(check_stack, good_stack):
    database = _docker({"app.kubernetes.io/component": "database"})
    stack = copy.deepcopy(good_stack) + [(CONTAINER, "redis-cache", database)]
    assert check_stack(POLICY, stack) == [
        "database 'redis-cache' has no backup schedule (a CronJob or Docker container labelled "
        "app.kubernetes.io/component=backup and deploy.platform/database=redis-cache)"
    ]
