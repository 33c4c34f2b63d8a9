"""The canary rollout: analyse the canary (Prometheus, deployctl/analysis.py, and/or direct probes
through the edge), then raise its weight one step, abort it or promote it."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from deployctl.analysis import analyse_canary
from deployctl.changing import Before, changing, recorded_up
from deployctl.records import Audit, ReleaseRecord
from deployctl.recording import prepare, recorded
from deployctl.stack_settings import platform_config, platform_model, policy_config_for
from deployctl.workspace import DeployError, Engine


@dataclass(frozen=True)
class Analysis:
    requests: int
    successes: int
    timeouts: int

    @property
    def success_rate(self) -> float:
        return self.successes / self.requests if self.requests else 0.0

    @property
    def timeout_rate(self) -> float:
        return self.timeouts / self.requests if self.requests else 1.0

    def passes(self, min_success: float, max_timeouts: float) -> bool:
        return self.success_rate >= min_success and self.timeout_rate <= max_timeouts


def analyse(url: str, host: str | None, requests: int, timeout: float) -> Analysis:
    """Send `requests` GETs through the edge; count 2xx answers and timeouts."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    successes = timeouts = 0
    for _ in range(requests):
        request = urllib.request.Request(url, headers={"Host": host} if host else {})
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                successes += 200 <= response.status < 300
        except TimeoutError:
            timeouts += 1
        except urllib.error.URLError as error:
            timeouts += isinstance(error.reason, TimeoutError)
        except OSError:
            pass
    return Analysis(requests=requests, successes=successes, timeouts=timeouts)


def next_weight(current: int, steps: list[int]) -> int:
    for step in steps:
        if step > current:
            return step
    raise DeployError(f"the canary already receives {current}% of traffic; promote it with --promote")


def canary_of(engine: Engine, stack: str, service: str) -> dict[str, Any]:
    services = platform_config(engine, stack).get("services") or {}
    if service not in services:
        raise DeployError(f"{stack}: no service '{service}' (services: {', '.join(sorted(services))})")
    canary = services[service].get("canary")
    if not canary:
        raise DeployError(f"{stack}: service '{service}' has no canary; set services.{service}.canary.version "
                          "with `pulumi config set --path` first")
    return {"weight": 0, **canary, "spec": services[service]}


def rollout_step(engine: Engine, stack: str, service: str, probe_url: str | None, host: str | None,
                 audit: Audit | None = None) -> tuple[int, Analysis | None]:
    with changing(engine, stack, f"rollout {service} step") as before, \
            recorded(engine, stack, "rollout-step", audit, before.releases) as record:
        record.details["service"] = service
        return _rollout_step(engine, stack, service, probe_url, host, before, record, audit)


def _rollout_step(engine: Engine, stack: str, service: str, probe_url: str | None, host: str | None,
                  before: Before, record: ReleaseRecord, audit: Audit | None) -> tuple[int, Analysis | None]:
    canary = canary_of(engine, stack, service)
    settings = platform_model(engine, stack).rollout
    weight = int(canary.get("weight", 0))
    analysis = None
    if weight > 0 and (probe_url or settings.prometheus):
        with record.phase("analysis"):  # Prometheus (deployctl/analysis.py) and/or the direct probes
            analysis = analyse_canary(settings, service, canary["version"], probe=(lambda: analyse(
                probe_url, host, settings.requests, settings.timeout_seconds)) if probe_url else None)
        passed = analysis.passes(settings.success_rate, settings.timeout_rate)
        record.analysis = {"source": getattr(analysis, "source", "probe"), "url": probe_url, "weight": weight,
                           "requests": analysis.requests,
                           "successes": analysis.successes, "timeouts": analysis.timeouts,
                           "success_rate": round(analysis.success_rate, 4),
                           "timeout_rate": round(analysis.timeout_rate, 4),
                           "min_success_rate": settings.success_rate, "max_timeout_rate": settings.timeout_rate,
                           **({"reason": analysis.reason} if getattr(analysis, "reason", "") else {}),
                           "passed": passed}
        if not passed:
            rollout_abort(engine, stack, service, audit=_linked(audit))
            # Which verdict failed, and why when it is not the rates (Prometheus unreachable, too
            # few requests): an operator must tell a bad canary from a blind analysis.
            source = getattr(analysis, "source", "probe")
            why = f" ({analysis.reason})" if getattr(analysis, "reason", "") else ""
            raise DeployError(
                f"analysis failed at {weight}% ({source}{why}): success rate {analysis.success_rate:.1%} "
                f"(needs >= {settings.success_rate:.0%}), timeout rate {analysis.timeout_rate:.1%} "
                f"(needs <= {settings.timeout_rate:.0%}); aborted: all traffic is back on stable")
    new_weight = next_weight(weight, settings.steps)
    record.details.update(canary=canary["version"], weight_before=weight, weight_after=new_weight)
    engine.set_path(stack, f"services.{service}.canary.weight", new_weight)
    prepare(engine, stack, record, audit)
    recorded_up(engine, stack, before, record, f"rollout {service} canary {canary['version']} to {new_weight}%",
                policy_config_for(engine, stack))
    return new_weight, analysis


def _linked(audit: Audit | None) -> Audit | None:
    """The same actor and correlation id for an operation another one starts (an analysis's abort)."""
    if audit is None:
        return None
    return Audit(actor=audit.actor, reason=audit.reason or "canary analysis failed",
                 correlation_id=audit.correlation_id, store=audit.store, notify=audit.notify, preflight=False)


def rollout_abort(engine: Engine, stack: str, service: str, audit: Audit | None = None) -> None:
    with changing(engine, stack, f"rollout {service} abort") as before, \
            recorded(engine, stack, "rollout-abort", audit, before.releases) as record:
        canary = canary_of(engine, stack, service)
        record.details.update(service=service, canary=canary["version"], weight_before=canary.get("weight", 0),
                              weight_after=0)
        engine.set_path(stack, f"services.{service}.canary.weight", 0)
        prepare(engine, stack, record, audit, check=False)  # taking traffic off a canary is never refused
        recorded_up(engine, stack, before, record, f"rollout {service} abort: canary {canary['version']} to 0%",
                    policy_config_for(engine, stack))


def rollout_promote(engine: Engine, stack: str, service: str, audit: Audit | None = None) -> str:
    with changing(engine, stack, f"rollout {service} promote") as before, \
            recorded(engine, stack, "rollout-promote", audit, before.releases) as record:
        canary = canary_of(engine, stack, service)
        record.details.update(service=service, canary=canary["version"])
        engine.set_path(stack, f"services.{service}.version", canary["version"])
        engine.remove_path(stack, f"services.{service}.canary")
        prepare(engine, stack, record, audit)
        recorded_up(engine, stack, before, record, f"rollout {service} promote: {canary['version']} is stable",
                    policy_config_for(engine, stack))
        return canary["version"]
