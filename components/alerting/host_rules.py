"""Alert rules on what the services run on: the hosts' disks, containers that keep restarting, and
the Watchdog that proves the alerting pipeline itself works, each with its fixtures.

Metric contract (what the monitoring components must scrape for these rules to work):
- node_exporter on every host/node;
- kube-state-metrics (Kubernetes) or cAdvisor with its default `--store_container_labels` (Docker) for restarts.
"""

from __future__ import annotations

import math

from .models import AlertFixture, AlertingThresholds, AlertRule, ExpectedAlert, Series
from .promql import above, any_of, num, pct, rule

def node_rules(t: AlertingThresholds) -> list[AlertRule]:
    # Pseudo and container-layer filesystems fill and empty on their own; only real disks matter here.
    fs_sel = 'fstype!~"tmpfs|overlay|squashfs|nsfs|ramfs"'
    # node_exporter's filesystem labels plus what its scrape adds (job, instance, service, version).
    fs = {"job": "node", "instance": "node-exporter:9100", "service": "node-exporter", "version": "1.5.0",
          "device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
    size, reserved = 1000, 50  # blocks reserved for root: in `free`, not in `avail`

    def filesystem(used: int) -> list[Series]:
        return [
            Series(metric="node_filesystem_size_bytes", labels=fs, values=f"{size}x30"),
            Series(metric="node_filesystem_free_bytes", labels=fs, values=f"{size - used}x30"),
            Series(metric="node_filesystem_avail_bytes", labels=fs, values=f"{size - used - reserved}x30"),
        ]

    usable = size - reserved
    used = math.ceil(above(t.disk_usage_ratio) * usable)
    size_, free, avail = (f"node_filesystem_{m}_bytes{{{fs_sel}}}" for m in ("size", "free", "avail"))
    return [
        rule(
            t, name="NodeDiskAlmostFull", severity="warning", for_="15m",
            # Use% as df reports it: used / (used + available to users). Not 1 - avail/size, which also counts
            # the root reserve and space the filesystem never offers (a thin-provisioned host shows 80 % that way
            # while df says 46 %).
            expr=f"({size_} - {free}) / ({size_} - {free} + {avail}) > {num(t.disk_usage_ratio)}",
            summary="A filesystem is almost full.",
            description=(
                "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full "
                f"(threshold {pct(t.disk_usage_ratio)})."
            ),
            fixture=AlertFixture(
                eval_time="20m", firing=filesystem(used),
                expected=[ExpectedAlert(labels=fs, value=used / usable)],
                healthy=filesystem(math.floor(t.disk_usage_ratio / 2 * usable)),
            ),
        ),
    ]


def container_rules(t: AlertingThresholds, names: list[str]) -> list[AlertRule]:
    # The fixture restarts the last container named: a stack lists its database workloads (postgres-<db>) last,
    # whose container names differ from the database names the other rules use.
    name, n = names[-1], t.restarts_15m
    kube = {"namespace": "platform", "pod": f"{name}-7d9f8b6c5-x2x4z", "container": name}
    docker = {"name": f"platform-{name}-1", "container_label_app_kubernetes_io_name": name}
    # n + 1 restarts at minutes 11..11+n (n <= 6): the alert is true from minute 17 at the latest, so firing
    # (for: 5m) at eval_time 24m, whose 15-minute window still holds the samples before the first restart.
    restarted = " ".join(str(60 * (11 + i)) for i in range(n + 1))

    def series(kube_values: str, docker_values: str) -> list[Series]:
        return [
            Series(metric="kube_pod_container_status_restarts_total", labels={**kube, "job": "kube-state-metrics"}, values=kube_values),
            Series(metric="container_start_time_seconds", labels={**docker, "id": f"/docker/{name}"}, values=docker_values),
        ]

    return [
        rule(
            t, name="ContainerRestartingOften", severity="warning", for_="5m",
            # Kubernetes: kube-state-metrics' restart counter. Docker: cAdvisor has no restart counter, but a
            # restarted container keeps its ID and gets a new start time. Our workloads carry the
            # app.kubernetes.io/name label (docs/conventions.md), which cAdvisor exports as container_label_*;
            # kubelet's cAdvisor does not, so the Docker half never double-counts on Kubernetes.
            expr=(
                f'max by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total{{container=~"{any_of(names)}"}}[15m])) > {n}'
                ' or label_replace(max by (name, container_label_app_kubernetes_io_name) (changes(container_start_time_seconds'
                f'{{container_label_app_kubernetes_io_name=~"{any_of(names)}"}}[15m])), "container", "$1", "container_label_app_kubernetes_io_name", "(.+)") > {n}'
            ),
            summary="A container keeps restarting.",
            description='Container {{ $labels.container }} restarted {{ $value | printf "%.0f" }} times in the last 15 minutes.',
            fixture=AlertFixture(
                eval_time="24m", firing=series(f"0x10 {n + 1}x20", f"0x10 {restarted} {60 * (11 + n)}x20"),
                expected=[
                    ExpectedAlert(labels=kube, value=n + 1),
                    ExpectedAlert(labels={**docker, "container": name}, value=n + 1),
                ],
                healthy=series("2x30", "0x30"),
            ),
        ),
    ]


def general_rules(t: AlertingThresholds) -> list[AlertRule]:
    return [
        rule(
            # kube-prometheus gives Watchdog severity "none"; our severities are critical/warning/info
            # (the shared style guide, habit 10), so it is "info". Alertmanager routes it by alertname before any severity route.
            # Ref: https://github.com/prometheus-operator/kube-prometheus/blob/main/manifests/kubePrometheus-prometheusRule.yaml
            t, name="Watchdog", severity="info", for_="1m",
            expr="vector(1)",
            summary="An alert that is always firing, to prove the alerting pipeline works.",
            description=(
                "This alert is always firing. If the heartbeat receiver stops getting it, Prometheus, Alertmanager "
                "or the path between them is broken."
            ),
            fixture=AlertFixture(eval_time="5m", firing=[], expected=[ExpectedAlert()], healthy=None),
        ),
    ]
