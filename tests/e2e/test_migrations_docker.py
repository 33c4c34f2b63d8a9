"""Database migrations as part of a release on a real Docker engine (issue 15, migrations half).

A copy of staging on the engine walks the shop's real schema: 1.4.2 (schema 1) -> 1.5.0 (adds a
column, reversible) -> rollback (the down migration runs with 1.5.0's image, then 1.4.2 serves
with schema 1) -> 1.5.0 -> 1.6.0 (prices rewritten, irreversible) -> `deployctl rollback
--last-good` refuses naming it -> with --restore-data the pre-release backup is restored and 1.5.0
serves, with the RPO recorded -> 1.7.0-broken's failing migration fails the deploy with no
workload changed. The tests run in order; each starts from where the previous one left the stack."""

from __future__ import annotations

import json

import pytest
import yaml

from docker_host import DockerHost, deploy_to_docker
from engine import Project
from migration_steps import COLUMNS_QUERY, LOG_QUERY, PSQL, epoch, log_rows, newest_record, release, schema

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "docker-migrate-db-password-5c19", "sessionSigningKey": "docker-migrate-signing-2e77"}
STACK = "migrate"
HTTP_PORT, HTTPS_PORT = 18680, 19043
SUBNET = "172.30.150.0/24"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_host):
    """staging on the Docker engine with the api at 1.4.2 and its first migration, from empty."""
    docker_host.remove_stack_leftovers(STACK, ports=(HTTP_PORT, HTTPS_PORT))
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("docker-migrate"))
    (project.dir / f"Pulumi.{STACK}.yaml").write_text((project.dir / "Pulumi.staging.yaml").read_text())
    project.init_stack(STACK, SECRETS)
    deploy_to_docker(project, STACK, docker_host.host, HTTP_PORT, HTTPS_PORT, SUBNET)
    release(project, STACK, "1.4.2")
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=1200)
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def sql(docker_host: DockerHost, query: str) -> str:
    return docker_host.docker("exec", f"{STACK}-postgres-main", "sh", "-c", PSQL + json.dumps(query))


def api_containers(docker_host: DockerHost) -> dict[str, dict]:
    """The running api containers of the stack: name -> {version, started}."""
    names = docker_host.docker("ps", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={STACK}",
                               "--filter", "label=app.kubernetes.io/name=api").split()
    found = {}
    for name in names:
        inspected = json.loads(docker_host.docker("inspect", name))[0]
        found[name] = {"version": inspected["Config"]["Labels"].get("app.kubernetes.io/version"),
                       "started": epoch(inspected["State"]["StartedAt"])}
    return found


def test_the_first_release_creates_the_schema_the_api_needs(stack, docker_host):
    assert schema(HTTPS_PORT) == {"app": "api", "version": "1.4.2", "needs": 1, "schema": 1}
    assert [row[:3] for row in log_rows(sql(docker_host, LOG_QUERY))] == [("1", "0001-initial", "up")]


def test_a_reversible_migration_runs_once_with_the_new_image_before_the_new_version_takes_traffic(stack, docker_host):
    release(stack, STACK, "1.5.0")
    stack.deployctl("deploy", STACK, "-m", "1.5.0: add sku")
    rows = log_rows(sql(docker_host, LOG_QUERY))
    ups = [row for row in rows if row[1] == "0002-add-sku" and row[2] == "up"]
    assert len(ups) == 1, rows  # once
    assert ups[0][3] == "1.5.0"  # by the new image
    containers = api_containers(docker_host)
    assert {c["version"] for c in containers.values()} == {"1.5.0"}
    # Every 1.5.0 container started after the migration committed: none served before it.
    assert min(c["started"] for c in containers.values()) > float(ups[0][4]), (containers, ups)
    assert schema(HTTPS_PORT)["schema"] == 2 and "sku" in sql(docker_host, COLUMNS_QUERY).split()


def test_rollback_runs_the_down_migration_with_the_newer_image_and_the_older_version_serves_with_its_schema(
        stack, docker_host):
    stack.deployctl("rollback", STACK, "--last-good", "--reason", "e2e: back across a reversible migration")
    rows = log_rows(sql(docker_host, LOG_QUERY))
    downs = [row for row in rows if row[2] == "down"]
    assert [(row[1], row[3]) for row in downs] == [("0002-add-sku", "1.5.0")]  # 1.5.0's image undid it
    containers = api_containers(docker_host)
    assert {c["version"] for c in containers.values()} == {"1.4.2"}
    assert min(c["started"] for c in containers.values()) > float(downs[0][4])  # down first, then 1.4.2
    assert schema(HTTPS_PORT) == {"app": "api", "version": "1.4.2", "needs": 1, "schema": 1}
    assert "sku" not in sql(docker_host, COLUMNS_QUERY).split()
    record = newest_record(stack, STACK, "rollback")
    assert record["details"]["migrations"]["api"]["steps"][0]["kind"] == "down"


def test_rollback_across_an_irreversible_migration_refuses_naming_it_and_changes_nothing(stack, docker_host):
    release(stack, STACK, "1.5.0")
    stack.deployctl("deploy", STACK, "-m", "1.5.0 again")
    release(stack, STACK, "1.6.0")
    stack.deployctl("deploy", STACK, "-m", "1.6.0: prices in cents")
    assert schema(HTTPS_PORT)["schema"] == 3
    sql(docker_host, "insert into products (name, sku, price_cents) values ('kiwi', 'SKU-0099', 80)")
    history, stack_file = stack.history(STACK), (stack.dir / f"Pulumi.{STACK}.yaml").read_text()

    refused = stack.deployctl("rollback", STACK, "--last-good", "--reason", "e2e: across 0003", check=False)
    assert refused.code != 0
    assert "irreversible migration '0003-prices-in-cents' (applied by api 1.6.0)" in refused.output
    assert "--restore-data" in refused.output
    assert len(stack.history(STACK)) == len(history)  # no update ran
    assert (stack.dir / f"Pulumi.{STACK}.yaml").read_text() == stack_file
    assert {c["version"] for c in api_containers(docker_host).values()} == {"1.6.0"}
    assert "kiwi" in sql(docker_host, "select name from products")


def test_restore_data_restores_the_pre_release_backup_the_older_version_serves_and_the_rpo_is_recorded(
        stack, docker_host):
    restored = stack.deployctl("rollback", STACK, "--last-good", "--restore-data",
                               "--reason", "e2e: restore before 0003")
    assert "is lost (RPO" in restored.output
    assert schema(HTTPS_PORT) == {"app": "api", "version": "1.5.0", "needs": 2, "schema": 2}
    assert {c["version"] for c in api_containers(docker_host).values()} == {"1.5.0"}
    columns = sql(docker_host, COLUMNS_QUERY).split()
    assert "price" in columns and "price_cents" not in columns  # the data as it was before 1.6.0
    assert "kiwi" not in sql(docker_host, "select name from products")  # written after that backup: lost
    record = newest_record(stack, STACK, "rollback")
    entry = record["details"]["restored"][0]
    assert entry["migration"] == "0003-prices-in-cents" and entry["database"] == "main"
    assert entry["rpo_seconds"] > 0 and entry["rpo_window"]["from"] < entry["rpo_window"]["to"]
    evidence = json.loads(open(record["evidence"]).read())
    assert evidence["details"]["restored"][0]["backup"] == entry["backup"]
    print(f"docker: restored backup {entry['backup']} before 0003; RPO {entry['rpo_seconds']:.0f}s "
          f"({entry['rpo_window']['from']} .. {entry['rpo_window']['to']})")


def test_a_failing_migration_fails_the_deploy_before_any_workload_changes_version(stack, docker_host):
    before = api_containers(docker_host)
    release(stack, STACK, "1.7.0-broken")
    failed = stack.deployctl("deploy", STACK, "-m", "1.7.0-broken: require category", check=False)
    assert failed.code != 0
    assert "0004-require-category" in failed.output and "failed" in failed.output
    assert api_containers(docker_host) == before  # the same 1.5.0 containers, never replaced
    never = docker_host.docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={STACK}",
                               "--filter", "label=app.kubernetes.io/version=1.7.0-broken")
    assert never.strip() == ""
    assert "category" not in sql(docker_host, COLUMNS_QUERY).split()  # all or nothing: not even the column
    results = [entry["result"] for entry in stack.history(STACK)]
    assert "failed" in results[:2], results  # pulumi stack history shows the failed update


def test_a_release_failing_after_its_irreversible_migration_ran_is_not_rolled_back_automatically(stack, docker_host):
    release(stack, STACK, "1.6.0")  # from 1.5.0 (the restore above): 0003 runs again, irreversible
    path = stack.dir / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["platform:services"]["api"]["healthCheck"] = {"path": "/never-ready"}  # 404: never ready
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    history = stack.history(STACK)
    failed = stack.deployctl("deploy", STACK, "-m", "1.6.0 that never becomes ready", check=False)
    assert failed.code != 0
    assert "not rolled back automatically" in failed.output, failed.output[-3000:]
    assert "irreversible migration '0003-prices-in-cents'" in failed.output and "--restore-data" in failed.output
    after = stack.history(STACK)
    assert len(after) == len(history) + 1 and after[0]["result"] == "failed"  # no rollback update ran
    assert "price_cents" in sql(docker_host, COLUMNS_QUERY).split()  # the migration stays; nothing was restored
