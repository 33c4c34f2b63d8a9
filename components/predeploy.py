"""Backup before deploy: when an update changes a service that talks to a database, that
database is dumped first, and the update stops if the dump fails.

A `command:local:Command` (pulumi-command, the design card's tool for one-off steps): its
environment carries the versions of the database's client services, so the engine updates it,
which runs the backup, exactly when one of them changes; the services' workloads wait for it.
A first deploy has nothing to lose yet, so its create step only says so.

One update may skip it: deployctl's automatic rollback of a release that failed its gate (issue
18). That rollback returns to the versions still serving (the failed release never took the
traffic), changes no schema (deployctl refuses or plans that first), and the failed update dumped
the database seconds before, so a second dump would protect nothing. deployctl names the
databases so covered in COVERED_ENV for that one `pulumi up`; the command's output in state says
it was skipped and why.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command
from pulumi import ResourceOptions


# Comma-separated databases whose dump this update may skip (set only by deployctl, see above).
COVERED_ENV = "PLATFORM_PREDEPLOY_BACKUP_COVERED"


@dataclass(frozen=True)
class PreDeployBackupArgs:
    database: str
    command: Sequence[str]
    client_versions: Mapping[str, str]  # service -> version: a change triggers the backup


def backup_environment(args: PreDeployBackupArgs) -> dict[str, str]:
    """What the engine diffs: a change of any client version is an update of the command."""
    return {"DATABASE": args.database,
            "CLIENT_VERSIONS": ",".join(f"{service}={version}" for service, version in sorted(args.client_versions.items()))}


def backup_script(args: PreDeployBackupArgs) -> str:
    # The message names the database; the engine adds the command's stderr and exit status.
    covered = (f'case ",${{{COVERED_ENV}:-}}," in *,{args.database},*) echo "backup of database '
               f"'{args.database}' before deploy skipped: this rollback returns to the versions still serving, "
               f'changes no schema, and the failed update it reverts backed the database up"; exit 0;; esac; ')
    return (covered + f"{shlex.join(args.command)} || {{ status=$?; echo \"backup of database '{args.database}' "
            f"before deploy failed (exit $status); the update stops here\" >&2; exit $status; }}")


class PreDeployBackup(pulumi.ComponentResource):
    def __init__(self, name: str, args: PreDeployBackupArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:backup:PreDeployBackup", name, None, opts)
        self.run = command.local.Command(
            f"{name}-run",
            create=f"echo 'first deploy of database {args.database}: nothing to back up yet'",
            update=backup_script(args),
            environment=backup_environment(args),
            # Keep the dump tool's progress out of the engine's log; errors still reach it.
            logging=command.local.Logging.STDERR,
            opts=ResourceOptions(parent=self))
        self.last_run = self.run.stdout
        self.register_outputs({"last_run": self.last_run})
