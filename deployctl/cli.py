"""deployctl: history, rollback, promote, deploy, rollout and drills for the platform's stacks."""

# The docstring above is the app's --help. The commands live by concern: cli_reports.py (history,
# verify, dashboard), cli_changes.py (rollback, promote, deploy, rollout), cli_drills.py (the
# drill group); cli_support.py holds what they share. Registered here in the order --help lists.

from __future__ import annotations

import typer

from deployctl import cli_changes, cli_reports
from deployctl.cli_drills import drill_app

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
app.add_typer(drill_app, name="drill")
for command in (cli_reports.history, cli_reports.verify, cli_changes.rollback, cli_changes.promote, cli_changes.deploy,
                cli_changes.rollout, cli_reports.dashboard):
    app.command()(command)


def main() -> None:
    app()
