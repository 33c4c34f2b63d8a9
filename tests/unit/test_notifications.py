"""Notifications reach a JSON webhook, a Slack-compatible one, a DingTalk robot (signed) and an
SMTP sink; a channel that fails is reported and never raised."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import pytest

from components.config.notifications import NotificationsSpec
from deployctl import notify
from receivers import SmtpSink, Webhook

RECORD = {
    "operation": "deploy", "stack": "staging", "outcome": "succeeded", "actor": "alice", "reason": "api fix",
    "correlation_id": "c-42", "versions_before": {"api": "1.4.2"}, "versions_after": {"api": "1.5.0"},
    "images": {"api": {"image": "127.0.0.1:5000/shop/api", "version": "1.5.0", "digest": "sha256:" + "a" * 64}},
    "version_set_sha256": "f" * 64, "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
}
SECRETS = {"hookUrl": "", "slackUrl": "", "dingUrl": "", "dingSign": "SECtest-signing-secret"}


@pytest.fixture
def hook():
    server = Webhook()
    SECRETS.update(hookUrl=server.url("/hook"), slackUrl=server.url("/slack"), dingUrl=server.url("/ding") + "?access_token=t0k")
    yield server
    server.close()


@pytest.fixture
def smtp():
    sink = SmtpSink()
    yield sink
    sink.close()


def spec(smtp_port: int | None = None, **channels) -> NotificationsSpec:
    settings = {"webhook": {"urlSecret": "hookUrl"}, "slack": {"urlSecret": "slackUrl"},
                "dingtalk": {"urlSecret": "dingUrl", "signSecret": "dingSign"}, **channels}
    if smtp_port:
        settings["email"] = {"to": ["ops@example.com"], "emailFrom": "deployctl@example.com",
                             "smtpHost": "127.0.0.1", "smtpPort": smtp_port, "starttls": False}
    return NotificationsSpec.model_validate(settings)


def test_events_say_success_failure_rollback_and_promotion():
    assert notify.events_of({**RECORD}) == ["success"]
    assert notify.events_of({**RECORD, "outcome": "refused"}) == ["failure"]
    assert notify.events_of({**RECORD, "outcome": "rolled-back"}) == ["failure", "rollback"]
    assert notify.events_of({**RECORD, "operation": "promote"}) == ["success", "promotion"]
    assert notify.events_of({**RECORD, "operation": "rollback"}) == ["success", "rollback"]


def test_webhook_gets_stack_versions_actor_reason_and_correlation_id(hook):
    results = notify.send_all(spec(), RECORD, SECRETS.__getitem__)
    [body] = hook.bodies("/hook")
    assert (body["stack"], body["actor"], body["reason"], body["correlationId"]) == ("staging", "alice", "api fix", "c-42")
    assert body["versionsBefore"] == {"api": "1.4.2"} and body["versionsAfter"] == {"api": "1.5.0"}
    assert body["event"] == "success" and body["digests"]["api"] == "sha256:" + "a" * 64
    assert all(result["ok"] for result in results)


def test_slack_gets_a_text_message_with_the_same_facts(hook):
    notify.send_all(spec(), RECORD, SECRETS.__getitem__)
    [body] = hook.bodies("/slack")
    assert set(body) == {"text"}
    for fact in ("*staging*", "api=1.4.2 -> api=1.5.0", "alice", "api fix", "c-42"):
        assert fact in body["text"]


def test_dingtalk_request_carries_a_signature_that_verifies(hook):
    before = int(time.time() * 1000)
    notify.send_all(spec(), RECORD, SECRETS.__getitem__)
    [request] = [r for r in hook.requests if r.path == "/ding"]
    timestamp = int(request.query["timestamp"])
    assert before <= timestamp <= int(time.time() * 1000) and request.query["access_token"] == "t0k"
    # DingTalk's check: base64(HMAC-SHA256(secret, "<timestamp>\n<secret>")); parse_qsl already URL-decoded it.
    secret = SECRETS["dingSign"]
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest())
    assert request.query["sign"] == expected.decode()
    assert request.body["msgtype"] == "markdown" and "c-42" in request.body["markdown"]["text"]


def test_dingtalk_sign_is_url_encoded():
    sign = notify.dingtalk_sign("SECx", 1700000000000)
    raw = base64.b64encode(hmac.new(b"SECx", b"1700000000000\nSECx", hashlib.sha256).digest()).decode()
    assert sign.endswith("%3D") and urllib.parse.unquote_plus(sign) == raw  # 32 bytes: base64 ends in "="


def test_email_reaches_the_smtp_sink_with_the_facts(smtp):
    results = notify.send_all(spec(smtp.port, webhook=None, slack=None, dingtalk=None), RECORD, SECRETS.__getitem__)
    assert results == [{"channel": "email", "ok": True, "detail": "sent to ops@example.com"}]
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "staging: deploy succeeded" and message["X-Correlation-Id"] == "c-42"
    body = message.get_payload(decode=True).decode()
    for fact in ("api=1.4.2 -> api=1.5.0", "actor: alice", "reason: api fix", "correlation id: c-42"):
        assert fact in body


def test_a_channel_subscribed_to_other_events_is_not_told(hook):
    results = notify.send_all(spec(webhook={"urlSecret": "hookUrl", "events": ["failure"]}, slack=None, dingtalk=None),
                              RECORD, SECRETS.__getitem__)
    assert results == [] and hook.requests == []


def test_a_failing_channel_is_reported_and_the_others_still_sent(hook):
    broken = {**SECRETS, "hookUrl": "http://127.0.0.1:9/unreachable"}
    results = notify.send_all(spec(), RECORD, broken.__getitem__)
    outcome = {result["channel"]: result["ok"] for result in results}
    assert outcome == {"webhook": False, "slack": True, "dingtalk": True}
    assert "URLError" in results[0]["detail"]


def test_a_receiver_answering_an_error_is_a_failed_notification(hook):
    hook.status = 500
    results = notify.send_all(spec(slack=None, dingtalk=None), RECORD, SECRETS.__getitem__)
    assert results[0]["ok"] is False and "500" in results[0]["detail"]


def test_a_secret_that_cannot_be_read_fails_only_its_channel(hook):
    def secret(key: str) -> str:
        if key == "slackUrl":
            raise RuntimeError("platform:slackUrl is set in plain text; set it again with --secret")
        return SECRETS[key]

    results = notify.send_all(spec(), RECORD, secret)
    assert [r["channel"] for r in results if not r["ok"]] == ["slack"] and "plain text" in results[1]["detail"]
