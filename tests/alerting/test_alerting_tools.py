"""The rendered files, checked by the real promtool and amtool (installed by the setup script)."""

from __future__ import annotations

import pytest

from components.alerting.alertmanager import AlertRouting, render_alertmanager_config
from components.alerting.promtool import render_promtool_tests
from components.alerting.rules import (
    AlertingThresholds,
    build_rule_groups,
    render_prometheus_rule_file,
    render_prometheus_rule_spec,
)

from .tooling import CONTAINERS, DATABASES, SERVICES, report, require_tool, run_tool, write_yaml

ROUTING = AlertRouting(
    email_to=["oncall@example.test"], email_from="alerts@example.test", smarthost="smtp.example.test:587",
    webhook_url_secret_key="alertWebhookUrl", heartbeat_url_secret_key="heartbeatUrl",
)
CUSTOM = AlertingThresholds(
    error_rate=0.013, p95_latency_seconds=1.7, cert_warning_days=30, cert_critical_days=5, backup_max_age_hours=49.5,
    disk_usage_ratio=0.93, db_connections_ratio=0.61, restarts_15m=6, service_down_for="30s", backup_for="1m30s",
)


def promtool_test(tmp_path, groups, rule_file=None):
    write_yaml(tmp_path / "rules.yaml", rule_file or render_prometheus_rule_file(groups))
    write_yaml(tmp_path / "tests.yaml", render_promtool_tests(groups, rule_file="rules.yaml"))
    return run_tool("promtool", "test", "rules", "tests.yaml", cwd=tmp_path)


@pytest.fixture
def alertmanager_yml(tmp_path):
    config = render_alertmanager_config(
        ROUTING, "https://hooks.example.test/T0/PLACEHOLDER", "PLACEHOLDER", heartbeat_url="https://hb.example.test/ping/x"
    )
    return write_yaml(tmp_path / "alertmanager.yml", config)


def test_rule_file_passes_promtool_check_rules(tmp_path, groups):
    write_yaml(tmp_path / "rules.yaml", render_prometheus_rule_file(groups))
    result = run_tool("promtool", "check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, report(result)


def test_prometheus_rule_spec_passes_promtool_check_rules(tmp_path, groups):
    write_yaml(tmp_path / "spec.yaml", render_prometheus_rule_spec(groups))
    result = run_tool("promtool", "check", "rules", "spec.yaml", cwd=tmp_path)
    assert result.returncode == 0, report(result)


def test_fails_promtool_check_rules_on_a_broken_expression(tmp_path, groups):
    document = render_prometheus_rule_file(groups)
    document["groups"][0]["rules"][0]["expr"] = "sum by (job (up == 0"
    write_yaml(tmp_path / "rules.yaml", document)
    result = run_tool("promtool", "check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "parse error" in result.stdout + result.stderr, report(result)


def test_generated_promtool_tests_pass(tmp_path, groups):
    result = promtool_test(tmp_path, groups)
    assert result.returncode == 0, report(result)


def test_generated_promtool_tests_pass_with_non_default_thresholds(tmp_path):
    result = promtool_test(tmp_path, build_rule_groups(CUSTOM, SERVICES, [*DATABASES, "audit"], [*CONTAINERS, "postgres-audit"]))
    assert result.returncode == 0, report(result)


def test_fails_generated_promtool_tests_when_a_rule_no_longer_fires(tmp_path, groups):
    document = render_prometheus_rule_file(groups)
    document["groups"][0]["rules"][0]["expr"] = 'up{job=~"edge|web|api"} == 2'  # ServiceDown, broken
    result = promtool_test(tmp_path, groups, rule_file=document)
    assert result.returncode != 0 and "ServiceDown" in result.stdout + result.stderr, report(result)


def test_alertmanager_config_passes_amtool_check_config(alertmanager_yml):
    result = run_tool("amtool", "check-config", alertmanager_yml.name, cwd=alertmanager_yml.parent)
    assert result.returncode == 0, report(result)


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ServiceDown", "severity=critical"], "critical"),
        (["alertname=ServiceHighLatency", "severity=warning"], "email"),
        (["alertname=Watchdog", "severity=info"], "heartbeat"),
        (["alertname=SomethingInformational", "severity=info"], "null"),
    ],
)
def test_amtool_routes_alert_to_receiver(alertmanager_yml, labels, receiver):
    result = run_tool(
        "amtool", "config", "routes", "test", f"--config.file={alertmanager_yml.name}",
        f"--verify.receivers={receiver}", *labels, cwd=alertmanager_yml.parent,
    )
    assert result.returncode == 0, report(result)


def test_fails_rather_than_skips_when_a_tool_is_missing(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match="run the setup script"):
        require_tool("promtool")
