"""Alerts that really fire, on the real Docker engine: the stack's own Prometheus evaluates exactly
the program's rules over the node, postgres and blackbox exporters and the shop's /metrics, and its
Alertmanager delivers to a webhook and an SMTP server running in this test.

The stack (tests/e2e/docker_alerting.py: a copy of staging with short intervals) is deployed when
the Docker lane starts and judged here, at the lane's end: nothing fired while it ran beside the
lane's other stacks for at least 10 minutes (tests/e2e/soak.py), then faults are put in and their
fault-to-delivery seconds printed (pytest -s shows them)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse

import pytest
import yaml

import alert_states
from canary_checks import (FAILING_CANARY, HEALTHY_CANARY, after_failures_left_the_window, assert_failing_canary_aborted,
                           assert_healthy_canary_stepped, canary_at_ten_percent, rollout_step_under_traffic,
                           without_canary)
from components.alerting.models import duration_seconds
from docker_alerting import DELIVERY_LIMIT_SECONDS, HTTPS_PORT, PROMETHEUS_PORT, STACK, container, prometheus_api
from docker_host import DockerHost
from soak import lent_to_module

# Its lane: tests/e2e/conftest.py, which runs this module last in it and deploys its stack first.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker"), pytest.mark.soak("docker_alerting_soak")]


@pytest.fixture(scope="module")
def stack(docker_alerting_soak):
    """The alerting stack deployed when the Docker lane started (tests/e2e/soak.py); removed when
    this module, the lane's last, ends."""
    yield from lent_to_module(docker_alerting_soak)


@pytest.fixture(scope="module")
def receivers(stack):
    return stack.receiver, stack.mailbox


def wait_for_targets(docker_host: DockerHost, timeout: float = 300) -> list[dict]:
    """Every scrape target up (the exporters and services answer), within `timeout`."""
    deadline, down = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        targets = prometheus_api(docker_host, "/api/v1/targets")["activeTargets"]
        down = [(t["labels"].get("job"), t["labels"].get("instance"), t.get("lastError")) for t in targets
                if t["health"] != "up"]
        if targets and not down:
            return targets
        time.sleep(3)
    raise AssertionError(f"scrape targets not up after {timeout:.0f}s: {down}")


def alerts_by_state(docker_host: DockerHost) -> dict[str, list[str]]:
    return alert_states.alerts_by_state(prometheus_api(docker_host, "/api/v1/alerts")["alerts"])


def declared_rules(docker_host: DockerHost, tmp_path) -> dict:
    """The rule file in the Prometheus container, as promtool loads it (checked first)."""
    [name] = container(docker_host, "prometheus")
    text = docker_host.docker("exec", name, "cat", "/etc/prometheus/rules.yml")
    (tmp_path / "rules.yml").write_text(text)
    checked = subprocess.run(["promtool", "check", "rules", str(tmp_path / "rules.yml")],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return yaml.safe_load(text)


def squeeze(expr: str) -> str:
    """An expression without whitespace and with each selector's matchers sorted: Prometheus reports
    the query as it prints it, which orders matchers its own way."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ",".join(sorted(m.group(1).split(","))) + "}",
                  re.sub(r"\s+", "", expr))


def test_every_scrape_target_is_up(stack):
    targets = wait_for_targets(stack.host)
    jobs = sorted({t["labels"]["job"] for t in targets})
    print(f"alerting: {len(targets)} targets up: {jobs}")
    assert {"api", "web", "edge", "backup-main", "node", "postgres-main", "blackbox"} <= set(jobs)


def test_prometheus_evaluates_exactly_the_rules_promtool_loads(stack, tmp_path):
    declared = declared_rules(stack.host, tmp_path)
    loaded = prometheus_api(stack.host, "/api/v1/rules")["groups"]
    want = {(g["name"], r["alert"]): (squeeze(r["expr"]), r["for"], r["labels"], r["annotations"])
            for g in declared["groups"] for r in g["rules"]}
    have = {(g["name"], r["name"]): (squeeze(r["query"]), r["duration"], r["labels"], r["annotations"])
            for g in loaded for r in g["rules"]}
    assert sorted(set(want) - set(have)) == [] and sorted(set(have) - set(want)) == []
    for key, (expr, for_, labels, annotations) in want.items():
        assert have[key] == (expr, duration_seconds(for_), labels, annotations), key
    assert all(r["health"] == "ok" for g in loaded for r in g["rules"]), \
        [(r["name"], r.get("lastError")) for g in loaded for r in g["rules"] if r["health"] != "ok"]


def healthy_stack_report(docker_host: DockerHost) -> str:
    """What an alert on a healthy stack is explained by: each container's restarts, and the last
    minutes of the database's and its exporter's logs (the exporter logs why a ping failed)."""
    containers = docker_host.containers(STACK)
    lines = [f"{name}: restarts {c['RestartCount']}, {c['State']['Status']}" for name, c in sorted(containers.items())]
    for name in sorted(n for n in containers if "postgres" in n):
        logs = subprocess.run(["docker", "--host", docker_host.host, "logs", "--since", "3m", "--tail", "20", name],
                              capture_output=True, text=True, timeout=60)
        lines.append(f"{name} logs: {(logs.stdout + logs.stderr)[-2000:]}")  # an exporter logs to stderr
    return "\n".join(lines)


def test_no_alert_fires_on_the_healthy_stack_in_ten_minutes_and_nothing_stays_pending(stack):
    wait_for_targets(stack.host)
    lived = stack.soak.wait_until_soaked()
    # Then polled for 90 s, several evaluations past every short `for:` (30 s), with all targets up.
    states = alert_states.only_watchdog_for(lambda: alerts_by_state(stack.host),
                                            explain=lambda: healthy_stack_report(stack.host))
    query = prometheus_query(stack.host)
    fired = alert_states.fired_over(query, stack.soak.age())
    print(f"alerting: the healthy stack ran {stack.soak.age():.0f}s ({lived:.0f}s before the poll) beside the lane's "
          f"other stacks; firing now: {states['firing']}; fired in that time (Watchdog aside): {fired}; "
          f"pending at some point: {alert_states.fired_over(query, stack.soak.age(), state='pending')}")
    assert [a.split("{")[0] for a in states["firing"]] == ["Watchdog"]
    assert fired == [], healthy_stack_report(stack.host)


def test_watchdog_arrives_continuously_at_the_heartbeat_receiver(stack, receivers):
    receiver, _ = receivers
    since = time.time()
    first, _ = receiver.wait_for("/heartbeat", since, lambda labels: labels["alertname"] == "Watchdog", 120)
    second, _ = receiver.wait_for("/heartbeat", first + 1, lambda labels: labels["alertname"] == "Watchdog", 120)
    third, alert = receiver.wait_for("/heartbeat", second + 1, lambda labels: labels["alertname"] == "Watchdog", 120)
    print(f"alerting: Watchdog arrived {second - first:.1f}s and {third - second:.1f}s apart")
    assert alert["labels"]["stack"] == STACK
    assert max(second - first, third - second) < 90


def test_service_down_for_the_stopped_api_reaches_the_webhook_within_5_minutes(stack, receivers):
    receiver, _ = receivers
    api = container(stack.host, "api", **{"deploy.platform/track": "stable"})
    assert api, "no api container running"
    stack.host.docker("stop", "-t", "5", *api, timeout=120)
    fault = time.time()
    try:
        arrived, alert = receiver.wait_for(
            "/alerts", fault, lambda labels: labels["alertname"] == "ServiceDown" and labels.get("service") == "api",
            DELIVERY_LIMIT_SECONDS)
    finally:
        stack.host.docker("start", *api, timeout=120)
    print(f"alerting: ServiceDown for the api delivered {arrived - fault:.1f}s after the api stopped "
          f"(labels {alert['labels']})")
    assert arrived - fault < DELIVERY_LIMIT_SECONDS
    assert (alert["labels"]["stack"], alert["labels"]["service"], alert["labels"]["version"]) == (STACK, "api", "1.4.2")


def test_service_down_is_also_mailed_with_stack_service_and_version_in_the_subject(stack, receivers):
    _, mailbox = receivers
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("ServiceDown" in (m["Subject"] or "") for m in mailbox.messages):
        time.sleep(2)
    subjects = [m["Subject"] for m in mailbox.messages]
    mailed = [s for s in subjects if "ServiceDown" in s]
    assert mailed, f"no ServiceDown e-mail; subjects received: {subjects}"
    assert all(word in mailed[0] for word in (STACK, "api", "1.4.2")), mailed[0]


def test_a_failing_backup_reaches_the_webhook_within_5_minutes(stack, receivers):
    receiver, _ = receivers
    job = f"{STACK}-backup-main"
    # The scheduled backup script, run now without the database password: it fails and records so.
    failed = subprocess.run(["docker", "--host", stack.host.host, "exec", "-e", "PGPASSWORD_FILE=/nonexistent", job,
                             "sh", "/etc/platform/job.sh"], capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    fault = time.time()
    try:
        arrived, alert = receiver.wait_for(
            "/alerts", fault, lambda labels: labels["alertname"] == "BackupFailed" and labels.get("database") == "main",
            DELIVERY_LIMIT_SECONDS)
    finally:
        subprocess.run(["docker", "--host", stack.host.host, "exec", job, "sh", "/etc/platform/job.sh"],
                       capture_output=True, text=True, timeout=300)
    print(f"alerting: BackupFailed delivered {arrived - fault:.1f}s after the backup failed (labels {alert['labels']})")
    assert arrived - fault < DELIVERY_LIMIT_SECONDS
    assert (alert["labels"]["stack"], alert["labels"]["service"], alert["labels"]["version"]) == \
        (STACK, "postgres-main", "15.18.0")


# Canary analysis from this Prometheus (tests/e2e/canary_checks.py): deployctl, on this machine,
# asks it where monitoring.prometheusHostPort publishes it, an address that outlives releases.
EDGE_URL, EDGE_HOST = f"https://127.0.0.1:{HTTPS_PORT}/api/", "shop.staging.localhost"


def prometheus_url() -> str:
    return f"http://127.0.0.1:{PROMETHEUS_PORT}"


def prometheus_query(docker_host: DockerHost):
    return lambda promql: prometheus_api(docker_host, f"/api/v1/query?{urllib.parse.urlencode({'query': promql})}")["result"]


def test_a_canary_whose_requests_fail_but_whose_probes_pass_is_aborted_by_the_prometheus_analysis(stack):
    canary_at_ten_percent(stack, STACK, prometheus_url, FAILING_CANARY)
    stepped, traffic = rollout_step_under_traffic(stack, STACK, EDGE_URL, EDGE_HOST, prometheus_query(stack.host))
    assert_failing_canary_aborted(stack, STACK, stepped, traffic)


def test_a_healthy_canary_passes_the_prometheus_analysis_and_goes_to_the_next_step(stack):
    canary_at_ten_percent(stack, STACK, prometheus_url, HEALTHY_CANARY)
    try:
        after_failures_left_the_window(prometheus_query(stack.host))
        stepped, traffic = rollout_step_under_traffic(stack, STACK, EDGE_URL, EDGE_HOST, prometheus_query(stack.host))
        assert_healthy_canary_stepped(stack, STACK, stepped, traffic)
    finally:
        without_canary(stack, STACK)


def test_prometheus_keeps_what_it_recorded_across_a_release_that_replaces_it(stack):
    # Its scrape config names every service's version: a release replaces the container, which
    # keeps its series on its volume (components/targets/docker_monitoring.py).
    [before] = container(stack.host, "prometheus")
    replaced_id = json.loads(stack.host.docker("inspect", before))[0]["Id"]
    recorded_at = time.time() - 15  # scraped before the release (every 5 s here)
    stack.set_config(STACK, "services.api.version", "1.5.0")
    try:
        stack.pulumi("up", "--yes", "-s", STACK, "--message", "api 1.5.0", timeout=900)
        [after] = container(stack.host, "prometheus")
        assert json.loads(stack.host.docker("inspect", after))[0]["Id"] != replaced_id, "the release did not replace it"
        earlier = prometheus_api(stack.host, "/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'up{job="api"}', "time": f"{recorded_at:.3f}"}))["result"]
        assert earlier, "the series scraped before the release are gone"
    finally:
        stack.set_config(STACK, "services.api.version", "1.4.2")
        stack.pulumi("up", "--yes", "-s", STACK, "--message", "api 1.4.2", timeout=900)
