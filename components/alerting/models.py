"""Typed alert definitions: thresholds, rules, rule groups and the fixtures that prove each rule.

Pure data, no Pulumi: the monitoring components, the promtool tests and the runbook tests all read
these models, so an alert is defined exactly once (the shared style guide, habit 10, kube-prometheus conventions).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["critical", "warning", "info"]

PASCAL_CASE_RE = re.compile(r"^(?:[A-Z][a-z0-9]+)+$")
GROUP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*\.rules$")
# Prometheus duration grammar, e.g. 30s, 5m, 1h30m. Ref: https://prometheus.io/docs/prometheus/latest/configuration/configuration/#duration
DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)

DEFAULT_RUNBOOK_BASE_URL = "docs/runbooks/alerts.md"


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus/Alertmanager duration such as `10s`, `5m` or `1h30m`."""
    match = DURATION_RE.match(duration)
    if not duration or match is None or not any(match.groups()):
        raise ValueError(f"expected a Prometheus duration such as 30s, 5m or 1h30m, got {duration!r}")
    return sum(int(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS) if n)


def runbook_url(base_url: str, alert_name: str) -> str:
    """The one pattern for runbook links: one heading per alert in docs/runbooks/alerts.md."""
    return f"{base_url}#{alert_name.lower()}"


class AlertingThresholds(BaseModel):
    """When each alert fires. The single source of alert thresholds and their defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: float = Field(
        0.05, gt=0, lt=1,
        description="Share of a service's requests answered with a 5xx status over 5 minutes above which ServiceHighErrorRate fires.",
    )
    p95_latency_seconds: float = Field(
        0.5, gt=0,
        description="95th percentile request latency (seconds, over 5 minutes) above which ServiceHighLatency fires.",
    )
    # 21 days: ACME clients renew at 30 days left, so a 21-day certificate means renewal has failed for over a week.
    cert_warning_days: int = Field(
        21, gt=0, description="Days before a served certificate expires at which CertificateExpiringSoon (warning) fires."
    )
    cert_critical_days: int = Field(
        7, gt=0, description="Days before a served certificate expires at which CertificateExpiryImminent (critical) fires."
    )
    # 26 h: a daily backup plus two hours of slack for a slow dump, so one late run does not page.
    backup_max_age_hours: float = Field(
        26, gt=0, description="Age of a database's last successful backup (hours) above which BackupStale fires."
    )
    disk_usage_ratio: float = Field(
        0.8, gt=0, lt=1, description="Share of a filesystem in use above which NodeDiskAlmostFull fires."
    )
    db_connections_ratio: float = Field(
        0.8, gt=0, lt=1,
        description="Share of PostgreSQL max_connections in use above which DatabaseConnectionsHigh fires.",
    )
    # At most 6: CrashLoopBackOff waits 10 s doubling to 5 min, which allows about 7 restarts in 15 minutes,
    # so a higher threshold would never fire. Ref: https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#container-restarts
    restarts_15m: int = Field(
        3, ge=1, le=6, description="Container restarts within 15 minutes above which ContainerRestartingOften fires."
    )
    # How long a condition must hold before its alert fires (`for:`). The defaults ride out one bad scrape or a
    # slow dump; a test stack shortens them to see the alerts within minutes.
    service_down_for: str = Field(
        "2m", description="How long a service must fail its scrapes before ServiceDown (and DatabaseDown) fire."
    )
    backup_for: str = Field("5m", description="How long BackupFailed and BackupStale must hold before they fire.")
    certificate_for: str = Field(
        "15m", description="How long a certificate condition must hold before CertificateExpiringSoon, "
        "CertificateExpiryImminent and CertificateExpiryUnknown fire."
    )
    # Relative by default so the links work in the repository browser; set an absolute URL
    # (e.g. https://git.example.com/org/platform/blob/main/docs/runbooks/alerts.md) to make them clickable in emails.
    runbook_base_url: str = Field(
        DEFAULT_RUNBOOK_BASE_URL, min_length=1,
        description="URL of docs/runbooks/alerts.md; each alert links to <runbook_base_url>#<alertname lowercased>.",
    )

    @field_validator("service_down_for", "backup_for", "certificate_for")
    @classmethod
    def _for_duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    @field_validator("runbook_base_url")
    @classmethod
    def _no_fragment(cls, value: str) -> str:
        if "#" in value:
            raise ValueError(f"runbook_base_url must not contain '#' (the alert name is appended as the anchor), got {value!r}")
        return value

    @model_validator(mode="after")
    def _critical_before_warning(self) -> AlertingThresholds:
        if self.cert_critical_days >= self.cert_warning_days:
            raise ValueError(
                "cert_critical_days must be less than cert_warning_days: "
                f"got critical={self.cert_critical_days}, warning={self.cert_warning_days}"
            )
        return self


class Series(BaseModel):
    """One promtool input series: a metric, its labels and values in promtool's expanding notation."""

    model_config = ConfigDict(frozen=True)

    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    values: str = Field(description="promtool expanding notation, e.g. '0+10x30' or '1x20'.")

    def selector(self) -> str:
        inner = ", ".join(f'{key}="{value}"' for key, value in self.labels.items())
        return f"{self.metric}{{{inner}}}"


class ExpectedAlert(BaseModel):
    """An alert the firing series must raise: its labels (besides alertname and severity) and its value."""

    model_config = ConfigDict(frozen=True)

    labels: dict[str, str] = Field(default_factory=dict)
    value: float | None = Field(None, description="The expression's value, rendered through the description's {{ $value }}.")


class FiringCase(BaseModel):
    """A further way a rule fires (e.g. its absent() guard), checked at the fixture's eval_time."""

    model_config = ConfigDict(frozen=True)

    firing: list[Series]
    expected: list[ExpectedAlert] = Field(min_length=1)


class AlertFixture(BaseModel):
    """Synthetic data proving a rule: series that make it fire, series where it stays quiet."""

    model_config = ConfigDict(frozen=True)

    eval_time: str = Field(description="When promtool checks the alerts; must be past the rule's `for:`.")
    firing: list[Series]
    expected: list[ExpectedAlert] = Field(min_length=1)
    more_firing: list[FiringCase] = Field(default_factory=list, description="Other branches of the rule that fire.")
    # None only for Watchdog, which by design never stays quiet.
    healthy: list[Series] | None
    interval: str = "1m"


class AlertRule(BaseModel):
    """A Prometheus alerting rule in the house style: PascalCase name, `for:`, severity and three annotations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    expr: str = Field(min_length=1)
    for_: str = Field(description="Prometheus `for:` duration; mandatory so one bad scrape does not notify.")
    severity: Severity
    summary: str = Field(min_length=1, description="Static one-line summary (no template actions).")
    description: str = Field(min_length=1, description="Templated with {{ $labels.* }} and {{ $value }}.")
    runbook: str = Field(min_length=1, description="runbook_url annotation, built by runbook_url().")
    fixture: AlertFixture

    @field_validator("name")
    @classmethod
    def _pascal_case(cls, value: str) -> str:
        if not PASCAL_CASE_RE.match(value):
            raise ValueError(f"alert names are PascalCase <Component><Symptom> (e.g. ServiceDown), got {value!r}")
        return value

    @field_validator("for_")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    @field_validator("summary")
    @classmethod
    def _static(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError(f"summary must be static text (put templates in description), got {value!r}")
        return value


class RuleGroup(BaseModel):
    """One rule group per component, named `<component>.rules`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    rules: list[AlertRule] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _component_rules(cls, value: str) -> str:
        if not GROUP_NAME_RE.match(value):
            raise ValueError(f"rule groups are named <component>.rules (e.g. service.rules), got {value!r}")
        return value
