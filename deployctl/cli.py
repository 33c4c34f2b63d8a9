"""deployctl: history, rollback, promote, deploy, rollout and drills for the platform's stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deployctl import drills
from deployctl import operations as ops
from deployctl import signing
from deployctl.chart import draw
from deployctl.evidence import threshold_failures
from deployctl.history import attach_records
from deployctl.lease import LeaseHeld
from deployctl.records import Audit, default_actor, new_correlation_id, store_for
from deployctl.workspace import DeployError, Engine, UpdateNotStarted

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
drill_app = typer.Typer(help="Drills that prove recovery works, with measured evidence.", no_args_is_help=True)
app.add_typer(drill_app, name="drill")
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


@app.command()
def history(stack: str, as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
            chart: Optional[Path] = typer.Option(None, "--chart", help="Draw the timeline to a .png or .html file."),
            cwd: Optional[Path] = CwdOption) -> None:
    """List STACK's updates: version, times, result, message and the service versions each ran."""
    try:
        eng = engine(cwd, quiet=True)
        releases = eng.releases(stack)
    except DeployError as error:
        fail(str(error))
    records = store_for(eng).records(stack)
    entries = attach_records(releases, records)
    if chart:
        console.print(f"timeline written to {draw(releases, stack, chart, records)}")
    if as_json:
        out.print_json(json.dumps(list(reversed(entries))))
        return
    table = Table(title=f"{stack} history (newest first)")
    for column in ("version", "start", "result", "message", "versions", "actor", "reason", "outcome", "correlation id"):
        table.add_column(column)
    for release, entry in zip(reversed(releases), reversed(entries)):
        versions = " ".join(f"{service}={version}" for service, version in sorted(release.versions.items()))
        style = "red" if release.result == "failed" else ("magenta" if release.is_rollback else None)
        record = entry.get("record") or {}
        table.add_row(str(release.number), release.start_time, release.result, release.message, versions,
                      record.get("actor", ""), record.get("reason") or "", record.get("outcome", ""),
                      record.get("correlationId", ""), style=style)
    out.print(table)


@app.command()
def verify(file: Path,
           public_key: Optional[Path] = typer.Option(None, "--public-key", help="Trusted Ed25519 public key (PEM; "
                                                     "default: this machine's evidence key)"),
           cwd: Optional[Path] = typer.Option(None, "--cwd", help="Directory a relative FILE is in.")) -> None:
    """Check an evidence or release-record FILE: its signature, then every target it records.
    Exits non-zero when the file was changed after signing or a target was missed."""
    if cwd is not None and not file.is_absolute():
        file = cwd / file
    try:
        record = signing.verify_text(file.read_text(), signing.trusted_public_key(public_key))
    except (OSError, UnicodeDecodeError) as error:
        fail(f"{file}: cannot read it: {error}")
    except signing.SignatureError as error:
        fail(f"{file}: signature check failed: {error}")
    console.print(f"[green]signature ok[/] ({record.get('kind')} of {record.get('stack')}, "
                  f"correlation id {record.get('correlation_id')})", highlight=False)
    missed = threshold_failures(record)
    if missed:
        fail(f"{file}: targets missed: " + "; ".join(missed))
    console.print("[green]every target met[/]")


@app.command()
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
        target, evidence = ops.rollback(eng, stack, to_version=to_version, audit=audited, restore_data=restore_data)
    except UpdateNotStarted as error:
        show_record(audited)
        fail(f"{stack}: rollback refused: {error}")
    except DeployError as error:
        show_record(audited)
        fail(f"{stack}: rollback failed: {error}")
    show_record(audited)
    for item in evidence.details.get("restored", []):
        console.print(f"[yellow]restored database {escape(item['database'])}[/] from backup {escape(item['backup'])} "
                      f"(taken before migration {escape(item['migration'])}): data written from "
                      f"{item['rpo_window']['from']} to {item['rpo_window']['to']} is lost "
                      f"(RPO {item['rpo_seconds']:.0f}s)", highlight=False, soft_wrap=True)
    path = evidence.path
    console.print(f"[green]rolled back {stack} to version {target.number}[/] in {evidence.duration_seconds:.1f}s "
                  f"({', '.join(f'{s}={v}' for s, v in sorted(target.versions.items()))}); evidence: {path}")


@app.command()
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
        verified = ops.promote(eng, source, target, preview_only=preview, audit=audited)
    except DeployError as error:
        show_record(audited)
        fail(f"promote {source} -> {target} failed: {error}")
    show_record(audited)
    action = "previewed" if preview else "deployed"
    console.print(f"[green]{action} {target} with {source}'s verified versions:[/] "
                  + ", ".join(f"{s}={v}" for s, v in sorted(verified.items())))


@app.command()
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
        outcome = ops.deploy(eng, stack, message, audit=audited)
    except UpdateNotStarted as error:
        show_record(audited)
        fail(f"{stack}: deploy refused, nothing changed: {error}")
    except DeployError as error:
        show_record(audited)
        fail(f"{stack}: deploy failed: {error}")
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


@app.command()
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
            weight, analysis = ops.rollout_step(eng, stack, service, url, host, audit=audited)
            if analysis:
                console.print(f"analysis: {analysis.successes}/{analysis.requests} ok "
                              f"({analysis.success_rate:.1%}), timeouts {analysis.timeout_rate:.1%}")
            console.print(f"[green]{service} canary now receives {weight}% of traffic[/]")
        elif abort:
            ops.rollout_abort(eng, stack, service, audit=audited)
            console.print(f"[yellow]{service}: canary aborted, all traffic on stable[/]")
        else:
            version = ops.rollout_promote(eng, stack, service, audit=audited)
            console.print(f"[green]{service} {version} is now stable; canary removed[/]")
    except DeployError as error:
        show_record(audited)
        fail(f"{stack}/{service}: {error}")
    show_record(audited)


@app.command()
def dashboard(stacks: Optional[list[str]] = typer.Argument(None, help="Stacks to show (default: every stack)."),
              output: Path = typer.Option(Path(".state/reports/dashboard.html"), "--output", "-o",
                                          help="The HTML file to write (relative paths: under the project)."),
              alertmanager_url: Optional[str] = typer.Option(None, "--alertmanager-url",
                                                             help="Show the alerts firing there."),
              cwd: Optional[Path] = CwdOption) -> None:
    """Write a static HTML dashboard: versions against the verified ones, canaries, releases, drills, alerts."""
    from deployctl import dashboard as board  # Jinja2 only for this command

    try:
        eng = engine(cwd, quiet=True)
        names = stacks or [entry["name"].rsplit("/", 1)[-1] for entry in
                           json.loads(eng.cli("stack", "ls", "--json").stdout or "[]")]
    except DeployError as error:
        fail(str(error))
    path = board.write(eng, names, output if output.is_absolute() else eng.project / output, alertmanager_url)
    console.print(f"dashboard of {', '.join(names)} written to {path}", highlight=False, soft_wrap=True)


def _probe_url(eng: Engine, stack: str, service: str) -> tuple[str, str | None]:
    config = ops.platform_config(eng, stack)
    spec = (config.get("services") or {}).get(service) or {}
    edge, smoke = config.get("edge") or {}, config.get("smokeTest") or {}
    base = (smoke.get("baseUrl") or f"https://127.0.0.1:{edge.get('httpsPort', 443)}").rstrip("/")
    path = (spec.get("pathPrefix") or "/").rstrip("/") + (spec.get("healthCheck") or {}).get("path", "/healthz")
    return base + path, smoke.get("hostHeader") or (edge.get("hosts") or [None])[0]


@drill_app.command("rollback")
def drill_rollback(stack: str, actor: Optional[str] = ActorOption, reason: Optional[str] = ReasonOption,
                   correlation_id: Optional[str] = CorrelationOption, cwd: Optional[Path] = CwdOption) -> None:
    """Roll STACK back to its last good version and forward again; write evidence with the measured RTO."""
    eng = engine(cwd)
    audited = audit(eng, actor, reason or "rollback drill", correlation_id)
    try:
        evidence = ops.rollback_drill(eng, stack, audit=audited)
    except DeployError as error:
        show_record(audited)
        fail(f"{stack}: rollback drill failed: {error}")
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
        config = ops.platform_model(eng, stack)
        with eng.leases.hold(stack, "drill restore"), console.status(f"{stack}: restore drill running") as status:
            evidence = drills.restore_drill(config, stack, database, backup_first,
                                            on_progress=lambda line: status.update(f"{stack}: {line}"),
                                            releases=eng.releases(stack))
    except LeaseHeld as error:
        fail(f"{stack}: restore drill refused: {error}")
    except DeployError as error:
        fail(f"{stack}: restore drill failed: {error}")
    ops.record_drill(eng, stack, evidence, audit(eng, actor, reason or "restore drill", correlation_id))
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


def main() -> None:
    app()
