"""Canary analysis from a running Prometheus (deployctl/analysis.py), the same way on both targets:
`deployctl rollout --step` asks the stack's Prometheus for the canary's success and timeout rates
(the service's own /metrics, labelled service and track by the scrape), beside its direct probes of
the health path through the edge; the step goes on only if both pass."""

from __future__ import annotations

from typing import Callable

from cluster_alerting import wait_until
from docker_host import Traffic
from engine import Project

# The 1.4.2 build whose health checks pass and whose every other request answers 500
# (devenv/images/build.sh): the probes cannot tell it from a good one, its metrics can.
FAILING_CANARY = "1.4.3-failing"
HEALTHY_CANARY = "1.5.0"
WANTED_REQUESTS = 30  # the analysis needs 20 (rollout.prometheus.minRequests' default)

Query = Callable[[str], list]  # PromQL -> /api/v1/query's result list


def canary_at_ten_percent(project: Project, stack: str, prometheus_url: Callable[[], str], version: str) -> None:
    """The canary up at 10 %, and the analysis pointed at Prometheus where it answers after that
    update (`prometheus_url()`)."""
    project.set_config(stack, "services.api.canary.version", version)
    project.set_config(stack, "services.api.canary.weight", 10)
    project.pulumi("up", "--yes", "-s", stack, "--message", f"api canary {version} at 10%", timeout=900)
    # deployctl reads rollout settings from the stack's config; no resource depends on them.
    project.set_config(stack, "rollout.prometheus.url", prometheus_url())
    project.set_config(stack, "rollout.prometheus.window", "1m")


def canary_requests_seen(query: Query, codes: str = ".*") -> float:
    """The canary track's requests in the last minute (answered with `codes`), counted as the
    analysis' default query counts them: by service and track."""
    result = query(f'sum(increase(http_requests_total{{service="api", track="canary", code=~"{codes}"}}[1m]))')
    return float(result[0]["value"][1]) if result else 0.0


def rollout_step_under_traffic(project: Project, stack: str, url: str, host: str, query: Query):
    """A client sends 30 requests a second through the edge (about 3 reach the canary) until
    Prometheus has counted WANTED_REQUESTS canary requests, then `deployctl rollout --step` runs
    beside it. Returns deployctl's result and the traffic seen."""
    with Traffic(url, host) as traffic:
        wait_until(f"Prometheus counts {WANTED_REQUESTS} canary requests", 240,
                   lambda: canary_requests_seen(query) >= WANTED_REQUESTS, interval=5)
        return project.deployctl("rollout", stack, "api", "--step", check=False, timeout=900), traffic


def after_failures_left_the_window(query: Query) -> None:
    """An aborted canary's failures (an earlier test's) out of the analysis' 1-minute window."""
    wait_until("no failed canary request left in the analysis window", 180,
               lambda: canary_requests_seen(query, codes="[^2].*") == 0, interval=5)


def canary_weight(project: Project, stack: str) -> str:
    return project.pulumi("config", "get", "--path", "platform:services.api.canary.weight", "-s", stack).stdout.strip()


def failed_at(traffic: Traffic, version: str) -> list:
    """The requests the canary `version` answered with an error."""
    return [answer for _, answer in traffic.failures if getattr(answer, "version", None) == version]


def assert_failing_canary_aborted(project: Project, stack: str, stepped, traffic: Traffic) -> None:
    failed = failed_at(traffic, FAILING_CANARY)
    print(f"failing canary: {len(failed)} of {len(traffic.answers) + len(traffic.failures)} requests reached it "
          f"and failed; deployctl said:\n{stepped.output[-1500:]}")
    assert stepped.code != 0, stepped.output
    # Judged by Prometheus on the canary's own metrics (not a blind verdict: unreachable, no data).
    assert "analysis failed at 10% (prometheus):" in stepped.output and "aborted" in stepped.output, stepped.output
    assert canary_weight(project, stack) == "0"
    assert failed, "no request reached the failing canary: the analysis had nothing to judge"


def assert_healthy_canary_stepped(project: Project, stack: str, stepped, traffic: Traffic) -> None:
    assert stepped.code == 0, stepped.output
    assert "canary now receives 50% of traffic" in stepped.output, stepped.output
    assert canary_weight(project, stack) == "50"
    assert traffic.failures == [], traffic.failures[:5]


def without_canary(project: Project, stack: str) -> None:
    project.pulumi("config", "rm", "--path", "platform:services.api.canary", "-s", stack)
    project.pulumi("up", "--yes", "-s", stack, "--message", "no canary", timeout=900)
