"""Alerts that really fire, on the real Docker engine: the stack's own Prometheus evaluates exactly
the program's rules over the node, postgres and blackbox exporters and the shop's /metrics, and its
Alertmanager delivers to a webhook and an SMTP server running in this test.

A copy of staging (stack `alerting`, its own ports and database subnet) with short intervals set
through stack config: scrapes and evaluations every 5 s, ServiceDown/BackupFailed `for: 30s`,
Watchdog re-sent every 20 s. Fault-to-delivery seconds are printed (pytest -s shows them)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from aiosmtpd.controller import Controller

import alert_states
from canary_checks import (FAILING_CANARY, HEALTHY_CANARY, after_failures_left_the_window, assert_failing_canary_aborted,
                           assert_healthy_canary_stepped, canary_at_ten_percent, rollout_step_under_traffic,
                           without_canary)
from components.alerting.models import duration_seconds
from docker_host import DockerHost, deploy_to_docker
from engine import Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

STACK = "alerting"
HTTP_PORT, HTTPS_PORT = 18780, 19143  # each Docker module its own ports
PROMETHEUS_PORT = 19190  # monitoring.prometheusHostPort: where deployctl asks it (canary analysis)
SUBNET = "172.30.146.0/24"
SECRETS = {"mainDbPassword": "docker-alerting-db-password-8d1e", "sessionSigningKey": "docker-alerting-key-2f6b"}
DELIVERY_LIMIT_SECONDS = 5 * 60  # SC-004: an alert reaches on-call within 5 minutes
SHORT = {
    "monitoring.scrapeIntervalSeconds": 5,
    "alerting.thresholds.serviceDownFor": "30s",
    "alerting.thresholds.backupFor": "30s",
    "alerting.criticalGroupWait": "5s",
    "alerting.groupWait": "5s",
    "alerting.heartbeatInterval": "20s",
}


def host_address() -> str:
    """An address of this machine the stack's containers reach through their bridge (not loopback)."""
    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()
    ipv4 = [a for a in addresses if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a) and not a.startswith(("127.", "172.30."))]
    assert ipv4, f"no non-loopback IPv4 address on this machine: {addresses}"
    return ipv4[0]


def set_plain(project: Project, stack: str, key: str, value: str) -> None:
    """A config key that names a secret key (its value is not secret): pulumi asks for --plaintext."""
    project.pulumi("config", "set", "--path", "--plaintext", f"platform:{key}", value, "-s", stack)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


class Receiver:
    """Alertmanager's webhook receiver: keeps (arrival time, path, payload) of every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, dict]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((time.time(), self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def alerts(self, path: str, since: float = 0.0):
        """(arrival, alert) for every firing alert posted to `path` after `since`."""
        return [(at, alert) for at, got, body in self.received if got == path and at >= since
                for alert in body.get("alerts", []) if alert.get("status") == "firing"]

    def wait_for(self, path: str, since: float, match, timeout: float) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [(at, alert) for at, alert in self.alerts(path, since) if match(alert["labels"])]
            if found:
                return found[0]
            time.sleep(1)
        seen = sorted({a["labels"].get("alertname", "?") for _, a in self.alerts(path, since)})
        raise AssertionError(f"no matching alert at {path} within {timeout:.0f}s; alerts seen since the fault: {seen}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """An SMTP server (no TLS, no login) reachable from the stack, keeping every message."""

    def __init__(self) -> None:
        self.messages = []
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                box.messages.append(message_from_bytes(envelope.original_content or envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="0.0.0.0", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def receivers():
    receiver, mailbox = Receiver(), Mailbox()
    yield receiver, mailbox
    receiver.close()
    mailbox.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_host, receivers):
    """A copy of staging on the Docker engine, alerting to this test's receivers."""
    receiver, mailbox = receivers
    address = host_address()
    docker_host.remove_stack_leftovers(STACK, ports=(HTTP_PORT, HTTPS_PORT, PROMETHEUS_PORT))
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("docker-alerting"))
    (project.dir / f"Pulumi.{STACK}.yaml").write_text((project.dir / "Pulumi.staging.yaml").read_text())
    project.init_stack(STACK, {**SECRETS, "alertWebhookUrl": f"http://{address}:{receiver.port}/alerts",
                               "heartbeatUrl": f"http://{address}:{receiver.port}/heartbeat"})
    deploy_to_docker(project, STACK, docker_host.host, HTTP_PORT, HTTPS_PORT, SUBNET)
    set_plain(project, STACK, "alerting.webhookUrlSecretKey", "alertWebhookUrl")
    set_plain(project, STACK, "alerting.heartbeatUrlSecretKey", "heartbeatUrl")
    for index, severity in enumerate(["critical", "warning"]):  # a list is set item by item
        project.set_config(STACK, f"alerting.webhookSeverities[{index}]", severity)
    for key, value in {**SHORT, "monitoring.prometheusHostPort": PROMETHEUS_PORT,
                       "alerting.smarthost": f"{address}:{mailbox.port}", "alerting.smtpRequireTls": False}.items():
        project.set_config(STACK, key, value)
    started = time.monotonic()
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=1200)
    print(f"alerting: up from empty took {time.monotonic() - started:.1f}s")
    # A healthy stack has a backup: the first scheduled one is hours away, so take it now (the backup
    # results answer 404 until then, and a missing backup is not a healthy state).
    backup = subprocess.run(["docker", "--host", docker_host.host, "exec", f"{STACK}-backup-main", "sh",
                             "/etc/platform/job.sh"], capture_output=True, text=True, timeout=300)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    project.host = docker_host
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def container(docker_host: DockerHost, service: str, **labels: str) -> list[str]:
    """Names of the stack's running containers of `service` (and further labels)."""
    filters = [f"label=deploy.platform/stack={STACK}", f"label=app.kubernetes.io/name={service}",
               *(f"label={key}={value}" for key, value in labels.items())]
    return docker_host.docker("ps", "--format", "{{.Names}}", *(x for f in filters for x in ("--filter", f))).split()


def prometheus_api(docker_host: DockerHost, path: str) -> dict:
    """Prometheus' HTTP API, asked from inside its container (it publishes no port)."""
    [name] = container(docker_host, "prometheus")
    answer = json.loads(docker_host.docker("exec", name, "wget", "-qO-", f"http://127.0.0.1:9090{path}"))
    assert answer["status"] == "success", answer
    return answer["data"]


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


def test_no_alert_fires_on_the_healthy_stack_and_nothing_stays_pending(stack):
    wait_for_targets(stack.host)
    # Polled for 90 s, several evaluations past every short `for:` (30 s), with all targets up.
    states = alert_states.only_watchdog_for(lambda: alerts_by_state(stack.host),
                                            explain=lambda: healthy_stack_report(stack.host))
    print(f"alerting: firing on the healthy stack: {states['firing']}")
    assert [a.split("{")[0] for a in states["firing"]] == ["Watchdog"]


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
