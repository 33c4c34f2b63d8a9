"""AlertingThresholds: the single source of alert thresholds, their defaults and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.alerting.rules import AlertingThresholds


def test_defaults_match_the_design():
    assert AlertingThresholds().model_dump() == {
        "error_rate": 0.05, "p95_latency_seconds": 0.5, "cert_warning_days": 21, "cert_critical_days": 7,
        "backup_max_age_hours": 26, "disk_usage_ratio": 0.8, "db_connections_ratio": 0.8, "restarts_15m": 3,
        "service_down_for": "2m", "backup_for": "5m", "certificate_for": "15m",
        "runbook_base_url": "docs/runbooks/alerts.md",
    }


def test_every_threshold_is_documented():
    assert [n for n, f in AlertingThresholds.model_fields.items() if not f.description] == []


def test_rejects_a_critical_certificate_threshold_not_below_the_warning_one():
    with pytest.raises(ValidationError, match="got critical=21, warning=21"):
        AlertingThresholds(cert_critical_days=21)


def test_rejects_an_error_rate_of_one_or_more():
    with pytest.raises(ValidationError, match="error_rate"):
        AlertingThresholds(error_rate=1.0)


def test_rejects_a_restart_threshold_crash_loop_backoff_can_never_reach():
    with pytest.raises(ValidationError, match="restarts_15m"):
        AlertingThresholds(restarts_15m=10)


def test_rejects_a_runbook_base_url_with_an_anchor():
    with pytest.raises(ValidationError, match="must not contain '#'"):
        AlertingThresholds(runbook_base_url="docs/runbooks/alerts.md#top")


def test_rejects_unknown_threshold_names():
    with pytest.raises(ValidationError, match="error_ratio"):
        AlertingThresholds(error_ratio=0.1)


def test_a_shorter_certificate_for_shortens_every_certificate_rule():
    from components.alerting.service_rules import certificate_rules

    rules = certificate_rules(AlertingThresholds(certificate_for="1m"))
    assert {rule.name: rule.for_ for rule in rules} == {
        "CertificateExpiringSoon": "1m", "CertificateExpiryImminent": "1m", "CertificateExpiryUnknown": "1m"}
