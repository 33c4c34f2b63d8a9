"""How releases are checked, promoted, stepped and drilled: `platform:smokeTest`,
`platform:promotion`, `platform:rollout` and `platform:drills` (part of components/config/)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from components.config.model import HostName, HttpUrl, Model, StackName, Version


class SmokeTestSpec(Model):
    enabled: bool = True
    base_url: HttpUrl | None = Field(
        None, description="Edge URL as seen from where `pulumi up` runs; default https://127.0.0.1:<edge.httpsPort>.")
    host_header: HostName | None = Field(
        None, description="Host header to send, one of edge.hosts (the edge routes no other); default the first.")
    verify_tls: bool = Field(False, description="Verify the edge certificate (turn on where it is publicly trusted).")
    # At least three tries: a pod that just became Ready may still miss its first request.
    # Tries span the edge's health-check interval (5 s): a backend it marked down during a
    # rollout answers 503 until its next check.
    attempts: int = Field(8, ge=3, le=60)
    delay_seconds: float = Field(2, ge=0, le=60)
    timeout_seconds: float = Field(3, gt=0, le=30)
    settle_seconds: float = Field(
        60, ge=0, le=600, description="How long after the update answers that only say a route is not there yet "
        "(502, 503, 504, a refused or reset connection) are retried without costing an attempt: the edge and the "
        "node's service rules can take some seconds to name new pods. Any other failure counts at once.")
    check_version: bool = Field(True, description="The health endpoint must report the version deployed.")


# The canary's series: the scrape labels them service/track (the scrape targets, components/platform.py).
_CANARY = 'service="{service}", track="canary"'


class PrometheusAnalysis(Model):
    """Canary analysis from Prometheus (deployctl/analysis.py): queries with {service}, {version},
    {window} and {timeout_le} placeholders, each returning one number."""

    url: HttpUrl = Field(description="Prometheus as deployctl reaches it, e.g. http://127.0.0.1:9090.")
    window: str = Field("2m", pattern=r"^\d+[smh]$", description="Range the rates are taken over.")
    timeout_bucket: str = Field(
        "2.5", pattern=r"^\d+(\.\d+)?$",
        description="Histogram bucket (le) a request slower than counts as timed out; one the service exports.")
    requests_query: str = Field(
        f'sum(increase(http_requests_total{{{_CANARY}}}[{{window}}]))', min_length=1,
        description="Requests the canary answered in the window.")
    success_query: str = Field(
        f'sum(rate(http_requests_total{{{_CANARY}, code=~"2.."}}[{{window}}]))'
        f' / sum(rate(http_requests_total{{{_CANARY}}}[{{window}}]))', min_length=1,
        description="Share of the canary's requests answered with 2xx.")
    timeout_query: str = Field(
        f'1 - sum(rate(http_request_duration_seconds_bucket{{{_CANARY}, le="{{timeout_le}}"}}[{{window}}]))'
        f' / sum(rate(http_request_duration_seconds_count{{{_CANARY}}}[{{window}}]))', min_length=1,
        description="Share of the canary's requests slower than timeoutBucket.")
    min_requests: int = Field(20, ge=1, description="Fewer canary requests than this in the window: no verdict, abort.")
    query_timeout_seconds: float = Field(10, gt=0, le=120)


class RolloutSpec(Model):
    """How `deployctl rollout` steps a canary and what its analysis must see between steps."""

    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default_factory=lambda: [10, 50, 100], min_length=1)
    success_rate: float = Field(0.95, ge=0, le=1, description="Share of 2xx answers needed to go on.")
    timeout_rate: float = Field(0.05, ge=0, le=1, description="Largest share of timed-out requests allowed.")
    requests: int = Field(50, ge=1, le=10000, description="Requests sent through the edge per analysis.")
    timeout_seconds: float = Field(3.0, gt=0, le=60)
    prometheus: PrometheusAnalysis | None = Field(
        None, description="Also judge the canary by its own metrics in Prometheus (same successRate/timeoutRate).")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if value != sorted(set(value)):
            raise ValueError("steps must increase strictly, e.g. [10, 50, 100]")
        return value


class DrillsSpec(Model):
    """Recovery targets the drills (`deployctl drill rollback|restore`) are judged against."""

    rollback_seconds: int = Field(180, ge=1, description="RTO of a rollback to the last good release.")
    restore_seconds: int = Field(3600, ge=1, description="RTO of restoring the newest dump (RPO: backup.maxAgeHours).")


class VersionOverride(Model):
    version: Version
    reason: str = Field(min_length=10, description="Why an unverified version may go to this stack.")


class PromotionSpec(Model):
    staging_stack: StackName | None = Field(
        None, description="StackReference to staging, e.g. organization/platform/staging."
    )
    require_verified: bool = False
    overrides: dict[str, VersionOverride] = Field(default_factory=dict)
