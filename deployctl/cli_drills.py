"""`deployctl drill rollback|restore`: drills that prove recovery works, with measured evidence
(the group is added to the app in deployctl/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from deployctl import drills
from deployctl import rollbacks, stack_settings
from deployctl.cli_support import (ActorOption, CorrelationOption, CwdOption, ReasonOption, audit, console, engine,
                                   fail, fail_recorded, show_record)
from deployctl.lease import LeaseHeld
from deployctl.workspace import DeployError

drill_app = typer.Typer(help="Drills that prove recovery works, with measured evidence.", no_args_is_help=True)


@drill_app.command("rollback")
def drill_rollback(stack: str, actor: Optional[str] = ActorOption, reason: Optional[str] = ReasonOption,
                   correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Roll STACK back to its last good version and forward again; write evidence with the measured RTO."""
    eng = engine(cwd)
    audited = audit(eng, actor, reason or "rollback drill", correlation_id)
    try:
        evidence = rollbacks.rollback_drill(eng, stack, audit=audited)
    except DeployError as error:
        fail_recorded(audited, f"{stack}: rollback drill failed: {error}")
    show_record(audited)
    path = evidence.path
    verdict = "[green]PASS[/]" if evidence.passed else "[red]FAIL[/]"
    console.print(f"{verdict} rollback took {evidence.duration_seconds:.1f}s "
                  f"(target <= {evidence.threshold_seconds:.0f}s); evidence: {path}")
    if not evidence.passed:
        raise typer.Exit(1)


@drill_app.command("restore")
def drill_restore(stack: str,
                  database: Optional[str] = typer.Option(None, "--database", help="Only this database (default: all)."),
                  backup_first: bool = typer.Option(False, "--backup-first",
                                                    help="Take a fresh backup from the backup CronJob first."),
                  actor: Optional[str] = ActorOption, reason: Optional[str] = ReasonOption,
                  correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Restore each database's newest dump into a scratch database now (the monthly drill's job);
    write evidence with the measured RTO/RPO against drills.restoreSeconds and backup.maxAgeHours."""
    eng = engine(cwd, quiet=True)
    try:
        config = stack_settings.platform_model(eng, stack)
        with eng.leases.hold(stack, "drill restore"), console.status(f"{stack}: restore drill running") as status:
            evidence = drills.restore_drill(config, stack, database, backup_first,
                                            on_progress=lambda line: status.update(f"{stack}: {line}"),
                                            releases=eng.releases(stack))
    except LeaseHeld as error:
        fail(f"{stack}: restore drill refused: {error}")
    except DeployError as error:
        fail(f"{stack}: restore drill failed: {error}")
    rollbacks.record_drill(eng, stack, evidence, audit(eng, actor, reason or "restore drill", correlation_id))
    path = evidence.path
    for name, record in evidence.details["databases"].items():
        verdict = "[green]PASS[/]" if record["passed"] else "[red]FAIL[/]"
        if "rto_seconds" in record:
            console.print(f"{verdict} {name}: RTO {record['rto_seconds']:.0f}s (target <= "
                          f"{record['rto_threshold_seconds']}s), RPO {record['rpo_seconds']:.0f}s (target <= "
                          f"{record['rpo_threshold_seconds']}s), {record['report'].get('tables')} tables restored"
                          + "".join(f", {v}: {e['files_verified']}/{e['files']} files verified"
                                    for v, e in record.get("volumes", {}).items())
                          + (f"; backup {record['backup_set']} belongs to update {record['stack_update']['update']}"
                             if record.get("stack_update") else ""))
            if record.get("error"):
                console.print(f"  {record['error']}", highlight=False)
        else:
            console.print(f"{verdict} {name}: {record['error']}", highlight=False)
    console.print(f"evidence: {path}")
    if not evidence.passed:
        raise typer.Exit(1)
