"""The migration step of a release: after the pre-deploy backup, before any workload changes.

For each service that declares `migration` (components/config/migrations.py), one
`command:local:Command` (pulumi-command, as the pre-deploy backup) runs
`python -m components.migration_run`, which asks components/migration_plan.py what to do and runs
it as a one-off job on the stack's target (components/targets/oneoff_jobs.py): the new version's
migration with the new image, or, going back, the down migrations of the newer releases with
their own images. Every workload that talks to the database waits for it, so a failing migration
fails the update before any of them changes version. The chain of applied migrations is the
command's output, kept in the stack's state: the next release reads it back
(PULUMI_COMMAND_STDOUT), and `deployctl rollback` reads it to refuse before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command
from pulumi import ResourceOptions

from components.config import PlatformConfig
from components.config.migrations import MigrationSpec, migration_database
from components.targets.base import OneOffJob, OneOffJobSpec, RuntimeTarget
from components.versioning import image_reference

RUN_COMMAND = "python -m components.migration_run"
TYPE = "platform:migration:DatabaseMigration"


@dataclass(frozen=True)
class DatabaseMigrationArgs:
    service: str
    version: str
    image: str  # the new version's image reference
    database: str
    spec: MigrationSpec
    job: OneOffJob  # how a one-off job runs on the stack's target
    after: Sequence[pulumi.Resource] = ()  # the database and its pre-deploy backup


def run_payload(args: DatabaseMigrationArgs) -> dict:
    """What the runner reads on stdin (secret when the target's job settings hold secrets)."""
    spec = args.spec
    return {"service": args.service, "database": args.database, "timeout": spec.timeout_seconds,
            "restored": spec.restored, "job": args.job.settings,
            "wanted": {"version": args.version, "image": args.image, "name": spec.name,
                       "command": list(spec.command), "down": list(spec.down) if spec.down else None,
                       "irreversible": spec.irreversible, "database": args.database}}


def run_environment(args: DatabaseMigrationArgs) -> dict[str, str]:
    """What the engine diffs (and the log shows): a change of version or migration is an update."""
    return {"SERVICE": args.service, "VERSION": args.version, "IMAGE": args.image, "MIGRATION": args.spec.name,
            "DATABASE": args.database, "REVERSIBLE": "false" if args.spec.irreversible else "true"}


class DatabaseMigration(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseMigrationArgs, opts: ResourceOptions | None = None):
        super().__init__(TYPE, name, None, opts)
        self.run = command.local.Command(
            f"{name}-run",
            create=RUN_COMMAND, update=RUN_COMMAND,
            stdin=pulumi.Output.json_dumps(run_payload(args)),
            environment=run_environment(args),
            # The previous run's output is the chain of applied migrations the runner starts from.
            add_previous_output_in_env=True,
            # The job's log goes to stderr (shown); stdout is the one-line record kept in state.
            logging=command.local.Logging.STDERR,
            opts=ResourceOptions(parent=self, depends_on=[*args.job.resources, *args.after]))
        self.record = self.run.stdout
        self.register_outputs({"record": self.record})


def migrations_for(name: str, config: PlatformConfig, target: RuntimeTarget, secrets: Mapping[str, pulumi.Input[str]],
                   databases: Mapping, backups: Mapping, parent: pulumi.Resource) -> dict[str, DatabaseMigration]:
    """One migration step per service that declares one (none where the target runs nothing now)."""
    steps = {}
    for service, spec in config.services.items():
        if spec.migration is None:
            continue
        db_name = migration_database(spec.databases, spec.migration)
        database, db_spec = databases[db_name], config.databases[db_name]
        image = image_reference(spec.image, spec.version)
        job = target.one_off_job(OneOffJobSpec(
            name=f"migrate-{service}", service=service, component="migration", version=spec.version,
            env=database.client_env(db_spec), secret_env={"PGPASSWORD": secrets[db_spec.password_secret]},
            resources=spec.resources, clients_of=(database.workload_name,), images=(image,)), parent)
        if job is None:
            continue
        after = [database, *([backups[db_name]] if db_name in backups else [])]
        steps[service] = DatabaseMigration(f"{name}-{service}-migration", DatabaseMigrationArgs(
            service=service, version=spec.version, image=image, database=db_name, spec=spec.migration,
            job=job, after=after), ResourceOptions(parent=parent))
    return steps


def migrations_of(steps: Mapping[str, DatabaseMigration], config: PlatformConfig, databases: Sequence[str]) -> tuple:
    """The migration steps on these databases: what a service using them waits for."""
    return tuple(step for service, step in steps.items()
                 if migration_database(config.services[service].databases, config.services[service].migration)
                 in databases)
