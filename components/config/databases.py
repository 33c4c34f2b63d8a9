"""The PostgreSQL databases a stack runs and how each is backed up: `platform:databases`
(part of components/config/)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from components.config.model import (
    ConfigKey,
    CronSchedule,
    ImageRepository,
    Model,
    Port,
    Problem,
    Version,
    cron_runs,
    refuse,
)
from components.config.workload import QUANTITY_MEMORY_RE, LogRotation, Resources, memory_mebibytes

# PostgreSQL cuts longer names to 63 bytes without a word (NAMEDATALEN - 1).
# Ref: https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS
PG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


class BackupPolicy(Model):
    schedule: CronSchedule = Field("0 2 * * *", description="Cron schedule of the backup (daily 02:00).")
    retention_days: int = Field(7, ge=1, le=365, description="Backups older than this are deleted (never the newest good one).")
    # None: age alone decides. Seed 001 kept the last 10; with a daily schedule 7 days is 7 backups.
    retention_count: int | None = Field(None, ge=1, le=1000, description="Keep at most this many backups (newest first).")
    restore_drill_schedule: CronSchedule = Field("0 4 1 * *", description="Monthly restore drill.")
    # 26 h: one missed daily run plus two hours of slack before anyone is paged.
    max_age_hours: int = Field(26, ge=1, le=24 * 14)
    before_deploy: bool = Field(True, description="Dump before an update touches a service using this database.")

    @model_validator(mode="after")
    def _fresh_between_runs(self) -> "BackupPolicy":
        # A newest backup older than maxAgeHours pages someone (BackupStale) and fails the restore
        # drill's RPO; if the schedule itself leaves longer gaps, that happens between two good runs.
        # 64 runs span every gap of a schedule that repeats weekly, monthly or yearly (weekends, short months).
        runs = cron_runs(self.schedule, 64)
        gap_hours = max((later - earlier).total_seconds() for earlier, later in zip(runs, runs[1:])) / 3600
        if self.max_age_hours < gap_hours:
            refuse([Problem("maxAgeHours", f"is {self.max_age_hours}, but schedule '{self.schedule}' leaves up to "
                                           f"{gap_hours:g} hours between backups, so every backup would be stale "
                                           f"before the next; expected at least {gap_hours:g} (the default 26 "
                                           "suits a daily schedule)")])
        return self


class DatabaseSpec(Model):
    image: ImageRepository = Field(description="PostgreSQL image repository.")
    version: Version
    port: Port = 5432
    database: str = "app"
    user: str = "app"
    password_secret: ConfigKey = Field(description="Config key of the password (set with --secret).")
    storage_size: str = "1Gi"
    resources: Resources = Field(default_factory=Resources)
    backup: BackupPolicy = Field(default_factory=BackupPolicy)
    log_rotation: LogRotation = Field(default_factory=LogRotation)

    @field_validator("database", "user")
    @classmethod
    def _postgres_name(cls, value: str) -> str:
        if not PG_NAME_RE.match(value):
            raise ValueError("expected a PostgreSQL name: a letter or '_', then letters, digits, '_' or '-', "
                             "at most 63 characters, e.g. app")
        return value

    @field_validator("user")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        # Ref: https://www.postgresql.org/docs/current/predefined-roles.html (CREATE ROLE refuses pg_*)
        if value.lower().startswith("pg_"):
            raise ValueError("role names starting with pg_ are reserved by PostgreSQL; expected e.g. app")
        return value

    @field_validator("storage_size")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not QUANTITY_MEMORY_RE.match(value) or memory_mebibytes(value) <= 0:
            raise ValueError("a positive size such as 5Gi")
        return value
