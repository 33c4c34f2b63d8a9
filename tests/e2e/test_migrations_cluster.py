"""Database migrations as part of a release on the real local cluster (issue 15, migrations half):
the same walk as tests/e2e/test_migrations_docker.py, with each migration a Kubernetes Job made
with the release's image, Deployments awaited by Pulumi, and the restore a Job from the database's
restore CronJob. The tests run in order; each starts from where the previous one left the stack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cluster import deploy_to_cluster
from engine import Project
from migration_steps import COLUMNS_QUERY, LOG_QUERY, PSQL, epoch, log_rows, newest_record, release, schema

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "e2e-migrate-db-password-41c8", "sessionSigningKey": "e2e-migrate-signing-key-9d02"}
STACK, NAMESPACE = "staging", "e2e-migrate"
HTTP_PORT, HTTPS_PORT = 32092, 32454


def refresh_shop_images() -> None:
    """The node keeps the image a tag pointed at when it first pulled it (IfNotPresent), and
    devenv/images/build.sh re-pushes a tag when the image changes: re-pull the shop tags this test
    runs, so its pods run what the registry holds now (running containers keep theirs)."""
    socket = Path(os.environ.get("DEPLOY_CACHE", Path.home() / ".cache/deployplatform")) / "cluster/run/containerd/containerd.sock"
    for service in ("api", "web", "worker"):
        for version in ("1.4.2", "1.5.0", "1.6.0", "1.7.0-broken"):
            subprocess.run(["ctr", "--address", str(socket), "-n", "k8s.io", "images", "pull", "--plain-http",
                            f"127.0.0.1:5000/shop/{service}:{version}"], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def stack(cluster, tmp_path_factory):
    refresh_shop_images()
    cluster.fresh_namespace(NAMESPACE)
    project = Project(tmp_path_factory.mktemp("cluster-migrate"))
    project.init_stack(STACK, SECRETS)
    deploy_to_cluster(project, STACK, NAMESPACE, http_port=HTTP_PORT, https_port=HTTPS_PORT)
    release(project, STACK, "1.4.2")
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=1500)
    yield project
    cluster.drop_namespace(NAMESPACE)


def sql(cluster, query: str) -> str:
    return cluster.exec(NAMESPACE, "statefulset/postgres-main", PSQL + json.dumps(query))


def api_pods(cluster) -> dict[str, dict]:
    """The api's running pods: name -> {version, started (container start), ready (Ready since)}."""
    pods = {}
    for pod in cluster.get(NAMESPACE, "pods", "-l", "app.kubernetes.io/name=api,deploy.platform/track=stable")["items"]:
        if pod["metadata"].get("deletionTimestamp") or pod["status"].get("phase") != "Running":
            continue
        state = pod["status"]["containerStatuses"][0]["state"].get("running") or {}
        ready = next((c for c in pod["status"].get("conditions", []) if c["type"] == "Ready"), {})
        pods[pod["metadata"]["name"]] = {"version": pod["metadata"]["labels"].get("app.kubernetes.io/version"),
                                         "started": epoch(state["startedAt"]) if state else 0.0,
                                         "ready": ready.get("status") == "True"}
    return pods


def test_the_first_release_creates_the_schema_the_api_needs(cluster, stack):
    assert schema(HTTPS_PORT) == {"app": "api", "version": "1.4.2", "needs": 1, "schema": 1}
    assert [row[:3] for row in log_rows(sql(cluster, LOG_QUERY))] == [("1", "0001-initial", "up")]
    jobs = cluster.get(NAMESPACE, "jobs", "-l", "app.kubernetes.io/component=migration")["items"]
    assert [job["spec"]["template"]["spec"]["containers"][0]["image"] for job in jobs] == \
        ["127.0.0.1:5000/shop/api:1.4.2"]


def test_a_reversible_migration_runs_once_as_a_job_with_the_new_image_before_the_new_pods_start(cluster, stack):
    release(stack, STACK, "1.5.0")
    stack.deployctl("deploy", STACK, "-m", "1.5.0: add sku")
    ups = [row for row in log_rows(sql(cluster, LOG_QUERY)) if row[1] == "0002-add-sku" and row[2] == "up"]
    assert len(ups) == 1 and ups[0][3] == "1.5.0"
    pods = api_pods(cluster)
    assert {p["version"] for p in pods.values()} == {"1.5.0"} and all(p["ready"] for p in pods.values())
    assert min(p["started"] for p in pods.values()) > float(ups[0][4]), (pods, ups)
    assert schema(HTTPS_PORT)["schema"] == 2


def test_rollback_runs_the_down_migration_with_the_newer_image_and_the_older_version_serves_with_its_schema(
        cluster, stack):
    stack.deployctl("rollback", STACK, "--last-good", "--reason", "e2e: back across a reversible migration")
    downs = [row for row in log_rows(sql(cluster, LOG_QUERY)) if row[2] == "down"]
    assert [(row[1], row[3]) for row in downs] == [("0002-add-sku", "1.5.0")]
    pods = api_pods(cluster)
    assert {p["version"] for p in pods.values()} == {"1.4.2"}
    assert min(p["started"] for p in pods.values()) > float(downs[0][4])
    assert schema(HTTPS_PORT) == {"app": "api", "version": "1.4.2", "needs": 1, "schema": 1}
    assert "sku" not in sql(cluster, COLUMNS_QUERY).split()


def test_rollback_across_an_irreversible_migration_refuses_naming_it_and_changes_nothing(cluster, stack):
    release(stack, STACK, "1.5.0")
    stack.deployctl("deploy", STACK, "-m", "1.5.0 again")
    release(stack, STACK, "1.6.0")
    stack.deployctl("deploy", STACK, "-m", "1.6.0: prices in cents")
    sql(cluster, "insert into products (name, sku, price_cents) values ('kiwi', 'SKU-0099', 80)")
    history = stack.history(STACK)
    generation = cluster.deployments(NAMESPACE)["api"]["metadata"]["generation"]

    refused = stack.deployctl("rollback", STACK, "--last-good", "--reason", "e2e: across 0003", check=False)
    assert refused.code != 0
    assert "irreversible migration '0003-prices-in-cents' (applied by api 1.6.0)" in refused.output
    assert len(stack.history(STACK)) == len(history)
    assert cluster.deployments(NAMESPACE)["api"]["metadata"]["generation"] == generation
    assert cluster.image_of(NAMESPACE, "api").endswith(":1.6.0")


def test_restore_data_restores_the_pre_release_backup_the_older_version_serves_and_the_rpo_is_recorded(
        cluster, stack):
    restored = stack.deployctl("rollback", STACK, "--last-good", "--restore-data",
                               "--reason", "e2e: restore before 0003")
    assert "is lost (RPO" in restored.output
    assert schema(HTTPS_PORT) == {"app": "api", "version": "1.5.0", "needs": 2, "schema": 2}
    columns = sql(cluster, COLUMNS_QUERY).split()
    assert "price" in columns and "price_cents" not in columns
    assert "kiwi" not in sql(cluster, "select name from products")
    entry = newest_record(stack, STACK, "rollback")["details"]["restored"][0]
    assert entry["migration"] == "0003-prices-in-cents" and entry["rpo_seconds"] > 0
    print(f"cluster: restored backup {entry['backup']} before 0003; RPO {entry['rpo_seconds']:.0f}s "
          f"({entry['rpo_window']['from']} .. {entry['rpo_window']['to']})")


def test_a_failing_migration_fails_the_deploy_before_any_workload_changes_version(cluster, stack):
    generation = {name: d["metadata"]["generation"] for name, d in cluster.deployments(NAMESPACE).items()}
    release(stack, STACK, "1.7.0-broken")
    failed = stack.deployctl("deploy", STACK, "-m", "1.7.0-broken: require category", check=False)
    assert failed.code != 0
    assert "0004-require-category" in failed.output
    after = cluster.deployments(NAMESPACE)
    assert after["api"]["metadata"]["generation"] == generation["api"]
    assert cluster.image_of(NAMESPACE, "api").endswith(":1.5.0")
    assert "category" not in sql(cluster, COLUMNS_QUERY).split()
    jobs = cluster.get(NAMESPACE, "jobs", "-l", "app.kubernetes.io/component=migration")["items"]
    assert any(job["status"].get("failed") for job in jobs)  # the Job that failed is kept to be read
    assert "failed" in [entry["result"] for entry in stack.history(STACK)][:2]
