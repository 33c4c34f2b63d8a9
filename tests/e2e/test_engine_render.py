"""The real Pulumi engine (CLI + language host + kubernetes provider built by devenv/toolchain/build.sh)
on a file backend, with the Kubernetes target rendering manifests to a directory."""

from __future__ import annotations

import pytest
import yaml

from engine import Project

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> tuple[Project, str]:
    project = Project(tmp_path_factory.mktemp("render"))
    project.init_stack("dev", SECRETS)
    project.render_only("dev")
    preview = project.pulumi("preview", "-s", "dev")
    up = project.pulumi("up", "--yes", "-s", "dev", "--message", "first render")
    return project, preview.output + up.output


def rendered(project: Project) -> dict[str, dict]:
    root = project.dir / "rendered" / "dev" / "1-manifest"
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(root.glob("*.yaml"))}


def test_preview_then_up_renders_every_workload(deployed):
    project, _ = deployed
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered(project).values()}
    assert {("Deployment", "web"), ("Deployment", "api"), ("Deployment", "worker"), ("Deployment", "edge"),
            ("StatefulSet", "postgres-main"), ("CronJob", "backup-main"), ("CronJob", "restore-drill-main"),
            ("NetworkPolicy", "postgres-main-internal-only"), ("Namespace", "shop-dev")} <= kinds


def test_rendered_api_deployment_runs_the_configured_version_with_probes(deployed):
    project, _ = deployed
    api = rendered(project)["apps_v1-deployment-shop-dev-api.yaml"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "127.0.0.1:5000/shop/api:1.4.2"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["timeoutSeconds"] == 3


def test_no_secret_value_is_written_anywhere_in_the_rendered_manifests(deployed):
    project, _ = deployed
    text = "".join(path.read_text() for path in (project.dir / "rendered").rglob("*.yaml"))
    for value in SECRETS.values():
        assert value not in text


def test_no_secret_value_is_stored_in_plain_text_in_state(deployed):
    project, _ = deployed
    state = project.pulumi("stack", "export", "-s", "dev").stdout
    for value in SECRETS.values():
        assert value not in state


def test_stack_history_records_the_update(deployed):
    project, _ = deployed
    history = project.history("dev")
    assert history[0]["kind"] == "update"
    assert history[0]["result"] == "succeeded"
    assert history[0]["message"] == "first render"
    assert history[0]["config"]["platform:services"]["value"]


def test_outputs_export_versions_and_endpoints(deployed):
    project, _ = deployed
    outputs = project.outputs("dev")
    assert outputs["versions"] == {"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2"}
    assert outputs["target"] == "kubernetes"
    assert outputs["endpoints"]["edge"] == ["https://shop.dev.localhost:30443/"]


def test_a_second_up_with_no_change_changes_nothing(deployed):
    project, _ = deployed
    result = project.pulumi("preview", "--expect-no-changes", "-s", "dev")
    assert result.code == 0


def test_config_error_stops_before_any_resource_and_names_the_key(tmp_path):
    project = Project(tmp_path)
    project.init_stack("dev", SECRETS)
    project.render_only("dev")
    project.set_config("dev", "services.api.replicas", 0)
    result = project.pulumi("preview", "-s", "dev", check=False)
    assert result.code != 0
    assert "Pulumi.dev.yaml: invalid configuration" in result.output
    assert "platform:services.api.replicas" in result.output
    assert "Traceback" not in result.output
    assert not (project.dir / "rendered").exists()
