"""deployctl's commands that change a stack: rollback, promote, deploy and rollout (registered in
deployctl/cli.py; the operations themselves are in operations.py, rollbacks.py and rollout.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from deployctl import operations, rollbacks, stack_settings
from deployctl import rollout as rollouts
from deployctl.cli_support import (ActorOption, CorrelationOption, CwdOption, ReasonOption, audit, console, engine,
                                   fail, fail_recorded, show_record)
from deployctl.workspace import DeployError, Engine, UpdateNotStarted


def rollback(stack: str,
             to_version: Optional[int] = typer.Option(None, "--to-version", help="History version to re-apply."),
             last_good: bool = typer.Option(False, "--last-good", help="The newest succeeded update before the current one."),
             restore_data: bool = typer.Option(
                 False, "--restore-data", help="Across an irreversible migration: restore its database from the "
                 "backup taken before that release (data written since is lost; the RPO is reported)."),
             actor: Optional[str] = ActorOption, reason: Optional[str] = ReasonOption,
             correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Re-apply the configuration of an earlier update (versions, weights, everything) with `pulumi up`.
    Down migrations of the newer releases run first; an irreversible one refuses without --restore-data."""
    if (to_version is None) == (not last_good):
        fail("give exactly one of --to-version N or --last-good")
    if not reason:
        fail("a rollback needs --reason (it goes into the release record, the evidence and the notifications)")
    eng = engine(cwd)
    audited = audit(eng, actor, reason, correlation_id)
    try:
        target, evidence = rollbacks.rollback(eng, stack, to_version=to_version, audit=audited, restore_data=restore_data)
    except UpdateNotStarted as error:
        fail_recorded(audited, f"{stack}: rollback refused: {error}")
    except DeployError as error:
        fail_recorded(audited, f"{stack}: rollback failed: {error}")
    show_record(audited)
    for item in evidence.details.get("restored", []):
        console.print(f"[yellow]restored database {escape(item['database'])}[/] from backup {escape(item['backup'])} "
                      f"(taken before migration {escape(item['migration'])}): data written from "
                      f"{item['rpo_window']['from']} to {item['rpo_window']['to']} is lost "
                      f"(RPO {item['rpo_seconds']:.0f}s)", highlight=False, soft_wrap=True)
    path = evidence.path
    console.print(f"[green]rolled back {stack} to version {target.number}[/] in {evidence.duration_seconds:.1f}s "
                  f"({', '.join(f'{s}={v}' for s, v in sorted(target.versions.items()))}); evidence: {path}")


def promote(source: str, target: str,
            preview: bool = typer.Option(False, "--preview", help="Only preview the promotion."),
            actor: Optional[str] = ActorOption,
            reason: Optional[str] = typer.Option(None, "--reason", help="Why (required when TARGET has "
                                                 "promotion.overrides: unverified versions go out)."),
            correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Set TARGET's versions to what SOURCE verified (its verifiedVersions) and deploy them."""
    eng = engine(cwd)
    audited = audit(eng, actor, reason, correlation_id)
    try:
        verified = operations.promote(eng, source, target, preview_only=preview, audit=audited)
    except DeployError as error:
        fail_recorded(audited, f"promote {source} -> {target} failed: {error}")
    show_record(audited)
    action = "previewed" if preview else "deployed"
    console.print(f"[green]{action} {target} with {source}'s verified versions:[/] "
                  + ", ".join(f"{s}={v}" for s, v in sorted(verified.items())))


def deploy(stack: str, message: str = typer.Option("deploy", "--message", "-m"),
           force: bool = typer.Option(False, "--force", help="Skip the preflight checks (needs --reason)."),
           actor: Optional[str] = ActorOption,
           reason: Optional[str] = typer.Option(None, "--reason", help="Why (required with --force)."),
           correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Preflight, preview with the policy pack, then up; if the update fails, roll back to the last good version."""
    if force and not reason:
        fail("--force skips the preflight checks: say why with --reason")
    eng = engine(cwd)
    audited = audit(eng, actor, reason, correlation_id, preflight=not force)
    try:
        outcome = operations.deploy(eng, stack, message, audit=audited)
    except UpdateNotStarted as error:
        fail_recorded(audited, f"{stack}: deploy refused, nothing changed: {error}")
    except DeployError as error:
        fail_recorded(audited, f"{stack}: deploy failed: {error}")
    show_record(audited)
    if outcome.ok:
        console.print(f"[green]{stack} deployed[/]")
        return
    good = outcome.rolled_back_to
    console.print(f"[bold red]{escape(stack)}: the update failed:[/]\n{escape(outcome.failure)}", highlight=False,
                  soft_wrap=True)
    console.print(f"[yellow]rolled back to version {good.number}[/] ("
                  + ", ".join(f"{s}={v}" for s, v in sorted(good.versions.items())) + ")")
    raise typer.Exit(1)


def rollout(stack: str, service: str,
            step: bool = typer.Option(False, "--step", help="Analyse the canary, then raise its weight one step."),
            abort: bool = typer.Option(False, "--abort", help="Send all traffic back to stable."),
            promote_: bool = typer.Option(False, "--promote", help="Make the canary version the stable one."),
            probe_url: Optional[str] = typer.Option(None, "--probe-url", help="URL analysed between steps "
                                                    "(default: the service's health path through the edge)."),
            actor: Optional[str] = ActorOption, reason: Optional[str] = ReasonOption,
            correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Canary rollout of SERVICE on STACK: 10 -> 50 -> 100 % with analysis between steps."""
    if sum((step, abort, promote_)) != 1:
        fail("give exactly one of --step, --abort or --promote")
    eng = engine(cwd)
    audited = audit(eng, actor, reason, correlation_id)
    try:
        if step:
            url, host = (probe_url, None) if probe_url else _probe_url(eng, stack, service)
            weight, analysis = rollouts.rollout_step(eng, stack, service, url, host, audit=audited)
            if analysis:
                console.print(f"analysis: {analysis.successes}/{analysis.requests} ok "
                              f"({analysis.success_rate:.1%}), timeouts {analysis.timeout_rate:.1%}")
            console.print(f"[green]{service} canary now receives {weight}% of traffic[/]")
        elif abort:
            rollouts.rollout_abort(eng, stack, service, audit=audited)
            console.print(f"[yellow]{service}: canary aborted, all traffic on stable[/]")
        else:
            version = rollouts.rollout_promote(eng, stack, service, audit=audited)
            console.print(f"[green]{service} {version} is now stable; canary removed[/]")
    except DeployError as error:
        fail_recorded(audited, f"{stack}/{service}: {error}")
    show_record(audited)


def _probe_url(eng: Engine, stack: str, service: str) -> tuple[str, str | None]:
    rollouts.canary_of(eng, stack, service)  # an unknown service, or one without a canary, is refused as before
    config = stack_settings.platform_model(eng, stack)
    return config.health_url(service), config.edge_host_header()
