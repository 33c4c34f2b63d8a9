"""Alerting as data: Prometheus rules, their promtool tests and the Alertmanager config, with no Pulumi resources.

The monitoring components render these into a rule file (Docker) or a PrometheusRule (Kubernetes) and an
Alertmanager config; tests/alerting checks them with the real promtool and amtool.
"""

from .alertmanager import AlertRouting, render_alertmanager_config
from .promtool import render_promtool_tests
from .rules import (
    AlertingThresholds,
    AlertRule,
    RuleGroup,
    build_rule_groups,
    render_prometheus_rule_file,
    render_prometheus_rule_spec,
)

__all__ = [
    "AlertRouting",
    "AlertRule",
    "AlertingThresholds",
    "RuleGroup",
    "build_rule_groups",
    "render_alertmanager_config",
    "render_prometheus_rule_file",
    "render_prometheus_rule_spec",
    "render_promtool_tests",
]
