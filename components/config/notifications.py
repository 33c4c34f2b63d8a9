"""Who deployctl tells about releases: `platform:notifications` (part of components/config/).

Each channel is optional and appears at most once per stack. URLs and passwords are never
values here: they name secret config keys (`pulumi config set --secret platform:<key> ...`),
because a Slack or DingTalk webhook URL carries its token and a generic webhook often does.
deployctl reads and sends these (deployctl/notify.py); the Pulumi program only validates them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from components.config.model import ConfigKey, EmailAddress, Model, NonEmpty, Port, is_host_or_ip, listed_once

# success: a release went out; failure: it did not (refused or failed); rollback: a failed
# release was rolled back automatically, or an operator rolled back; promotion: a stack took
# another's verified versions (or a canary became stable).
Event = Literal["success", "failure", "rollback", "promotion"]
ALL_EVENTS: tuple[Event, ...] = ("success", "failure", "rollback", "promotion")


class WebhookChannel(Model):
    """A generic JSON webhook or a Slack-compatible incoming webhook."""

    url_secret: ConfigKey = Field(description="Secret config key holding the webhook URL.")
    events: list[Event] = Field(default_factory=lambda: list(ALL_EVENTS), min_length=1)

    @field_validator("events")
    @classmethod
    def _events_once(cls, value: list[str]) -> list[str]:
        return listed_once(value)


class DingTalkChannel(WebhookChannel):
    """A DingTalk custom robot; with signSecret, requests carry DingTalk's timestamp+sign."""

    # Ref: https://open.dingtalk.com/document/robots/customize-robot-security-settings
    sign_secret: ConfigKey | None = Field(
        None, description="Secret config key holding the robot's signing secret (SEC...), when the robot signs.")


class EmailChannel(Model):
    to: list[EmailAddress] = Field(min_length=1, description="Who receives release notifications.")
    email_from: EmailAddress = Field(description="Sender address.")
    smtp_host: str = Field(description="SMTP relay host name or IP address.")
    # 587: message submission with STARTTLS (RFC 6409), what relays expect from clients.
    smtp_port: Port = 587
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before sending.")
    username: NonEmpty | None = Field(None, description="SMTP login; none: send without logging in.")
    password_secret: ConfigKey | None = Field(None, description="Secret config key holding the SMTP password.")
    events: list[Event] = Field(default_factory=lambda: list(ALL_EVENTS), min_length=1)

    @field_validator("events")
    @classmethod
    def _events_once(cls, value: list[str]) -> list[str]:
        return listed_once(value)

    @field_validator("smtp_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not is_host_or_ip(value.lower()):
            raise ValueError("expected an RFC 1123 host name or an IP address, without a port, e.g. smtp.example.com")
        return value


class NotificationsSpec(Model):
    webhook: WebhookChannel | None = None
    slack: WebhookChannel | None = None
    dingtalk: DingTalkChannel | None = None
    email: EmailChannel | None = None
    # 5 s per channel: a hung receiver delays the operator's prompt, never the release itself.
    timeout_seconds: float = Field(5, gt=0, le=60)

    def secret_keys(self) -> dict[str, str]:
        """The secret config keys the channels name, with the path that asks for each."""
        wanted: dict[str, str] = {}
        for name in ("webhook", "slack", "dingtalk"):
            channel = getattr(self, name)
            if channel is not None:
                wanted.setdefault(channel.url_secret, f"notifications.{name}.urlSecret")
        if self.dingtalk is not None and self.dingtalk.sign_secret:
            wanted.setdefault(self.dingtalk.sign_secret, "notifications.dingtalk.signSecret")
        if self.email is not None and self.email.password_secret:
            wanted.setdefault(self.email.password_secret, "notifications.email.passwordSecret")
        return wanted
