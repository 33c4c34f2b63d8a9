"""The assembled pack: policy metadata, default enforcement and the per-stack config files."""

from __future__ import annotations

import ast
import json
import re

import pytest
from policy_helpers import ROOT, analyze, configured_analyzer, default_levels

from components.versioning import VERSION_ANNOTATION, VERSION_LABEL
from policy.pack import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES
from policy.rules.require_verified_version import MISSING_VERIFIED_VERSIONS
from pulumi_policy import EnforcementLevel, Severity, StackValidationPolicy

NAME_RE = re.compile(r"^(disallow|require|configure|enable)-[a-z0-9]+(-[a-z0-9]+)*$")
LEVELS = {level.value for level in EnforcementLevel}
POLICY_NAMES = {policy.name for policy in POLICIES}
CONFIG_DIR = ROOT / "policy" / "config"


def _config(stack: str) -> dict:
    return json.loads((CONFIG_DIR / f"{stack}.json").read_text())


def _level(entry) -> str:
    return entry["enforcementLevel"] if isinstance(entry, dict) else entry


PROD_ROOT = ("pulumi:pulumi:Stack", "platform-prod", {"environment": "prod"})


def _unverified_api(docker_api: dict) -> None:
    docker_api["image"] = "ghcr.io/acme/api:1.5.0"
    for entry in docker_api["labels"]:
        if entry["label"] in (VERSION_LABEL, VERSION_ANNOTATION):
            entry["value"] = "1.5.0"


def test_pack_has_a_valid_name_and_mandatory_default():
    # Fails closed: a missing --policy-pack-config must not make a safety rule advisory.
    assert re.match(r"^[a-zA-Z0-9-_.]{1,100}$", PACK_NAME)
    assert DEFAULT_ENFORCEMENT is EnforcementLevel.MANDATORY


def test_every_policy_has_a_unique_kebab_case_verb_thing_name():
    names = [policy.name for policy in POLICIES]
    assert len(names) == len(set(names)) == 17
    assert all(NAME_RE.match(name) for name in names), names


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_policy_has_a_one_sentence_description_starting_checks_that(policy):
    assert policy.description.startswith("Checks that ")
    assert policy.description.endswith(".")
    assert policy.description.count(". ") == 0


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_policy_has_severity_remediation_steps_and_docs_url(policy):
    assert isinstance(policy.severity, Severity)
    assert policy.remediation_steps and len(policy.remediation_steps) > 20
    assert policy.url == f"docs/policies.md#{policy.name}"


def test_every_policy_has_a_section_in_docs_policies_md():
    headings = set(re.findall(r"^## (\S+)$", (ROOT / "docs" / "policies.md").read_text(), re.MULTILINE))
    assert POLICY_NAMES <= headings


def test_every_policy_is_mandatory_without_config():
    levels = {policy.name: policy.enforcement_level or DEFAULT_ENFORCEMENT for policy in POLICIES}
    assert {n for n, level in levels.items() if level is EnforcementLevel.MANDATORY} == POLICY_NAMES


def test_analyzer_reports_every_policy_mandatory_to_the_engine():
    # What GetAnalyzerInfo tells the engine, which uses it for every level a config does not set.
    assert default_levels() == dict.fromkeys(POLICY_NAMES, "mandatory")


def test_unverified_prod_version_is_refused_as_mandatory_without_config(good_stack, docker_api):
    _unverified_api(docker_api)
    diagnostics = analyze(configured_analyzer(), [*good_stack, PROD_ROOT])
    assert ("require-verified-version", "mandatory", f"this stack is prod: {MISSING_VERIFIED_VERSIONS}") in diagnostics


def test_unverified_prod_version_is_refused_as_mandatory_with_verified_list_but_no_level(good_stack, docker_api):
    # deployctl's config without the committed file: properties only, the level stays the default.
    _unverified_api(docker_api)
    config = {"require-verified-version": {"verifiedVersions": {"api": ["1.4.2"], "web": ["1.4.2"], "edge": ["2.8.4"]}}}
    diagnostics = analyze(configured_analyzer(config), [*good_stack, PROD_ROOT])
    assert [d for d in diagnostics if d[0] == "require-verified-version"] == [
        ("require-verified-version", "mandatory",
         "service 'api' version '1.5.0' was not verified in staging (verified: 1.4.2)"),
    ]


def test_config_that_leaves_a_policy_out_leaves_it_mandatory(good_stack, deployment):
    del deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    config = {name: "advisory" for name in POLICY_NAMES - {"require-resource-limits"}}
    config["require-verified-version"] = "disabled"
    diagnostics = analyze(configured_analyzer(config), good_stack)
    assert {(policy, level) for policy, level, _ in diagnostics} == {("require-resource-limits", "mandatory")}


def test_dev_config_makes_the_safety_rules_advisory(good_stack, deployment):
    del deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    diagnostics = analyze(configured_analyzer(_config("dev")), good_stack)
    assert {(policy, level) for policy, level, _ in diagnostics} == {("require-resource-limits", "advisory")}


def test_whole_stack_rules_are_stack_policies():
    stack_policies = {p.name for p in POLICIES if isinstance(p, StackValidationPolicy)}
    assert stack_policies == {"require-verified-version", "require-tls", "require-database-backups",
                              "require-default-deny-network-policy", "require-public-path-redundancy"}


def test_main_only_assembles_the_pack_from_pack_module():
    tree = ast.parse((ROOT / "policy" / "__main__.py").read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PolicyPack"]
    assert len(calls) == 1
    imports = {alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "policy.pack" for alias in n.names}
    assert {"POLICIES", "DEFAULT_ENFORCEMENT", "PACK_NAME"} <= imports


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_policy_config_parses_and_names_only_existing_policies(stack):
    config = _config(stack)
    assert set(config) - {"all"} <= POLICY_NAMES


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_policy_config_uses_valid_enforcement_levels(stack):
    for name, entry in _config(stack).items():
        assert isinstance(entry, (str, dict)), name
        assert _level(entry) in LEVELS, name


def test_prod_config_makes_every_policy_mandatory():
    # Prod is never laxer than staging: every rule, plus the promotion gate, blocks.
    prod = _config("prod")
    assert {n for n, e in prod.items() if _level(e) == "mandatory"} == POLICY_NAMES
    assert prod["require-verified-version"] == {"enforcementLevel": "mandatory"}


def test_prod_config_holds_no_verified_versions():
    # deployctl writes them at run time from staging's outputs; a committed list would go stale.
    assert "verifiedVersions" not in json.dumps(_config("prod"))


def test_staging_config_makes_everything_but_verified_version_mandatory():
    staging = _config("staging")
    assert {n for n, e in staging.items() if _level(e) == "mandatory"} == POLICY_NAMES - {"require-verified-version"}
    assert staging["require-verified-version"] == "disabled"


def test_dev_config_disables_verified_version_and_keeps_latest_tag_mandatory():
    dev = _config("dev")
    assert dev["require-verified-version"] == "disabled"
    assert dev["disallow-latest-tag"] == "mandatory"
