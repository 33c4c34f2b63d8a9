"""Alertmanager routing: critical alerts everywhere within 5 minutes, warnings by email, Watchdog to the heartbeat."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from components.alerting.alertmanager import AlertRouting, render_alertmanager_config
from components.alerting.models import duration_seconds

WEBHOOK = "https://hooks.example.test/services/PLACEHOLDER-WEBHOOK-TOKEN"
PASSWORD = "PLACEHOLDER-SMTP-PASSWORD"
HEARTBEAT = "https://heartbeat.example.test/ping/PLACEHOLDER-HEARTBEAT-TOKEN"


def routing(**changes) -> AlertRouting:
    fields = {
        "email_to": ["oncall@example.test"], "email_from": "alerts@example.test", "smarthost": "smtp.example.test:587",
        "webhook_url_secret_key": "alertWebhookUrl", "heartbeat_url_secret_key": "heartbeatUrl",
    }
    return AlertRouting(**{**fields, **changes})


@pytest.fixture
def config() -> dict:
    return render_alertmanager_config(routing(), WEBHOOK, PASSWORD, heartbeat_url=HEARTBEAT)


def route_for(config: dict, matcher: str) -> dict:
    return next(r for r in config["route"]["routes"] if r["matchers"] == [matcher])


def receiver(config: dict, name: str) -> dict:
    return next(r for r in config["receivers"] if r["name"] == name)


def test_critical_alerts_are_notified_within_five_minutes(config):
    critical = route_for(config, 'severity="critical"')
    assert duration_seconds(critical["group_wait"]) + duration_seconds(critical["group_interval"]) <= 300


def test_critical_alerts_go_to_email_and_webhook(config):
    critical = receiver(config, route_for(config, 'severity="critical"')["receiver"])
    assert critical["email_configs"][0]["to"] == "oncall@example.test" and critical["webhook_configs"][0]["url"] == WEBHOOK


def test_warnings_go_to_email(config):
    assert "email_configs" in receiver(config, route_for(config, 'severity="warning"')["receiver"])


def test_watchdog_is_routed_to_the_heartbeat_before_any_severity_route(config):
    first = config["route"]["routes"][0]
    assert (first["matchers"], first["receiver"]) == (['alertname="Watchdog"'], "heartbeat")


def test_heartbeat_receiver_pings_the_heartbeat_url(config):
    assert receiver(config, "heartbeat")["webhook_configs"][0]["url"] == HEARTBEAT


def test_critical_inhibits_warning_for_the_same_alertname(config):
    assert config["inhibit_rules"] == [
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"warning|info"'], "equal": ["alertname"]}
    ]


def test_webhook_url_appears_only_in_the_critical_webhook_config(config):
    assert yaml.safe_dump(config).count("PLACEHOLDER-WEBHOOK-TOKEN") == 1


def test_smtp_password_appears_only_as_the_smtp_auth_password(config):
    assert yaml.safe_dump(config).count(PASSWORD) == 1 and config["global"]["smtp_auth_password"] == PASSWORD


def test_smtp_username_defaults_to_the_sender(config):
    assert config["global"]["smtp_auth_username"] == "alerts@example.test"


def test_without_smtp_password_no_smtp_auth_is_configured():
    config = render_alertmanager_config(routing(), WEBHOOK, None, heartbeat_url=HEARTBEAT)
    assert not {"smtp_auth_username", "smtp_auth_password"} & set(config["global"])


def test_without_webhook_key_critical_alerts_go_to_email_only():
    config = render_alertmanager_config(routing(webhook_url_secret_key=None), None, PASSWORD, heartbeat_url=HEARTBEAT)
    assert "webhook_configs" not in receiver(config, "critical")


def test_rejects_routing_that_delays_critical_alerts_beyond_five_minutes():
    with pytest.raises(ValidationError, match="got 10s \\+ 5m"):
        routing(group_interval="5m")


def test_rejects_a_url_given_as_the_webhook_secret_key_without_echoing_it():
    with pytest.raises(ValidationError) as error:
        routing(webhook_url_secret_key=WEBHOOK)
    assert "PLACEHOLDER-WEBHOOK-TOKEN" not in str(error.value)


def test_fails_without_a_webhook_url_when_a_webhook_key_is_configured():
    with pytest.raises(ValueError, match="webhook_url is required"):
        render_alertmanager_config(routing(), None, PASSWORD, heartbeat_url=HEARTBEAT)


def test_rejects_a_malformed_webhook_url_without_echoing_it():
    with pytest.raises(ValueError, match="value not shown") as error:
        render_alertmanager_config(routing(), "not-a-url-PLACEHOLDER", PASSWORD, heartbeat_url=HEARTBEAT)
    assert "PLACEHOLDER" not in str(error.value)


def test_rejects_an_invalid_recipient_address():
    with pytest.raises(ValidationError, match="email_to"):
        routing(email_to=["oncall"])


def test_webhook_receives_critical_alerts_only_by_default():
    config = render_alertmanager_config(
        AlertRouting(email_to=["a@example.test"], email_from="b@example.test", smarthost="smtp.example.test:25",
                     webhook_url_secret_key="hook"), "https://hooks.example.test/x", None)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert "webhook_configs" in receivers["critical"] and "webhook_configs" not in receivers["email"]


def test_webhook_receives_warnings_when_configured():
    config = render_alertmanager_config(
        AlertRouting(email_to=["a@example.test"], email_from="b@example.test", smarthost="smtp.example.test:25",
                     webhook_url_secret_key="hook", webhook_severities=["critical", "warning"]),
        "https://hooks.example.test/x", None)
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["email"]["webhook_configs"] == [{"url": "https://hooks.example.test/x", "send_resolved": True}]


def test_every_email_subject_names_stack_service_and_version():
    config = render_alertmanager_config(
        AlertRouting(email_to=["a@example.test"], email_from="b@example.test", smarthost="smtp.example.test:25"),
        None, None)
    subjects = {r["name"]: r["email_configs"][0]["headers"]["Subject"] for r in config["receivers"] if "email_configs" in r}
    assert set(subjects) == {"email", "critical"}
    assert all(all(f".CommonLabels.{label}" in s for label in ("stack", "service", "version")) for s in subjects.values())


def test_watchdog_repeats_at_the_heartbeat_interval():
    config = render_alertmanager_config(
        AlertRouting(email_to=["a@example.test"], email_from="b@example.test", smarthost="smtp.example.test:25",
                     heartbeat_interval="20s"), None, None)
    watchdog = next(r for r in config["route"]["routes"] if r["receiver"] == "heartbeat")
    assert (watchdog["group_interval"], watchdog["repeat_interval"]) == ("20s", "20s")
