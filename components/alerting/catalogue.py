"""The alert catalogue: one function per component, each returning its rules with their fixtures.

Metric contract (what the monitoring components must scrape for these rules to work):
- every service with a port is scraped with `job="<service>"`; the scrape config (Docker) or PodMonitor relabeling
  (Kubernetes) adds `service` (and `version`, the deployed version) to every series, so `up` carries them too;
  services export `http_requests_total{code, version}` and `http_request_duration_seconds_bucket{le, version}`
  (devenv/images/shop-app/handler.sh); a service without a port (the worker) is not scraped, so no `up` watches it;
- blackbox_exporter probes each public HTTPS endpoint (`probe_ssl_earliest_cert_expiry`): it sees the certificate
  users see, whether the edge proxy's ACME or cert-manager issued it, so it works on Docker and Kubernetes;
- the backup job publishes `platform_backup_last_success_timestamp_seconds{database}`,
  `platform_backup_last_run_status{database}` (1 ok, 0 failed) and `platform_backup_space_short{database}` (1: the
  run refused, the backup volume is short of space), served by the backup-metrics exporter;
- node_exporter on every host/node; postgres_exporter per database, with `database="<name>"` added by the scrape config;
- the certificate and database alerts also fire when their exporter's series are missing (`absent()`, `unless`),
  so a missing exporter alerts instead of silencing them;
- kube-state-metrics (Kubernetes) or cAdvisor with its default `--store_container_labels` (Docker) for restarts.
"""

from __future__ import annotations

import math
import re
from typing import Mapping

from .models import (
    AlertFixture,
    AlertingThresholds,
    AlertRule,
    ExpectedAlert,
    FiringCase,
    Series,
    duration_seconds,
    runbook_url,
)

# The version the fixtures' targets run (any version string: the rules never match on it).
FIXTURE_VERSION = "1.4.2"

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")


def _any_of(names: list[str]) -> str:
    """A PromQL regex alternation; names are checked so none can smuggle in regex syntax."""
    for name in names:
        if not _NAME_RE.match(name):
            raise ValueError(f"service and database names must be lowercase DNS-style labels, got {name!r}")
    return "|".join(names)


def _num(value: float) -> str:
    """A number as PromQL and promtool read it, without float noise for whole numbers."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def _above(ratio: float) -> float:
    """A ratio clearly over the threshold: midway to 100 %."""
    return (ratio + 1) / 2


def _minutes(duration: str) -> int:
    return math.ceil(duration_seconds(duration) / 60)


def _past(duration: str, slack_minutes: int = 3) -> str:
    """A promtool eval_time safely past a `for:` duration (fixtures sample once a minute)."""
    return f"{_minutes(duration) + slack_minutes}m"


def _span(duration: str, value: str) -> str:
    """A constant series lasting past _past(duration)."""
    return f"{value}x{_minutes(duration) + 10}"


def _rule(t: AlertingThresholds, **fields) -> AlertRule:
    return AlertRule(runbook=runbook_url(t.runbook_base_url, fields["name"]), **fields)


# The `instance` of ServiceDown's absent() branch: no target is left whose address it could name.
NO_TARGET = "none (no target left to scrape)"
_LABEL_VALUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$")


def _vanished(job: str, version: str) -> str:
    """`absent(up{job=...})` with the labels a scraped target would carry. On Kubernetes a Deployment scaled
    to 0 (or all its pods gone) leaves its PodMonitor without targets, so `up{job=...}` disappears instead of
    turning 0; absent() keeps only the selector's `job`, so service, version and instance are added here."""
    if not _LABEL_VALUE_RE.match(version):
        raise ValueError(f"a service's version must be a plain tag or digest for the rule's label, got {version!r}")
    expr = f'absent(up{{job="{job}"}})'
    for label, value in (("service", job), ("version", version), ("instance", NO_TARGET)):
        expr = f'label_replace({expr}, "{label}", "{value}", "", "")'
    return expr


def service_rules(t: AlertingThresholds, services: Mapping[str, str]) -> list[AlertRule]:
    """`services`: each scraped service (job = service name) and the version deployed there."""
    names = list(services)
    svc, sel = names[0], f'service=~"{_any_of(names)}"'

    def scraped(name: str) -> dict[str, str]:
        # What a scrape of the service yields: job/instance from Prometheus, service/version from the target labels.
        return {"job": name, "instance": f"{name}:8080", "service": name, "version": services[name], "track": "stable"}

    target = scraped(svc)
    # The other services answer, so only `svc` fires (their absent() branches stay quiet).
    others_up = [Series(metric="up", labels=scraped(name), values=_span(t.service_down_for, "1")) for name in names[1:]]
    # The app's own `version` label, renamed by the scrape (the target's deployed version wins).
    exported = {**target, "exported_version": target["version"]}

    def traffic(ratio: float) -> list[Series]:
        return [
            Series(metric="http_requests_total", labels={**exported, "code": "500"}, values=f"0+{_num(100 * ratio)}x30"),
            Series(metric="http_requests_total", labels={**exported, "code": "200"}, values=f"0+{_num(100 * (1 - ratio))}x30"),
        ]

    def latency(le_with_all: float) -> list[Series]:
        # 10 requests a minute, all of them at or below `le_with_all`, none at or below the bucket before it.
        edges = [t.p95_latency_seconds / 2, t.p95_latency_seconds, 2 * t.p95_latency_seconds]
        buckets = [(_num(le), "0+10x30" if le >= le_with_all else "0x30") for le in edges] + [("+Inf", "0+10x30")]
        return [Series(metric="http_request_duration_seconds_bucket", labels={**exported, "le": le}, values=v) for le, v in buckets]

    fire_ratio = _above(t.error_rate)
    versioned = {"service": svc, "version": services[svc]}
    return [
        _rule(
            t, name="ServiceDown", severity="critical", for_=t.service_down_for,
            # A failing scrape (up == 0), or no target at all (one absent() per service: absent() of the regex
            # would stay quiet while any one service is scraped).
            expr=f'up{{job=~"{_any_of(names)}"}} == 0 or ' + " or ".join(_vanished(name, services[name]) for name in names),
            summary="A service cannot be scraped.",
            description=(
                "Prometheus has failed to scrape {{ $labels.service }} {{ $labels.version }} at {{ $labels.instance }} "
                f"for more than {t.service_down_for}."
            ),
            fixture=AlertFixture(
                eval_time=_past(t.service_down_for),
                firing=[Series(metric="up", labels=target, values=_span(t.service_down_for, "0")), *others_up],
                expected=[ExpectedAlert(labels=target)],
                healthy=[Series(metric="up", labels=target, values=_span(t.service_down_for, "1")), *others_up],
                # The service's targets are gone (scaled to 0): absent() fires with the service's labels.
                more_firing=[FiringCase(firing=others_up, expected=[ExpectedAlert(labels={
                    "job": svc, "service": svc, "version": services[svc], "instance": NO_TARGET})])],
            ),
        ),
        _rule(
            t, name="ServiceHighErrorRate", severity="critical", for_="5m",
            expr=(
                f'sum by (service, version) (rate(http_requests_total{{{sel}, code=~"5.."}}[5m]))'
                f" / sum by (service, version) (rate(http_requests_total{{{sel}}}[5m])) > {_num(t.error_rate)}"
            ),
            summary="A service answers too many requests with a server error.",
            description=(
                "{{ $labels.service }} {{ $labels.version }} answered {{ $value | humanizePercentage }} of requests with a 5xx status "
                f"over the last 5 minutes (threshold {_pct(t.error_rate)})."
            ),
            fixture=AlertFixture(
                eval_time="10m", firing=traffic(fire_ratio),
                expected=[ExpectedAlert(labels=versioned, value=fire_ratio)], healthy=traffic(t.error_rate / 2),
            ),
        ),
        _rule(
            t, name="ServiceHighLatency", severity="warning", for_="10m",
            expr=(
                "histogram_quantile(0.95, sum by (le, service, version) "
                f"(rate(http_request_duration_seconds_bucket{{{sel}}}[5m]))) > {_num(t.p95_latency_seconds)}"
            ),
            summary="A service answers slowly.",
            description=(
                "The 95th percentile latency of {{ $labels.service }} {{ $labels.version }} is {{ $value | humanizeDuration }} "
                f"over the last 5 minutes (threshold {_num(t.p95_latency_seconds)}s)."
            ),
            fixture=AlertFixture(
                # All requests in (T, 2T]: histogram_quantile interpolates p95 to T + 0.95 T.
                eval_time="15m", firing=latency(2 * t.p95_latency_seconds),
                expected=[ExpectedAlert(labels=versioned, value=1.95 * t.p95_latency_seconds)],
                healthy=latency(t.p95_latency_seconds / 2),
            ),
        ),
    ]


def certificate_rules(t: AlertingThresholds) -> list[AlertRule]:
    # blackbox_exporter's probe_ssl_earliest_cert_expiry rather than cert-manager's metric: it also covers the
    # Docker edge proxy's ACME certificates. Ref: https://github.com/prometheus/blackbox_exporter
    left = "probe_ssl_earliest_cert_expiry - time()"
    # A probe as the blackbox scrape config yields it: the public URL as instance, the probed service's labels.
    probe = {"job": "blackbox", "instance": "https://shop.example.test/api/healthz", "service": "api",
             "version": FIXTURE_VERSION}
    eval_at = _past(t.certificate_for, slack_minutes=5)  # promtool evaluates past the rules' `for:`
    eval_seconds = _minutes(eval_at) * 60
    NO_PROBE = "any public endpoint (no blackbox probe is scraped)"  # noqa: N806 - the absent() branch's instance

    def expiring_in(days: float) -> list[Series]:
        # Constant expiry timestamp chosen so that exactly `days` remain at eval_time (promtool starts at t=0).
        return [Series(metric="probe_ssl_earliest_cert_expiry", labels=probe, values=f"{_num(eval_seconds + days * 86400)}x{_minutes(eval_at) + 10}")]

    description = "The certificate served at {{ $labels.instance }} expires in {{ $value | humanizeDuration }}."
    warn_days = (t.cert_warning_days + t.cert_critical_days) / 2
    probed = [Series(metric="up", labels=probe, values=f"1x{_minutes(eval_at) + 10}")]
    return [
        _rule(
            t, name="CertificateExpiringSoon", severity="warning", for_=t.certificate_for,
            # Excludes the critical range so one certificate raises one alert at a time.
            expr=f"{left} < {t.cert_warning_days} * 86400 and {left} >= {t.cert_critical_days} * 86400",
            summary=f"A served TLS certificate expires within {t.cert_warning_days} days.",
            description=description,
            fixture=AlertFixture(
                eval_time=eval_at, firing=expiring_in(warn_days),
                expected=[ExpectedAlert(labels=probe, value=warn_days * 86400)], healthy=expiring_in(2 * t.cert_warning_days),
            ),
        ),
        _rule(
            t, name="CertificateExpiryImminent", severity="critical", for_=t.certificate_for,
            expr=f"{left} < {t.cert_critical_days} * 86400",
            summary=f"A served TLS certificate expires within {t.cert_critical_days} days.",
            description=description,
            fixture=AlertFixture(
                eval_time=eval_at, firing=expiring_in(t.cert_critical_days / 2),
                expected=[ExpectedAlert(labels=probe, value=t.cert_critical_days / 2 * 86400)],
                healthy=expiring_in(warn_days),  # still in the warning range: the critical alert stays quiet
            ),
        ),
        _rule(
            # The guard of the two above: a probe without a certificate (TLS failed, the endpoint is gone) or no
            # blackbox scrape at all would otherwise leave both silent while the certificate runs out.
            t, name="CertificateExpiryUnknown", severity="warning", for_=t.certificate_for,
            expr=(
                'up{job="blackbox"} unless on (instance) probe_ssl_earliest_cert_expiry{job="blackbox"}'
                f' or label_replace(absent(up{{job="blackbox"}}), "instance", "{NO_PROBE}", "", "")'
            ),
            summary="No certificate expiry is known for a public endpoint.",
            description=(
                "The {{ $labels.job }} probes report no certificate expiry for {{ $labels.instance }}: the probe "
                "cannot complete a TLS handshake there, or no probe runs at all."
            ),
            fixture=AlertFixture(
                eval_time=eval_at, firing=probed,
                expected=[ExpectedAlert(labels=probe, value=1)], healthy=[*probed, *expiring_in(2 * t.cert_warning_days)],
                # No blackbox scrape at all: absent() fires with only the selector's label.
                more_firing=[FiringCase(firing=[], expected=[ExpectedAlert(labels={"job": "blackbox", "instance": NO_PROBE}, value=1)])],
            ),
        ),
    ]


def backup_rules(t: AlertingThresholds, databases: list[str]) -> list[AlertRule]:
    db, sel = databases[0], f'database=~"{_any_of(databases)}"'
    max_age, eval_minutes = t.backup_max_age_hours * 3600, _minutes(t.backup_for) + 5
    eval_seconds, samples = eval_minutes * 60, eval_minutes + 10
    # The backup job writes `database`; the backup-metrics scrape adds job/instance and the database's service/version.
    scraped = {"database": db, "job": f"backup-{db}", "instance": f"backup-metrics-{db}:9102",
               "service": f"postgres-{db}", "version": "15.18.0"}

    def last_success(age_seconds: float) -> list[Series]:
        return [Series(metric="platform_backup_last_success_timestamp_seconds", labels=scraped, values=f"{_num(eval_seconds - age_seconds)}x{samples}")]

    def last_run(status: int) -> list[Series]:
        return [Series(metric="platform_backup_last_run_status", labels=scraped, values=f"{status}x{samples}")]

    def space_short(short: int) -> list[Series]:
        return [Series(metric="platform_backup_space_short", labels=scraped, values=f"{short}x{samples}")]

    age = f"time() - platform_backup_last_success_timestamp_seconds{{{sel}}}"

    return [
        _rule(
            t, name="BackupStale", severity="critical", for_=t.backup_for,
            # Or at once when the job refused for lack of room on the backup volume: no backup can get
            # fresher until someone makes room, and the job never deletes good backups to do so.
            expr=f"{age} > {_num(t.backup_max_age_hours)} * 3600 or ({age}) and on(database) platform_backup_space_short{{{sel}}} == 1",
            summary=f"A database has no successful backup from the last {_num(t.backup_max_age_hours)} hours, "
                    "or its backup volume has no room for the next one.",
            description="The last successful backup of {{ $labels.database }} finished {{ $value | humanizeDuration }} ago.",
            fixture=AlertFixture(
                eval_time=f"{eval_minutes}m", firing=last_success(2 * max_age),
                expected=[ExpectedAlert(labels=scraped, value=2 * max_age)],
                healthy=[*last_success(max_age / 2), *space_short(0)],
                more_firing=[FiringCase(firing=[*last_success(max_age / 2), *space_short(1)],
                                        expected=[ExpectedAlert(labels=scraped, value=max_age / 2)])],
            ),
        ),
        _rule(
            t, name="BackupFailed", severity="warning", for_=t.backup_for,
            expr=f"platform_backup_last_run_status{{{sel}}} == 0",
            summary="The last backup run of a database failed.",
            description="The last backup run of {{ $labels.database }} failed; the previous good backup is getting older.",
            fixture=AlertFixture(
                eval_time=f"{eval_minutes}m", firing=last_run(0), expected=[ExpectedAlert(labels=scraped)], healthy=last_run(1),
            ),
        ),
    ]


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
    used = math.ceil(_above(t.disk_usage_ratio) * usable)
    size_, free, avail = (f"node_filesystem_{m}_bytes{{{fs_sel}}}" for m in ("size", "free", "avail"))
    return [
        _rule(
            t, name="NodeDiskAlmostFull", severity="warning", for_="15m",
            # Use% as df reports it: used / (used + available to users). Not 1 - avail/size, which also counts
            # the root reserve and space the filesystem never offers (a thin-provisioned host shows 80 % that way
            # while df says 46 %).
            expr=f"({size_} - {free}) / ({size_} - {free} + {avail}) > {_num(t.disk_usage_ratio)}",
            summary="A filesystem is almost full.",
            description=(
                "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} is {{ $value | humanizePercentage }} full "
                f"(threshold {_pct(t.disk_usage_ratio)})."
            ),
            fixture=AlertFixture(
                eval_time="20m", firing=filesystem(used),
                expected=[ExpectedAlert(labels=fs, value=used / usable)],
                healthy=filesystem(math.floor(t.disk_usage_ratio / 2 * usable)),
            ),
        ),
    ]


def database_rules(t: AlertingThresholds, databases: list[str]) -> list[AlertRule]:
    db, sel = databases[0], f'database=~"{_any_of(databases)}"'
    # postgres_exporter's series plus what its scrape adds: `database`, and the database's service and version.
    def scraped(name: str) -> dict[str, str]:
        return {"job": f"postgres-{name}", "instance": f"postgres-exporter-{name}:9187", "database": name,
                "service": f"postgres-{name}", "version": "15.18.0"}

    exporter = scraped(db)

    def pg_up(first: int | None) -> list[Series]:
        """pg_up of every database: the first at `first` (None: not reported), the others up."""
        return [Series(metric="pg_up", labels=scraped(name), values=_span(t.service_down_for, str(1 if i else first)))
                for i, name in enumerate(databases) if i or first is not None]

    max_connections = 100
    # One absent() per database: absent() of a regex selector would stay quiet while any one database reports.
    missing = " or ".join(f'absent(pg_up{{database="{name}"}})' for name in databases)

    # postgres_exporter 0.11 adds `server` (the host:port it connects to) to its query metrics, not to pg_up.
    server = {**exporter, "server": f"postgres-{db}:5432"}

    def connections(used: int) -> list[Series]:
        active = used // 2
        return [
            Series(metric="pg_stat_activity_count", labels={**server, "datname": "app", "state": "active"}, values=f"{active}x30"),
            Series(metric="pg_stat_activity_count", labels={**server, "datname": "app", "state": "idle"}, values=f"{used - active}x30"),
            Series(metric="pg_stat_activity_count", labels={**server, "datname": "postgres", "state": "disabled"}, values="0x30"),
            Series(metric="pg_settings_max_connections", labels=server, values=f"{max_connections}x30"),
        ]

    used = math.ceil(_above(t.db_connections_ratio) * max_connections)
    by = "database, service, version"
    return [
        _rule(
            t, name="DatabaseDown", severity="critical", for_=t.service_down_for,
            # absent(): with no exporter reporting on the database, this (and DatabaseConnectionsHigh) would stay silent.
            expr=f"pg_up{{{sel}}} == 0 or {missing}",
            summary="postgres_exporter cannot reach a database, or nothing reports on it.",
            description=(
                "postgres_exporter has been unable to connect to {{ $labels.database }}, or no exporter has reported "
                f"on it, for more than {t.service_down_for}."
            ),
            fixture=AlertFixture(
                eval_time=_past(t.service_down_for), firing=pg_up(0), expected=[ExpectedAlert(labels=exporter)], healthy=pg_up(1),
                # No exporter reports on the database: absent() fires with the database label alone.
                more_firing=[FiringCase(firing=pg_up(None), expected=[ExpectedAlert(labels={"database": db})])],
            ),
        ),
        _rule(
            t, name="DatabaseConnectionsHigh", severity="warning", for_="10m",
            expr=(
                f"sum by ({by}) (pg_stat_activity_count{{{sel}}})"
                f" / max by ({by}) (pg_settings_max_connections{{{sel}}}) > {_num(t.db_connections_ratio)}"
            ),
            summary="A database is running out of connections.",
            description=(
                "{{ $labels.database }} uses {{ $value | humanizePercentage }} of max_connections "
                f"(threshold {_pct(t.db_connections_ratio)})."
            ),
            fixture=AlertFixture(
                eval_time="15m", firing=connections(used),
                expected=[ExpectedAlert(labels={"database": db, "service": exporter["service"], "version": exporter["version"]},
                                        value=used / max_connections)],
                healthy=connections(math.floor(t.db_connections_ratio / 2 * max_connections)),
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
        _rule(
            t, name="ContainerRestartingOften", severity="warning", for_="5m",
            # Kubernetes: kube-state-metrics' restart counter. Docker: cAdvisor has no restart counter, but a
            # restarted container keeps its ID and gets a new start time. Our workloads carry the
            # app.kubernetes.io/name label (docs/conventions.md), which cAdvisor exports as container_label_*;
            # kubelet's cAdvisor does not, so the Docker half never double-counts on Kubernetes.
            expr=(
                f'max by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total{{container=~"{_any_of(names)}"}}[15m])) > {n}'
                ' or label_replace(max by (name, container_label_app_kubernetes_io_name) (changes(container_start_time_seconds'
                f'{{container_label_app_kubernetes_io_name=~"{_any_of(names)}"}}[15m])), "container", "$1", "container_label_app_kubernetes_io_name", "(.+)") > {n}'
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
        _rule(
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
