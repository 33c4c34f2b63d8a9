"""Alert rules on the databases: their backups (age, failed runs, a full backup volume) and
postgres_exporter's view of each database (reachable, connections), each with its fixtures.

Metric contract (what the monitoring components must scrape for these rules to work):
- the backup job publishes `platform_backup_last_success_timestamp_seconds{database}`,
  `platform_backup_last_run_status{database}` (1 ok, 0 failed) and `platform_backup_space_short{database}` (1: the
  run refused, the backup volume is short of space), served by the backup-metrics exporter;
- postgres_exporter per database, with `database="<name>"` added by the scrape config; DatabaseDown also fires
  when no exporter reports on a database (`absent()`), so a missing exporter alerts instead of silencing it.
"""

from __future__ import annotations

import math

from .models import AlertFixture, AlertingThresholds, AlertRule, ExpectedAlert, FiringCase, Series
from .promql import above, any_of, minutes, num, past, pct, rule, span

def backup_rules(t: AlertingThresholds, databases: list[str]) -> list[AlertRule]:
    db, sel = databases[0], f'database=~"{any_of(databases)}"'
    max_age, eval_minutes = t.backup_max_age_hours * 3600, minutes(t.backup_for) + 5
    eval_seconds, samples = eval_minutes * 60, eval_minutes + 10
    # The backup job writes `database`; the backup-metrics scrape adds job/instance and the database's service/version.
    scraped = {"database": db, "job": f"backup-{db}", "instance": f"backup-metrics-{db}:9102",
               "service": f"postgres-{db}", "version": "15.18.0"}

    def last_success(age_seconds: float) -> list[Series]:
        return [Series(metric="platform_backup_last_success_timestamp_seconds", labels=scraped, values=f"{num(eval_seconds - age_seconds)}x{samples}")]

    def last_run(status: int) -> list[Series]:
        return [Series(metric="platform_backup_last_run_status", labels=scraped, values=f"{status}x{samples}")]

    def space_short(short: int) -> list[Series]:
        return [Series(metric="platform_backup_space_short", labels=scraped, values=f"{short}x{samples}")]

    age = f"time() - platform_backup_last_success_timestamp_seconds{{{sel}}}"

    return [
        rule(
            t, name="BackupStale", severity="critical", for_=t.backup_for,
            # Or at once when the job refused for lack of room on the backup volume: no backup can get
            # fresher until someone makes room, and the job never deletes good backups to do so.
            expr=f"{age} > {num(t.backup_max_age_hours)} * 3600 or ({age}) and on(database) platform_backup_space_short{{{sel}}} == 1",
            summary=f"A database has no successful backup from the last {num(t.backup_max_age_hours)} hours, "
                    "or its backup volume has no room for the next one.",
            description="The last successful backup of {{ $labels.database }} finished {{ $value | humanizeDuration }} ago.",
            fixture=AlertFixture(
                eval_time=f"{eval_minutes}m", firing=last_success(2 * max_age),
                expected=[ExpectedAlert(labels=scraped, value=2 * max_age)],
                healthy=[*last_success(max_age / 2), *space_short(0)],
                more_firing=[FiringCase(firing=[*last_success(max_age / 2), *space_short(1)],
                                        expected=[ExpectedAlert(labels=scraped, value=max_age / 2)])],
            ),
        ),
        rule(
            t, name="BackupFailed", severity="warning", for_=t.backup_for,
            expr=f"platform_backup_last_run_status{{{sel}}} == 0",
            summary="The last backup run of a database failed.",
            description="The last backup run of {{ $labels.database }} failed; the previous good backup is getting older.",
            fixture=AlertFixture(
                eval_time=f"{eval_minutes}m", firing=last_run(0), expected=[ExpectedAlert(labels=scraped)], healthy=last_run(1),
            ),
        ),
    ]


def database_rules(t: AlertingThresholds, databases: list[str]) -> list[AlertRule]:
    db, sel = databases[0], f'database=~"{any_of(databases)}"'
    # postgres_exporter's series plus what its scrape adds: `database`, and the database's service and version.
    def scraped(name: str) -> dict[str, str]:
        return {"job": f"postgres-{name}", "instance": f"postgres-exporter-{name}:9187", "database": name,
                "service": f"postgres-{name}", "version": "15.18.0"}

    exporter = scraped(db)

    def pg_up(first: int | None) -> list[Series]:
        """pg_up of every database: the first at `first` (None: not reported), the others up."""
        return [Series(metric="pg_up", labels=scraped(name), values=span(t.service_down_for, str(1 if i else first)))
                for i, name in enumerate(databases) if i or first is not None]

    max_connections = 100
    # One absent() per database: absent() of a regex selector would stay quiet while any one database reports.
    missing = " or ".join(f'absent(pg_up{{database="{name}"}})' for name in databases)

    # postgres_exporter 0.11 adds `server` (the host:port it connects to) to its query metrics, not to pg_up.
    server = {**exporter, "server": f"postgres-{db}:5432"}

    def connections(used: int) -> list[Series]:
        active = used // 2
        return [
            Series(metric="pg_stat_activity_count", labels={**server, "datname": "app", "state": "active"}, values=f"{active}x30"),
            Series(metric="pg_stat_activity_count", labels={**server, "datname": "app", "state": "idle"}, values=f"{used - active}x30"),
            Series(metric="pg_stat_activity_count", labels={**server, "datname": "postgres", "state": "disabled"}, values="0x30"),
            Series(metric="pg_settings_max_connections", labels=server, values=f"{max_connections}x30"),
        ]

    used = math.ceil(above(t.db_connections_ratio) * max_connections)
    by = "database, service, version"
    return [
        rule(
            t, name="DatabaseDown", severity="critical", for_=t.service_down_for,
            # absent(): with no exporter reporting on the database, this (and DatabaseConnectionsHigh) would stay silent.
            expr=f"pg_up{{{sel}}} == 0 or {missing}",
            summary="postgres_exporter cannot reach a database, or nothing reports on it.",
            description=(
                "postgres_exporter has been unable to connect to {{ $labels.database }}, or no exporter has reported "
                f"on it, for more than {t.service_down_for}."
            ),
            fixture=AlertFixture(
                eval_time=past(t.service_down_for), firing=pg_up(0), expected=[ExpectedAlert(labels=exporter)], healthy=pg_up(1),
                # No exporter reports on the database: absent() fires with the database label alone.
                more_firing=[FiringCase(firing=pg_up(None), expected=[ExpectedAlert(labels={"database": db})])],
            ),
        ),
        rule(
            t, name="DatabaseConnectionsHigh", severity="warning", for_="10m",
            expr=(
                f"sum by ({by}) (pg_stat_activity_count{{{sel}}})"
                f" / max by ({by}) (pg_settings_max_connections{{{sel}}}) > {num(t.db_connections_ratio)}"
            ),
            summary="A database is running out of connections.",
            description=(
                "{{ $labels.database }} uses {{ $value | humanizePercentage }} of max_connections "
                f"(threshold {pct(t.db_connections_ratio)})."
            ),
            fixture=AlertFixture(
                eval_time="15m", firing=connections(used),
                expected=[ExpectedAlert(labels={"database": db, "service": exporter["service"], "version": exporter["version"]},
                                        value=used / max_connections)],
                healthy=connections(math.floor(t.db_connections_ratio / 2 * max_connections)),
            ),
        ),
    ]
