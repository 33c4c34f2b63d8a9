"""Alerting on the Docker engine, seen from the tests and benchmarks/alert_latency.py: a copy of
staging (stack `alerting`, its own ports and database subnet) whose Alertmanager posts to a webhook
receiver and mails an SMTP server, both running in the test process.

Short intervals are set through stack config: scrapes and evaluations every 5 s, ServiceDown and
BackupFailed `for: 30s`, Watchdog re-sent every 20 s."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alert_states import SHORT_INTERVALS
from docker_host import DockerHost, deploy_to_docker
from receivers import SmtpSink
from engine import Project

STACK = "alerting"
HTTP_PORT, HTTPS_PORT = 18780, 19143  # each Docker module its own ports
PROMETHEUS_PORT = 19190  # monitoring.prometheusHostPort: where deployctl asks it (canary analysis)
SUBNET = "172.30.146.0/24"
SECRETS = {"mainDbPassword": "docker-alerting-db-password-8d1e", "sessionSigningKey": "docker-alerting-key-2f6b"}
DELIVERY_LIMIT_SECONDS = 5 * 60  # SC-004: an alert reaches on-call within 5 minutes


def host_address() -> str:
    """An address of this machine the stack's containers reach through their bridge (not loopback)."""
    addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()
    ipv4 = [a for a in addresses if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a) and not a.startswith(("127.", "172.30."))]
    assert ipv4, f"no non-loopback IPv4 address on this machine: {addresses}"
    return ipv4[0]


def set_plain(project: Project, stack: str, key: str, value: str) -> None:
    """A config key that names a secret key (its value is not secret): pulumi asks for --plaintext."""
    project.pulumi("config", "set", "--path", "--plaintext", f"platform:{key}", value, "-s", stack)


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

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)
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


def mailbox() -> SmtpSink:
    """An SMTP server (no TLS, no login) the stack's Alertmanager reaches through its bridge."""
    return SmtpSink(host="0.0.0.0")


def deploy_alerting_stack(docker_host: DockerHost, project: Project, receiver: Receiver, mailbox: SmtpSink) -> Project:
    """The stack up from empty with a first backup taken, alerting to `receiver` and `mailbox`;
    `project.host` is the engine it runs on."""
    address = host_address()
    docker_host.remove_stack_leftovers(STACK, ports=(HTTP_PORT, HTTPS_PORT, PROMETHEUS_PORT))
    docker_host.refresh_images()
    (project.dir / f"Pulumi.{STACK}.yaml").write_text((project.dir / "Pulumi.staging.yaml").read_text())
    project.init_stack(STACK, {**SECRETS, "alertWebhookUrl": f"http://{address}:{receiver.port}/alerts",
                               "heartbeatUrl": f"http://{address}:{receiver.port}/heartbeat"})
    deploy_to_docker(project, STACK, docker_host.host, HTTP_PORT, HTTPS_PORT, SUBNET)
    set_plain(project, STACK, "alerting.webhookUrlSecretKey", "alertWebhookUrl")
    set_plain(project, STACK, "alerting.heartbeatUrlSecretKey", "heartbeatUrl")
    for index, severity in enumerate(["critical", "warning"]):  # a list is set item by item
        project.set_config(STACK, f"alerting.webhookSeverities[{index}]", severity)
    for key, value in {**SHORT_INTERVALS, "monitoring.prometheusHostPort": PROMETHEUS_PORT,
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
    return project


def remove_alerting_stack(docker_host: DockerHost, project: Project) -> None:
    if (project.dir / f"Pulumi.{STACK}.yaml").exists():
        project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def container(docker_host: DockerHost, service: str, **labels: str) -> list[str]:
    """Names of the stack's running containers of `service` (and further labels)."""
    filters = [f"label=deploy.platform/stack={STACK}", f"label=app.kubernetes.io/name={service}",
               *(f"label={key}={value}" for key, value in labels.items())]
    return docker_host.docker("ps", "--format", "{{.Names}}", *(x for f in filters for x in ("--filter", f))).split()


def prometheus_api(docker_host: DockerHost, path: str) -> dict:
    """Prometheus' HTTP API, asked from inside its container (as on a stack that publishes no port)."""
    [name] = container(docker_host, "prometheus")
    answer = json.loads(docker_host.docker("exec", name, "wget", "-qO-", f"http://127.0.0.1:9090{path}"))
    assert answer["status"] == "success", answer
    return answer["data"]
