"""Rule file, PrometheusRule spec and promtool tests are renderings of the same models."""

from __future__ import annotations

import pytest

from components.alerting.promtool import expand_template, humanize_duration, render_promtool_tests
from components.alerting.rules import render_prometheus_rule_file, render_prometheus_rule_spec


def test_rule_file_and_prometheus_rule_spec_have_identical_groups(groups):
    assert render_prometheus_rule_file(groups)["groups"] == render_prometheus_rule_spec(groups)["groups"]


def test_renderings_do_not_share_mutable_state(groups):
    spec = render_prometheus_rule_spec(groups)
    spec["groups"][0]["rules"][0]["labels"]["severity"] = "info"
    assert render_prometheus_rule_file(groups)["groups"][0]["rules"][0]["labels"]["severity"] == "critical"


def test_rendered_rule_uses_prometheus_field_names(groups):
    assert list(render_prometheus_rule_file(groups)["groups"][0]["rules"][0]) == ["alert", "expr", "for", "labels", "annotations"]


def test_promtool_tests_have_one_firing_and_one_quiet_case_per_alert(groups, rules):
    cases = [t["alert_rule_test"][0] for t in render_promtool_tests(groups)["tests"]]
    for rule in rules:
        mine = [c for c in cases if c["alertname"] == rule.name]
        quiet = [c for c in mine if c["exp_alerts"] == []]
        firing = 1 + len(rule.fixture.more_firing)
        assert (len(mine) - len(quiet), len(quiet)) == (firing, 0 if rule.name == "Watchdog" else 1), rule.name


def test_firing_cases_expect_the_rules_severity_label(groups, rules):
    severity = {r.name: r.severity for r in rules}
    for test in render_promtool_tests(groups)["tests"]:
        case = test["alert_rule_test"][0]
        assert all(a["exp_labels"]["severity"] == severity[case["alertname"]] for a in case["exp_alerts"])


def test_firing_cases_expect_the_rules_runbook_url(groups, rules):
    runbook = {r.name: r.runbook for r in rules}
    for test in render_promtool_tests(groups)["tests"]:
        case = test["alert_rule_test"][0]
        assert all(a["exp_annotations"]["runbook_url"] == runbook[case["alertname"]] for a in case["exp_alerts"])


def test_promtool_tests_load_the_named_rule_file(groups):
    assert render_promtool_tests(groups, rule_file="platform.rules.yaml")["rule_files"] == ["platform.rules.yaml"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.975, "975ms"), (1.5, "1.5s"), (90, "1m 30s"), (2 * 86400 + 4 * 3600, "2d 4h 0m 0s"), (0, "0s")],
)
def test_humanize_duration_prints_what_prometheus_prints(seconds, text):
    assert humanize_duration(seconds) == text


def test_expand_template_fills_labels_and_formatted_value():
    template = "{{ $labels.service }} failed {{ $value | humanizePercentage }} ({{ $value | printf \"%.0f\" }})"
    assert expand_template(template, {"service": "api"}, 0.125) == "api failed 12.5% (0)"


def test_fails_to_expand_a_template_action_it_cannot_render():
    with pytest.raises(ValueError, match="unsupported template action"):
        expand_template("{{ with $labels.service }}x{{ end }}", {"service": "api"}, None)
