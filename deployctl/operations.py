"""deploy and promote, behind `deployctl deploy` and `deployctl promote` (deployctl/cli_changes.py).
Rollback and the drills are in rollbacks.py, the canary rollout in rollout.py, the frame every
change runs in (lease, stack file, recorded `up`) in changing.py, and the stack's config as the
operations read and write it in stack_settings.py."""

from __future__ import annotations

from dataclasses import dataclass

from deployctl.changing import Before, changing, newer_than, recorded_up, restore_stack_file
from deployctl.history import HistoryError, Release, newest_good
from deployctl.records import Audit, ReleaseRecord
from deployctl.recording import prepare, preview_result, recorded
from deployctl.rollbacks import schema_rollback
from deployctl.stack_settings import (apply_release_config, overrides_of, platform_config, platform_model,
                                      policy_config_for, source_verified, verified_policy_config)
from deployctl.workspace import DeployError, Engine, UpdateNotStarted


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
    recorded_up(engine, target, before, record, f"promote {source} -> {target}: " +
                ", ".join(f"{s}={v}" for s, v in sorted(verified.items())), policy_config)
    return verified


@dataclass
class DeployOutcome:
    ok: bool
    failure: str | None
    rolled_back_to: Release | None


def deploy(engine: Engine, stack: str, message: str, audit: Audit | None = None) -> DeployOutcome:
    """Preflight, preview with the policy pack, then up. If the update ran and changed something,
    re-apply the configuration that was running before it, unless that would cross an irreversible
    migration the failed update applied (restoring data is `deployctl rollback --restore-data`'s,
    on an operator's word). A deploy that never started (lease or
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
            recorded_up(engine, stack, before, record, message, policy_config)
            return DeployOutcome(ok=True, failure=None, rolled_back_to=None)
        except UpdateNotStarted:
            raise
        except DeployError as failure:
            failed = newer_than(engine.releases(stack), before.releases)
            if failed and not failed[-1].changed_resources:
                raise DeployError(f"{failure}\n\nthe update changed no resource: "
                                  "the stack still runs what it ran before") from None
            try:
                good = newest_good(before.releases, stack)
            except HistoryError as error:
                raise DeployError(f"{failure}\n\nand no rollback was possible: {error}") from None
            try:  # the question `deployctl rollback` asks, before the rollback changes anything
                plans = schema_rollback(engine, stack, good, record, restore_data=False)
            except UpdateNotStarted as refused:
                # Losing data is the operator's call (--restore-data), never an automatic one.
                raise DeployError(
                    f"{failure}\n\nnot rolled back automatically to {good.number}: "
                    f"{str(refused).removesuffix('. Nothing changed')}. The stack is left as the failed update "
                    "left it (docs/runbooks/migrations.md)") from None
            # Back to the versions still serving, no schema changed: the failed update's own
            # pre-deploy backup covers the data (components/predeploy.py). A schema change backs up.
            covered = _backups_covered(engine, stack, plans)
            record.details["backups_covered"] = covered
            apply_release_config(engine, stack, good)
            with record.phase("rollback"):
                engine.up(stack, message=f"rollback to {good.number}", policy_config=policy_config,
                          backups_covered=covered)
            record.rolled_back_to = good.number
            record.finish("rolled-back", str(failure))
            return DeployOutcome(ok=False, failure=str(failure), rolled_back_to=good)


def _backups_covered(engine: Engine, stack: str, plans: dict) -> list[str]:
    """The databases whose pre-deploy backup the automatic rollback may skip: all of them when it
    reverts no schema, none when it does or when the config cannot be read (backing up is safe)."""
    if plans:
        return []
    try:
        return sorted(platform_model(engine, stack).databases)
    except DeployError:
        return []
