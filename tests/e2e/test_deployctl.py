"""deployctl on the real engine: history, rollback, automatic rollback, promotion, canary, drills.

Stacks render their manifests; a fake edge (fake_edge.py) answers smoke checks and canary
traffic from what was rendered. That keeps deployctl's logic fast to test; the same behaviours
run against the local cluster in test_cluster_releases.py."""

from __future__ import annotations

import json

import pytest
import yaml

from engine import Project

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}




def api_version(project: Project, stack: str = "staging") -> str:
    path = project.dir / "rendered" / stack / "1-manifest" / f"apps_v1-deployment-shop-{stack}-api.yaml"
    return yaml.safe_load(path.read_text())["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]


def edge_weights(project: Project, service: str, stack: str = "staging") -> dict[str, int]:
    path = project.dir / "rendered" / stack / "1-manifest" / f"v1-configmap-shop-{stack}-edge-files.yaml"
    dynamic = yaml.safe_load(yaml.safe_load(path.read_text())["data"]["routes.yml"])
    return {t["name"]: t["weight"] for t in dynamic["http"]["services"][service]["weighted"]["services"]}


def release(project: Project, version: str, message: str) -> None:
    project.set_config("staging", "services.api.version", version)
    project.pulumi("up", "--yes", "-s", "staging", "--message", message)


def test_history_numbers_updates_and_rollback_reapplies_update_one(staging):
    for version in ("1.4.2", "1.5.0", "1.6.0"):
        release(staging, version, f"api {version}")
    history = json.loads(staging.deployctl("history", "staging", "--json").stdout)
    assert [(h["version"], h["versions"]["api"]) for h in history] == [(3, "1.6.0"), (2, "1.5.0"), (1, "1.4.2")]
    config_of_one = json.loads(staging.pulumi("stack", "history", "--json", "-s", "staging").stdout)[-1]["config"]

    staging.deployctl("rollback", "staging", "--to-version", "1", "--reason", "e2e")

    assert staging.outputs("staging")["versions"]["api"] == "1.4.2"
    assert api_version(staging) == "1.4.2"
    current = json.loads(staging.pulumi("config", "--json", "-s", "staging").stdout)
    for key, entry in config_of_one.items():
        if not entry["secret"]:
            assert current[key].get("objectValue", current[key]["value"]) == entry.get("objectValue", entry["value"])
    newest = json.loads(staging.deployctl("history", "staging", "--json").stdout)[0]
    assert newest["message"] == "rollback to 1" and newest["version"] == 4


def test_rollback_refuses_unknown_and_failed_versions(staging):
    release(staging, "1.4.2", "good")
    unknown = staging.deployctl("rollback", "staging", "--to-version", "9", "--reason", "e2e", check=False)
    assert unknown.code != 0 and "no version 9" in unknown.output
    staging.set_config("staging", "services.api.version", "1.7.0-broken")
    staging.pulumi("up", "--yes", "-s", "staging", check=False)
    failed = staging.deployctl("rollback", "staging", "--to-version", "2", "--reason", "e2e", check=False)
    assert failed.code != 0 and "version 2 is a update that failed; roll back to a succeeded update" in failed.output


def test_staging_exports_only_versions_its_smoke_test_passed(staging):
    release(staging, "1.4.2", "good")
    assert staging.outputs("staging")["verifiedVersions"]["api"] == "1.4.2"
    staging.set_config("staging", "services.api.version", "1.7.0-broken")
    result = staging.pulumi("up", "--yes", "-s", "staging", check=False)
    assert result.code != 0 and "smoke test failed" in result.output
    assert staging.outputs("staging")["verifiedVersions"]["api"] == "1.4.2"


def test_deploy_whose_smoke_test_fails_rolls_back_to_the_last_good_version(staging):
    release(staging, "1.4.2", "good")
    staging.set_config("staging", "services.api.version", "1.7.0-broken")
    result = staging.deployctl("deploy", "staging", "--message", "api 1.7.0-broken", check=False)
    assert result.code != 0
    assert "smoke test failed" in result.output and "rolled back to version 1" in result.output
    assert api_version(staging) == "1.4.2"
    history = json.loads(staging.deployctl("history", "staging", "--json").stdout)
    assert [(h["result"], h["message"]) for h in history[:2]] == [
        ("succeeded", "rollback to 1"), ("failed", "api 1.7.0-broken")]


def test_promotion_deploys_exactly_what_staging_verified(staging):
    release(staging, "1.5.0", "api 1.5.0")
    staging.init_stack("prod", SECRETS)
    staging.render_only("prod")

    staging.deployctl("promote", "staging", "prod")

    verified = staging.outputs("staging")["verifiedVersions"]
    assert {k: v for k, v in staging.outputs("prod")["versions"].items()} == {
        k: v for k, v in verified.items() if k != "edge"}
    assert api_version(staging, "prod") == "1.5.0"


def test_prod_preview_of_a_version_staging_did_not_verify_fails(staging):
    release(staging, "1.5.0", "api 1.5.0")
    staging.init_stack("prod", SECRETS)
    staging.render_only("prod")
    staging.set_config("prod", "services.api.version", "1.9.9")
    result = staging.pulumi("preview", "-s", "prod", check=False)
    assert result.code != 0
    assert "service 'api' version '1.9.9' was not verified in organization/platform/staging" in result.output
    assert "Traceback" not in result.output


def test_canary_steps_abort_and_promote_change_the_routing(staging):
    release(staging, "1.4.2", "stable 1.4.2")
    staging.set_config("staging", "services.api.canary.version", "1.5.0")
    staging.set_config("staging", "services.api.canary.weight", 0)
    staging.pulumi("up", "--yes", "-s", "staging")
    assert edge_weights(staging, "api") == {"api-stable": 100, "api-canary": 0}

    staging.deployctl("rollout", "staging", "api", "--step")
    assert edge_weights(staging, "api") == {"api-stable": 90, "api-canary": 10}
    stepped = staging.deployctl("rollout", "staging", "api", "--step")
    assert "analysis:" in stepped.output
    assert edge_weights(staging, "api") == {"api-stable": 50, "api-canary": 50}

    staging.deployctl("rollout", "staging", "api", "--abort")
    assert edge_weights(staging, "api") == {"api-stable": 100, "api-canary": 0}

    staging.deployctl("rollout", "staging", "api", "--promote")
    assert api_version(staging) == "1.5.0"
    assert edge_weights(staging, "api") == {"api-stable": 100}


def test_canary_analysis_failure_aborts_the_rollout(staging):
    release(staging, "1.4.2", "stable 1.4.2")
    staging.set_config("staging", "services.api.canary.version", "1.5.0-broken")
    staging.set_config("staging", "services.api.canary.weight", 50)
    staging.pulumi("up", "--yes", "-s", "staging")
    result = staging.deployctl("rollout", "staging", "api", "--step", check=False)
    assert result.code != 0 and "analysis failed at 50%" in result.output
    assert edge_weights(staging, "api") == {"api-stable": 100, "api-canary": 0}


def test_rollback_drill_writes_evidence_and_leaves_the_stack_as_it_was(staging):
    release(staging, "1.4.2", "one")
    release(staging, "1.5.0", "two")
    staging.deployctl("drill", "rollback", "staging")
    evidence = sorted((staging.dir / "evidence" / "staging").glob("drill-rollback-*.json"))
    record = json.loads(evidence[-1].read_text())
    assert record["passed"] is True and record["threshold_seconds"] == 180
    assert 0 < record["duration_seconds"] <= 180 and record["details"]["rolled_back_to"] == 1
    assert api_version(staging) == "1.5.0"


def test_history_chart_is_drawn(staging, tmp_path):
    release(staging, "1.4.2", "one")
    release(staging, "1.5.0", "two")
    chart = tmp_path / "timeline.png"
    staging.deployctl("history", "staging", "--chart", str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000


def test_prod_rolls_back_to_an_older_version_staging_verified_before(staging):
    staging.init_stack("prod", SECRETS)
    staging.render_only("prod")
    for version in ("1.5.0", "1.6.0"):
        release(staging, version, f"api {version}")
        staging.deployctl("promote", "staging", "prod")
    assert api_version(staging, "prod") == "1.6.0"

    staging.deployctl("rollback", "prod", "--last-good", "--reason", "e2e")

    assert api_version(staging, "prod") == "1.5.0"
    assert staging.outputs("staging")["verifiedHistory"]["api"] == ["1.5.0", "1.6.0"]
