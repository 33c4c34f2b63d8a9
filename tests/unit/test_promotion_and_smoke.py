"""Promotion gate (prod runs what staging verified) and the smoke test wiring, under mocks."""

from __future__ import annotations


import json

import pytest

from components.promotion import UnverifiedVersionError
from components.config.loading import parse_platform_config
from support import deploy_stack, raw_stack_config

VERIFIED = {"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"}
COMMAND = "command:local:Command"


class SmokeRun:
    """A smoke test's command resource, with the checks it reads from stdin."""

    def __init__(self, registered):
        self.registered = registered
        self.inputs = json.loads(registered.inputs["stdin"])


def smoke_runs(mocks):
    return [SmokeRun(r) for r in mocks.of_type(COMMAND) if r.name.endswith("-smoke-run")]


def backup_runs(mocks):
    return [r for r in mocks.of_type(COMMAND) if r.name.endswith("-predeploy-backup-run")]


def deploy(stack, change=None):
    return deploy_stack(stack, change)


def test_prod_reads_staging_through_a_stack_reference(mocks, staging_verified):
    staging_verified(VERIFIED)
    deploy("prod")
    reference = mocks.of_type("pulumi:pulumi:StackReference")
    assert [r.inputs["name"] for r in reference] == ["organization/platform/staging"]


def test_prod_refuses_a_version_staging_did_not_verify(mocks, staging_verified):
    staging_verified({**VERIFIED, "api": "1.4.1"})
    with pytest.raises(UnverifiedVersionError) as caught:
        deploy("prod")
    assert "service 'api' version '1.4.2' was not verified in organization/platform/staging (verified: 1.4.1)" \
        in str(caught.value)


def test_prod_refuses_everything_when_staging_verified_nothing(mocks, staging_verified):
    staging_verified({})
    with pytest.raises(UnverifiedVersionError, match="verified: none"):
        deploy("prod")


def test_refused_promotion_registers_no_workload(mocks, staging_verified):
    staging_verified({**VERIFIED, "web": "0.9.0"})
    with pytest.raises(UnverifiedVersionError):
        deploy("prod")
    assert mocks.of_type("kubernetes:apps/v1:Deployment") == []
    assert mocks.of_type("kubernetes:core/v1:Namespace") == []


def test_an_override_with_a_reason_lets_one_unverified_version_through(mocks, staging_verified):
    staging_verified({**VERIFIED, "api": "1.4.1"})
    override = {"api": {"version": "1.4.2", "reason": "hotfix INC-4711 approved by on-call lead"}}
    platform = deploy("prod", lambda raw: raw["promotion"].update(overrides=override))
    assert platform.gate.overrides == {"api": {"version": "1.4.2",
                                               "reason": "hotfix INC-4711 approved by on-call lead"}}


def test_prod_canary_versions_must_be_verified_too(mocks, staging_verified):
    staging_verified(VERIFIED)
    with pytest.raises(UnverifiedVersionError, match="'api' version '1.5.0'"):
        deploy("prod", lambda raw: raw["services"]["api"].update(canary={"version": "1.5.0", "weight": 10}))


def test_staging_runs_a_smoke_test_through_the_edge_after_the_workloads(mocks):
    deploy("staging")
    smoke = smoke_runs(mocks)
    assert len(smoke) == 1
    checks = {c["service"]: c for c in smoke[0].inputs["checks"]}
    assert checks["api"]["url"] == "https://127.0.0.1:31443/api/healthz"
    assert checks["web"]["url"] == "https://127.0.0.1:31443/healthz"
    assert smoke[0].inputs["hostHeader"] == "shop.staging.localhost"
    assert smoke[0].inputs["attempts"] >= 3
    assert smoke[0].inputs["timeoutSeconds"] == 3


def test_canary_analysis_probes_the_url_and_host_the_smoke_test_checks(mocks):
    # deployctl rollout --step probes PlatformConfig.health_url, as the program's smoke test does.
    def moved_edge(raw):
        raw["smokeTest"] = {"baseUrl": "https://edge.internal:8443/", "hostHeader": "shop.staging.localhost"}
    deploy("staging", moved_edge)
    raw = raw_stack_config("staging")
    moved_edge(raw)
    config = parse_platform_config(raw, "staging")
    [smoke] = smoke_runs(mocks)
    checks = {c["service"]: c["url"] for c in smoke.inputs["checks"]}
    assert checks["api"] == config.health_url("api") == "https://edge.internal:8443/api/healthz"
    assert smoke.inputs["hostHeader"] == config.edge_host_header()


def test_smoke_test_checks_each_database_accepts_a_connection_through_its_service(mocks):
    deploy("staging")
    [command] = smoke_runs(mocks)[0].inputs["commands"]
    assert command["name"] == "database main"
    assert command["command"][:6] == ["kubectl", "--namespace", "shop-staging", "--kubeconfig",
                                      command["command"][4], "--context"]
    assert "exec" in command["command"] and "statefulset/postgres-main" in command["command"]
    assert "psql -h postgres-main.shop-staging.svc.cluster.local -p 5432" in command["command"][-1]


def test_smoke_test_input_carries_every_version_so_a_version_change_reruns_it(mocks):
    deploy("staging")
    assert smoke_runs(mocks)[0].inputs["versions"] == VERIFIED


def test_smoke_test_runs_the_smoke_module_on_create_and_update_with_the_previous_output(mocks):
    deploy("staging")
    run = smoke_runs(mocks)[0].registered.inputs
    assert run["create"] == run["update"] == "python -m components.smoke"
    assert run["addPreviousOutputInEnv"] is True


def rendering(raw):
    raw["kubernetes"]["renderToDirectory"] = "rendered/dev"
    raw["edge"]["tls"] = {"mode": "self-signed"}


def test_a_stack_with_smoke_tests_disabled_runs_none(mocks):
    deploy("dev", lambda raw: raw.update(smokeTest={"enabled": False}))
    assert smoke_runs(mocks) == []


def test_a_backup_runs_before_services_that_use_the_database_change(mocks):
    deploy("staging")
    [backup] = backup_runs(mocks)
    assert backup.inputs["environment"]["CLIENT_VERSIONS"] == "api=1.4.2,worker=1.4.2"
    script = backup.inputs["update"]
    assert "create job" in script and "--from=cronjob/backup-main" in script and "wait --for=condition=complete" in script
    # A first deploy has no data yet: creating the resource backs nothing up.
    assert "nothing to back up" in backup.inputs["create"] and "create job" not in backup.inputs["create"]


def test_rendered_stacks_take_no_pre_deploy_backup(mocks):
    deploy("dev", rendering)
    assert backup_runs(mocks) == []


def test_pre_deploy_backup_can_be_turned_off_per_database(mocks):
    deploy("staging", lambda raw: raw["databases"]["main"].update(backup={"beforeDeploy": False}))
    assert backup_runs(mocks) == []


def test_without_require_verified_an_unverified_version_only_warns(mocks, staging_verified, monkeypatch):
    import components.promotion

    warnings: list[str] = []
    monkeypatch.setattr(components.promotion.pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    staging_verified({**VERIFIED, "api": "1.4.1"})
    deploy("prod", lambda raw: raw["promotion"].update(requireVerified=False))
    assert {"web", "api", "worker", "edge"} <= {d.name for d in mocks.of_type("kubernetes:apps/v1:Deployment")}
    assert any("api" in warning and "1.4.2" in warning and "requireVerified is off" in warning
               for warning in warnings), warnings


def test_prod_may_run_an_older_version_staging_verified_before(mocks, staging_verified):
    from support import STACK_REFERENCE_OUTPUTS

    staging_verified({**VERIFIED, "api": "1.5.0"})
    STACK_REFERENCE_OUTPUTS["organization/platform/staging"]["verifiedHistory"] = {"api": ["1.4.2", "1.5.0"]}
    platform = deploy("prod")
    assert platform.versions["api"] == "1.4.2"
