"""Alert rules on what users reach: the services (scrape health, errors, latency) and the edge's
TLS certificates, each with its fixtures.

Metric contract (what the monitoring components must scrape for these rules to work):
- every service with a port is scraped with `job="<service>"`; the scrape config (Docker) or PodMonitor relabeling
  (Kubernetes) adds `service` (and `version`, the deployed version) to every series, so `up` carries them too;
  services export `http_requests_total{code, version}` and `http_request_duration_seconds_bucket{le, version}`
  (devenv/images/shop-app/handler.sh); a service without a port (the worker) is not scraped, so no `up` watches it;
- blackbox_exporter probes each public HTTPS endpoint (`probe_ssl_earliest_cert_expiry`): it sees the certificate
  users see, whether the edge proxy's ACME or cert-manager issued it, so it works on Docker and Kubernetes;
- the certificate alerts also fire when the probe's series are missing (`absent()`, `unless`), so a missing
  exporter alerts instead of silencing them.
"""

from __future__ import annotations

import re
from typing import Mapping

from .models import AlertFixture, AlertingThresholds, AlertRule, ExpectedAlert, FiringCase, Series
from .promql import FIXTURE_VERSION, above, any_of, minutes, num, past, pct, rule, span

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
    svc, sel = names[0], f'service=~"{any_of(names)}"'

    def scraped(name: str) -> dict[str, str]:
        # What a scrape of the service yields: job/instance from Prometheus, service/version from the target labels.
        return {"job": name, "instance": f"{name}:8080", "service": name, "version": services[name], "track": "stable"}

    target = scraped(svc)
    # The other services answer, so only `svc` fires (their absent() branches stay quiet).
    others_up = [Series(metric="up", labels=scraped(name), values=span(t.service_down_for, "1")) for name in names[1:]]
    # The app's own `version` label, renamed by the scrape (the target's deployed version wins).
    exported = {**target, "exported_version": target["version"]}

    def traffic(ratio: float) -> list[Series]:
        return [
            Series(metric="http_requests_total", labels={**exported, "code": "500"}, values=f"0+{num(100 * ratio)}x30"),
            Series(metric="http_requests_total", labels={**exported, "code": "200"}, values=f"0+{num(100 * (1 - ratio))}x30"),
        ]

    def latency(le_with_all: float) -> list[Series]:
        # 10 requests a minute, all of them at or below `le_with_all`, none at or below the bucket before it.
        edges = [t.p95_latency_seconds / 2, t.p95_latency_seconds, 2 * t.p95_latency_seconds]
        buckets = [(num(le), "0+10x30" if le >= le_with_all else "0x30") for le in edges] + [("+Inf", "0+10x30")]
        return [Series(metric="http_request_duration_seconds_bucket", labels={**exported, "le": le}, values=v) for le, v in buckets]

    fire_ratio = above(t.error_rate)
    versioned = {"service": svc, "version": services[svc]}
    return [
        rule(
            t, name="ServiceDown", severity="critical", for_=t.service_down_for,
            # A failing scrape (up == 0), or no target at all (one absent() per service: absent() of the regex
            # would stay quiet while any one service is scraped).
            expr=f'up{{job=~"{any_of(names)}"}} == 0 or ' + " or ".join(_vanished(name, services[name]) for name in names),
            summary="A service cannot be scraped.",
            description=(
                "Prometheus has failed to scrape {{ $labels.service }} {{ $labels.version }} at {{ $labels.instance }} "
                f"for more than {t.service_down_for}."
            ),
            fixture=AlertFixture(
                eval_time=past(t.service_down_for),
                firing=[Series(metric="up", labels=target, values=span(t.service_down_for, "0")), *others_up],
                expected=[ExpectedAlert(labels=target)],
                healthy=[Series(metric="up", labels=target, values=span(t.service_down_for, "1")), *others_up],
                # The service's targets are gone (scaled to 0): absent() fires with the service's labels.
                more_firing=[FiringCase(firing=others_up, expected=[ExpectedAlert(labels={
                    "job": svc, "service": svc, "version": services[svc], "instance": NO_TARGET})])],
            ),
        ),
        rule(
            t, name="ServiceHighErrorRate", severity="critical", for_="5m",
            expr=(
                f'sum by (service, version) (rate(http_requests_total{{{sel}, code=~"5.."}}[5m]))'
                f" / sum by (service, version) (rate(http_requests_total{{{sel}}}[5m])) > {num(t.error_rate)}"
            ),
            summary="A service answers too many requests with a server error.",
            description=(
                "{{ $labels.service }} {{ $labels.version }} answered {{ $value | humanizePercentage }} of requests with a 5xx status "
                f"over the last 5 minutes (threshold {pct(t.error_rate)})."
            ),
            fixture=AlertFixture(
                eval_time="10m", firing=traffic(fire_ratio),
                expected=[ExpectedAlert(labels=versioned, value=fire_ratio)], healthy=traffic(t.error_rate / 2),
            ),
        ),
        rule(
            t, name="ServiceHighLatency", severity="warning", for_="10m",
            expr=(
                "histogram_quantile(0.95, sum by (le, service, version) "
                f"(rate(http_request_duration_seconds_bucket{{{sel}}}[5m]))) > {num(t.p95_latency_seconds)}"
            ),
            summary="A service answers slowly.",
            description=(
                "The 95th percentile latency of {{ $labels.service }} {{ $labels.version }} is {{ $value | humanizeDuration }} "
                f"over the last 5 minutes (threshold {num(t.p95_latency_seconds)}s)."
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
    eval_at = past(t.certificate_for, slack_minutes=5)  # promtool evaluates past the rules' `for:`
    eval_seconds = minutes(eval_at) * 60
    NO_PROBE = "any public endpoint (no blackbox probe is scraped)"  # noqa: N806 - the absent() branch's instance

    def expiring_in(days: float) -> list[Series]:
        # Constant expiry timestamp chosen so that exactly `days` remain at eval_time (promtool starts at t=0).
        return [Series(metric="probe_ssl_earliest_cert_expiry", labels=probe, values=f"{num(eval_seconds + days * 86400)}x{minutes(eval_at) + 10}")]

    description = "The certificate served at {{ $labels.instance }} expires in {{ $value | humanizeDuration }}."
    warn_days = (t.cert_warning_days + t.cert_critical_days) / 2
    probed = [Series(metric="up", labels=probe, values=f"1x{minutes(eval_at) + 10}")]
    return [
        rule(
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
        rule(
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
        rule(
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
