"""deployctl's commands that change no stack: history, verify and dashboard (registered in deployctl/cli.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from deployctl import signing
from deployctl.chart import draw
from deployctl.cli_support import CwdOption, console, engine, fail, out
from deployctl.evidence import threshold_failures
from deployctl.history import attach_records
from deployctl.records import store_for
from deployctl.workspace import DeployError


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
