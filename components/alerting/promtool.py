"""`promtool test rules` cases generated from the rules' own fixtures.

For every alert: one test whose series make it fire, asserting its full labels and annotations (so the
description templates are exercised too), and one whose series keep it quiet (`exp_alerts: []`).
Ref: https://prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules/
"""

from __future__ import annotations

import math
import re
from typing import Any

from .models import AlertRule, ExpectedAlert, RuleGroup, Series

_LABEL_ACTION = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")
_VALUE_ACTION = re.compile(r'\{\{\s*\$value\s*(?:\|\s*(\w+)\s*(?:"([^"]*)")?)?\s*\}\}')
_ANY_ACTION = re.compile(r"\{\{.*?\}\}")


def render_promtool_tests(groups: list[RuleGroup], rule_file: str = "rules.yaml") -> dict[str, Any]:
    """A `promtool test rules` file for `rule_file` (a path relative to the test file, as promtool resolves it)."""
    tests: list[dict[str, Any]] = []
    for group in groups:
        for rule in group.rules:
            tests.append(_test(rule, rule.fixture.firing, [_expected(rule, alert) for alert in rule.fixture.expected]))
            for case in rule.fixture.more_firing:
                tests.append(_test(rule, case.firing, [_expected(rule, alert) for alert in case.expected]))
            if rule.fixture.healthy is not None:
                tests.append(_test(rule, rule.fixture.healthy, []))
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def _test(rule: AlertRule, series: list[Series], exp_alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "interval": rule.fixture.interval,
        "input_series": [{"series": s.selector(), "values": s.values} for s in series],
        "alert_rule_test": [{"eval_time": rule.fixture.eval_time, "alertname": rule.name, "exp_alerts": exp_alerts}],
    }


def _expected(rule: AlertRule, alert: ExpectedAlert) -> dict[str, Any]:
    # promtool adds `alertname` itself and compares labels and annotations exactly.
    return {
        "exp_labels": {**alert.labels, "severity": rule.severity},
        "exp_annotations": {
            "summary": rule.summary,
            "description": expand_template(rule.description, alert.labels, alert.value),
            "runbook_url": rule.runbook,
        },
    }


def expand_template(template: str, labels: dict[str, str], value: float | None) -> str:
    """What Prometheus renders for the template actions our descriptions use; anything else is an error."""

    def label(match: re.Match[str]) -> str:
        if match.group(1) not in labels:
            raise ValueError(f"template uses $labels.{match.group(1)} but the fixture's alert has only {sorted(labels)}")
        return labels[match.group(1)]

    def formatted(match: re.Match[str]) -> str:
        if value is None:
            raise ValueError(f"template {template!r} uses $value but the fixture gives no value")
        return _format_value(value, match.group(1), match.group(2))

    text = _VALUE_ACTION.sub(formatted, _LABEL_ACTION.sub(label, template))
    leftover = _ANY_ACTION.search(text)
    if leftover:
        raise ValueError(f"unsupported template action {leftover.group(0)!r}: teach expand_template() to render it")
    return text


def _format_value(value: float, function: str | None, argument: str | None) -> str:
    if function == "humanizePercentage":
        return f"{value * 100:.4g}%"
    if function == "humanizeDuration":
        return humanize_duration(value)
    if function == "printf" and argument is not None:
        return argument % value
    raise ValueError(f"unsupported pipeline for $value: {function!r}")


def humanize_duration(seconds: float) -> str:
    """Python twin of Prometheus' humanizeDuration template function.

    Ref: https://github.com/prometheus/prometheus/blob/main/template/template.go
    """
    if math.isnan(seconds) or math.isinf(seconds):
        return f"{seconds:.4g}"
    if seconds == 0:
        return f"{seconds:.4g}s"
    if abs(seconds) >= 1:
        sign, whole = ("-" if seconds < 0 else ""), int(abs(seconds))
        days, hours, minutes, secs = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {secs}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {secs}s"
        if minutes:
            return f"{sign}{minutes}m {secs}s"
        return f"{sign}{abs(seconds):.4g}s"
    prefix = ""
    for unit in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(seconds) >= 1:
            break
        prefix, seconds = unit, seconds * 1000
    return f"{seconds:.4g}{prefix}s"
