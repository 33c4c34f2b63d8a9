"""Backup sets with volumes, the space check, retention by count and age, and the restore script,
run for real with sh, tar and sha256sum (stand-ins only for the PostgreSQL client tools and, to
simulate a short volume, `df`). The e2e tests fill a real size-limited file system."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from components.backup_scripts import backup_script, restore_script

SET = "[0-9]" * 8 + "T" + "[0-9]" * 6 + "Z.dump"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """Stand-in pg_dump/pg_restore/createdb/dropdb/psql; PG_FAIL makes pg_dump fail with its text;
    DF_AVAIL_KIB makes `df` report that much free space."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_df = subprocess.run(["sh", "-c", "command -v df"], capture_output=True, text=True).stdout.strip()
    scripts = {
        "pg_dump": 'if [ -n "${PG_FAIL:-}" ]; then echo "pg_dump: error: $PG_FAIL" >&2; exit 1; fi\n'
                   'for a in "$@"; do case "$a" in --file=*) echo dump-data > "${a#--file=}";; esac; done',
        "pg_restore": 'echo "pg_restore $*" >> "$CALLS"',
        "createdb": 'echo "createdb $*" >> "$CALLS"',
        "dropdb": 'echo "dropdb $*" >> "$CALLS"',
        "psql": 'case "$*" in *--single-transaction*) { echo "psql $*"; cat; } >> "$CALLS" ;; *) echo 3 ;; esac',
        "df": f'if [ -n "${{DF_AVAIL_KIB:-}}" ]; then printf "Filesystem 1024-blocks Used Available Capacity Mounted\\n'
              f'tmpfs 8192 8000 %s 99%% /backups\\n" "$DF_AVAIL_KIB"; else exec {real_df} "$@"; fi',
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    volumes = tmp_path / "volumes"
    (volumes / "api-uploads" / "2026").mkdir(parents=True)
    (volumes / "api-uploads" / "2026" / "photo.jpg").write_bytes(os.urandom(20000))
    (volumes / "api-uploads" / "invoice.pdf").write_bytes(b"%PDF-1.4 invoice")
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKUP_DIR": str(tmp_path / "backups" / "main"),
            "DATABASE": "main", "RETENTION_DAYS": "7", "CALLS": str(tmp_path / "calls"), "PGDATABASE": "app",
            "VOLUMES_ROOT": str(volumes), "VOLUMES": "api-uploads"}


def run(script: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], env={**env, **extra}, capture_output=True, text=True)


def sets(env) -> list[str]:
    return sorted(p.name[:-5] for p in Path(env["BACKUP_DIR"]).glob(SET))


def metrics(env) -> str:
    return (Path(env["BACKUP_DIR"]) / ".metrics" / "metrics").read_text()


def age(env, set_id: str, days: float) -> None:
    for path in Path(env["BACKUP_DIR"]).glob(f"{set_id}.*"):
        os.utime(path, (0, path.stat().st_mtime - days * 86400))


def old_sets(env, *days: float) -> list[str]:
    """Complete sets (dump + checksum) made `days` ago, oldest first, named by their time."""
    backups = Path(env["BACKUP_DIR"])
    backups.mkdir(parents=True, exist_ok=True)
    names = []
    for index, days_ago in enumerate(sorted(days, reverse=True)):
        name = f"2026010{index + 1}T020000Z"
        (backups / f"{name}.dump").write_text("old")
        (backups / f"{name}.dump.sha256").write_text("x")
        (backups / f"{name}.api-uploads.tar").write_text("old")
        age(env, name, days_ago)
        names.append(name)
    return names


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_set_archives_each_volume_with_its_checksum_and_every_files_checksum(env):
    result = run(backup_script(), env)
    assert result.returncode == 0, result.stderr
    [set_id] = sets(env)
    backups = Path(env["BACKUP_DIR"])
    assert subprocess.run(["sha256sum", "-c", f"{set_id}.api-uploads.tar.sha256"], cwd=backups).returncode == 0
    listed = (backups / f"{set_id}.api-uploads.files.sha256").read_text()
    photo = Path(env["VOLUMES_ROOT"]) / "api-uploads" / "2026" / "photo.jpg"
    assert f"{sha256(photo)}  ./2026/photo.jpg" in listed
    assert not list(backups.glob("*.partial"))
    assert 'platform_backup_space_short{database="main"} 0' in metrics(env)


def test_the_drill_restores_volume_files_into_scratch_and_checks_each_by_sha256(env):
    run(backup_script(), env)
    report = run(restore_script(), env)
    assert report.returncode == 0, report.stderr
    line = json.loads(report.stdout.strip().splitlines()[-1])
    assert line["into"] == "scratch" and line["backup"] == sets(env)[0]
    assert line["volumes"]["api-uploads"]["files_verified"] == 2
    # The live volume is left alone by a drill.
    assert (Path(env["VOLUMES_ROOT"]) / "api-uploads" / "invoice.pdf").exists()
    assert not list(Path(env["BACKUP_DIR"]).glob(".restore.*"))  # its scratch directory is gone


def test_a_drill_fails_when_an_archived_file_does_not_match_its_checksum(env):
    run(backup_script(), env)
    [set_id] = sets(env)
    listing = Path(env["BACKUP_DIR"]) / f"{set_id}.api-uploads.files.sha256"
    listing.write_text(listing.read_text().replace(listing.read_text()[:8], "00000000", 1))
    report = run(restore_script(), env)
    assert report.returncode != 0 and "do not match their checksums" in report.stderr


def test_a_live_restore_brings_back_a_wiped_volume_file_for_file(env):
    photo = Path(env["VOLUMES_ROOT"]) / "api-uploads" / "2026" / "photo.jpg"
    before = sha256(photo)
    run(backup_script(), env)
    subprocess.run(["sh", "-c", f'rm -rf "{photo.parent.parent}"/*'], check=True)
    (photo.parent.parent / "written-after-the-backup.txt").write_text("lost on restore")
    restored = run(restore_script(), env, RESTORE_INTO="live", RESTORE_BACKUP=sets(env)[0])
    assert restored.returncode == 0, restored.stderr
    assert sha256(photo) == before
    assert not (photo.parent.parent / "written-after-the-backup.txt").exists()
    # The schema is replaced whole in one transaction: a table created after the backup goes too.
    calls = Path(env["CALLS"]).read_text()
    assert "DROP SCHEMA public CASCADE; CREATE SCHEMA public;" in calls and "--single-transaction" in calls
    assert "pg_restore --no-owner --file=-" in calls


def test_restore_refuses_a_backup_set_that_does_not_exist(env):
    run(backup_script(), env)
    result = run(restore_script(), env, RESTORE_BACKUP="20200101T000000Z")
    assert result.returncode != 0 and "no good backup set '20200101T000000Z'" in result.stderr


def test_fails_loudly_when_the_volume_is_short_of_space_and_keeps_every_older_backup(env):
    run(backup_script(), env)
    [good] = sets(env)
    first_success = (Path(env["BACKUP_DIR"]) / "last_success").read_text().strip()
    age(env, good, 30)  # older than retention: still nothing may be deleted to make room
    result = run(backup_script(), env, DF_AVAIL_KIB="100")
    assert result.returncode == 1
    assert "backup of main REFUSED" in result.stderr and "none is deleted to make room" in result.stderr
    assert sets(env) == [good]
    assert not list(Path(env["BACKUP_DIR"]).glob("*.partial"))
    text = metrics(env)
    assert 'platform_backup_last_run_status{database="main"} 0' in text
    assert 'platform_backup_space_short{database="main"} 1' in text
    assert f'platform_backup_last_success_timestamp_seconds{{database="main"}} {first_success}' in text


def test_a_dump_that_runs_out_of_space_removes_only_its_own_partial_files(env):
    run(backup_script(), env)
    [good] = sets(env)
    result = run(backup_script(), env, PG_FAIL="could not write to output file: No space left on device")
    assert result.returncode == 1 and "pg_dump ran out of space" in result.stderr
    assert sets(env) == [good]
    assert sorted(p.name for p in Path(env["BACKUP_DIR"]).glob("*.tar")) == [f"{good}.api-uploads.tar"]
    assert 'platform_backup_space_short{database="main"} 1' in metrics(env)


def test_a_failure_that_is_not_space_is_not_reported_as_space(env):
    result = run(backup_script(), env, PG_FAIL="connection refused")
    assert result.returncode == 1 and "REFUSED" not in result.stderr
    assert 'platform_backup_space_short{database="main"} 0' in metrics(env)


def test_retention_by_count_keeps_the_newest_sets(env):
    kept_old = old_sets(env, 5, 4, 3, 2, 1)[-2:]
    result = run(backup_script(), env, RETENTION_COUNT="3")
    assert result.returncode == 0, result.stderr
    remaining = sets(env)
    assert len(remaining) == 3 and remaining[:2] == kept_old
    assert not list(Path(env["BACKUP_DIR"]).glob("20260101T020000Z.*"))  # the whole set went


def test_retention_by_age_deletes_sets_older_than_the_retention(env):
    old = old_sets(env, 9, 8, 6, 1)
    run(backup_script(), env)
    assert sets(env)[:-1] == old[2:]


def test_retention_never_deletes_the_newest_good_set_however_old_or_whatever_the_count(env):
    [only] = old_sets(env, 90)
    run(backup_script(), env, PG_FAIL="connection refused")
    assert sets(env) == [only]  # a failed run prunes nothing
    run(backup_script(), env, RETENTION_COUNT="1")
    [newest] = sets(env)
    assert newest != only  # the new set is now the newest good one; the 90-day one went


def test_an_unfinished_set_is_not_a_good_backup(env):
    backups = Path(env["BACKUP_DIR"])
    backups.mkdir(parents=True)
    (backups / "20260105T020000Z.api-uploads.tar").write_text("a crash before the dump")
    result = run(restore_script(), env)
    assert result.returncode != 0 and "no good backup set" in result.stderr


def test_two_runs_in_one_second_make_two_good_sets_and_overwrite_nothing(env):
    assert run(backup_script(), env).returncode == 0
    assert run(backup_script(), env).returncode == 0  # well within the same second as the first, or just after
    backups = Path(env["BACKUP_DIR"])
    assert len(sets(env)) == 2
    for checksum in backups.glob("*.sha256"):
        if not checksum.name.endswith(".files.sha256"):
            assert subprocess.run(["sha256sum", "-c", checksum.name], cwd=backups, capture_output=True).returncode == 0
