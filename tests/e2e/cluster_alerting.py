"""Alerting on the local cluster, seen from the tests and benchmarks/alert_latency_kubernetes.py: a
stack whose Alertmanager posts to a webhook receiver in the test process, and the stack's own
Prometheus (the Prometheus Operator's `Prometheus/platform`) read through its HTTP API."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cluster import Cluster, deploy_to_cluster
from engine import Project
from alert_states import SHORT_INTERVALS, alerts_by_state

# The node's address (devenv/cluster/cluster.sh NODE_IP): a local address of this machine that
# pods reach through the bridge, so a server here bound to it is reachable from the Alertmanager pod.
NODE_IP = "10.250.0.1"
CRITICAL_PATH, HEARTBEAT_PATH = "/critical", "/heartbeat"

# The copy of dev tests/e2e/test_cluster_alerting.py judges, deployed when the cluster lane starts
# (tests/e2e/soak.py), with the short intervals and warnings to the webhook too.
SOAK_NAMESPACE = "e2e-alerting"
SOAK_PORTS = {"http_port": 32086, "https_port": 32448}
SOAK_SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
SOAK_SETTINGS = {
    **SHORT_INTERVALS,
    # BackupFailed is a warning: the webhook gets warnings too (a list is set item by item).
    "alerting.webhookSeverities[0]": "critical",
    "alerting.webhookSeverities[1]": "warning",
}


@dataclass(frozen=True)
class Notification:
    received: float  # time.monotonic() on arrival
    path: str
    body: dict

    def alerts(self, name: str, status: str = "firing") -> list[dict]:
        return [a for a in self.body.get("alerts", [])
                if a.get("labels", {}).get("alertname") == name and a.get("status") == status]


@dataclass
class WebhookReceiver:
    """Alertmanager's webhook_config target: records every POST (path, JSON body, arrival time)."""

    notifications: list[Notification] = field(default_factory=list)

    def __post_init__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"unparsed": body.decode(errors="replace")}
                receiver.notifications.append(Notification(time.monotonic(), self.path, payload))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((NODE_IP, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{NODE_IP}:{self.port}{path}"

    def wait_for(self, path: str, name: str, since: float, timeout: float, match=lambda alert: True):
        """The first notification at `path` after `since` with a firing `name` alert that matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for note in list(self.notifications):
                if note.path == path and note.received >= since and any(match(a) for a in note.alerts(name)):
                    return note
            time.sleep(1)
        seen = sorted({(n.path, a["labels"].get("alertname"), a.get("status"))
                       for n in self.notifications for a in n.body.get("alerts", [])})
        raise AssertionError(f"no firing {name} at {path} within {timeout:.0f}s; received so far: {seen}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    """The stack's Prometheus (pod prometheus-platform-0), through its pod IP from this machine."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster, self.namespace = cluster, namespace

    def base_url(self) -> str:
        pod = self.cluster.get(self.namespace, "pod", "prometheus-platform-0")
        return f"http://{pod['status']['podIP']}:9090"

    def api(self, path: str, **params) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.base_url()}/api/v1/{path}{query}", timeout=10) as response:
            answer = json.load(response)
        assert answer["status"] == "success", answer
        return answer["data"]

    def format_query(self, expr: str) -> str:
        """The expression as this Prometheus parses and prints it (what /api/v1/rules reports)."""
        return self.api("format_query", query=expr)

    def alerts_by_state(self) -> dict[str, list[str]]:
        """Prometheus' own alerts (/api/v1/alerts), `Name{label=value, ...}` by state (firing, pending)."""
        return alerts_by_state(self.api("alerts")["alerts"])


def wait_until(what: str, timeout: float, probe, interval: float = 3):
    """probe() -> a truthy value when done; polled (the machine is busy), never a fixed sleep."""
    deadline, last_error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 (a pod not there yet, a connection refused: try again)
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


def statefulset_ready(cluster: Cluster, namespace: str, name: str) -> bool:
    status = cluster.get(namespace, "statefulset", name).get("status", {})
    return status.get("readyReplicas", 0) >= 1


def healthy_stack_report(cluster: Cluster, namespace: str) -> str:
    """What a database alert on a healthy stack is explained by: every pod's restarts, and the last
    minutes of the database's and its exporter's logs (the exporter logs why a ping failed)."""
    lines = []
    for pod in cluster.get(namespace, "pods")["items"]:
        name = pod["metadata"]["name"]
        restarts = {c["name"]: c.get("restartCount", 0) for c in pod.get("status", {}).get("containerStatuses", [])}
        lines.append(f"pod {name}: restarts {restarts}")
        if name.startswith("postgres"):
            try:
                logs = cluster.kubectl("--namespace", namespace, "logs", name, "--all-containers", "--since=3m",
                                       "--tail=20", timeout=30)
            except Exception as error:  # noqa: BLE001 (a report: say what was not read)
                logs = str(error)
            lines.append(f"  logs: {logs[-2000:]}")
    return "\n".join(lines)


def pod_report(cluster: Cluster, namespace: str, pod: str) -> str:
    """Why a pod is not ready: its containers' states and the last log lines of the failing ones."""
    try:
        status = cluster.get(namespace, "pod", pod).get("status", {})
    except Exception as error:  # noqa: BLE001 (no pod at all is the answer too)
        return f"pod {pod}: {error}"
    lines = []
    for container in status.get("containerStatuses", []):
        state = container.get("state", {})
        last = container.get("lastState", {}).get("terminated", {})
        lines.append(f"{container['name']}: ready={container.get('ready')} restarts={container.get('restartCount')} "
                     f"state={state} last={last.get('reason')} {last.get('message', '')[-400:]}")
        if not container.get("ready"):
            try:  # a crash-looping container's reason is in the log of its previous run
                logs = cluster.kubectl("--namespace", namespace, "logs", pod, "-c", container["name"], "--tail=15",
                                       *(["--previous"] if last else []), timeout=30)
            except Exception as error:  # noqa: BLE001 (not started yet: no log)
                logs = str(error)
            lines.append(f"  logs: {logs[-1500:]}")
    return f"pod {pod}: " + "\n".join(lines)


def deploy_alerting_stack(cluster: Cluster, project: Project, receiver: WebhookReceiver, namespace: str,
                          http_port: int, https_port: int, secrets: dict[str, str],
                          settings: Mapping[str, object] | None = None) -> Prometheus:
    """A copy of dev in `namespace` whose critical alerts and Watchdog post to `receiver`, with further
    stack `settings` (config key -> value); waits until the operator has started its Prometheus and
    Alertmanager, and says why a pod is not ready when one is not."""
    cluster.fresh_namespace(namespace)
    project.init_stack("dev", {**secrets, "alertWebhookUrl": receiver.url(CRITICAL_PATH),
                               "alertHeartbeatUrl": receiver.url(HEARTBEAT_PATH)})
    deploy_to_cluster(project, "dev", namespace, http_port=http_port, https_port=https_port)
    # A key that names a secret key (its value is not secret): pulumi asks for --plaintext.
    project.pulumi("config", "set", "--path", "--plaintext", "platform:alerting.webhookUrlSecretKey", "alertWebhookUrl", "-s", "dev")
    project.pulumi("config", "set", "--path", "--plaintext", "platform:alerting.heartbeatUrlSecretKey", "alertHeartbeatUrl", "-s", "dev")
    for key, value in (settings or {}).items():
        project.set_config("dev", key, value)
    project.pulumi("up", "--yes", "-s", "dev", "--message", "alerting stack", timeout=900)
    for name in ("alertmanager-platform", "prometheus-platform"):
        try:
            wait_until(f"statefulset {namespace}/{name} ready (made by the Prometheus Operator)", 300,
                       lambda name=name: statefulset_ready(cluster, namespace, name))
        except AssertionError as error:
            raise AssertionError(f"{error}\n{pod_report(cluster, namespace, f'{name}-0')}") from None
    return Prometheus(cluster, namespace)


def deploy_soaking_stack(cluster: Cluster, project: Project, receiver: WebhookReceiver) -> Project:
    """SOAK_NAMESPACE's stack, with a first backup taken, kept from the per-module namespace sweep
    (tests/e2e/conftest.py) until the module judging it drops it."""
    project.prometheus = deploy_alerting_stack(cluster, project, receiver, SOAK_NAMESPACE, **SOAK_PORTS,
                                               secrets=SOAK_SECRETS, settings=SOAK_SETTINGS)
    project.ready_at = time.monotonic()
    # A healthy stack has a backup: the first scheduled one is hours away, so take it now (the backup
    # results answer 404 until then, and a missing backup is not a healthy state).
    cluster.run_job(SOAK_NAMESPACE, "backup-main", "e2e-alerting-backup")
    Cluster.lent.discard(SOAK_NAMESPACE)
    project.receiver = receiver
    return project
