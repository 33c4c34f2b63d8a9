"""What a rollback does to the database schema, decided before anything changes.

The migration step of each service (components/migrations.py) keeps the chain of applied
migrations in the stack's state. `deployctl rollback` reads those chains, asks
components/migration_plan.py what going back to the target release needs, and then either lets
the update run (reversible: the program runs the down migrations with the newer images before
the old version starts), refuses, naming the irreversible migration, or, with --restore-data,
restores the database from the newest backup taken before that migration ran and reports the
data lost since as an RPO window (docs/runbooks/migrations.md).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from components.config import PlatformConfig
from components.config.migrations import migration_database
from components.migration_plan import Applied, Plan, Wanted, parse_record, plan
from components.migrations import TYPE
from components.targets.job_environment import job_environment
from components.targets.jobs import JobError
from components.targets.oneoff_jobs import run_in_job_environment
from deployctl.drills import restore_backup
from deployctl.workspace import DeployError

_ENVELOPE = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value in exported state


def applied_chains(engine: Any, stack: str) -> dict[str, list[Applied]]:
    """service -> its chain of applied migrations, from the migration steps' state."""
    exported = json.loads(engine.cli("stack", "export", "--stack", stack).stdout or "{}")
    chains = _chains(exported)
    if chains is None:  # the output is secret in the state: read it decrypted (stays in memory)
        chains = _chains(json.loads(engine.cli("stack", "export", "--show-secrets", "--stack", stack).stdout or "{}"))
    return chains or {}


def _chains(exported: dict[str, Any]) -> dict[str, list[Applied]] | None:
    resources = (exported.get("deployment") or {}).get("resources") or []
    steps = {r["urn"] for r in resources if r.get("type") == TYPE}
    chains: dict[str, list[Applied]] = {}
    for resource in resources:
        if resource.get("type") != "command:local:Command" or resource.get("parent") not in steps:
            continue
        stdout = (resource.get("outputs") or {}).get("stdout")
        if isinstance(stdout, dict) and _ENVELOPE in stdout:
            if "plaintext" not in stdout:
                return None
            stdout = json.loads(stdout["plaintext"])
        service = ((resource.get("outputs") or {}).get("environment") or {}).get("SERVICE")
        chain, _ = parse_record(stdout if isinstance(stdout, str) else None)
        if service and chain:
            chains[service] = chain
    return chains


def rollback_plans(chains: Mapping[str, list[Applied]], target: PlatformConfig) -> dict[str, Plan]:
    """service -> what re-applying `target` does to its database (only services whose schema moves)."""
    plans = {}
    for service, chain in chains.items():
        spec = target.services.get(service)
        if spec is None:
            continue
        migration = spec.migration
        wanted = Wanted(version=spec.version, image="", name=migration.name if migration else "",
                        command=tuple(migration.command) if migration else (),
                        down=None, irreversible=False,
                        database=migration_database(spec.databases, migration) if migration else "")
        decided = plan(chain, wanted, migration.restored if migration else None)
        if decided.is_rollback:
            plans[service] = decided
    return plans


def describe(plans: Mapping[str, Plan]) -> dict[str, Any]:
    """For the release record: per service, the steps the update will run and what is in the way."""
    return {service: {"steps": [{"kind": s.kind, "migration": s.name, "version": s.version, "image": s.image}
                                for s in decided.steps],
                      "irreversible": [{"migration": e.name, "version": e.version, "id": e.id}
                                       for e in decided.refused]}
            for service, decided in plans.items()}


SET_RE = re.compile(r"^(\d{8}T\d{6}Z)\.dump$")


def set_before(listing: str, before: float) -> str | None:
    """The newest backup set (named after the UTC time its run started: components/backup_scripts.py)
    whose run started before `before`: pg_dump's snapshot then holds none of what came after."""
    sets = sorted(match.group(1) for line in listing.split() if (match := SET_RE.match(line.strip())))
    started = [name for name in sets
               if datetime.strptime(name, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp() < before]
    return started[-1] if started else None


@dataclass(frozen=True)
class Restored:
    service: str
    migration: Applied  # the oldest irreversible migration undone: its pre-release backup was restored
    report: dict[str, Any]

    def to_record(self) -> dict[str, Any]:
        # The set's name is when its run started: pg_dump's snapshot, the last moment it holds.
        dumped = datetime.strptime(self.report["backup"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
        restored = float(self.report["restored_at"])
        return {"service": self.service, "database": self.migration.database, "migration": self.migration.name,
                "migration_id": self.migration.id, "migration_version": self.migration.version,
                "backup": self.report.get("backup"), "stack_update": self.report.get("stack_update"),
                "backup_taken_at": _iso(dumped), "restored_at": _iso(restored),
                "volumes": self.report.get("volumes", {}),
                "restore_seconds": float(self.report["seconds"]),
                # Everything written between the backup's snapshot and the restore is gone.
                "rpo_seconds": round(restored - dumped, 3),
                "rpo_window": {"from": _iso(dumped), "to": _iso(restored)}}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def restore_before(config: PlatformConfig, stack: str, service: str, decided: Plan, releases: Sequence[Any] = (),
                   on_progress: Callable[[str], None] = lambda _: None) -> Restored:
    """Restore the database (and the volumes backed up with it) over the live data from the newest
    backup set taken before the oldest irreversible migration in the way ran: the backup before
    that release. The restore itself is the database's restore job (deployctl/drills.py restore_backup)."""
    oldest = decided.refused[-1]
    on_progress(f"{service}: restoring database '{oldest.database}' from the backup taken before migration "
                f"'{oldest.name}' ({oldest.version}) ran at {_iso(oldest.applied_at)}")
    try:
        where = job_environment(config, stack)  # the target's code knows how its jobs are reached
    except JobError as error:
        raise DeployError(str(error)) from None
    try:
        listing = run_in_job_environment(where, f"restore-drill-{oldest.database}", 'ls -1 "$BACKUP_DIR"', 300,
                                         on_progress)
    except JobError as error:
        raise DeployError(f"{stack}: could not list the backups of '{oldest.database}': {error}") from None
    chosen = set_before(listing.log, oldest.applied_at) if listing.succeeded else None
    if chosen is None:
        raise DeployError(f"{stack}: no backup of database '{oldest.database}' was taken before migration "
                          f"'{oldest.name}' ran at {_iso(oldest.applied_at)} ({listing.log.strip()[-300:]}); "
                          "nothing was restored")
    restored = restore_backup(config, stack, oldest.database, chosen, on_progress=on_progress, releases=releases)
    return Restored(service=service, migration=oldest, report={
        **restored, "backup": restored.get("backup_set") or chosen, "restored_at": time.time(),
        "seconds": restored.get("rto_seconds", 0)})
