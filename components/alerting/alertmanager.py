"""Alertmanager configuration: where the alerts of components/alerting/rules.py go.

Routing:
- `Watchdog` -> `heartbeat` (a dead man's switch URL if one is configured, else nowhere): it proves the pipeline.
- `severity="critical"` -> `critical` (email AND webhook), notified within `critical_group_wait` of firing and
  within `group_interval` when it joins an already-notified group; the model keeps their sum <= 5 minutes.
- `severity="warning"` (and anything unmatched) -> `email`; `severity="info"` -> `null` (dashboards only).
- A firing critical alert inhibits warning/info alerts with the same alertname.

Secrets: the webhook URL, the heartbeat URL and the SMTP password are secret stack config
(`pulumi config set --secret`). `render_alertmanager_config` takes them as plain strings because the caller
calls it inside `pulumi.Output.all(...).apply(...)`: the result stays a secret Output and must only be stored as
a secret (a Kubernetes Secret's `alertmanager.yaml`, or a Docker secret/config file built from that Output).
`AlertRouting` holds only the *names* of those config keys, so it is safe to log and to keep in plain config.
Ref: https://prometheus.io/docs/alerting/latest/configuration/
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .models import duration_seconds

# SC-004 of the product spec: a critical alert reaches the on-call engineer within 5 minutes of firing.
CRITICAL_NOTIFY_WITHIN_SECONDS = 5 * 60

# Every notification names the stack, the service and the version (labels the scrape and Prometheus'
# external_labels put on each alert; the webhook payload carries them as alert labels).
EMAIL_SUBJECT = (
    '[{{ .Status | toUpper }}] {{ .CommonLabels.stack }}: {{ .CommonLabels.alertname }} '
    '{{ .CommonLabels.service }} {{ .CommonLabels.version }}'
)
GROUP_BY = ["alertname", "stack", "service"]

_EMAIL_RE = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")
_SMARTHOST_RE = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
_CONFIG_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_URL_RE = re.compile(r"^https?://\S+$")


class AlertRouting(BaseModel):
    """Who gets which alert, and how fast. Holds no secret values, only the config keys that hold them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email_to: list[str] = Field(min_length=1, description="Addresses that receive warning and critical alerts.")
    email_from: str = Field(description="Sender address of alert emails.")
    smarthost: str = Field(description="SMTP relay as host:port, e.g. smtp.example.com:587.")
    smtp_username: str | None = Field(None, description="SMTP login; defaults to email_from when a password is given.")
    smtp_require_tls: bool = Field(True, description="Require STARTTLS to the relay.")
    webhook_url_secret_key: str | None = Field(
        None, description="Name of the secret config key holding the chat/paging webhook URL for critical alerts."
    )
    heartbeat_url_secret_key: str | None = Field(
        None, description="Name of the secret config key holding a dead man's switch URL pinged by Watchdog."
    )
    webhook_severities: list[Literal["critical", "warning"]] = Field(
        default_factory=lambda: ["critical"], min_length=1,
        description="Severities the webhook receives besides e-mail: critical (paging) and optionally warning.",
    )
    heartbeat_interval: str = Field("5m", description="How often Watchdog is re-sent to the heartbeat receiver.")
    critical_group_wait: str = Field("10s", description="Wait before the first notification of a critical group.")
    # Alertmanager's default: batches a burst of warnings into one email.
    group_wait: str = Field("30s", description="Wait before the first notification of a non-critical group.")
    group_interval: str = Field("1m", description="Wait before notifying alerts added to an already-notified group.")
    repeat_interval: str = Field("4h", description="Re-send a still-firing alert after this long.")

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not _EMAIL_RE.match(address)]
        if bad:
            raise ValueError(f"email_to must hold plain addresses such as oncall@example.com, got {bad}")
        return value

    @field_validator("email_from")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _EMAIL_RE.match(value):
            raise ValueError(f"email_from must be an address such as alerts@example.com, got {value!r}")
        return value

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not _SMARTHOST_RE.match(value):
            raise ValueError(f"smarthost must be host:port such as smtp.example.com:587, got {value!r}")
        return value

    @field_validator("webhook_url_secret_key", "heartbeat_url_secret_key")
    @classmethod
    def _key_not_value(cls, value: str | None) -> str | None:
        # Catches a URL pasted where the key name belongs, which would put the secret in plain config.
        if value is not None and not _CONFIG_KEY_RE.match(value):
            raise ValueError("expected the name of a secret config key such as 'alertWebhookUrl', got something else "
                             "(value not shown: it may be the secret itself)")
        return value

    @field_validator("critical_group_wait", "group_wait", "group_interval", "repeat_interval", "heartbeat_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_seconds(value)
        return value

    @field_validator("heartbeat_interval")
    @classmethod
    def _heartbeat_not_zero(cls, value: str) -> str:
        if duration_seconds(value) <= 0:
            raise ValueError("heartbeat_interval must be positive (Alertmanager refuses a zero repeat_interval), e.g. 5m")
        return value

    @model_validator(mode="after")
    def _critical_within_five_minutes(self) -> AlertRouting:
        delay = duration_seconds(self.critical_group_wait) + duration_seconds(self.group_interval)
        if delay > CRITICAL_NOTIFY_WITHIN_SECONDS:
            raise ValueError(
                "critical_group_wait + group_interval must be at most 5m so critical alerts are notified within "
                f"5 minutes: got {self.critical_group_wait} + {self.group_interval}"
            )
        return self


def _secret_url(name: str, key: str | None, url: str | None) -> str | None:
    if key is None and url:
        raise ValueError(f"{name} was given but the routing names no secret key for it; set AlertRouting.{name}_secret_key")
    if key is not None and not url:
        raise ValueError(f"{name} is required because AlertRouting.{name}_secret_key is {key!r}")
    if url and not _URL_RE.match(url):
        raise ValueError(f"{name} must be an http(s) URL (value not shown: it is a secret)")
    return url or None


def render_alertmanager_config(
    routing: AlertRouting,
    webhook_url: str | None,
    smtp_password: str | None,
    heartbeat_url: str | None = None,
) -> dict[str, Any]:
    """The full alertmanager.yml as a dict. Contains the secrets in plain text: see the module docstring."""
    webhook = _secret_url("webhook_url", routing.webhook_url_secret_key, webhook_url)
    heartbeat = _secret_url("heartbeat_url", routing.heartbeat_url_secret_key, heartbeat_url)
    email = {"to": ", ".join(routing.email_to), "send_resolved": True, "headers": {"Subject": EMAIL_SUBJECT}}
    critical: dict[str, Any] = {"name": "critical", "email_configs": [email]}
    warning: dict[str, Any] = {"name": "email", "email_configs": [email]}
    if webhook:
        critical["webhook_configs"] = [{"url": webhook, "send_resolved": True}]
        if "warning" in routing.webhook_severities:
            warning["webhook_configs"] = [{"url": webhook, "send_resolved": True}]
    return {
        "global": _global(routing, smtp_password),
        "route": _route(routing),
        "inhibit_rules": [
            # kube-prometheus' default: the critical alert already says it all.
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"warning|info"'], "equal": ["alertname"]},
        ],
        "receivers": [
            {"name": "null"},
            {"name": "heartbeat", **({"webhook_configs": [{"url": heartbeat, "send_resolved": False}]} if heartbeat else {})},
            warning,
            critical,
        ],
    }


def _global(routing: AlertRouting, smtp_password: str | None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "resolve_timeout": "5m",
        "smtp_smarthost": routing.smarthost,
        "smtp_from": routing.email_from,
        "smtp_require_tls": routing.smtp_require_tls,
    }
    if smtp_password:
        # Alertmanager skips authentication without a username, silently ignoring the password.
        settings["smtp_auth_username"] = routing.smtp_username or routing.email_from
        settings["smtp_auth_password"] = smtp_password
    return settings


def _route(routing: AlertRouting) -> dict[str, Any]:
    heartbeat = routing.heartbeat_interval
    return {
        "receiver": "email",
        # One notification per alert, stack and service, so its common labels name all three (and the version).
        "group_by": GROUP_BY,
        "group_wait": routing.group_wait,
        "group_interval": routing.group_interval,
        "repeat_interval": routing.repeat_interval,
        "routes": [
            # A dead man's switch expects a ping every few minutes, so Watchdog repeats far more often than 4h.
            {"receiver": "heartbeat", "matchers": ['alertname="Watchdog"'], "group_wait": "0s",
             "group_interval": heartbeat if duration_seconds(heartbeat) < 60 else "1m", "repeat_interval": heartbeat},
            {"receiver": "critical", "matchers": ['severity="critical"'], "group_wait": routing.critical_group_wait,
             "group_interval": routing.group_interval, "repeat_interval": routing.repeat_interval},
            {"receiver": "email", "matchers": ['severity="warning"']},
            {"receiver": "null", "matchers": ['severity="info"']},
        ],
    }
