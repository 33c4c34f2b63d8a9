"""The policy pack in real previews: the analyzer the engine starts reports and blocks violations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import ROOT, Project

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
VERIFIED = {"web": ["1.4.2"], "api": ["1.4.2"], "worker": ["1.4.2"], "edge": ["3.1.4"]}


def policy_config(tmp_path: Path, stack: str, verified: dict | None = None) -> str:
    """The committed policy config for `stack`, plus verified versions as deployctl writes them."""
    config = json.loads((ROOT / "policy" / "config" / f"{stack}.json").read_text())
    if verified is not None:
        config["require-verified-version"] = {"enforcementLevel": "mandatory", "verifiedVersions": verified}
    path = tmp_path / f"policy-{stack}.json"
    path.write_text(json.dumps(config))
    return str(path)


def rendering_stack(project: Project, stack: str) -> None:
    project.init_stack(stack, SECRETS)
    project.render_only(stack)


def preview_with_policies(project: Project, stack: str, config_file: str):
    return project.pulumi("preview", "-s", stack, "--policy-pack", "policy",
                          "--policy-pack-config", config_file, check=False)


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_shipped_stack_passes_every_mandatory_policy(tmp_path, stack):
    project = Project(tmp_path)
    rendering_stack(project, stack)
    result = preview_with_policies(project, stack, policy_config(tmp_path, stack))
    assert result.code == 0, result.output
    assert "platform-guardrails" in result.output


def test_shipped_prod_stack_passes_when_staging_verified_its_versions(tmp_path):
    project = Project(tmp_path)
    rendering_stack(project, "prod")
    # Promotion through the StackReference is tested elsewhere (test_deployctl): here only policies speak.
    project.pulumi("config", "rm", "platform:promotion", "-s", "prod")
    result = preview_with_policies(project, "prod", policy_config(tmp_path, "prod", VERIFIED))
    assert result.code == 0, result.output


def test_prod_preview_with_a_version_staging_did_not_verify_fails(tmp_path):
    project = Project(tmp_path)
    rendering_stack(project, "prod")
    project.pulumi("config", "rm", "platform:promotion", "-s", "prod")
    verified = {**VERIFIED, "api": ["1.4.1"]}
    result = preview_with_policies(project, "prod", policy_config(tmp_path, "prod", verified))
    assert result.code != 0
    assert "require-verified-version" in result.output
    assert "service 'api' version '1.4.2' was not verified in staging (verified: 1.4.1)" in result.output


def test_prod_preview_fails_closed_without_verified_versions(tmp_path):
    project = Project(tmp_path)
    rendering_stack(project, "prod")
    project.pulumi("config", "rm", "platform:promotion", "-s", "prod")
    result = preview_with_policies(project, "prod", policy_config(tmp_path, "prod"))
    assert result.code != 0
    assert "require-verified-version" in result.output


def test_unpinned_version_is_refused_in_prod(tmp_path):
    project = Project(tmp_path)
    rendering_stack(project, "prod")
    project.pulumi("config", "rm", "platform:promotion", "-s", "prod")
    project.set_config("prod", "services.web.version", "1.4")
    verified = {**VERIFIED, "web": ["1.4"]}
    result = preview_with_policies(project, "prod", policy_config(tmp_path, "prod", verified))
    assert result.code != 0
    assert "require-pinned-images" in result.output


def test_latest_version_is_refused_and_nothing_changes(tmp_path):
    project = Project(tmp_path)
    rendering_stack(project, "dev")
    project.pulumi("up", "--yes", "-s", "dev")
    before = (project.resource_count("dev"), len(project.history("dev")))
    project.set_config("dev", "services.api.version", "latest")
    for command in (["preview"], ["up", "--yes"]):
        result = project.pulumi(*command, "-s", "dev", "--policy-pack", "policy",
                                "--policy-pack-config", policy_config(tmp_path, "dev"), check=False)
        assert result.code != 0
        assert "disallow-latest-tag" in result.output
    after = (project.resource_count("dev"), len(project.history("dev")))
    assert after[0] == before[0]
    rendered = (project.dir / "rendered/dev/1-manifest/apps_v1-deployment-shop-dev-api.yaml").read_text()
    assert "shop/api:1.4.2" in rendered


def test_policy_pack_alone_stops_an_unpinned_image_from_any_program(tmp_path):
    fixture = tmp_path / "program"
    shutil.copytree(Path(__file__).parent / "fixtures" / "unvalidated-image", fixture)
    project = Project(tmp_path / "env")  # borrow its environment and backend
    (fixture / ".venv").symlink_to(ROOT / ".venv")
    project.dir = fixture
    project.pulumi("stack", "init", "dev")
    result = project.pulumi("preview", "-s", "dev", "--policy-pack", str(ROOT / "policy"),
                            "--policy-pack-config", policy_config(tmp_path, "dev"), check=False)
    assert result.code != 0
    assert "disallow-latest-tag" in result.output
    assert "mandatory" in result.output
    assert not (fixture / "rendered").exists()


def test_prod_preview_with_no_policy_config_at_all_refuses_an_unverified_version(tmp_path):
    project = Project(tmp_path)
    rendering_stack(project, "prod")
    project.pulumi("config", "rm", "platform:promotion", "-s", "prod")  # only the pack can stop it now
    result = project.pulumi("preview", "-s", "prod", "--policy-pack", "policy", check=False)
    assert result.code != 0
    assert "require-verified-version" in result.output and "mandatory" in result.output
