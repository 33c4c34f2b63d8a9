"""How a stack is watched: `platform:alerting` (routing and thresholds of components/alerting,
spelled camelCase in stack files) and `platform:monitoring` (part of components/config/)."""

from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from components.alerting import AlertingThresholds, AlertRouting
from components.alerting.models import duration_seconds
from components.config.model import (
    CliFractions,
    ConfigKey,
    EmailAddress,
    ImageRepository,
    Model,
    NonEmpty,
    Port,
    Version,
    is_host_or_ip,
    stack_key,
)

_CAMEL = ConfigDict(extra="forbid", alias_generator=stack_key, populate_by_name=True, frozen=True, strict=True)


class AlertThresholds(AlertingThresholds, CliFractions):
    """components/alerting's thresholds, spelled camelCase in stack files."""

    model_config = _CAMEL

    @field_validator("runbook_base_url")
    @classmethod
    def _url_or_path(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else None
        if any(c.isspace() for c in value) or scheme not in (None, "http", "https"):
            raise ValueError("expected the runbook's URL (https://...) or a path such as docs/runbooks/alerts.md, "
                             "without spaces")
        return value


class AlertingSpec(AlertRouting):
    """Alert routing (components/alerting.AlertRouting) plus thresholds, camelCase in stack files."""

    model_config = _CAMEL

    # Stricter than AlertRouting's own checks: email-validator, RFC 1123 host names, real ports.
    email_to: list[EmailAddress] = Field(min_length=1, description="Addresses that receive warning and critical alerts.")
    email_from: EmailAddress = Field(description="Sender address of alert emails.")
    smtp_username: NonEmpty | None = Field(None, description="SMTP login; defaults to emailFrom when a password is given.")
    smtp_password_secret: ConfigKey | None = Field(None, description="Config key of the SMTP password (secret).")
    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)

    @field_validator("smarthost")
    @classmethod
    def _relay(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not is_host_or_ip(host.lower()):
            raise ValueError("expected host:port with an RFC 1123 host name or an IP address, e.g. smtp.example.com:587")
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError("expected host:port with a port 1-65535, e.g. smtp.example.com:587")
        return value

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _not_zero(cls, value: str) -> str:
        # Alertmanager refuses to load a zero group_interval or repeat_interval.
        if duration_seconds(value) == 0:
            raise ValueError("Alertmanager refuses a zero interval; expected a duration such as 1m or 4h")
        return value

    @property
    def webhook_url_secret(self) -> str | None:
        return self.webhook_url_secret_key


class MonitoringSpec(Model):
    # Used on Docker, where the stack runs its own Prometheus and Alertmanager; on Kubernetes the
    # cluster's Prometheus Operator picks up the PrometheusRule and the Alertmanager secret.
    prometheus_image: ImageRepository = "127.0.0.1:5000/shop/prometheus"
    prometheus_version: Version = "2.55.1"  # built from its Go module: Debian's has no Kubernetes discovery
    alertmanager_image: ImageRepository = "127.0.0.1:5000/shop/alertmanager"
    alertmanager_version: Version = "0.25.0"
    # busybox httpd serves each backup's result file (backup_script writes it) as /metrics.
    exporter_image: ImageRepository = "127.0.0.1:5000/shop/busybox"
    exporter_version: Version = "1.35.0"
    # The exporters the rules need on Docker (devenv/images/images.d/exporters.sh builds them from Debian).
    node_exporter_image: ImageRepository = "127.0.0.1:5000/shop/node-exporter"
    node_exporter_version: Version = "1.5.0"
    postgres_exporter_image: ImageRepository = "127.0.0.1:5000/shop/postgres-exporter"
    postgres_exporter_version: Version = "0.11.1"
    blackbox_exporter_image: ImageRepository = "127.0.0.1:5000/shop/blackbox-exporter"
    blackbox_exporter_version: Version = "0.23.0"
    # Also the rule evaluation interval: an alert's delay is about one interval plus its `for:`.
    scrape_interval_seconds: int = Field(15, ge=5, le=300)
    prometheus_host_port: Port | None = Field(
        None, description="Docker: publish Prometheus at this port on docker.bindAddress (127.0.0.1 by default), "
                          "an address for rollout.prometheus.url that outlives releases (each replaces the "
                          "container, and its address on the stack's network with it).")
