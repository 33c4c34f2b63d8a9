"""Database migrations: the config model, the decisions (components/migration_plan.py), the
runner's behaviour on a failing job, and what the program registers for them (under mocks).
The real engine runs them in tests/e2e/test_migrations_docker.py and test_migrations_cluster.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from components.config.migrations import MigrationSpec
from components.migration_plan import Applied, Wanted, parse_record, plan, record_text
from components.config.loading import ConfigError, parse_platform_config
from support import ROOT, deploy_stack, is_secret, on_docker, raw_stack_config

COMMAND = "command:local:Command"
UP, DOWN = ("/app/migrate", "up"), ("/app/migrate", "down")


def applied(version: str, at: float, irreversible: bool = False, name: str | None = None) -> Applied:
    return Applied(id=f"{version}@{int(at)}", version=version, image=f"shop/api:{version}", name=name or f"m-{version}",
                   down=None if irreversible else DOWN, irreversible=irreversible, applied_at=at, database="main")


def wanted(version: str, irreversible: bool = False) -> Wanted:
    return Wanted(version=version, image=f"shop/api:{version}", name=f"m-{version}", command=UP,
                  down=None if irreversible else DOWN, irreversible=irreversible, database="main")


A, B, C = applied("1.4.2", 100), applied("1.5.0", 200), applied("1.6.0", 300, irreversible=True)


# --- the model ------------------------------------------------------------------------------

def staging_with(migration, service="api"):
    raw = raw_stack_config("staging")
    raw["services"][service]["migration"] = migration
    return parse_platform_config(raw, "staging")


def test_a_migration_with_a_down_command_is_reversible():
    spec = staging_with({"name": "0002-add-sku", "command": list(UP), "down": list(DOWN)}).services["api"].migration
    assert (spec.down, spec.irreversible, spec.timeout_seconds) == (list(DOWN), False, 600)


def test_rejects_a_migration_that_neither_has_a_down_nor_says_it_is_irreversible():
    with pytest.raises(ConfigError, match=r"(?s)Pulumi.staging.yaml.*platform:services.api.migration.down: is missing"):
        staging_with({"name": "0002-add-sku", "command": list(UP)})


def test_rejects_a_migration_on_a_service_without_a_database():
    with pytest.raises(ConfigError, match=r"platform:services.web.migration: needs a database"):
        staging_with({"name": "0002-add-sku", "command": list(UP), "irreversible": True}, service="web")


def test_rejects_a_migration_combined_with_a_canary():
    raw = raw_stack_config("staging")
    raw["services"]["api"].update(migration={"name": "x1", "command": list(UP), "irreversible": True},
                                  canary={"version": "1.5.0", "weight": 10})
    with pytest.raises(ConfigError, match=r"platform:services.api.migration: cannot be combined with a canary"):
        parse_platform_config(raw, "staging")


def test_rejects_an_unknown_key_of_a_migration():
    with pytest.raises(ConfigError, match=r"platform:services.api.migration.downCommand"):
        staging_with({"name": "x1", "command": list(UP), "downCommand": list(DOWN)})


# --- the decisions --------------------------------------------------------------------------

def test_a_new_version_runs_its_migration_with_its_own_image():
    decided = plan([A], wanted("1.5.0"))
    assert [(s.kind, s.image, s.command) for s in decided.steps] == [("up", "shop/api:1.5.0", UP)]
    assert decided.chain == (A,) and not decided.is_rollback


def test_the_first_release_runs_its_migration():
    assert [s.kind for s in plan([], wanted("1.4.2")).steps] == ["up"]


def test_the_same_version_again_runs_nothing():
    assert plan([A, B], wanted("1.5.0")).steps == ()


def test_going_back_runs_the_newer_release_down_migration_with_the_newer_image():
    decided = plan([A, B], wanted("1.4.2"))
    assert [(s.kind, s.version, s.image, s.command) for s in decided.steps] == [("down", "1.5.0", "shop/api:1.5.0", DOWN)]
    assert decided.chain == (A,) and decided.is_rollback and not decided.refused


def test_going_back_two_releases_undoes_both_newest_first():
    B2 = applied("1.5.1", 250)
    assert [s.version for s in plan([A, B, B2], wanted("1.4.2")).steps] == ["1.5.1", "1.5.0"]


def test_fails_to_go_back_across_an_irreversible_migration_and_names_it():
    decided = plan([A, B, C], wanted("1.5.0"))
    assert decided.refused == (C,)
    assert "irreversible migration 'm-1.6.0' (applied by api 1.6.0)" in decided.refusal("api")
    assert "--restore-data" in decided.refusal("api")


def test_a_restore_from_before_the_irreversible_migration_undoes_it_without_a_down():
    decided = plan([A, B, C], wanted("1.5.0"), restored=C.id)
    assert [(s.kind, s.version) for s in decided.steps] == [("restored", "1.6.0")]
    assert not decided.refused and decided.chain == (A, B)


def test_a_restore_covers_only_the_migrations_from_it_on():
    # Back to 1.4.2 across C (restored) and B (reversible, still undone by its down).
    decided = plan([A, B, C], wanted("1.4.2"), restored=C.id)
    assert [(s.kind, s.version) for s in decided.steps] == [("restored", "1.6.0"), ("down", "1.5.0")]


def test_a_stale_restore_mark_of_another_chain_changes_nothing():
    assert plan([A, B, C], wanted("1.5.0"), restored="1.6.0@1").refused == (C,)


def test_the_record_round_trips_through_the_command_output():
    text = record_text("api", [A, C], [{"kind": "up"}])
    chain, ran = parse_record("job log line\n" + text)
    assert chain == [A, C] and ran == [{"kind": "up"}]
    assert parse_record(None) == ([], []) and parse_record("not json") == ([], [])


# --- the runner (python -m components.migration_run) ---------------------------------------

def run_step(tmp_path, chain, version, fake_docker_exit=0):
    """The step's command as pulumi-command runs it, with a fake docker CLI that logs its argv."""
    log = tmp_path / "docker.log"
    docker = tmp_path / "docker"
    docker.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\ncat > /dev/null\necho migrated\nexit {fake_docker_exit}\n")
    docker.chmod(0o755)
    payload = {"service": "api", "database": "main", "timeout": 30, "restored": None,
               "wanted": {"version": version, "image": f"shop/api:{version}", "name": f"m-{version}",
                          "command": list(UP), "down": list(DOWN), "irreversible": False, "database": "main"},
               "job": {"target": "docker", "docker": [str(docker)], "network": "s-backend", "name": "s-migrate-api",
                       "env": {"PGHOST": "postgres-main"}, "secrets": {"PGPASSWORD": "pw"}}}
    env = {**os.environ, "PULUMI_COMMAND_STDOUT": record_text("api", chain, [])}
    proc = subprocess.run([sys.executable, "-m", "components.migration_run"], input=json.dumps(payload), text=True,
                          capture_output=True, cwd=ROOT, env=env)
    return proc, (log.read_text() if log.exists() else "")


def test_runner_runs_the_down_migration_with_the_newer_image_and_prints_the_shorter_chain(tmp_path):
    proc, calls = run_step(tmp_path, [A, B], "1.4.2")
    assert proc.returncode == 0, proc.stderr
    assert "shop/api:1.5.0 -c" in calls and calls.rstrip().endswith("/app/migrate down")
    assert "pw" not in calls  # the password travels on stdin, never in argv
    chain, ran = parse_record(proc.stdout)
    assert chain == [A] and ran[0]["kind"] == "down"


def test_fails_the_update_when_the_migration_job_fails_and_keeps_no_new_chain(tmp_path):
    proc, _ = run_step(tmp_path, [A], "1.5.0", fake_docker_exit=3)
    assert proc.returncode == 1
    assert "up migration 'm-1.5.0' of 1.5.0 failed" in proc.stderr and "no workload" in proc.stderr
    assert proc.stdout == ""


def test_runner_refuses_an_irreversible_rollback_before_running_anything(tmp_path):
    proc, calls = run_step(tmp_path, [A, B, C], "1.5.0")
    assert proc.returncode == 1 and calls == ""
    assert "irreversible migration 'm-1.6.0'" in proc.stderr


# --- what the program registers -------------------------------------------------------------

MIGRATION = {"name": "0002-add-sku", "command": list(UP), "down": list(DOWN)}


def with_migration(raw):
    raw["services"]["api"]["migration"] = dict(MIGRATION)


def test_program_runs_the_migration_as_a_command_with_the_new_image(mocks):
    deploy_stack("staging", with_migration)
    step = mocks.named(COMMAND, "platform-api-migration-run")
    payload = json.loads(step.get("stdin"))
    assert payload["wanted"]["image"] == "127.0.0.1:5000/shop/api:1.4.2"
    assert payload["job"]["target"] == "kubernetes" and payload["job"]["secret"] == "migrate-api-secrets"
    assert step.get("environment")["MIGRATION"] == "0002-add-sku"
    assert mocks.named("kubernetes:core/v1:Secret", "migrate-api-secrets")


def test_program_keeps_the_database_password_of_the_docker_migration_secret(mocks):
    deploy_stack("staging", lambda raw: (on_docker(raw), with_migration(raw)))
    step = mocks.named(COMMAND, "platform-api-migration-run")
    assert is_secret(step.inputs["stdin"])
    assert "PGPASSWORD" not in json.dumps(step.get("environment"))


def test_program_without_a_declared_migration_runs_none(mocks):
    deploy_stack("staging")
    assert not [c for c in mocks.of_type(COMMAND) if "migration" in c.name]


def test_model_defaults_are_the_documented_ones():
    spec = MigrationSpec.model_validate({"name": "x1", "command": list(UP), "irreversible": True})
    assert (spec.database, spec.restored, spec.timeout_seconds) == (None, None, 600)


def test_the_kubernetes_migration_job_runs_once_hardened_and_reads_the_password_from_its_secret():
    from components.targets.oneoff_jobs import KubernetesJob

    job = KubernetesJob({"target": "kubernetes", "kubectl": ["kubectl"], "namespace": "shop", "name": "migrate-api",
                         "component": "migration", "labels": {"db.deploy.platform/postgres-main": "client"},
                         "env": {"PGHOST": "postgres-main"}, "secret": "migrate-api-secrets",
                         "secret_keys": ["PGPASSWORD"], "uid": 65534}).manifest("migrate-api-1", "shop/api:1.5.0", list(UP), 600)
    spec = job["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], pod["restartPolicy"]) == (0, 600, "Never")
    assert container["image"] == "shop/api:1.5.0" and container["command"] == list(UP)
    assert {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "migrate-api-secrets", "key": "PGPASSWORD"}}} \
        in container["env"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and container["securityContext"]["capabilities"] == {
        "drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert job["metadata"]["labels"]["db.deploy.platform/postgres-main"] == "client"  # the database lets it in


def test_the_migration_waits_until_the_database_answers_then_runs(tmp_path):
    # A fresh database may be unknown to the cluster's DNS for a few seconds (a cached NXDOMAIN):
    # the job waits for it instead of failing the release.
    from components.migration_run import with_database_wait

    tries = tmp_path / "tries"
    psql = tmp_path / "psql"
    psql.write_text(f"#!/bin/sh\necho x >> {tries}\n[ $(wc -l < {tries}) -ge 3 ]\n")
    psql.chmod(0o755)
    proc = subprocess.run(with_database_wait(["echo", "migrated"]), capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert proc.returncode == 0 and proc.stdout.strip() == "migrated"
    assert len(tries.read_text().splitlines()) == 3
