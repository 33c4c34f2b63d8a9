"""The operations behind deployctl's commands: rollback, promote, deploy, rollout, drills."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from components.config import PlatformConfig
from components.stack_config import ConfigError, parse_platform_config
from components.migration_plan import Plan
from deployctl import migrations
from deployctl.analysis import analyse_canary
from deployctl.evidence import Evidence
from deployctl.history import HistoryError, Release, find, last_good, newest_good
from deployctl.lease import LeaseHeld
from deployctl.records import Audit, ReleaseRecord
from deployctl.recording import attach_evidence, prepare, preview_result, recorded, update_results
from deployctl.workspace import DeployError, Engine, UpdateNotStarted


@dataclass(frozen=True)
class Before:
    """The stack as an operation found it: its history and its stack file, byte for byte."""
    releases: list[Release]
    stack_file: bytes | None


@contextmanager
def changing(engine: Engine, stack: str, operation: str) -> Iterator[Before]:
    """The frame of every operation that changes a stack: deployctl's lease on it (a second
    operation is refused at once, naming the holder), the leftovers of an interrupted one
    recovered, and what the stack was before. An update that never started restores the stack
    file, so a refused operation changes nothing, configuration included."""
    try:
        with engine.leases.hold(stack, operation):
            engine.recover_interrupted(stack)
            path = engine.stack_file(stack)
            before = Before(releases=engine.releases(stack),
                            stack_file=path.read_bytes() if path.exists() else None)
            try:
                yield before
            except UpdateNotStarted:
                restore_stack_file(engine, stack, before)
                raise
    except LeaseHeld as error:
        raise UpdateNotStarted(str(error)) from None


def restore_stack_file(engine: Engine, stack: str, before: Before) -> None:
    if before.stack_file is not None and engine.stack_file(stack).read_bytes() != before.stack_file:
        engine.stack_file(stack).write_bytes(before.stack_file)
        engine.on_notice(f"{stack}: nothing ran, so Pulumi.{stack}.yaml is back as it was")


def up(engine: Engine, stack: str, before: Before, message: str, policy_config: Path | None) -> None:
    """`pulumi up`; a failure before any update was recorded is an UpdateNotStarted."""
    try:
        engine.up(stack, message=message, policy_config=policy_config)
    except UpdateNotStarted:
        raise
    except DeployError as failure:
        if len(engine.releases(stack)) == len(before.releases):
            raise UpdateNotStarted(f"{failure}\n(the update did not start: nothing changed)") from None
        raise


def rollback(engine: Engine, stack: str, *, to_version: int | None = None,
             audit: Audit | None = None, restore_data: bool = False) -> tuple[Release, Evidence]:
    """Re-apply the configuration of a succeeded update (the newest good one by default). Across
    an irreversible migration only with `restore_data` (deployctl/migrations.py)."""
    with changing(engine, stack, "rollback") as before, \
            recorded(engine, stack, "rollback", audit, before.releases) as record:
        return _rollback(engine, stack, before, record, audit, to_version, restore_data)


def _rollback(engine: Engine, stack: str, before: Before, record: ReleaseRecord, audit: Audit | None,
              to_version: int | None, restore_data: bool = False) -> tuple[Release, Evidence]:
    try:
        target = (find(before.releases, to_version, stack) if to_version is not None
                  else last_good(before.releases, stack))
    except HistoryError as error:
        raise UpdateNotStarted(str(error)) from None
    evidence = Evidence(kind="rollback", stack=stack, threshold_seconds=rollback_threshold(engine, stack))
    plans = schema_rollback(engine, stack, target, record, restore_data)
    apply_release_config(engine, stack, target)
    prepare(engine, stack, record, audit)
    restored = restore_for(engine, stack, plans, record) if restore_data else []
    record.rolled_back_to = target.number
    _up(engine, stack, before, record, f"rollback to {target.number}", policy_config_for(engine, stack))
    evidence.finish(to_version=target.number, versions=target.versions,
                    **({"migrations": migrations.describe(plans)} if plans else {}),
                    **({"restored": [item.to_record() for item in restored]} if restored else {}))
    attach_evidence(engine, record, evidence, audit)
    return target, evidence


def schema_rollback(engine: Engine, stack: str, target: Release, record: ReleaseRecord,
                    restore_data: bool) -> dict[str, Plan]:
    """What going back to `target` does to each migrated schema, decided before anything changes:
    an irreversible migration in the way refuses the rollback unless the data is to be restored."""
    chains = migrations.applied_chains(engine, stack)
    if not chains:
        return {}  # no migration ever ran here: nothing to decide
    try:
        wanted = parse_platform_config(release_values(target), stack)
    except ConfigError as error:
        raise UpdateNotStarted(f"version {target.number}'s configuration no longer loads: {error}") from None
    plans = migrations.rollback_plans(chains, wanted)
    if plans:
        record.details["migrations"] = migrations.describe(plans)
    refused = {service: decided for service, decided in plans.items() if decided.refused}
    if refused and not restore_data:
        raise UpdateNotStarted("; ".join(decided.refusal(service) for service, decided in refused.items())
                               + ". Nothing changed")
    return plans


def restore_for(engine: Engine, stack: str, plans: dict[str, Plan], record: ReleaseRecord) -> list:
    """--restore-data: each database behind an irreversible migration restored from the backup
    taken before it ran; the re-applied release is told so (migration.restored), then goes up."""
    config = platform_model(engine, stack)
    restored = []
    for service, decided in sorted(plans.items()):
        if not decided.refused:
            continue
        with record.phase("restore"):
            item = migrations.restore_before(config, stack, service, decided, engine.releases(stack), engine.on_notice)
        restored.append(item)
        record.details.setdefault("restored", []).append(item.to_record())
        engine.on_notice(f"{stack}: restored database '{item.migration.database}' from backup {item.report['backup']}; "
                         f"data written from {item.to_record()['rpo_window']['from']} to "
                         f"{item.to_record()['rpo_window']['to']} is lost (RPO {item.to_record()['rpo_seconds']:.0f}s)")
        if config.services.get(service) and config.services[service].migration:
            engine.set_path(stack, f"services.{service}.migration.restored", item.migration.id)
    return restored


def release_values(release: Release) -> dict[str, Any]:
    """A release's non-secret `platform:*` config as the models take it."""
    return {key.removeprefix("platform:"): entry.get("objectValue", entry.get("value"))
            for key, entry in release.plain_config().items() if key.startswith("platform:")}


def _up(engine: Engine, stack: str, before: Before, record: ReleaseRecord, message: str,
        policy_config: Path | None, phase: str = "update") -> None:
    """`up` with its duration, policy and smoke-test results in the record."""
    failure = None
    try:
        with record.phase(phase):
            up(engine, stack, before, message, policy_config)
    except DeployError as error:
        failure = str(error)
        raise
    finally:
        if not isinstance(failure, str) or "did not start" not in failure:
            update_results(engine, stack, record, failure)


# deployctl's own settings: who is told and what is checked before a change are today's, whatever
# release a rollback re-applies (rolling back must not silence the notification of the rollback).
OPERATOR_KEYS = ("platform:notifications", "platform:preflight")


def apply_release_config(engine: Engine, stack: str, release: Release) -> None:
    """Make the stack's non-secret config exactly that release's (secrets stay as they are, and so
    do deployctl's own settings, OPERATOR_KEYS)."""
    current = engine.config(stack)
    # History records project-level defaults (Pulumi.yaml `default: {}`) as values; writing those
    # into the stack file would only add noise, so an empty object not set today stays unset.
    wanted = {key: item for key, item in release.plain_config().items()
              if key not in OPERATOR_KEYS and (key in current or item.get("objectValue") not in ({}, []))}
    stale = [key for key, entry in current.items()
             if not entry.get("secret") and key not in wanted and key not in OPERATOR_KEYS]
    engine.remove_config(stack, stale)
    engine.set_config_json(stack, wanted)


def rollback_threshold(engine: Engine, stack: str) -> float:
    return float(platform_model(engine, stack).drills.rollback_seconds)


def platform_model(engine: Engine, stack: str) -> PlatformConfig:
    """The stack's config validated by the program's own models (errors name file and key)."""
    try:
        return parse_platform_config(platform_config(engine, stack), stack)
    except ConfigError as error:
        raise DeployError(str(error)) from None


def platform_config(engine: Engine, stack: str) -> dict[str, Any]:
    """The stack's non-secret `platform:*` config, keys without the prefix, objects decoded."""
    values = {}
    for key, entry in engine.config(stack).items():
        if key.startswith("platform:") and not entry.get("secret"):
            values[key.removeprefix("platform:")] = entry.get("objectValue", entry.get("value"))
    return values


def policy_config_for(engine: Engine, stack: str) -> Path | None:
    """For a stack promoted from another (promotion.stagingStack), its policy config with every
    version the source ever verified; otherwise None (the committed policy/config/<stack>.json)."""
    source = (platform_config(engine, stack).get("promotion") or {}).get("stagingStack")
    if not source:
        return None
    outputs = engine.outputs(source)
    lists = {service: list(versions) for service, versions in (outputs.get("verifiedHistory") or {}).items()}
    for service, version in (outputs.get("verifiedVersions") or {}).items():
        if version not in lists.setdefault(service, []):
            lists[service].append(version)
    return verified_policy_config(engine, stack, lists)


def verified_policy_config(engine: Engine, target: str, verified: dict[str, list[str]]) -> Path:
    """The target's policy config plus what the source verified, for require-verified-version."""
    base_path = engine.project / "policy" / "config" / f"{target}.json"
    config = json.loads(base_path.read_text()) if base_path.exists() else {}
    gate = config.get("require-verified-version")
    level = gate.get("enforcementLevel", "mandatory") if isinstance(gate, dict) else (gate or "mandatory")
    config["require-verified-version"] = {
        "enforcementLevel": level,
        "verifiedVersions": {service: list(versions) for service, versions in verified.items()},
    }
    path = engine.project / ".state" / "policy" / f"{target}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def source_verified(engine: Engine, source: str) -> dict[str, str]:
    verified = engine.outputs(source).get("verifiedVersions") or {}
    if not verified:
        raise DeployError(f"{source} exports no verifiedVersions: deploy it (its smoke test must pass) first")
    return verified


def promote(engine: Engine, source: str, target: str, *, preview_only: bool = False,
            audit: Audit | None = None) -> dict[str, str]:
    """Set the target's versions to what the source verified, then preview or deploy it."""
    with changing(engine, target, f"promote {source} -> {target}") as before:
        if preview_only:  # a preview changes nothing, so it leaves no record
            try:
                return _promote(engine, source, target, before, True, ReleaseRecord("preview", target, "", None, ""),
                                None)
            except DeployError:
                restore_stack_file(engine, target, before)  # leave the stack file as it was
                raise
        with recorded(engine, target, "promote", audit, before.releases) as record:
            record.details["source"] = source
            return _promote(engine, source, target, before, False, record, audit)


def overrides_of(engine: Engine, stack: str) -> dict[str, Any]:
    return (platform_config(engine, stack).get("promotion") or {}).get("overrides") or {}


def _promote(engine: Engine, source: str, target: str, before: Before, preview_only: bool,
             record: ReleaseRecord, audit: Audit | None) -> dict[str, str]:
    overrides = overrides_of(engine, target)
    if overrides and audit is not None and not audit.reason:
        raise UpdateNotStarted(f"{target} has promotion overrides ({', '.join(sorted(overrides))}): "
                               "an unverified version goes out, so say why with --reason")
    record.details["overrides"] = overrides
    verified = source_verified(engine, source)
    record.details["verified"] = verified
    services = platform_config(engine, target).get("services") or {}
    for service, version in sorted(verified.items()):
        if service == "edge":
            engine.set_path(target, "edge.version", version)
        elif service in services:
            engine.set_path(target, f"services.{service}.version", version)
    policy_config = policy_config_for(engine, target) or verified_policy_config(
        engine, target, {service: [version] for service, version in verified.items()})
    if preview_only:
        engine.preview(target, policy_config)
        return verified
    prepare(engine, target, record, audit)
    try:
        with record.phase("preview"):
            engine.preview(target, policy_config)
        record.policy["preview"] = "passed"
    except DeployError as refused:  # a policy violation: nothing ran
        record.policy.update(preview_result(str(refused)))
        raise UpdateNotStarted(str(refused)) from None
    _up(engine, target, before, record, f"promote {source} -> {target}: " +
        ", ".join(f"{s}={v}" for s, v in sorted(verified.items())), policy_config)
    return verified


@dataclass
class DeployOutcome:
    ok: bool
    failure: str | None
    rolled_back_to: Release | None


def deploy(engine: Engine, stack: str, message: str, audit: Audit | None = None) -> DeployOutcome:
    """Preflight, preview with the policy pack, then up. If the update ran and changed something,
    re-apply the configuration that was running before it. A deploy that never started (lease or
    engine lock held, a failed preflight check, preview or policy failure, bad config) changes
    nothing, configuration included."""
    with changing(engine, stack, "deploy") as before, \
            recorded(engine, stack, "deploy", audit, before.releases) as record:
        record.details["message"] = message
        if audit is not None and not audit.preflight and not audit.reason:
            raise UpdateNotStarted("a forced deploy (--force skips the preflight checks) needs --reason")
        prepare(engine, stack, record, audit)
        policy_config = policy_config_for(engine, stack)
        try:
            with record.phase("preview"):
                engine.preview(stack, policy_config)
            record.policy["preview"] = "passed"
        except DeployError as refused:  # a policy violation or a config error: nothing ran
            record.policy.update(preview_result(str(refused)))
            raise UpdateNotStarted(str(refused)) from None
        try:
            _up(engine, stack, before, record, message, policy_config)
            return DeployOutcome(ok=True, failure=None, rolled_back_to=None)
        except UpdateNotStarted:
            raise
        except DeployError as failure:
            failed = engine.releases(stack)[len(before.releases):]
            if failed and not failed[-1].changed_resources:
                raise DeployError(f"{failure}\n\nthe update changed no resource: "
                                  "the stack still runs what it ran before") from None
            try:
                good = newest_good(before.releases, stack)
            except HistoryError as error:
                raise DeployError(f"{failure}\n\nand no rollback was possible: {error}") from None
            apply_release_config(engine, stack, good)
            with record.phase("rollback"):
                engine.up(stack, message=f"rollback to {good.number}", policy_config=policy_config)
            record.rolled_back_to = good.number
            record.finish("rolled-back", str(failure))
            return DeployOutcome(ok=False, failure=str(failure), rolled_back_to=good)


# Canary rollout -----------------------------------------------------------------------------

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
                           "passed": passed}
        if not passed:
            rollout_abort(engine, stack, service, audit=_linked(audit))
            raise DeployError(
                f"analysis failed at {weight}%: success rate {analysis.success_rate:.1%} "
                f"(needs >= {settings.success_rate:.0%}), timeout rate {analysis.timeout_rate:.1%} "
                f"(needs <= {settings.timeout_rate:.0%}); aborted: all traffic is back on stable")
    new_weight = next_weight(weight, settings.steps)
    record.details.update(canary=canary["version"], weight_before=weight, weight_after=new_weight)
    engine.set_path(stack, f"services.{service}.canary.weight", new_weight)
    prepare(engine, stack, record, audit)
    _up(engine, stack, before, record, f"rollout {service} canary {canary['version']} to {new_weight}%",
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
        _up(engine, stack, before, record, f"rollout {service} abort: canary {canary['version']} to 0%",
            policy_config_for(engine, stack))


def rollout_promote(engine: Engine, stack: str, service: str, audit: Audit | None = None) -> str:
    with changing(engine, stack, f"rollout {service} promote") as before, \
            recorded(engine, stack, "rollout-promote", audit, before.releases) as record:
        canary = canary_of(engine, stack, service)
        record.details.update(service=service, canary=canary["version"])
        engine.set_path(stack, f"services.{service}.version", canary["version"])
        engine.remove_path(stack, f"services.{service}.canary")
        prepare(engine, stack, record, audit)
        _up(engine, stack, before, record, f"rollout {service} promote: {canary['version']} is stable",
            policy_config_for(engine, stack))
        return canary["version"]


def rollback_drill(engine: Engine, stack: str, audit: Audit | None = None) -> Evidence:
    """Roll back to the last good release and forward again, measuring both; the stack ends as it began."""
    with changing(engine, stack, "drill rollback") as before, \
            recorded(engine, stack, "drill-rollback", audit, before.releases) as record:
        return _rollback_drill(engine, stack, before, record, audit)


def _rollback_drill(engine: Engine, stack: str, before: Before, record: ReleaseRecord,
                    audit: Audit | None) -> Evidence:
    releases = before.releases
    current = releases[-1] if releases else None
    if current is None or not current.succeeded:
        raise DeployError(f"{stack}: the newest update did not succeed; fix or roll back before drilling")
    evidence = Evidence(kind="drill-rollback", stack=stack, threshold_seconds=rollback_threshold(engine, stack))
    with record.phase("rollback"):
        target, rolled = _rollback(engine, stack, before, record, None, None)
    started = time.monotonic()
    apply_release_config(engine, stack, current)
    with record.phase("roll-forward"):
        engine.up(stack, message=f"drill: roll forward to {current.number}",
                  policy_config=policy_config_for(engine, stack))
    prepare(engine, stack, record, audit, check=False)  # the digests of what runs again
    evidence.finish(passed=rolled.duration_seconds <= evidence.threshold_seconds,
                    rolled_back_to=target.number, rollback_seconds=rolled.duration_seconds,
                    roll_forward_seconds=round(time.monotonic() - started, 3), restored_version=current.number)
    evidence.duration_seconds = rolled.duration_seconds  # the RTO is the rollback, not the way back
    record.details.update(rollback_seconds=rolled.duration_seconds, threshold_seconds=evidence.threshold_seconds,
                          passed=evidence.passed)
    attach_evidence(engine, record, evidence, audit)
    if not evidence.passed:
        record.finish("failed", f"the rollback took {rolled.duration_seconds:.1f}s, target "
                                f"<= {evidence.threshold_seconds:.0f}s")
    return evidence


def record_drill(engine: Engine, stack: str, evidence: Evidence, audit: Audit | None,
                 releases_before: list[Release] | None = None) -> ReleaseRecord:
    """The release record of a drill run outside the operations above (the restore drill,
    deployctl/drills.py): its evidence written, signed and linked; outcome from the evidence."""
    releases = releases_before if releases_before is not None else engine.releases(stack)
    with recorded(engine, stack, evidence.kind, audit, releases) as record:
        record.details.update(threshold_seconds=evidence.threshold_seconds, passed=evidence.passed,
                              **{key: value for key, value in evidence.details.items() if key == "databases"})
        attach_evidence(engine, record, evidence, audit)
        if not evidence.passed:
            record.finish("failed", "the drill missed its targets (see its evidence)")
    return record
