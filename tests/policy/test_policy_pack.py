"""The assembled pack: policy metadata, default enforcement and the per-stack config files."""

from __future__ import annotations

import ast
import json
import re

import pytest
from policy_helpers import ROOT

from policy.pack import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, Severity, StackValidationPolicy

NAME_RE = re.compile(r"^(disallow|require|configure|enable)-[a-z0-9]+(-[a-z0-9]+)*$")
LEVELS = {level.value for level in EnforcementLevel}
POLICY_NAMES = {policy.name for policy in POLICIES}
CONFIG_DIR = ROOT / "policy" / "config"


def _config(stack: str) -> dict:
    return json.loads((CONFIG_DIR / f"{stack}.json").read_text())


def _level(entry) -> str:
    return entry["enforcementLevel"] if isinstance(entry, dict) else entry


def test_pack_has_a_valid_name_and_advisory_default():
    assert re.match(r"^[a-zA-Z0-9-_.]{1,100}$", PACK_NAME)
    assert DEFAULT_ENFORCEMENT is EnforcementLevel.ADVISORY


def test_every_policy_has_a_unique_kebab_case_verb_thing_name():
    names = [policy.name for policy in POLICIES]
    assert len(names) == len(set(names)) == 9
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


def test_only_disallow_latest_tag_is_mandatory_without_config():
    levels = {policy.name: policy.enforcement_level or DEFAULT_ENFORCEMENT for policy in POLICIES}
    assert {n for n, level in levels.items() if level is EnforcementLevel.MANDATORY} == {"disallow-latest-tag"}


def test_whole_stack_rules_are_stack_policies():
    stack_policies = {p.name for p in POLICIES if isinstance(p, StackValidationPolicy)}
    assert stack_policies == {"require-verified-version", "require-tls", "require-database-backups"}


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
