"""Monitoring as the program renders it, checked by the real promtool and amtool."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.alerting import build_rule_groups, render_prometheus_rule_file, render_promtool_tests
from components.config import AlertThresholds
from support import DEV_SECRETS, deploy_stack, on_docker, raw_stack_config

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONTAINER = "docker:index/container:Container"


def workload_container(mocks, workload: str):
    """A workload's container: in its release slot when stateless (`alertmanager-<version>-<digest>`),
    else under its own name (Prometheus, on its volume)."""
    [found] = [c for c in mocks.of_type(CONTAINER) if c.name == workload or (
               c.name.startswith(f"{workload}-")
               and any(e["label"] == "deploy.platform/slot" and c.name == f"{workload}-{e['value']}"
                       for e in c.get("labels")))]
    return found
WEBHOOK = "https://chat.example/hooks/T000/B000/secret-token-123"


def deploy(mocks, target="kubernetes"):
    def with_webhook(raw):
        raw["alerting"]["webhookUrlSecretKey"] = "alertWebhookUrl"
        if target == "docker":
            on_docker(raw)

    return deploy_stack("staging", with_webhook, secrets={**DEV_SECRETS, "alertWebhookUrl": WEBHOOK})


def uploads(container) -> dict[str, str]:
    return {entry["file"]: entry["content"] for entry in container.get("uploads") or []}


def run(tool: str, *args: str, cwd: Path):
    import subprocess
    import shutil

    assert shutil.which(tool), f"{tool} is missing: run scripts/setup.sh (Debian package prometheus/prometheus-alertmanager)"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_kubernetes_gets_a_prometheus_rule_with_component_groups(mocks):
    deploy(mocks)
    rule = mocks.named(PROMETHEUS_RULE, "alert-rules")
    names = [group["name"] for group in rule.get("spec.groups")]
    assert {"service.rules", "certificates.rules", "backups.rules", "general.rules"} <= set(names)
    assert rule.get("metadata.namespace") == "shop-staging"


def test_kubernetes_alertmanager_config_is_a_secret_holding_the_webhook(mocks):
    deploy(mocks)
    secret = mocks.named("kubernetes:core/v1:Secret", "alertmanager-config")
    config = yaml.safe_load(secret.get("stringData")["alertmanager.yaml"])
    critical = next(r for r in config["receivers"] if r["name"] == "critical")
    assert critical["webhook_configs"][0]["url"] == WEBHOOK
    for registered in mocks.resources:
        if registered.typ != "kubernetes:core/v1:Secret":
            assert WEBHOOK not in repr(registered.inputs)


def test_rules_the_program_renders_pass_promtool_check_and_rule_tests(mocks, tmp_path):
    deploy(mocks)
    spec = mocks.named(PROMETHEUS_RULE, "alert-rules").get("spec")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(spec, sort_keys=False))
    checked = run("promtool", "check", "rules", str(rules), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The rule tests come from the same definitions the program rendered from.
    config = load_staging_alerting()
    # Scraped services (the worker has no port) with their versions, database names, and every container (postgres-main).
    staging = raw_stack_config("staging")
    versions = {"edge": staging["edge"]["version"], **{s: staging["services"][s]["version"] for s in ("web", "api")}}
    groups = build_rule_groups(config, versions, ["main"], ["edge", "web", "api", "worker", "postgres-main"])
    assert spec == render_prometheus_rule_file(groups)
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(render_promtool_tests(groups, rule_file="rules.yaml"), sort_keys=False))
    tested = run("promtool", "test", "rules", "tests.yaml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_docker_runs_prometheus_and_alertmanager_with_the_same_rules(mocks, tmp_path):
    deploy(mocks, target="docker")
    prometheus = uploads(workload_container(mocks, "prometheus"))
    rules = yaml.safe_load(prometheus["/etc/prometheus/rules.yml"])
    config = yaml.safe_load(prometheus["/etc/prometheus/prometheus.yml"])
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert {job["job_name"] for job in config["scrape_configs"]} == {
        "web", "api", "edge", "backup-main", "node", "postgres-main", "blackbox"}
    (tmp_path / "prometheus.yml").write_text(prometheus["/etc/prometheus/prometheus.yml"].replace(
        "/etc/prometheus/rules.yml", str(tmp_path / "rules.yml")))
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    checked = run("promtool", "check", "config", str(tmp_path / "prometheus.yml"), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_docker_alertmanager_config_passes_amtool(mocks, tmp_path):
    deploy(mocks, target="docker")
    alertmanager = uploads(workload_container(mocks, "alertmanager"))
    path = tmp_path / "alertmanager.yml"
    path.write_text(alertmanager["/etc/alertmanager/alertmanager.yml"])
    checked = run("amtool", "check-config", str(path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def load_staging_alerting() -> AlertThresholds:
    return AlertThresholds.model_validate(raw_stack_config("staging")["alerting"].get("thresholds", {}))


def test_kubernetes_scrapes_services_edge_and_backup_results_with_pod_monitors(mocks):
    deploy(mocks)
    monitors = {m.name: m for m in mocks.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")}
    assert set(monitors) == {"scrape-web", "scrape-api", "scrape-edge", "scrape-backup-main", "scrape-postgres-main",
                             "scrape-blackbox"}
    backup = monitors["scrape-backup-main"]
    assert backup.get("spec.selector.matchLabels") == {"app.kubernetes.io/name": "backup-metrics-main"}
    assert backup.get("spec.podMetricsEndpoints.0.relabelings.0") == {"targetLabel": "job", "replacement": "backup-main"}


def test_backup_results_exporter_serves_the_metrics_directory_of_the_backup_volume(mocks):
    deploy(mocks)
    exporter = mocks.named("kubernetes:apps/v1:Deployment", "backup-metrics-main")
    pod = exporter.get("spec.template.spec")
    assert pod["volumes"][0]["persistentVolumeClaim"] == {"claimName": "backups-main"}
    assert pod["containers"][0]["command"][-1].endswith('exec httpd -f -p 9102 -h "/backups/main/.metrics"')
    assert pod["containers"][0]["readinessProbe"]["exec"]["command"] == ["pidof", "httpd"]


HANDLER = Path(__file__).resolve().parents[2] / "devenv" / "images" / "shop-app" / "handler.sh"


def ask(path: str, metrics_dir: Path) -> str:
    import os
    import subprocess

    request = f"GET {path} HTTP/1.0\r\nHost: shop.test\r\n\r\n"
    env = {**os.environ, "METRICS_DIR": str(metrics_dir), "APP_NAME": "api"}
    return subprocess.run(["sh", str(HANDLER)], input=request, capture_output=True, text=True, env=env,
                          timeout=30, check=True).stdout


def metrics_body(metrics_dir: Path) -> str:
    return ask("/metrics", metrics_dir).split("\n\n", 1)[1]  # text mode reads \r\n as \n


def test_shop_app_counts_requests_by_status_code_and_not_its_scrapes(tmp_path):
    for path in ("/healthz", "/", "/nope", "/healthz"):
        ask(path, tmp_path)
    metrics_body(tmp_path)
    body = metrics_body(tmp_path)
    counts = {line.split()[0]: float(line.split()[1]) for line in body.splitlines()
              if line.startswith("http_requests_total")}
    assert counts == {'http_requests_total{code="200",version="unknown"}': 3,
                      'http_requests_total{code="404",version="unknown"}': 1}


def test_shop_app_metrics_pass_promtool_check_metrics(tmp_path):
    ask("/healthz", tmp_path)
    checked = subprocess_run_promtool_metrics(metrics_body(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_shop_app_histogram_counts_every_request_in_the_inf_bucket(tmp_path):
    for _ in range(3):
        ask("/version", tmp_path)
    body = metrics_body(tmp_path)
    assert 'http_request_duration_seconds_bucket{le="+Inf",version="unknown"} 3' in body
    assert 'http_request_duration_seconds_count{version="unknown"} 3' in body


def subprocess_run_promtool_metrics(text: str):
    import shutil
    import subprocess

    assert shutil.which("promtool"), "promtool is missing: run scripts/setup.sh (Debian package prometheus)"
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)


def docker_prometheus_config(mocks) -> dict:
    deploy(mocks, target="docker")
    return yaml.safe_load(uploads(workload_container(mocks, "prometheus"))["/etc/prometheus/prometheus.yml"])


def scrape_job(config: dict, name: str) -> dict:
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == name]
    return job


def test_docker_prometheus_names_the_stack_on_every_alert(mocks):
    assert docker_prometheus_config(mocks)["global"]["external_labels"] == {"stack": "staging"}


def test_docker_service_targets_carry_service_version_and_track(mocks):
    job = scrape_job(docker_prometheus_config(mocks), "api")
    assert job["static_configs"] == [{"targets": ["api:8080"],
                                      "labels": {"service": "api", "version": "1.4.2", "track": "stable"}}]


def test_docker_backup_results_carry_the_database_service_and_version(mocks):
    job = scrape_job(docker_prometheus_config(mocks), "backup-main")
    assert job["static_configs"][0]["labels"] == {"service": "postgres-main", "version": "15.18.0"}


def test_docker_postgres_exporter_is_scraped_with_the_database_label(mocks):
    job = scrape_job(docker_prometheus_config(mocks), "postgres-main")
    assert job["static_configs"] == [{"targets": ["postgres-exporter-main:9187"], "labels": {
        "database": "main", "service": "postgres-main", "version": "15.18.0"}}]


def test_docker_blackbox_probes_every_public_endpoint_through_the_edge(mocks):
    job = scrape_job(docker_prometheus_config(mocks), "blackbox")
    probes = {c["labels"]["instance"]: c["targets"] for c in job["static_configs"]}
    assert probes == {"https://shop.staging.localhost:31443/api/healthz": ["https://edge:443/api/healthz"],
                      "https://shop.staging.localhost:31443/healthz": ["https://edge:443/healthz"]}


def test_docker_blackbox_sends_the_edge_host_as_sni_and_host_header(mocks):
    deploy(mocks, target="docker")
    config = yaml.safe_load(uploads(workload_container(mocks, "blackbox-exporter"))["/etc/blackbox-exporter/blackbox.yml"])
    http = config["modules"]["https_shop_staging_localhost"]["http"]
    assert (http["headers"], http["tls_config"]["server_name"]) == ({"Host": "shop.staging.localhost"}, "shop.staging.localhost")


def test_docker_postgres_exporter_reads_the_password_from_a_file(mocks):
    deploy(mocks, target="docker")
    exporter = workload_container(mocks, "postgres-exporter-main")
    assert "DATA_SOURCE_PASS_FILE=/run/secrets/DATA_SOURCE_PASS" in exporter.get("envs")
    assert DEV_SECRETS["mainDbPassword"] not in repr(exporter.get("envs"))


def test_docker_node_exporter_reads_the_host_root_read_only(mocks):
    deploy(mocks, target="docker")
    node = mocks.named(CONTAINER, "node-exporter")
    assert node.get("mounts") == [{"type": "bind", "source": "/", "target": "/host", "readOnly": True}]
    assert "--path.rootfs=/host" in node.get("entrypoints")


def test_kubernetes_pod_monitors_label_service_version_and_track_from_the_pod(mocks):
    deploy(mocks)
    api = mocks.named("kubernetes:monitoring.coreos.com/v1:PodMonitor", "scrape-api")
    relabelings = api.get("spec.podMetricsEndpoints.0.relabelings")
    assert {"targetLabel": "service", "replacement": "api"} in relabelings
    assert {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_version"], "targetLabel": "version"} in relabelings


def test_a_backup_pod_monitor_labels_the_databases_version_not_its_exporters(mocks):
    # The exporter pod runs busybox; BackupFailed must name the database's version (15.x).
    deploy(mocks)
    monitors = {m.name: m for m in mocks.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")}
    backup = monitors["scrape-backup-main"]
    relabelings = backup.get("spec.podMetricsEndpoints.0.relabelings")
    version = next(r for r in relabelings if r.get("targetLabel") == "version")
    assert version == {"targetLabel": "version", "replacement": raw_stack_config("dev")["databases"]["main"]["version"]}
