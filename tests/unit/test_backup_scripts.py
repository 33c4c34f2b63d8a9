"""The backup and restore-drill shell scripts, run for real with stand-in PostgreSQL client tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.backups import backup_script, restore_drill_script


@pytest.fixture
def tools(tmp_path) -> Path:
    """Fake pg_dump/pg_restore/createdb/dropdb/psql that record calls; PG_FAIL makes pg_dump fail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "pg_dump": 'if [ -n "${PG_FAIL:-}" ]; then echo "connection refused" >&2; exit 2; fi\n'
                   'for a in "$@"; do case "$a" in --file=*) echo dump-data > "${a#--file=}";; esac; done',
        "pg_restore": 'echo "pg_restore $*" >> "$CALLS"',
        "createdb": 'echo "createdb $*" >> "$CALLS"',
        "dropdb": 'echo "dropdb $*" >> "$CALLS"',
        "psql": 'echo 3',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return bin_dir


def run(script: str, tools: Path, backup_dir: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "BACKUP_DIR": str(backup_dir),
                   "DATABASE": "main", "RETENTION_DAYS": "7", "CALLS": str(backup_dir.parent / "calls"), **env}
    return subprocess.run(["sh", "-c", script], env=environment, capture_output=True, text=True)


def test_backup_writes_a_dump_its_checksum_and_success_metrics(tools, tmp_path):
    backups = tmp_path / "main"
    result = run(backup_script(), tools, backups)
    assert result.returncode == 0, result.stderr
    [dump] = list(backups.glob("*.dump"))
    check = subprocess.run(["sha256sum", "-c", f"{dump.name}.sha256"], cwd=backups, capture_output=True)
    assert check.returncode == 0
    metrics = (backups / ".metrics" / "metrics").read_text()
    assert 'platform_backup_last_run_status{database="main"} 1' in metrics
    assert f'platform_backup_last_success_timestamp_seconds{{database="main"}} {(backups / "last_success").read_text().strip()}' in metrics


def test_failed_backup_reports_failure_and_keeps_the_last_success_time(tools, tmp_path):
    backups = tmp_path / "main"
    run(backup_script(), tools, backups)
    first_success = (backups / "last_success").read_text().strip()
    result = run(backup_script(), tools, backups, PG_FAIL="1")
    assert result.returncode != 0
    metrics = (backups / ".metrics" / "metrics").read_text()
    assert 'platform_backup_last_run_status{database="main"} 0' in metrics
    assert f'{{database="main"}} {first_success}' in metrics
    assert len(list(backups.glob("*.dump"))) == 1


def test_retention_prunes_old_dumps_but_never_the_newest(tools, tmp_path):
    backups = tmp_path / "main"
    backups.mkdir()
    for name, days in (("20260101T020000Z.dump", 30), ("20260102T020000Z.dump", 20)):
        (backups / name).write_text("old")
        (backups / f"{name}.sha256").write_text("x")
        os.utime(backups / name, (0, os.path.getmtime(backups) - days * 86400))
    run(backup_script(), tools, backups)
    remaining = sorted(p.name for p in backups.glob("*.dump"))
    assert len(remaining) == 1 and not remaining[0].startswith("202601")

    # When every dump is old (backups stopped), the newest one still stays.
    for path in backups.glob("*.dump"):
        os.utime(path, (0, os.path.getmtime(path) - 60 * 86400))
    run(backup_script(), tools, backups, PG_FAIL="1")
    assert len(list(backups.glob("*.dump"))) == 1


def test_restore_drill_verifies_restores_into_scratch_and_reports_rto_rpo(tools, tmp_path):
    backups = tmp_path / "main"
    run(backup_script(), tools, backups)
    result = run(restore_drill_script(), tools, backups)
    assert result.returncode == 0, result.stderr
    report = result.stdout.strip().splitlines()[-1]
    assert '"drill":"restore"' in report and '"tables":3' in report and '"rto_seconds":' in report
    calls = (tmp_path / "calls").read_text()
    assert "createdb restore_drill_" in calls and "pg_restore" in calls and "dropdb --if-exists restore_drill_" in calls


def test_restore_drill_refuses_a_dump_whose_checksum_does_not_match(tools, tmp_path):
    backups = tmp_path / "main"
    run(backup_script(), tools, backups)
    [dump] = list(backups.glob("*.dump"))
    dump.write_text("tampered")
    result = run(restore_drill_script(), tools, backups)
    assert result.returncode != 0
    calls = tmp_path / "calls"
    assert not calls.exists() or "pg_restore" not in calls.read_text()
