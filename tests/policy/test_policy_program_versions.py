"""require-verified-version on what the program itself registers: prod run under mocks.

The fixtures elsewhere in tests/policy are hand-written; here the resources come from the
whole program (tests/support.py deploy_stack), so the labels, annotations and images the
policy reads are exactly the ones the program sets, on both targets.
"""

from __future__ import annotations

import json

import pytest
from policy_helpers import ROOT, analyze, configured_analyzer
from support import STACK_REFERENCE_OUTPUTS, deploy_stack, install_mocks, on_docker

from components.versioning import VERSION_ANNOTATION, VERSION_LABEL, version_label_value
from policy.rules import require_verified_version
from policy.rules.require_verified_version import MISSING_VERIFIED_VERSIONS

POLICY = require_verified_version.POLICY
DIGEST = "sha256:" + "c" * 64
OTHER_DIGEST = "sha256:" + "d" * 64
STAGING = "organization/platform/staging"
# What staging exports (verifiedVersions) and deployctl passes on: full versions, as in stack config.
STAGING_VERIFIED = {"web": "1.4.2", "api": DIGEST, "worker": "1.4.2", "edge": "3.1.4"}
# __main__.py exports `environment`; deploy_stack builds the Platform without the root stack's outputs.
PROD_ROOT = ("pulumi:pulumi:Stack", "platform-prod", {"environment": "prod"})


def _policy_config(verified: dict[str, str]) -> dict:
    """deployctl's policy config for prod (deployctl/stack_settings.py verified_policy_config)."""
    return {"verifiedVersions": {service: [version] for service, version in verified.items()}}


def prod_resources(api_version: str, target: str = "kubernetes") -> list[tuple[str, str, dict]]:
    """Every resource the program registers for prod with `api_version`, as (type, name, engine props)."""
    recording = install_mocks("prod")
    STACK_REFERENCE_OUTPUTS[STAGING] = {"verifiedVersions": {**STAGING_VERIFIED, "api": api_version}}

    def change(raw: dict) -> None:
        if target == "docker":
            on_docker(raw)
        raw["services"]["api"]["version"] = api_version

    try:
        deploy_stack("prod", change)
    finally:
        STACK_REFERENCE_OUTPUTS.clear()
    return [(r.typ, r.name, r.inputs) for r in recording.resources]


def _api(resources, resource_type: str, name: str = "api") -> dict:
    return next(props for typ, n, props in resources if typ == resource_type and n == name)


@pytest.fixture(params=["kubernetes", "docker"])
def target(request) -> str:
    return request.param


def test_program_labels_a_digest_short_and_annotates_it_in_full_on_kubernetes():
    api = _api(prod_resources(DIGEST), "kubernetes:apps/v1:Deployment")
    template = api["spec"]["template"]["metadata"]
    assert template["labels"][VERSION_LABEL] == version_label_value(DIGEST) == "sha256-" + "c" * 12
    assert template["annotations"][VERSION_ANNOTATION] == DIGEST
    assert api["metadata"]["annotations"][VERSION_ANNOTATION] == DIGEST


def test_program_labels_a_digest_short_and_in_full_on_docker():
    containers = [props for typ, name, props in prod_resources(DIGEST, "docker")
                  if typ == "docker:index/container:Container" and name.startswith("api-sha256-")]
    assert containers, "the api's release slot is named after its version"
    labels = {entry["label"]: entry["value"] for entry in containers[0]["labels"]}
    assert labels[VERSION_LABEL] == "sha256-" + "c" * 12
    assert labels[VERSION_ANNOTATION] == DIGEST


def test_require_verified_version_accepts_digest_verified_in_staging_in_prod(check_stack, target):
    resources = prod_resources(DIGEST, target)
    assert check_stack(POLICY, [*resources, PROD_ROOT], _policy_config(STAGING_VERIFIED)) == []


def test_require_verified_version_rejects_digest_staging_did_not_verify_in_prod(check_stack, target):
    resources = prod_resources(OTHER_DIGEST, target)
    workloads = 1 if target == "kubernetes" else 3  # prod's api has 3 replicas: one Docker container each
    assert check_stack(POLICY, [*resources, PROD_ROOT], _policy_config(STAGING_VERIFIED)) == [
        f"service 'api' version '{OTHER_DIGEST}' was not verified in staging (verified: {DIGEST})"
    ] * workloads


def test_require_verified_version_refuses_prod_without_config(check_stack):
    # The program registers its PromotionGate component: prod says it promotes from staging.
    resources = prod_resources(DIGEST)
    assert check_stack(POLICY, resources, None) == [f"this stack promotes from staging: {MISSING_VERIFIED_VERSIONS}"]


def test_whole_pack_passes_prod_with_a_verified_digest_on_kubernetes():
    # Every rule, as the engine runs the pack with prod.json plus deployctl's verified versions.
    config = json.loads((ROOT / "policy" / "config" / "prod.json").read_text())
    config["require-verified-version"] = {"enforcementLevel": "mandatory", **_policy_config(STAGING_VERIFIED)}
    assert analyze(configured_analyzer(config), [*prod_resources(DIGEST), PROD_ROOT]) == []
