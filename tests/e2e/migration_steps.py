"""The releases the migration end-to-end tests walk through (tests/e2e/test_migrations_*.py), with
the shop images' real migrations (devenv/images/shop-app/migrations): 1.4.2 creates schema 1,
1.5.0 adds a column (reversible), 1.6.0 rewrites prices into cents (irreversible), 1.7.0-broken's
migration fails halfway. The api needs its schema (REQUIRE_SCHEMA) and reports it at /api/schema."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import yaml

from engine import Project

UP, DOWN = ["/app/migrate", "up"], ["/app/migrate", "down"]
MIGRATIONS = {
    "1.4.2": {"name": "0001-initial", "command": UP, "down": DOWN},
    "1.5.0": {"name": "0002-add-sku", "command": UP, "down": DOWN},
    "1.6.0": {"name": "0003-prices-in-cents", "command": UP, "irreversible": True},
    "1.7.0-broken": {"name": "0004-require-category", "command": UP, "irreversible": True},
}
HOST = "shop.staging.localhost"
# Runs inside the database workload, with the credentials it already has.
PSQL = ('PGPASSWORD="${POSTGRES_PASSWORD:-$(cat "${POSTGRES_PASSWORD_FILE:-/dev/null}")}" '
        'psql -X -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -At -F "|" -c ')


def release(project: Project, stack: str, version: str) -> None:
    """Set the api's version and the migration that version declares, in the stack file itself
    (lists stay lists: `pulumi config set --path` would store a JSON list as text)."""
    path = project.dir / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    api = document["config"]["platform:services"]["api"]
    api["version"] = version
    api["migration"] = dict(MIGRATIONS[version])
    api.setdefault("env", {})["REQUIRE_SCHEMA"] = "true"
    path.write_text(yaml.safe_dump(document, sort_keys=False))


_TLS = ssl.create_default_context()
_TLS.check_hostname, _TLS.verify_mode = False, ssl.CERT_NONE


def get(url: str, timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": HOST})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_TLS) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def schema(https_port: int, attempts: int = 10) -> dict:
    """What the api behind the edge reports: its version, the schema it needs and the database's."""
    status, body = 0, ""
    for _ in range(attempts):
        status, body = get(f"https://127.0.0.1:{https_port}/api/schema")
        if status == 200:
            return json.loads(body)
        time.sleep(2)
    raise AssertionError(f"/api/schema answered {status}: {body}")


def log_rows(psql_output: str) -> list[tuple[str, ...]]:
    return [tuple(line.split("|")) for line in psql_output.strip().splitlines() if line]


LOG_QUERY = ("select version, name, direction, app_version, extract(epoch from at) from schema_migration_log "
             "order by id")
COLUMNS_QUERY = "select column_name from information_schema.columns where table_name = 'products' order by 1"


def epoch(docker_or_kubernetes_time: str) -> float:
    """Docker's State.StartedAt (nanoseconds) or a Kubernetes timestamp, as unix time."""
    text = docker_or_kubernetes_time.rstrip("Z")
    whole, _, fraction = text.partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def newest_record(project: Project, stack: str, operation: str) -> dict:
    """The whole release record (its file) of the newest update `operation` made, as history links it."""
    entries = json.loads(project.deployctl("history", stack, "--json").stdout)
    for entry in entries:  # newest first
        record = entry.get("record") or {}
        if record.get("operation") == operation and record.get("file"):
            return json.loads(Path(record["file"]).read_text())
    raise AssertionError(f"no {operation} record in {stack}'s history")
