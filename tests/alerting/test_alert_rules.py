"""The rule set's structure: the house style every alert must follow (STYLE.md habit 10)."""

from __future__ import annotations

import re

import pytest

from components.alerting.rules import AlertingThresholds, build_rule_groups, render_prometheus_rule_file

from .tooling import CONTAINERS, DATABASES, SERVICES

REQUIRED_ALERTS = {
    "ServiceDown", "ServiceHighErrorRate", "ServiceHighLatency", "CertificateExpiringSoon",
    "CertificateExpiryImminent", "BackupStale", "BackupFailed", "NodeDiskAlmostFull", "DatabaseDown",
    "DatabaseConnectionsHigh", "ContainerRestartingOften", "Watchdog", "CertificateExpiryUnknown",
}


def test_alert_names_are_pascal_case(rules):
    assert [r.name for r in rules if not re.fullmatch(r"(?:[A-Z][a-z0-9]+)+", r.name)] == []


def test_alert_names_are_unique(rules):
    names = [r.name for r in rules]
    assert len(names) == len(set(names))


def test_rule_set_covers_every_required_symptom(rules):
    assert REQUIRED_ALERTS <= {r.name for r in rules}


def test_groups_are_named_component_dot_rules(groups):
    assert [g.name for g in groups] == [
        "service.rules", "certificates.rules", "backups.rules", "database.rules",
        "node.rules", "containers.rules", "general.rules",
    ]


def test_every_rendered_rule_has_for_severity_summary_description_and_runbook_url(groups):
    for rule in (r for g in render_prometheus_rule_file(groups)["groups"] for r in g["rules"]):
        assert rule["for"] and rule["labels"]["severity"], rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert all(rule["annotations"].values()), rule["alert"]


def test_severities_are_critical_warning_or_info(rules):
    assert {r.severity for r in rules} <= {"critical", "warning", "info"}


def test_summaries_are_static(rules):
    assert [r.name for r in rules if "{{" in r.summary] == []


def test_descriptions_are_templated_except_watchdogs(rules):
    assert [r.name for r in rules if r.name != "Watchdog" and "{{ $" not in r.description] == []


def test_runbook_urls_follow_the_one_pattern(rules):
    assert [r.name for r in rules if r.runbook != f"docs/runbooks/alerts.md#{r.name.lower()}"] == []


def test_runbook_base_url_is_configurable():
    base = "https://git.example.test/org/platform/blob/main/docs/runbooks/alerts.md"
    groups = build_rule_groups(AlertingThresholds(runbook_base_url=base), SERVICES, DATABASES, CONTAINERS)
    assert groups[0].rules[0].runbook == f"{base}#servicedown"


def test_watchdog_always_fires_with_severity_info(rules):
    watchdog = next(r for r in rules if r.name == "Watchdog")
    assert (watchdog.expr, watchdog.severity) == ("vector(1)", "info")


def test_every_alert_except_watchdog_has_a_quiet_fixture(rules):
    assert [r.name for r in rules if r.fixture.healthy is None] == ["Watchdog"]


def test_service_down_watches_exactly_the_scraped_services(rules):
    expr = next(r for r in rules if r.name == "ServiceDown").expr
    assert expr.startswith('up{job=~"edge|web|api"} == 0 or ')
    assert re.findall(r'absent\(up\{job="([^"]+)"\}\)', expr) == ["edge", "web", "api"]


def test_backup_and_database_rules_watch_the_configured_databases(rules):
    for name in ("BackupStale", "BackupFailed", "DatabaseDown", "DatabaseConnectionsHigh"):
        assert 'database=~"main"' in next(r for r in rules if r.name == name).expr, name


def test_container_restarts_match_the_database_container_name(rules):
    # PromQL regexes are anchored: the database's container is postgres-main, not main.
    expr = next(r for r in rules if r.name == "ContainerRestartingOften").expr
    assert expr.count('=~"edge|web|api|worker|postgres-main"') == 2, expr


def test_database_down_fires_when_no_exporter_reports_on_a_database(rules):
    assert 'absent(pg_up{database="main"})' in next(r for r in rules if r.name == "DatabaseDown").expr


def test_certificate_expiry_is_guarded_against_a_missing_probe(rules):
    expr = next(r for r in rules if r.name == "CertificateExpiryUnknown").expr
    assert "unless on (instance) probe_ssl_earliest_cert_expiry" in expr and 'absent(up{job="blackbox"})' in expr


def test_service_rules_aggregate_by_service_and_version(rules):
    for name in ("ServiceHighErrorRate", "ServiceHighLatency"):
        assert "by (service, version)" in next(r for r in rules if r.name == name).expr.replace("le, ", ""), name


@pytest.mark.parametrize(
    ("field", "value", "alert", "fragment"),
    [
        ("error_rate", 0.1, "ServiceHighErrorRate", "> 0.1"),
        ("p95_latency_seconds", 1.5, "ServiceHighLatency", "> 1.5"),
        ("cert_warning_days", 30, "CertificateExpiringSoon", "< 30 * 86400"),
        ("cert_critical_days", 3, "CertificateExpiryImminent", "< 3 * 86400"),
        ("backup_max_age_hours", 50, "BackupStale", "> 50 * 3600"),
        ("disk_usage_ratio", 0.9, "NodeDiskAlmostFull", "> 0.9"),
        ("db_connections_ratio", 0.7, "DatabaseConnectionsHigh", "> 0.7"),
        ("restarts_15m", 5, "ContainerRestartingOften", "[15m])) > 5"),
    ],
)
def test_thresholds_reach_the_rule_expressions(field, value, alert, fragment):
    groups = build_rule_groups(AlertingThresholds(**{field: value}), SERVICES, DATABASES, CONTAINERS)
    assert fragment in next(r for g in groups for r in g.rules if r.name == alert).expr


@pytest.mark.parametrize(
    ("field", "alerts"),
    [("service_down_for", ("ServiceDown", "DatabaseDown")), ("backup_for", ("BackupFailed", "BackupStale"))],
)
def test_pending_durations_reach_the_rules(field, alerts):
    groups = build_rule_groups(AlertingThresholds(**{field: "45s"}), SERVICES, DATABASES, CONTAINERS)
    assert {r.name: r.for_ for g in groups for r in g.rules if r.name in alerts} == dict.fromkeys(alerts, "45s")


def test_stack_without_databases_has_no_backup_or_database_rules():
    names = [g.name for g in build_rule_groups(AlertingThresholds(), SERVICES, [], CONTAINERS)]
    assert "backups.rules" not in names and "database.rules" not in names


def test_rejects_an_empty_service_list():
    with pytest.raises(ValueError, match="services must name at least one service"):
        build_rule_groups(AlertingThresholds(), {}, DATABASES, CONTAINERS)


def test_rejects_services_without_their_versions():
    with pytest.raises(ValueError, match=r"services must map each scraped service to its deployed version.*got \['api'\]"):
        build_rule_groups(AlertingThresholds(), ["api"], DATABASES, CONTAINERS)


def test_rejects_a_service_name_that_would_change_the_regex():
    with pytest.raises(ValueError, match=r"got 'api\|\.\*'"):
        build_rule_groups(AlertingThresholds(), {"api|.*": "1.4.2"}, DATABASES, CONTAINERS)


def test_rejects_a_version_that_would_break_the_absent_label():
    with pytest.raises(ValueError, match=r"plain tag or digest.*got '1\.4\.2\", \"x'"):
        build_rule_groups(AlertingThresholds(), {"api": '1.4.2", "x'}, DATABASES, CONTAINERS)


def test_service_down_also_fires_when_a_service_has_no_target_left():
    [down] = [r for g in build_rule_groups(AlertingThresholds(), SERVICES, DATABASES, CONTAINERS)
              for r in g.rules if r.name == "ServiceDown"]
    for service, version in SERVICES.items():
        assert (f'label_replace(label_replace(label_replace(absent(up{{job="{service}"}}), "service", "{service}", "", ""), '
                f'"version", "{version}", "", ""), "instance", "none (no target left to scrape)", "", "")') in down.expr
