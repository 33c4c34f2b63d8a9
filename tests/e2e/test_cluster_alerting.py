"""Alerts that really fire on the local cluster (issue 14): the Prometheus Operator turns the stack's
Prometheus and Alertmanager objects into pods (Prometheus built from its Go module with Kubernetes
discovery, devenv/toolchain/prometheus.sh); that Prometheus loads exactly the PrometheusRule the
program declares, scrapes its PodMonitors, and its Alertmanager delivers Watchdog, ServiceDown and
BackupFailed to a webhook receiver in this test process.

A copy of dev with short intervals set through stack config, as tests/e2e/test_docker_alerting.py
does on Docker: scrapes and evaluations every 5 s, ServiceDown/BackupFailed `for: 30s`, Watchdog
re-sent every 20 s, warnings to the webhook too. Fault-to-delivery seconds are printed (pytest -s)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime

import pytest
import yaml

import alert_states
from alert_states import only_watchdog_for
from canary_checks import (FAILING_CANARY, HEALTHY_CANARY, after_failures_left_the_window, assert_failing_canary_aborted,
                           assert_healthy_canary_stepped, canary_at_ten_percent, rollout_step_under_traffic,
                           without_canary)
from cluster_alerting import CRITICAL_PATH, HEARTBEAT_PATH, SOAK_NAMESPACE as NAMESPACE, healthy_stack_report, wait_until
from soak import lent_to_module

# Its lane: tests/e2e/conftest.py, which runs this module last in it and deploys its stack first.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster"), pytest.mark.soak("cluster_alerting_soak")]

DEPLOYED_VERSION = "1.4.2"  # Pulumi.dev.yaml's api version
SC_004_SECONDS = 5 * 60  # seed 004: an alert reaches the on-call person within 5 minutes


@pytest.fixture(scope="module")
def stack(cluster_alerting_soak):
    """The alerting stack deployed when the cluster lane started (tests/e2e/soak.py); dropped when
    this module, the lane's last, ends."""
    yield from lent_to_module(cluster_alerting_soak)


@pytest.fixture(scope="module")
def receiver(stack):
    return stack.receiver


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
        # format_query prettifies a long expression over several indented lines, /api/v1/rules does not:
        # the two are compared without whitespace outside string literals.
        assert _unspaced(running["query"]) == _unspaced(prometheus.format_query(rule["expr"])), key
        assert running["duration"] == _seconds(rule.get("for", "0s")), key
        assert (running.get("labels") or {}) == (rule.get("labels") or {}), key
        assert (running.get("annotations") or {}) == (rule.get("annotations") or {}), key
        assert running["health"] != "err", f"{key}: {running.get('lastError')}"


def _unspaced(expr: str) -> str:
    parts = re.split(r'("(?:[^"\\]|\\.)*")', expr)  # odd parts: string literals, kept as they are
    return "".join(part if i % 2 else re.sub(r"\s+", "", part) for i, part in enumerate(parts))


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for suffix in ("ms", "s", "m", "h", "d"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    return float(duration)


def test_every_pod_monitor_target_is_up(cluster, stack):
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


def test_no_alert_fires_on_the_healthy_stack_in_ten_minutes_and_nothing_stays_pending(cluster, stack):
    prometheus = stack.prometheus
    # A group not evaluated yet reports the zero time (0001-01-01T00:00:00Z).
    wait_until("a first evaluation of every rule group", 120, lambda: all(
        not g["lastEvaluation"].startswith("0001") for g in prometheus.api("rules")["groups"]))
    lived = stack.soak.wait_until_soaked()
    # Then polled for 90 s, several evaluations past every short `for:` (30 s), with every target up.
    states = only_watchdog_for(prometheus.alerts_by_state, explain=lambda: healthy_stack_report(cluster, NAMESPACE))
    query = prometheus_query(stack)
    fired = alert_states.fired_over(query, stack.soak.age())
    print(f"cluster alerting: the healthy stack ran {stack.soak.age():.0f}s ({lived:.0f}s before the poll) beside the "
          f"lane's other stacks; firing now: {states['firing']}; fired in that time (Watchdog aside): {fired}; "
          f"pending at some point: {alert_states.fired_over(query, stack.soak.age(), state='pending')}")
    assert [a.split("{")[0] for a in states["firing"]] == ["Watchdog"]
    assert fired == [], healthy_stack_report(cluster, NAMESPACE)


def test_watchdog_arrives_continuously_at_the_heartbeat_webhook(stack, receiver):
    first = receiver.wait_for(HEARTBEAT_PATH, "Watchdog", since=0, timeout=300)
    print(f"Watchdog delivered {first.received - stack.ready_at:.1f}s after Prometheus and Alertmanager were ready")
    latest = receiver.wait_for(HEARTBEAT_PATH, "Watchdog", since=time.monotonic(), timeout=120)
    # Every gap between deliveries over the stack's life, not only the last few.
    arrivals = [n.received for n in list(receiver.notifications) if n.path == HEARTBEAT_PATH and n.alerts("Watchdog")]
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    print(f"Watchdog arrived {len(arrivals)} times over {arrivals[-1] - arrivals[0]:.0f}s, at most "
          f"{max(gaps):.1f}s apart (heartbeat interval 20s)")
    [watchdog] = latest.alerts("Watchdog")
    assert watchdog["labels"].get("stack") == "dev"
    assert len(arrivals) >= 3 and max(gaps) < 90


def _names_the_api(alert: dict) -> bool:
    labels = alert.get("labels", {})
    return labels.get("service") == "api" or labels.get("job") == "api"


def _started_after(wall_time: float):
    """Alertmanager's startsAt (when Prometheus fired the alert) is later than `wall_time`: the alert
    is this fault's, not a repeat of an earlier one still in its group."""
    def match(alert: dict) -> bool:
        started = datetime.fromisoformat(alert["startsAt"].replace("Z", "+00:00"))
        return _names_the_api(alert) and started.timestamp() > wall_time
    return match


def test_api_scaled_to_zero_raises_service_down_at_the_webhook_within_five_minutes(cluster, stack, receiver):
    # The fault starts from a healthy api: no ServiceDown for it firing or pending in Prometheus now.
    # A transient before that (a scrape missed while the loaded machine started the stack) is printed,
    # not counted: the alert this test waits for is the one that starts after the fault.
    earlier = [(a["labels"].get("instance"), a.get("startsAt")) for n in receiver.notifications
               if n.path == CRITICAL_PATH for a in n.alerts("ServiceDown") if _names_the_api(a)]
    if earlier:
        print(f"ServiceDown for the api was delivered before the fault (instance, startsAt): {earlier}")
    wait_until("no ServiceDown for the api firing or pending in Prometheus", 180, lambda: not [
        a for a in stack.prometheus.api("alerts")["alerts"]
        if a["labels"].get("alertname") == "ServiceDown" and _names_the_api(a)], interval=5)
    replicas = cluster.get(NAMESPACE, "deployment", "api")["spec"]["replicas"]
    fault, fault_wall_time = time.monotonic(), time.time()
    cluster.kubectl("--namespace", NAMESPACE, "scale", "deployment/api", "--replicas=0")
    try:
        note = receiver.wait_for(CRITICAL_PATH, "ServiceDown", since=fault, timeout=SC_004_SECONDS + 60,
                                 match=_started_after(fault_wall_time))
    except AssertionError as error:
        # What Prometheus saw: with the pods gone, their targets (and `up` series) are gone too.
        up = stack.prometheus.api("query", query='up{job="api"}')["result"]
        alerts = stack.prometheus.api("query", query='ALERTS{alertname="ServiceDown"}')["result"]
        raise AssertionError(f"{error}\nup{{job=\"api\"}} now: {up}\nServiceDown in Prometheus: {alerts}") from None
    finally:
        cluster.kubectl("--namespace", NAMESPACE, "scale", "deployment/api", f"--replicas={replicas}")
    seconds = note.received - fault
    [alert] = [a for a in note.alerts("ServiceDown") if _started_after(fault_wall_time)(a)][:1]
    labels = alert["labels"]
    print(f"ServiceDown for the api delivered {seconds:.1f}s after the api was scaled to 0 (labels {labels})")
    assert {key: labels.get(key) for key in ("stack", "service", "version")} == {
        "stack": "dev", "service": "api", "version": DEPLOYED_VERSION}, labels
    # With no pod left the target is gone, not down: the absent() branch is what fired.
    assert labels.get("instance") == "none (no target left to scrape)", labels
    assert seconds <= SC_004_SECONDS


def failing_backup_job(cluster, name: str) -> dict:
    """A Job from the backup CronJob's template whose database host does not resolve: the scheduled
    script runs as it would, fails, and records the failure for the backup-results exporter."""
    template = cluster.get(NAMESPACE, "cronjob", "backup-main")["spec"]["jobTemplate"]
    spec = template["spec"]
    spec["backoffLimit"] = 0
    for container in spec["template"]["spec"]["containers"]:
        env = [e for e in container.get("env", []) if e["name"] != "PGHOST"]
        assert len(env) < len(container.get("env", [])), f"the backup job has no PGHOST to break: {container.get('env')}"
        container["env"] = [*env, {"name": "PGHOST", "value": "no-such-database.invalid"}]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec}


def test_a_failing_backup_reaches_the_webhook_within_five_minutes(cluster, stack, receiver, tmp_path):
    manifest = tmp_path / "failing-backup.json"
    manifest.write_text(json.dumps(failing_backup_job(cluster, "e2e-alerting-backup-fails")))
    started = time.monotonic()
    cluster.kubectl("apply", "-f", str(manifest))
    cluster.kubectl("--namespace", NAMESPACE, "wait", "--for=condition=failed", "--timeout=180s",
                    "job/e2e-alerting-backup-fails", timeout=200)
    fault = time.monotonic()  # the job has failed (and recorded so): the fault is in place
    try:
        note = receiver.wait_for(CRITICAL_PATH, "BackupFailed", since=started, timeout=SC_004_SECONDS,
                                 match=lambda a: a["labels"].get("database") == "main")
    finally:
        cluster.run_job(NAMESPACE, "backup-main", "e2e-alerting-backup-again")  # a good one again
    seconds = note.received - fault
    [alert] = [a for a in note.alerts("BackupFailed") if a["labels"].get("database") == "main"][:1]
    labels = alert["labels"]
    print(f"BackupFailed delivered {seconds:.1f}s after the backup job failed (labels {labels})")
    assert (labels.get("stack"), labels.get("service"), labels.get("version")) == ("dev", "postgres-main", "15.18.0")
    assert seconds <= SC_004_SECONDS


def test_every_network_policy_of_the_stack_selects_a_running_pod(cluster, stack):
    # kube-score cannot see the operator's pods in the rendered manifests (docs/security.md accepts
    # that for the monitoring policies); on the cluster each policy must select a pod, or its path
    # is a no-op and Prometheus or Alertmanager runs unprotected.
    policies = cluster.get(NAMESPACE, "networkpolicy")["items"]
    assert policies, f"no NetworkPolicy in {NAMESPACE}"
    pods = [p for p in cluster.get(NAMESPACE, "pod")["items"] if p["status"].get("phase") == "Running"]
    unmatched = []
    for policy in policies:
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        if not any(wanted.items() <= pod["metadata"].get("labels", {}).items() for pod in pods):
            unmatched.append(policy["metadata"]["name"])
    # The ACME solvers' policy waits for a challenge; this stack has none.
    assert [name for name in unmatched if name != "acme-solvers-from-edge"] == [], unmatched



# Canary analysis from this Prometheus (tests/e2e/canary_checks.py).
EDGE, EDGE_HOST = "https://127.0.0.1:32448", "shop.dev.localhost"


def prometheus_query(stack):
    return lambda promql: stack.prometheus.api("query", query=promql)["result"]


def test_a_canary_whose_requests_fail_but_whose_probes_pass_is_aborted_by_the_prometheus_analysis(stack):
    canary_at_ten_percent(stack, "dev", stack.prometheus.base_url, FAILING_CANARY)
    stepped, traffic = rollout_step_under_traffic(stack, "dev", f"{EDGE}/api/", EDGE_HOST, prometheus_query(stack))
    assert_failing_canary_aborted(stack, "dev", stepped, traffic)


def test_a_healthy_canary_passes_the_prometheus_analysis_and_goes_to_the_next_step(stack):
    canary_at_ten_percent(stack, "dev", stack.prometheus.base_url, HEALTHY_CANARY)
    try:
        after_failures_left_the_window(prometheus_query(stack))
        stepped, traffic = rollout_step_under_traffic(stack, "dev", f"{EDGE}/api/", EDGE_HOST, prometheus_query(stack))
        assert_healthy_canary_stepped(stack, "dev", stepped, traffic)
    finally:
        without_canary(stack, "dev")
