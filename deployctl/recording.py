"""The release record around an operation: opened when deployctl takes the stack, filled in as
the operation goes (preflight, policy, update, smoke test, analysis, rollback), written beside
the state, attached to each Pulumi update's metadata, signed, and announced on the stack's
notification channels. deployctl/records.py holds the record itself; this module the engine side."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from deployctl import notify, signing
from deployctl.evidence import Evidence
from deployctl.history import Release, versions_of
from components.targets.hosts import host_for
from deployctl.preflight import PreflightFailed, run_checks
from components.images import stack_images
from deployctl.lease import process_alive
from deployctl.records import Audit, ReleaseRecord, now_iso, resolve_images, version_set_sha256
from deployctl.stack_settings import platform_config, platform_model  # one parser for the stack's config
from deployctl.workspace import DeployError, UpdateNotStarted


def running_versions(releases: Sequence[Release]) -> dict[str, str]:
    """What the stack ran: the newest succeeded update's versions."""
    for release in reversed(releases):
        if release.succeeded:
            return release.versions
    return {}


@contextmanager
def recorded(engine: Any, stack: str, operation: str, audit: Audit | None,
             releases_before: Sequence[Release]) -> Iterator[ReleaseRecord]:
    """A record for the operation inside. Without an Audit the record is built and kept nowhere."""
    record = ReleaseRecord(operation=operation, stack=stack, actor=(audit.actor if audit else "library"),
                           reason=audit.reason if audit else None,
                           correlation_id=audit.correlation_id if audit else "none")
    record.versions_before = running_versions(releases_before)
    store = audit.store if audit else None
    env = getattr(engine, "env", None)
    saved = {}
    if store is not None:
        close_interrupted(store, record)
        record.path = store.path_for(record)
        write(store, record)  # a record of an operation killed midway still says who started what
        if env is not None:
            saved = {key: env.get(key) for key in record.environment()}
            env.update(record.environment())
    try:
        yield record
        if record.outcome == "running":
            record.finish("succeeded")
    except UpdateNotStarted as error:
        record.finish("refused", str(error))
        raise
    except DeployError as error:
        record.finish("failed", str(error))
        raise
    except BaseException as error:
        record.finish("failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        if env is not None:
            for key, value in saved.items():
                env.pop(key) if value is None else env.__setitem__(key, value)
        if store is not None:
            _close(engine, stack, record, releases_before, audit)


def _close(engine: Any, stack: str, record: ReleaseRecord, releases_before: Sequence[Release], audit: Audit) -> None:
    try:
        after = engine.releases(stack)
        known = {release.number for release in releases_before}
        # Updates made since the lease was taken; one with another correlation id (or a plain
        # `pulumi up`'s metadata) is not this operation's.
        record.updates = [release.number for release in after if release.number not in known
                          and (release.correlation_id == record.correlation_id or not release.environment)]
        record.versions_after = running_versions(after)
    except DeployError as error:
        record.details["history_error"] = str(error)
    write(audit.store, record)
    if audit.notify:
        send_notifications(engine, stack, record)
        write(audit.store, record)


def close_interrupted(store: Any, by: ReleaseRecord) -> list[str]:
    """Records of this stack still "running" whose process has ended (a SIGKILL, a crash, a lost
    machine) say so: outcome "interrupted", and which operation found it. A record whose process
    ran on another host, or still runs, is left alone. Returns the files changed."""
    changed = []
    for found in store.records(by.stack):
        process = found.get("process") or {}
        if found.get("outcome") != "running" or not process:
            continue
        if process_alive(process.get("host", ""), int(process.get("pid", 0)), process.get("pid_start", "")) is not False:
            continue
        path = Path(found.pop("file"))
        found.pop("signature", None)
        found.update(outcome="interrupted",
                     error=f"its process (pid {process.get('pid')}) ended before the operation finished; "
                           f"found by {by.operation} {by.id} (correlation {by.correlation_id}) at {now_iso()}")
        temporary = path.with_suffix(".tmp")
        temporary.write_text(signing.render(signing.sign(found)))
        temporary.replace(path)
        changed.append(str(path))
    return changed


def write(store: Any, record: ReleaseRecord) -> None:
    """The record file, signed like evidence (deployctl verify checks either)."""
    path = record.path or store.path_for(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(signing.render(signing.sign({"kind": "release", **record.to_dict()})))
    temporary.replace(path)  # a reader never sees half a record
    record.path = path


def prepare(engine: Any, stack: str, record: ReleaseRecord, audit: Audit | None, *, check: bool = True) -> None:
    """Before anything changes: the versions about to run, their digests, the version set's
    sha256 and (with `check`) the preflight checks, refusing the operation at the first failure."""
    if audit is None:
        return
    config = platform_model(engine, stack)
    raw = platform_config(engine, stack)
    record.versions_attempted = versions_of(raw.get("services") or {}, raw.get("edge") or {})
    with record.phase("preflight"):
        record.images = resolve_images(stack_images(config), config.preflight.registry_timeout_seconds)
        record.version_set_sha256 = version_set_sha256(record.images)
        if not (audit.preflight and check):
            record.preflight = [{"name": "preflight", "ok": True, "detail": "skipped (--force)", "fix": None}] \
                if not audit.preflight else []
            return
        host = host_for(config, stack, engine.project, deployed=bool(record.versions_before))
        try:
            record.preflight = [c.as_dict() for c in run_checks(config, host, record.images)]
        except PreflightFailed as failed:
            record.preflight = [c.as_dict() for c in failed.checks]
            raise UpdateNotStarted(str(failed)) from None


# How a failed smoke test shows in the engine's error: the check's own message, or the command
# (components/smoke.py runs as `python -m components.smoke`) exiting non-zero.
SMOKE_MARKS = ("smoke test failed", "components.smoke")


def policy_violated(failure: str) -> bool:
    """Whether an engine failure is the policy pack's (failure_summary keeps `[mandatory] ...` lines)."""
    return "Policy Violations" in failure or "[mandatory]" in failure or "[advisory]" in failure


def preview_result(failure: str) -> dict[str, str]:
    """The policy part of a record when the preview stopped: refused by a policy, or failed otherwise."""
    if policy_violated(failure):
        return {"preview": "refused", "violations": failure}
    return {"preview": "failed", "error": failure}


def update_results(engine: Any, stack: str, record: ReleaseRecord, failure: str | None) -> None:
    """Policy and smoke-test results of the update that just ran (both run inside `pulumi up`)."""
    refused = bool(failure) and policy_violated(failure)
    record.policy["update"] = "refused" if refused else "passed"
    if refused:
        record.policy["violations"] = failure
    try:
        enabled = platform_model(engine, stack).smoke_test.enabled
    except DeployError:
        enabled = None
    if enabled is False:
        record.smoke = {"result": "disabled"}
    elif failure and any(mark in failure for mark in SMOKE_MARKS):
        line = next(line for line in failure.splitlines() if any(mark in line for mark in SMOKE_MARKS))
        record.smoke = {"result": "failed", "detail": line.strip()}
    elif failure:
        record.smoke = {"result": "not-run", "detail": "the update failed before its smoke test"}
    else:
        record.smoke = {"result": "passed", "verified": engine.outputs(stack).get("verifiedVersions") or {}}


def attach_evidence(engine: Any, record: ReleaseRecord, evidence: Evidence, audit: Audit | None) -> None:
    """Evidence says who and why like its record; written (signed) now when the operation is audited."""
    evidence.actor, evidence.reason, evidence.correlation_id = record.actor, record.reason, record.correlation_id
    if audit is not None and audit.store is not None:
        record.evidence = str(evidence.write(engine.project))


def secret_reader(engine: Any, stack: str):
    def read(key: str) -> str:
        entry = engine.config(stack).get(f"platform:{key}")
        if entry is None:
            raise DeployError(f"platform:{key} is not set; run `pulumi config set --secret platform:{key} "
                              f"<value> --stack {stack}`")
        if not entry.get("secret"):
            raise DeployError(f"platform:{key} is set in plain text; set it again with --secret")
        return engine.cli("config", "get", f"platform:{key}", "--stack", stack).stdout.strip()
    return read


def send_notifications(engine: Any, stack: str, record: ReleaseRecord) -> None:
    try:
        spec = platform_model(engine, stack).notifications
    except DeployError as error:
        record.notifications = [{"channel": "*", "ok": False, "detail": f"no notification sent: {error}"}]
        engine.on_notice(f"{stack}: no notification sent: the stack's config is invalid")
        return
    record.notifications = notify.send_all(spec, record.to_dict(), secret_reader(engine, stack))
    for result in record.notifications:
        if not result["ok"]:
            engine.on_notice(f"{stack}: the {result['channel']} notification failed (the operation's outcome "
                             f"stands): {result['detail']}")
