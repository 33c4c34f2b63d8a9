"""Release notifications: a generic JSON webhook, Slack-compatible and DingTalk robot webhooks,
and e-mail over SMTP, configured per stack in `platform:notifications`.

A notification is sent once per channel per operation, when one of the operation's events is
among the channel's `events`. Sending never changes an operation's outcome: a channel that
fails is reported (to the operator and in the release record), and the release stands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from typing import Any, Callable

from components.config.notifications import NotificationsSpec

SecretReader = Callable[[str], str]  # secret config key -> its value

PROMOTIONS = ("promote", "rollout-promote")


def events_of(record: dict[str, Any]) -> list[str]:
    """What an operation's record is news of: success or failure, and rollback or promotion."""
    outcome, operation = record.get("outcome"), record.get("operation", "")
    if outcome == "rolled-back":
        return ["failure", "rollback"]
    if outcome != "succeeded":
        return ["failure"]
    if operation in PROMOTIONS:
        return ["success", "promotion"]
    if operation in ("rollback", "rollout-abort"):
        return ["success", "rollback"]
    return ["success"]


def _versions(versions: dict[str, str]) -> str:
    return ", ".join(f"{name}={version}" for name, version in sorted(versions.items())) or "-"


def summary(record: dict[str, Any]) -> str:
    lines = [f"{record['stack']}: {record['operation']} {record['outcome']}",
             f"versions: {_versions(record.get('versions_before') or {})} -> {_versions(record.get('versions_after') or {})}",
             f"actor: {record.get('actor')}; reason: {record.get('reason') or '-'}",
             f"correlation id: {record.get('correlation_id')}"]
    if record.get("version_set_sha256"):
        lines.append(f"version set sha256: {record['version_set_sha256']}")
    if record.get("rolled_back_to"):
        lines.append(f"rolled back to update {record['rolled_back_to']}")
    if record.get("error"):
        lines.append(f"error: {record['error'].splitlines()[0][:300]}")
    return "\n".join(lines)


def payload(record: dict[str, Any]) -> dict[str, Any]:
    """The generic webhook's JSON body: the facts a receiver needs, and the full record's file."""
    events = events_of(record)
    return {
        "event": events[-1], "events": events, "stack": record["stack"], "operation": record["operation"],
        "outcome": record["outcome"], "actor": record.get("actor"), "reason": record.get("reason"),
        "correlationId": record.get("correlation_id"), "versionsBefore": record.get("versions_before") or {},
        "versionsAfter": record.get("versions_after") or {},
        "digests": {name: entry.get("digest") for name, entry in (record.get("images") or {}).items()},
        "versionSetSha256": record.get("version_set_sha256"), "rolledBackTo": record.get("rolled_back_to"),
        "error": record.get("error"), "startedAt": record.get("started_at"),
        "finishedAt": record.get("finished_at"), "text": summary(record),
    }


def slack_body(record: dict[str, Any]) -> dict[str, Any]:
    # Incoming webhooks take `text` (mrkdwn); Mattermost and Rocket.Chat accept the same body.
    # Ref: https://api.slack.com/messaging/webhooks
    return {"text": summary(record).replace(f"{record['stack']}:", f"*{record['stack']}*:", 1)}


def dingtalk_body(record: dict[str, Any]) -> dict[str, Any]:
    text = summary(record)
    return {"msgtype": "markdown",
            "markdown": {"title": text.splitlines()[0], "text": "\n\n".join(text.splitlines())}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signed request: base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), URL-encoded.
    Ref: https://open.dingtalk.com/document/robots/customize-robot-security-settings"""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def dingtalk_url(url: str, secret: str | None, timestamp_ms: int | None = None) -> str:
    if not secret:
        return url
    timestamp_ms = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def post_json(url: str, body: dict[str, Any], timeout: float) -> str:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = response.read(2000).decode(errors="replace")
    return f"HTTP {response.status}" if not answer else f"HTTP {response.status}: {answer[:200]}"


def send_email(channel: Any, record: dict[str, Any], password: str | None, timeout: float) -> str:
    message = EmailMessage()
    message["From"], message["To"] = channel.email_from, ", ".join(channel.to)
    message["Subject"] = summary(record).splitlines()[0]
    message["X-Correlation-Id"] = record.get("correlation_id") or ""
    message.set_content(summary(record) + "\n\n" + json.dumps(payload(record), indent=2, sort_keys=True) + "\n")
    with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=timeout) as smtp:
        if channel.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if channel.username:
            smtp.login(channel.username, password or "")
        refused = smtp.send_message(message)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)
    return f"sent to {', '.join(channel.to)}"


def send_all(spec: NotificationsSpec, record: dict[str, Any], secret: SecretReader) -> list[dict[str, Any]]:
    """Send to every subscribed channel; one result per channel, never an exception."""
    events = set(events_of(record))
    results = []
    for name in ("webhook", "slack", "dingtalk", "email"):
        channel = getattr(spec, name)
        if channel is None or not events & set(channel.events):
            continue
        try:
            if name == "email":
                password = secret(channel.password_secret) if channel.password_secret else None
                detail = send_email(channel, record, password, spec.timeout_seconds)
            elif name == "dingtalk":
                signing = secret(channel.sign_secret) if channel.sign_secret else None
                detail = post_json(dingtalk_url(secret(channel.url_secret), signing), dingtalk_body(record),
                                   spec.timeout_seconds)
            else:
                body = payload(record) if name == "webhook" else slack_body(record)
                detail = post_json(secret(channel.url_secret), body, spec.timeout_seconds)
            results.append({"channel": name, "ok": True, "detail": detail})
        except Exception as error:  # noqa: BLE001 - any failure to notify is reported, never raised
            results.append({"channel": name, "ok": False, "detail": f"{type(error).__name__}: {error}"[:500]})
    return results
