"""The dev stack on the real local cluster (issue 7): `pulumi up` from empty, pods that answer,
backups that really run, a restore drill that really restores, and a refused `:latest`."""

from __future__ import annotations

import json
import time

import pytest

from cluster import deploy_to_cluster, http_get
from engine import ROOT, Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
NAMESPACE = "e2e-dev"


@pytest.fixture(scope="module")
def dev(cluster, tmp_path_factory):
    """A copy of the dev stack deployed from empty to its own namespace of the local cluster."""
    cluster.fresh_namespace(NAMESPACE)
    project = Project(tmp_path_factory.mktemp("cluster-dev"))
    project.init_stack("dev", SECRETS)
    deploy_to_cluster(project, "dev", NAMESPACE, http_port=32080, https_port=32443)
    started = time.monotonic()
    project.pulumi("up", "--yes", "-s", "dev", "--message", "first deploy", timeout=900)
    project.up_seconds = time.monotonic() - started
    yield project
    cluster.drop_namespace(NAMESPACE)


def test_up_from_empty_makes_every_deployment_available(cluster, dev):
    deployments = cluster.deployments(NAMESPACE)
    assert {"web", "api", "worker", "edge", "backup-metrics-main"} <= set(deployments)
    for name, deployment in deployments.items():
        wanted = deployment["spec"]["replicas"]
        assert deployment["status"].get("availableReplicas") == wanted, f"{name}: {deployment['status']}"
    postgres = cluster.get(NAMESPACE, "statefulset", "postgres-main")
    assert postgres["status"].get("readyReplicas") == 1


def test_api_answers_healthz_through_its_service_within_three_seconds(cluster, dev):
    service = cluster.get(NAMESPACE, "service", "api")
    answer = http_get(f"http://{service['spec']['clusterIP']}:8080/healthz", timeout=3)
    assert answer.status == 200
    assert answer.version == "1.4.2"
    assert answer.seconds < 3


def test_the_edge_serves_every_public_service_over_tls(dev):
    assert http_get("https://127.0.0.1:32443/healthz", host="shop.dev.localhost").version == "1.4.2"
    api = http_get("https://127.0.0.1:32443/api/healthz", host="shop.dev.localhost")
    assert (api.status, api.version) == (200, "1.4.2")


def test_smoke_test_verified_the_deployed_versions(dev):
    outputs = dev.outputs("dev")
    assert outputs["verifiedVersions"] == {"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"}
    assert outputs["endpoints"]["edge"] == ["https://shop.dev.localhost:32443/"]


def test_triggered_backup_writes_a_dump_and_its_checksum(cluster, dev):
    log = cluster.run_job(NAMESPACE, "backup-main", "e2e-backup")
    assert " ok: " in log
    # The exporter shares the backup volume: check what the job left there with its own tools.
    listing = cluster.exec(NAMESPACE, "deploy/backup-metrics-main",
                           "cd /backups/main && ls && sha256sum -c \"$(ls -1 *.dump | sort | tail -n 1).sha256\"")
    dumps = [name for name in listing.split() if name.endswith(".dump")]
    assert dumps and f"{dumps[-1]}.sha256" in listing.split()
    assert f"{dumps[-1]}: OK" in listing


def test_restore_drill_restores_the_newest_dump_into_a_scratch_database(cluster, dev):
    cluster.exec(NAMESPACE, "postgres-main-0",
                 'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "create table if not exists drill_probe (id int)"')
    result = dev.deployctl("drill", "restore", "dev", "--backup-first")
    assert "PASS main" in result.output
    [evidence] = (dev.dir / "evidence" / "dev").glob("drill-restore-*.json")
    record = json.loads(evidence.read_text())
    main = record["details"]["databases"]["main"]
    assert record["passed"] is True
    assert main["report"]["tables"] >= 1  # drill_probe came back from the dump
    assert main["rto_seconds"] <= main["rto_threshold_seconds"]
    assert main["backup"]["succeeded"] is True


def test_latest_is_refused_by_the_policy_pack_and_nothing_in_the_cluster_changes(cluster, dev, tmp_path):
    before = {name: d["metadata"]["resourceVersion"] for name, d in cluster.deployments(NAMESPACE).items()}
    policy_config = ROOT / "policy" / "config" / "dev.json"
    dev.set_config("dev", "services.api.version", "latest")
    try:
        for command in (["preview"], ["up", "--yes"]):
            result = dev.pulumi(*command, "-s", "dev", "--policy-pack", "policy",
                                "--policy-pack-config", str(policy_config), check=False)
            assert result.code != 0
            assert "disallow-latest-tag" in result.output
    finally:
        dev.set_config("dev", "services.api.version", "1.4.2")
    after = {name: d["metadata"]["resourceVersion"] for name, d in cluster.deployments(NAMESPACE).items()}
    assert after == before
    assert cluster.image_of(NAMESPACE, "api").endswith(":1.4.2")
