"""A service's database migration: `platform:services.<name>.migration` (part of components/config/).

When a release changes the service's version, the platform backs up the service's database, runs
`command` once with the NEW image against that database (a one-off Kubernetes Job or Docker
container), and only then rolls the service out. A rollback across the migration runs `down`
with the newer image before the older version starts, or, for an irreversible migration, refuses
unless the operator restores the database from the backup taken before that release
(docs/runbooks/migrations.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from components.config.model import Command, Model, Problem, refuse

if TYPE_CHECKING:
    from components.config.platform import PlatformConfig

# A name an operator reads in a refusal and a runbook: 0003-prices-in-cents, add_sku.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class MigrationSpec(Model):
    name: str = Field(description="What the migration is called where a rollback refuses to cross it, "
                                  "e.g. 0002-add-sku.")
    command: Command = Field(description="Run once with the new image against the service's database, "
                                         "e.g. [/app/migrate, up].")
    down: Command | None = Field(None, description="Undoes `command`, run with the same (newer) image on "
                                                   "rollback, e.g. [/app/migrate, down]; absent means irreversible.")
    # Saying it out loud: a migration without `down` could also be one somebody forgot to finish.
    irreversible: bool = Field(False, description="True when no down migration exists (data dropped or "
                                                  "rewritten): a rollback then needs --restore-data.")
    database: str | None = Field(None, description="Which of the service's databases it migrates; "
                                                   "default the first it lists.")
    # 10 minutes: long enough for a real ALTER on a small table, short enough to notice a lock wait.
    timeout_seconds: int = Field(600, ge=10, le=6 * 3600)
    # Set by `deployctl rollback --restore-data` (never by hand): the database was restored from
    # the backup taken before the migration applied at this id, so undoing it needs no down.
    restored: str | None = Field(None, description="Set by deployctl rollback --restore-data: the id of the "
                                                   "applied migration whose pre-release backup was restored.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError("expected a short name such as 0002-add-sku: letters, digits, '.', '_' or '-', "
                             "at most 63 characters")
        return value

    @model_validator(mode="after")
    def _reversible_or_said_so(self) -> "MigrationSpec":
        if self.down is None and not self.irreversible:
            refuse([Problem("down", "is missing: give the down migration (e.g. [/app/migrate, down]) or say "
                                    "`irreversible: true`, so a rollback knows it cannot undo it")])
        if self.down is not None and self.irreversible:
            refuse([Problem("irreversible", "is true, but down is given too: drop down, or set irreversible "
                                            "to false")])
        return self


def migration_database(service_databases: list[str], spec: MigrationSpec) -> str | None:
    """The database a migration runs against: the one it names, else the service's first."""
    return spec.database or (service_databases[0] if service_databases else None)


def migration_problems(config: "PlatformConfig") -> list[Problem]:
    """Cross-key checks: a migration needs a database of its own service."""
    problems = []
    for name, service in config.services.items():
        spec = service.migration
        if spec is None:
            continue
        key = f"services.{name}.migration"
        if not service.databases:
            problems.append(Problem(key, "needs a database to migrate, but the service lists none in "
                                         f"services.{name}.databases"))
        elif spec.database is not None and spec.database not in service.databases:
            problems.append(Problem(f"{key}.database", f"'{spec.database}' is not one of services.{name}."
                                                       f"databases {service.databases}"))
        if service.canary is not None:
            # Two versions of the code would serve one schema: migrate with a plain release first.
            problems.append(Problem(f"{key}", "cannot be combined with a canary: finish or abort the "
                                              f"canary of services.{name} first, then release the migration"))
    return problems
