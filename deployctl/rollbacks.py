"""Rollback and the drills: re-apply an earlier release (across migrations: deployctl/migrations.py),
the measured rollback drill, and the release record of the restore drill (deployctl/drills.py)."""

from __future__ import annotations

import time

from components.config.loading import ConfigError, parse_platform_config
from components.migration_plan import Plan
from deployctl import migrations
from deployctl.changing import Before, changing, recorded_up
from deployctl.evidence import Evidence
from deployctl.history import HistoryError, Release, find, last_good
from deployctl.records import Audit, ReleaseRecord
from deployctl.recording import attach_evidence, prepare, recorded
from deployctl.stack_settings import (apply_release_config, platform_model, policy_config_for, release_values,
                                      rollback_threshold)
from deployctl.workspace import DeployError, Engine, UpdateNotStarted


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
    recorded_up(engine, stack, before, record, f"rollback to {target.number}", policy_config_for(engine, stack))
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
