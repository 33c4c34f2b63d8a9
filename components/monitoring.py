"""Monitoring: the alert rules and Alertmanager routing from components/alerting, delivered to
the target — a PrometheusRule and an Alertmanager secret for the cluster's Prometheus Operator
on Kubernetes, the stack's own Prometheus and Alertmanager containers on Docker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import yaml
from pulumi import ResourceOptions

from components.alerting import (
    build_rule_groups,
    render_alertmanager_config,
    render_prometheus_rule_file,
)
from components.config import AlertingSpec, MonitoringSpec
from components.targets.base import MonitoringBundle, RuntimeTarget, ScrapeTarget


@dataclass(frozen=True)
class MonitoringArgs:
    alerting: AlertingSpec
    settings: MonitoringSpec
    services: Sequence[str]
    databases: Sequence[str]
    scrape_targets: Sequence[ScrapeTarget]
    secrets: Mapping[str, pulumi.Output[str]]


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, target: RuntimeTarget,
                 opts: ResourceOptions | None = None):
        super().__init__("platform:monitoring:Monitoring", name, None, opts)
        groups = build_rule_groups(args.alerting.thresholds, list(args.services), list(args.databases))
        self.rule_file = render_prometheus_rule_file(groups)
        self.alert_names = [rule.name for group in groups for rule in group.rules]
        alertmanager_config = _alertmanager_yaml(args.alerting, args.secrets)
        target.monitoring(MonitoringBundle(
            rule_file=self.rule_file,
            alertmanager_config=alertmanager_config,
            scrape_targets=args.scrape_targets,
            settings=args.settings,
        ), parent=self)
        self.register_outputs({"alert_names": self.alert_names})


def _alertmanager_yaml(alerting: AlertingSpec, secrets: Mapping[str, pulumi.Output[str]]) -> pulumi.Output[str]:
    def secret(key: str | None) -> pulumi.Input[str | None]:
        return secrets[key] if key else None

    # Rendered inside apply because the webhook URL and SMTP password are secrets; the result stays secret.
    return pulumi.Output.secret(pulumi.Output.all(
        secret(alerting.webhook_url_secret_key), secret(alerting.smtp_password_secret),
        secret(alerting.heartbeat_url_secret_key),
    ).apply(lambda values: yaml.safe_dump(render_alertmanager_config(
        alerting, webhook_url=values[0], smtp_password=values[1], heartbeat_url=values[2]), sort_keys=False)))


def prometheus_config(bundle: MonitoringBundle, rule_path: str, alertmanager: str, address) -> str:
    """prometheus.yml for a target that runs its own Prometheus (`address(workload, port)` -> host:port)."""
    interval = f"{bundle.settings.scrape_interval_seconds}s"
    return yaml.safe_dump({
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [rule_path],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": t.job, "static_configs": [{"targets": [address(t.workload, t.port)]}]}
                           for t in sorted(bundle.scrape_targets, key=lambda t: t.job)],
    }, sort_keys=False)
