"""What every deployctl command shares: the consoles (stderr for what happens, stdout for results),
the common options, the engine that shows Pulumi's output, failing with exit code 1, and the
release record's who/why/correlation id."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from deployctl.records import Audit, default_actor, new_correlation_id, store_for
from deployctl.workspace import Engine

console = Console(stderr=True)
out = Console()

CwdOption = typer.Option(None, "--cwd", help="Project directory (default: the one holding Pulumi.yaml).")
ActorOption = typer.Option(None, "--actor", help="Who is doing this (default: the OS user).")
ReasonOption = typer.Option(None, "--reason", help="Why: kept in the release record, evidence and notifications.")
CorrelationOption = typer.Option(None, "--correlation-id",
                                 help="Links this operation to others (default: a new id); passed to notifications.")


def engine(cwd: Optional[Path], quiet: bool = False) -> Engine:
    def show(line: str) -> None:
        if not quiet:
            # soft_wrap: the engine's lines reach logs and pipes unbroken, whatever the terminal width
            console.print(line.rstrip(), markup=False, highlight=False, soft_wrap=True)

    def notice(line: str) -> None:
        console.print(f"[yellow]deployctl:[/] {escape(line)}", highlight=False, soft_wrap=True)

    return Engine.open(cwd, on_output=show, on_notice=notice)


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def audit(eng: Engine, actor: Optional[str], reason: Optional[str], correlation_id: Optional[str],
          preflight: bool = True) -> Audit:
    """Who, why and which correlation id, for the release record this operation leaves."""
    chosen = Audit(actor=actor or default_actor(), reason=reason, correlation_id=correlation_id or new_correlation_id(),
                   store=store_for(eng), preflight=preflight)
    console.print(f"[dim]correlation id {chosen.correlation_id}, actor {escape(chosen.actor)}[/]", highlight=False,
                  soft_wrap=True)
    return chosen


def show_record(audited: Audit) -> None:
    records = audited.store.records_with_id(audited.correlation_id)
    for record in records:
        for result in record.get("notifications") or []:
            mark = "[green]sent[/]" if result["ok"] else "[yellow]failed[/]"
            console.print(f"notification {result['channel']}: {mark} ({escape(result['detail'])})", highlight=False,
                          soft_wrap=True)
    if records:
        console.print(f"[dim]release record: {records[-1]['file']}[/]", highlight=False, soft_wrap=True)


def fail_recorded(audited: Audit, message: str) -> None:
    """Fail after showing the release record (and notifications) the refused or failed operation left."""
    show_record(audited)
    fail(message)
