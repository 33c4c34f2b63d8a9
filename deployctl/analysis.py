"""Canary analysis from Prometheus: the canary's success and timeout rates over a window, as the
service's own metrics report them (devenv/images/shop-app serves them; the scrape labels every
series with `service`, `version` and `track`, docs/alerting.md).

`deployctl rollout` asks this between steps when the stack configures `rollout.prometheus`; the
direct probes through the edge (deployctl/rollout.py analyse) still run when a probe URL is given, and the
step goes on only if both pass. The queries and thresholds are configuration
(components/config/release.PrometheusAnalysis); placeholders {service}, {version}, {window} and
{timeout_le} are filled in before the query is sent to /api/v1/query.
Ref: https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from components.config.release import PrometheusAnalysis, RolloutSpec


class AnalysisError(RuntimeError):
    """Prometheus could not be asked, or answered something that is not a single number."""


@dataclass(frozen=True)
class CanaryVerdict:
    """The same shape as deployctl/rollout.py's Analysis (requests, successes, timeouts and their rates), so
    the rollout records either the same way."""

    requests: int
    successes: int
    timeouts: int
    success_rate: float
    timeout_rate: float
    source: str
    reason: str = ""

    def passes(self, min_success: float, max_timeouts: float) -> bool:
        return (not self.reason and self.success_rate >= min_success and self.timeout_rate <= max_timeouts)


def query(base_url: str, promql: str, timeout: float = 10.0) -> float | None:
    """One instant query; the value of its single sample, None when it returns no sample (no data)."""
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            answer = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise AnalysisError(f"Prometheus at {base_url} did not answer {promql!r}: {error}") from None
    if answer.get("status") != "success":
        raise AnalysisError(f"Prometheus refused {promql!r}: {answer.get('error', answer)}")
    result = answer["data"]["result"]
    if answer["data"].get("resultType") == "scalar":
        result = [{"value": result}]
    if not result:
        return None
    if len(result) > 1:
        raise AnalysisError(f"{promql!r} returned {len(result)} series; the query must aggregate to one")
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def render(template: str, settings: PrometheusAnalysis, service: str, version: str) -> str:
    return (template.replace("{service}", service).replace("{version}", version)
            .replace("{window}", settings.window).replace("{timeout_le}", settings.timeout_bucket))


def analyse_prometheus(settings: PrometheusAnalysis, service: str, version: str) -> CanaryVerdict:
    """The canary's request count, success rate and timeout rate over the window."""
    def ask(template: str) -> float | None:
        return query(settings.url, render(template, settings, service, version), settings.query_timeout_seconds)

    requests = ask(settings.requests_query) or 0.0
    success_rate, timeout_rate = ask(settings.success_query), ask(settings.timeout_query)
    reason = ""
    if requests < settings.min_requests:
        reason = (f"only {requests:.0f} canary requests in {settings.window} "
                  f"(needs >= {settings.min_requests}): not enough evidence to go on")
    elif success_rate is None or timeout_rate is None:
        reason = "Prometheus has no success or timeout rate for the canary"
    total = int(round(requests))
    success_rate = 0.0 if success_rate is None else success_rate
    timeout_rate = 1.0 if timeout_rate is None else timeout_rate
    return CanaryVerdict(requests=total, successes=int(round(total * success_rate)),
                         timeouts=int(round(total * timeout_rate)), success_rate=success_rate,
                         timeout_rate=timeout_rate, source="prometheus", reason=reason)


def analyse_canary(rollout: RolloutSpec, service: str, version: str, probe=None):
    """Prometheus' verdict when configured, the direct probes' (`probe()`, a rollout.py Analysis)
    when given; with both, the worse of the two decides."""
    verdicts = []
    if rollout.prometheus is not None:
        try:
            verdicts.append(analyse_prometheus(rollout.prometheus, service, version))
        except AnalysisError as error:
            verdicts.append(CanaryVerdict(0, 0, 0, 0.0, 1.0, source="prometheus", reason=str(error)))
    if probe is not None:
        verdicts.append(probe())
    if not verdicts:
        return None
    failing = [v for v in verdicts if not v.passes(rollout.success_rate, rollout.timeout_rate)]
    return failing[0] if failing else verdicts[0]
