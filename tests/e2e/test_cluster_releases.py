"""Staging and prod on the real local cluster (issue 7): a verified version promoted to prod, a
broken release rolled back automatically, and a canary that really gets about 10 % of requests."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cluster import deploy_to_cluster, http_get
from components import registry
from engine import Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
VERSION_A = "1.5.0"
STAGING, PROD = "e2e-staging", "e2e-prod"
STAGING_EDGE, PROD_EDGE = "https://127.0.0.1:32444", "https://127.0.0.1:32445"
REGISTRY = "127.0.0.1:5000"  # the local registry devenv/images/build.sh pushes to


@pytest.fixture(scope="module")
def stacks(cluster, tmp_path_factory):
    """Staging running version A of the api (smoke-tested), and an empty prod promoted from it."""
    for namespace in (STAGING, PROD):
        cluster.fresh_namespace(namespace)
    project = Project(tmp_path_factory.mktemp("cluster-releases"))
    project.init_stack("staging", SECRETS)
    deploy_to_cluster(project, "staging", STAGING, http_port=32081, https_port=32444)
    project.init_stack("prod", SECRETS)
    deploy_to_cluster(project, "prod", PROD, http_port=32082, https_port=32445)
    project.set_config("staging", "services.api.version", VERSION_A)
    project.pulumi("up", "--yes", "-s", "staging", "--message", f"api {VERSION_A}", timeout=900)
    yield project
    for namespace in (STAGING, PROD):
        cluster.drop_namespace(namespace)


def api_through_edge(edge: str, host: str):
    return http_get(f"{edge}/api/healthz", host=host)


def test_staging_smoke_test_passes_and_exports_version_a_as_verified(stacks):
    assert stacks.outputs("staging")["verifiedVersions"]["api"] == VERSION_A
    assert api_through_edge(STAGING_EDGE, "shop.staging.localhost").version == VERSION_A


def test_promotion_deploys_exactly_what_staging_verified_to_prod(cluster, stacks):
    stacks.deployctl("promote", "staging", "prod", timeout=900)
    assert stacks.outputs("prod")["versions"]["api"] == VERSION_A
    assert cluster.image_of(PROD, "api").endswith(f":{VERSION_A}")
    answer = api_through_edge(PROD_EDGE, "shop.example.com")
    assert (answer.status, answer.version) == (200, VERSION_A)


def test_broken_release_is_rolled_back_automatically_and_pods_serve_a_again(cluster, stacks):
    # Its pods never become ready (/healthz answers 500). The rollout gate fails the update from
    # the health check's first run of failures, with the default progress deadline (180 s) untouched.
    stacks.set_config("staging", "services.api.version", "1.7.0-broken")
    result = stacks.deployctl("deploy", "staging", check=False, timeout=900)
    assert result.code != 0
    assert "readiness probe failed 3 times in a row" in result.output, result.output
    assert "rolled back" in result.output
    # Stopped by the engine, the program ends at once (__main__.py), not after a 5 s traceback.
    assert "KeyboardInterrupt" not in result.output
    assert stacks.outputs("staging")["versions"]["api"] == VERSION_A
    assert cluster.image_of(STAGING, "api").endswith(f":{VERSION_A}")
    # Every pod behind the edge is version A again (each request may reach either replica).
    answers = [api_through_edge(STAGING_EDGE, "shop.staging.localhost") for _ in range(10)]
    assert {(a.status, a.version) for a in answers} == {(200, VERSION_A)}
    history = json.loads(stacks.deployctl("history", "staging", "--json").stdout)
    assert history[0]["message"].startswith("rollback to")
    assert history[0]["result"] == "succeeded"
    assert (history[1]["result"], history[1]["versions"]["api"]) == ("failed", "1.7.0-broken")
    # The failed update dumped the database; its rollback, to the versions still serving, did not again.
    said = stacks.predeploy_backup_said("staging")
    assert said and all("before deploy skipped" in text for text in said.values()), said


def test_release_failing_only_its_smoke_test_is_rolled_back_automatically(cluster, stacks):
    # Healthy to Kubernetes' probes, but the build inside reports 1.6.0: only the smoke test sees it.
    stacks.set_config("staging", "services.api.version", "1.7.1-mislabeled")
    result = stacks.deployctl("deploy", "staging", check=False, timeout=900)
    assert result.code != 0
    assert "smoke test failed" in result.output and "expected '1.7.1-mislabeled'" in result.output
    assert "rolled back" in result.output
    assert cluster.image_of(STAGING, "api").endswith(f":{VERSION_A}")
    assert {api_through_edge(STAGING_EDGE, "shop.staging.localhost").version for _ in range(10)} == {VERSION_A}
    outputs = stacks.outputs("staging")
    assert outputs["verifiedVersions"]["api"] == VERSION_A
    assert "1.7.1-mislabeled" not in outputs["verifiedHistory"]["api"]


def test_a_digest_pinned_version_verified_in_staging_is_promoted_to_prod_and_rolled_back(cluster, stacks):
    # The same build as 1.6.0, named by the digest the registry serves for it: what runs can never change.
    resolved = registry.resolve(f"{REGISTRY}/shop/api", "1.6.0")
    assert resolved.digest, resolved.error
    digest = resolved.digest
    stacks.set_config("staging", "services.api.version", digest)
    stacks.deployctl("deploy", "staging", "--reason", "digest-pinned api", timeout=900)
    assert stacks.outputs("staging")["verifiedVersions"]["api"] == digest  # its smoke test read the image's label
    assert cluster.image_of(STAGING, "api") == f"{REGISTRY}/shop/api@{digest}"

    stacks.deployctl("promote", "staging", "prod", timeout=900)
    assert stacks.outputs("prod")["versions"]["api"] == digest
    assert cluster.image_of(PROD, "api") == f"{REGISTRY}/shop/api@{digest}"
    assert api_through_edge(PROD_EDGE, "shop.example.com").version == "1.6.0"

    rolled = stacks.deployctl("rollback", "prod", "--last-good", "--reason", "e2e: back from the digest", timeout=900)
    print(rolled.output.strip().splitlines()[-1])
    assert stacks.outputs("prod")["versions"]["api"] == VERSION_A
    assert cluster.image_of(PROD, "api").endswith(f":{VERSION_A}")
    assert {api_through_edge(PROD_EDGE, "shop.example.com").version for _ in range(6)} == {VERSION_A}
    # Staging back on version A for the canary test below (its stable must not answer 1.6.0).
    stacks.deployctl("rollback", "staging", "--last-good", "--reason", "e2e: back from the digest", timeout=900)
    assert cluster.image_of(STAGING, "api").endswith(f":{VERSION_A}")


def test_canary_at_ten_percent_receives_about_one_request_in_ten(cluster, stacks):
    stacks.set_config("staging", "services.api.canary.version", "1.6.0")
    stacks.set_config("staging", "services.api.canary.weight", 10)
    stacks.pulumi("up", "--yes", "-s", "staging", "--message", "api canary 1.6.0 at 10%", timeout=900)
    assert cluster.image_of(STAGING, "api-canary").endswith(":1.6.0")
    served = Counter()
    for _ in range(300):
        try:
            answer = api_through_edge(STAGING_EDGE, "shop.staging.localhost")
            served[answer.version if answer.status == 200 else f"HTTP {answer.status}"] += 1
        except OSError as error:  # a timeout or refused connection is a failed request too
            served[f"error: {error}"] += 1
    share = served["1.6.0"] / 300
    print(f"canary share at weight 10: {served['1.6.0']}/300 = {share:.1%} ({dict(served)})")
    assert served["1.6.0"] + served[VERSION_A] == 300, f"not every request succeeded: {dict(served)}"
    assert 0.05 <= share <= 0.15, f"canary got {share:.1%} of 300 requests: {dict(served)}"
