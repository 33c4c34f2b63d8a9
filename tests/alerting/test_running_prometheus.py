"""The rendered rules and routing in a running Prometheus and Alertmanager (Debian's binaries, the
ones the images package), delivering to a webhook and an SMTP server in this test: what promtool
checks is what Prometheus evaluates, and a firing alert reaches both receivers naming the stack.

No exporter runs here, so DatabaseDown's absent() guard is the alert that fires (for: 10s)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import urllib.request
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from components.alerting import AlertRouting, render_alertmanager_config
from components.alerting.models import duration_seconds
from components.alerting.rules import AlertingThresholds, build_rule_groups, render_prometheus_rule_file

from .tooling import CONTAINERS, DATABASES, SERVICES, require_tool, write_yaml


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def squeeze(expr: str) -> str:
    """Without whitespace, each selector's matchers sorted (Prometheus prints its own order)."""
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ",".join(sorted(m.group(1).split(","))) + "}",
                  re.sub(r"\s+", "", expr))


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout:.0f}s")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("running-prometheus")
    posts: list[tuple[str, dict]] = []
    mails = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            posts.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            mails.append(message_from_bytes(envelope.content))
            return "250 OK"

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    smtp_port = free_port()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    groups = build_rule_groups(AlertingThresholds(service_down_for="10s"), SERVICES, DATABASES, CONTAINERS)
    rules = write_yaml(work / "rules.yml", render_prometheus_rule_file(groups))
    routing = AlertRouting(email_to=["oncall@example.test"], email_from="alerts@example.test",
                           smarthost=f"127.0.0.1:{smtp_port}", smtp_require_tls=False, webhook_url_secret_key="hook",
                           critical_group_wait="1s")
    am_port, prom_port = free_port(), free_port()
    write_yaml(work / "alertmanager.yml", render_alertmanager_config(
        routing, f"http://127.0.0.1:{hook.server_address[1]}/alerts", None))
    write_yaml(work / "prometheus.yml", {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "external_labels": {"stack": "local"}},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]}})
    processes = [
        subprocess.Popen([require_tool("prometheus-alertmanager"), f"--config.file={work / 'alertmanager.yml'}",
                          f"--storage.path={work / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                          "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([require_tool("prometheus"), f"--config.file={work / 'prometheus.yml'}",
                          f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    base = f"http://127.0.0.1:{prom_port}"
    wait_until(lambda: get(f"{base}/api/v1/rules")["data"]["groups"], 60, "Prometheus did not load the rules")
    yield {"base": base, "rules": render_prometheus_rule_file(groups), "posts": posts, "mails": mails}
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
    smtp.stop()
    hook.shutdown()
    hook.server_close()


def test_prometheus_evaluates_exactly_the_rendered_rules(pipeline):
    loaded = get(f"{pipeline['base']}/api/v1/rules")["data"]["groups"]
    want = {(g["name"], r["alert"]): (squeeze(r["expr"]), duration_seconds(r["for"]), r["labels"], r["annotations"])
            for g in pipeline["rules"]["groups"] for r in g["rules"]}
    have = {(g["name"], r["name"]): (squeeze(r["query"]), r["duration"], r["labels"], r["annotations"])
            for g in loaded for r in g["rules"]}
    assert sorted(set(want) ^ set(have)) == []
    assert [key for key in want if want[key] != have[key]] == []


def test_a_missing_database_exporter_alerts_at_the_webhook_naming_the_stack(pipeline):
    def delivered():
        return [alert for path, body in pipeline["posts"] if path == "/alerts" for alert in body["alerts"]
                if alert["labels"]["alertname"] == "DatabaseDown"]

    [alert, *_] = wait_until(delivered, 90, "DatabaseDown never reached the webhook")
    assert {k: alert["labels"][k] for k in ("stack", "database", "severity")} == {
        "stack": "local", "database": "main", "severity": "critical"}


def test_the_same_alert_is_mailed_with_the_stack_in_the_subject(pipeline):
    subjects = wait_until(lambda: [m["Subject"] for m in pipeline["mails"] if "DatabaseDown" in m["Subject"]], 90,
                          "no DatabaseDown e-mail")
    assert subjects[0].startswith("[FIRING] local: DatabaseDown"), subjects
