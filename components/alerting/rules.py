"""Alert rules for the platform: build them once, render them for Prometheus or the Prometheus Operator.

    groups = build_rule_groups(AlertingThresholds(), services={"edge": "3.1.4", "web": "1.4.2", "api": "1.4.2"},
                               databases=["main"], containers=["edge", "web", "api", "worker", "postgres-main"])
    render_prometheus_rule_file(groups)   # the `groups:` document promtool and a plain Prometheus read
    render_prometheus_rule_spec(groups)   # `spec` of a monitoring.coreos.com/v1 PrometheusRule

Both renderings come from the same models, so Docker and Kubernetes stacks alert on exactly the same rules.
"""

from __future__ import annotations

from typing import Any, Mapping

from .database_rules import backup_rules, database_rules
from .host_rules import container_rules, general_rules, node_rules
from .models import (
    AlertFixture,
    AlertingThresholds,
    AlertRule,
    ExpectedAlert,
    FiringCase,
    RuleGroup,
    Series,
    Severity,
    duration_seconds,
    runbook_url,
)
from .service_rules import certificate_rules, service_rules

__all__ = [
    "AlertFixture",
    "AlertRule",
    "AlertingThresholds",
    "ExpectedAlert",
    "FiringCase",
    "RuleGroup",
    "Series",
    "Severity",
    "build_rule_groups",
    "duration_seconds",
    "render_prometheus_rule_file",
    "render_prometheus_rule_spec",
    "runbook_url",
]


def build_rule_groups(settings: AlertingThresholds, services: Mapping[str, str], databases: list[str],
                      containers: list[str]) -> list[RuleGroup]:
    """One `<component>.rules` group per component.

    `services`: the services Prometheus scrapes (job = service name; a service without a port, such as the
    worker, has no `up` series and is not listed), each with the version deployed there: ServiceDown's
    absent() branch, which fires when a service has no target left, has no series to take the version from.
    `databases`: the configured database names (the `database` label of backup and postgres_exporter series).
    `containers`: every workload's container name, databases' included (`postgres-<db>`), for the restart rule.
    With no databases, `backups.rules` and `database.rules` are left out: there is nothing to back up or watch.
    """
    if not services:
        raise ValueError("services must name at least one service and its version (e.g. {'api': '1.4.2'}), got {}")
    if not isinstance(services, Mapping):
        raise ValueError(f"services must map each scraped service to its deployed version (e.g. {{'api': '1.4.2'}}), got {services!r}")
    groups = [
        RuleGroup(name="service.rules", rules=service_rules(settings, services)),
        RuleGroup(name="certificates.rules", rules=certificate_rules(settings)),
    ]
    if databases:
        groups += [
            RuleGroup(name="backups.rules", rules=backup_rules(settings, databases)),
            RuleGroup(name="database.rules", rules=database_rules(settings, databases)),
        ]
    groups += [
        RuleGroup(name="node.rules", rules=node_rules(settings)),
        RuleGroup(name="containers.rules", rules=container_rules(settings, list(containers))),
        RuleGroup(name="general.rules", rules=general_rules(settings)),
    ]
    _require_unique_names(groups)
    return groups


def _require_unique_names(groups: list[RuleGroup]) -> None:
    # Alertmanager groups, inhibits and links runbooks by alertname: two rules with one name would blur all three.
    seen: set[str] = set()
    for group in groups:
        for rule in group.rules:
            if rule.name in seen:
                raise ValueError(f"alert name {rule.name!r} is defined twice; alert names must be unique")
            seen.add(rule.name)


def _render_rule(rule: AlertRule) -> dict[str, Any]:
    return {
        "alert": rule.name,
        "expr": rule.expr,
        "for": rule.for_,
        "labels": {"severity": rule.severity},
        "annotations": {"summary": rule.summary, "description": rule.description, "runbook_url": rule.runbook},
    }


def _render_groups(groups: list[RuleGroup]) -> list[dict[str, Any]]:
    return [{"name": group.name, "rules": [_render_rule(rule) for rule in group.rules]} for group in groups]


def render_prometheus_rule_file(groups: list[RuleGroup]) -> dict[str, Any]:
    """The rule file Prometheus loads (`rule_files:`) and `promtool check rules` reads."""
    return {"groups": _render_groups(groups)}


def render_prometheus_rule_spec(groups: list[RuleGroup]) -> dict[str, Any]:
    """The `spec` of a monitoring.coreos.com/v1 PrometheusRule: the same `groups` list as the rule file.

    Ref: https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.PrometheusRuleSpec
    """
    return {"groups": _render_groups(groups)}
