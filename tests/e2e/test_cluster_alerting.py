"""Alerts that really fire on the local cluster (issue 14): the Prometheus Operator turns the stack's
Prometheus and Alertmanager objects into pods; that Prometheus loads exactly the PrometheusRule the
program declares, scrapes its PodMonitors, and its Alertmanager delivers Watchdog and ServiceDown
to a webhook receiver in this test process."""

from __future__ import annotations

import subprocess
import tempfile
import time

import pytest
import yaml

from cluster_alerting import CRITICAL_PATH, HEARTBEAT_PATH, WebhookReceiver, deploy_alerting_stack, wait_until
from engine import Project

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
NAMESPACE = "e2e-alerting"
DEPLOYED_VERSION = "1.4.2"  # Pulumi.dev.yaml's api version
SC_004_SECONDS = 5 * 60  # seed 004: an alert reaches the on-call person within 5 minutes


def prometheus_lacks_kubernetes_discovery() -> str | None:
    """Debian builds Prometheus (and promtool) without Kubernetes service discovery; the Prometheus
    Operator's generated config needs it, so Prometheus on the cluster crash-loops on this machine's
    image. Returns the parser's complaint when that is the case."""
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as config:
        config.write("scrape_configs:\n- job_name: probe\n  kubernetes_sd_configs:\n  - role: pod\n")
        config.flush()
        checked = subprocess.run(["promtool", "check", "config", config.name], capture_output=True, text=True)
    return None if checked.returncode == 0 else (checked.stdout + checked.stderr).strip()[-200:]


@pytest.fixture(scope="module", autouse=True)
def prometheus_with_kubernetes_discovery():
    problem = prometheus_lacks_kubernetes_discovery()
    if problem:
        pytest.skip("this machine's Prometheus (Debian's, in 127.0.0.1:5000/shop/prometheus) has no Kubernetes "
                    f"service discovery, so the operator's Prometheus cannot start ({problem}); issue 14: "
                    "build Prometheus from its Go module")


@pytest.fixture(scope="module")
def receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def stack(cluster, receiver, tmp_path_factory):
    project = Project(tmp_path_factory.mktemp("cluster-alerting"))
    project.prometheus = deploy_alerting_stack(cluster, project, receiver, NAMESPACE, http_port=32086,
                                               https_port=32448, secrets=SECRETS)
    project.ready_at = time.monotonic()
    yield project
    cluster.drop_namespace(NAMESPACE)


def declared_rules(cluster) -> dict:
    """The PrometheusRule the program created: its spec is the rule file (`groups:`)."""
    return cluster.get(NAMESPACE, "prometheusrule", "platform-alerts")["spec"]


def test_declared_rule_file_loads_in_promtool(cluster, stack, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(declared_rules(cluster), sort_keys=False))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_evaluates_exactly_the_declared_rules(cluster, stack):
    prometheus = stack.prometheus
    declared = {(group["name"], rule["alert"]): rule
                for group in declared_rules(cluster)["groups"] for rule in group["rules"]}
    # The config reloader writes the operator's rule files a little after the pod is ready.
    groups = wait_until("Prometheus to report rule groups at /api/v1/rules", 240,
                        lambda: prometheus.api("rules")["groups"])
    loaded: dict[tuple[str, str], dict] = {}
    for group in groups:
        for rule in group["rules"]:
            key = (group["name"], rule["name"])
            assert key not in loaded, f"{key} is loaded twice"
            loaded[key] = rule
    assert sorted(set(declared) - set(loaded)) == [], "declared but not loaded"
    assert sorted(set(loaded) - set(declared)) == [], "loaded but never declared"
    for key, rule in declared.items():
        running = loaded[key]
        assert running["type"] == "alerting", key
        # Prometheus reports the expression as it parsed it; the declared one goes through the same parser.
        assert running["query"] == prometheus.format_query(rule["expr"]), key
        assert running["duration"] == _seconds(rule.get("for", "0s")), key
        assert (running.get("labels") or {}) == (rule.get("labels") or {}), key
        assert (running.get("annotations") or {}) == (rule.get("annotations") or {}), key
        assert running["health"] != "err", f"{key}: {running.get('lastError')}"


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for suffix in ("ms", "s", "m", "h", "d"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    return float(duration)


def test_every_pod_monitor_target_is_up(cluster, stack):
    # The backup exporter serves its results from the first backup on: run one, as the schedule would.
    cluster.run_job(NAMESPACE, "backup-main", "e2e-alerting-backup")
    monitors = cluster.get(NAMESPACE, "podmonitors")["items"]
    jobs = {relabel["replacement"] for m in monitors for endpoint in m["spec"]["podMetricsEndpoints"]
            for relabel in endpoint.get("relabelings", []) if relabel.get("targetLabel") == "job"}
    assert jobs, "the program declared no PodMonitor"

    def health():
        targets = stack.prometheus.api("targets", state="active")["activeTargets"]
        by_job: dict[str, list] = {}
        for target in targets:
            by_job.setdefault(target["labels"].get("job"), []).append(target)
        return by_job

    def all_up():
        by_job = health()
        return by_job if set(jobs) <= set(by_job) and all(
            t["health"] == "up" for job in jobs for t in by_job[job]) else None

    try:
        wait_until("every PodMonitor target up", 180, all_up, interval=5)
    except AssertionError:
        report = {job: [(t["scrapeUrl"], t["health"], t["lastError"]) for t in health().get(job, [])] for job in sorted(jobs)}
        raise AssertionError(f"PodMonitor targets not all up after 180s: {report}") from None


def test_watchdog_reaches_the_heartbeat_webhook(stack, receiver):
    note = receiver.wait_for(HEARTBEAT_PATH, "Watchdog", since=0, timeout=300)
    print(f"Watchdog delivered {note.received - stack.ready_at:.1f}s after Prometheus and Alertmanager were ready")
    [watchdog] = note.alerts("Watchdog")
    assert watchdog["labels"].get("stack") == "dev"


def _names_the_api(alert: dict) -> bool:
    labels = alert.get("labels", {})
    return labels.get("service") == "api" or labels.get("job") == "api"


def test_api_scaled_to_zero_raises_service_down_at_the_webhook_within_five_minutes(cluster, stack, receiver):
    already = [a["labels"] for n in receiver.notifications if n.path == CRITICAL_PATH
               for a in n.alerts("ServiceDown") if _names_the_api(a)]
    assert not already, f"ServiceDown for the api fired on the healthy stack, before any fault: {already}"
    fault = time.monotonic()
    cluster.kubectl("--namespace", NAMESPACE, "scale", "deployment/api", "--replicas=0")
    try:
        note = receiver.wait_for(CRITICAL_PATH, "ServiceDown", since=fault, timeout=SC_004_SECONDS + 60,
                                 match=_names_the_api)
    except AssertionError as error:
        # What Prometheus saw: with the pods gone, their targets (and `up` series) are gone too.
        up = stack.prometheus.api("query", query='up{job="api"}')["result"]
        alerts = stack.prometheus.api("query", query='ALERTS{alertname="ServiceDown"}')["result"]
        raise AssertionError(f"{error}\nup{{job=\"api\"}} now: {up}\nServiceDown in Prometheus: {alerts}") from None
    seconds = note.received - fault
    print(f"ServiceDown for the api delivered {seconds:.1f}s after the api was scaled to 0")
    [alert] = [a for a in note.alerts("ServiceDown") if _names_the_api(a)][:1]
    labels = alert["labels"]
    assert {key: labels.get(key) for key in ("stack", "service", "version")} == {
        "stack": "dev", "service": "api", "version": DEPLOYED_VERSION}, labels
    assert seconds <= SC_004_SECONDS
