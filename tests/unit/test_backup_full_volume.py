"""The backup script on a backup volume that really fills up: a size-limited tmpfs (needs root to
mount; the e2e tests do the same under the Docker volume and the Kubernetes claim)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components.backup_scripts import backup_script

SET = "[0-9]" * 8 + "T" + "[0-9]" * 6 + "Z.dump"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a size-limited tmpfs needs root")


@pytest.fixture
def small_volume(tmp_path):
    mount = tmp_path / "backups"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2048k", "backup-test", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture
def env(tmp_path, small_volume) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pg_dump").write_text(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --file=*) head -c \"${DUMP_BYTES:-50000}\" /dev/urandom > "
        "\"${a#--file=}\" || { echo 'pg_dump: error: could not write to output file: No space left on device' >&2; "
        "exit 1; };; esac; done\n")
    (bin_dir / "pg_dump").chmod(0o755)
    volumes = tmp_path / "volumes"
    (volumes / "api-uploads").mkdir(parents=True)
    (volumes / "api-uploads" / "photo.bin").write_bytes(os.urandom(200_000))
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "BACKUP_DIR": str(small_volume / "main"),
            "DATABASE": "main", "RETENTION_DAYS": "7", "VOLUMES_ROOT": str(volumes), "VOLUMES": "api-uploads"}


def run(env, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", backup_script()], env={**env, **extra}, capture_output=True, text=True)


def state(env) -> tuple[list[str], str]:
    backups = Path(env["BACKUP_DIR"])
    return sorted(p.name for p in backups.glob(SET)), (backups / ".metrics" / "metrics").read_text()


def free_kib(path: Path) -> int:
    return int(subprocess.run(["df", "-Pk", str(path)], capture_output=True, text=True, check=True).stdout.split()[-3])


def test_a_full_file_system_refuses_the_backup_keeps_the_good_one_and_still_reports_it(env, small_volume):
    assert run(env).returncode == 0
    good, _ = state(env)
    subprocess.run(["sh", "-c", f"dd if=/dev/zero of={small_volume}/filler bs=64k 2>/dev/null"], check=False)
    assert free_kib(small_volume) < 64
    result = run(env)
    assert result.returncode == 1 and "backup of main REFUSED" in result.stderr
    sets, metrics = state(env)
    assert sets == good
    # No room for a new file: the metrics were rewritten in place.
    assert 'platform_backup_space_short{database="main"} 1' in metrics
    assert 'platform_backup_last_run_status{database="main"} 0' in metrics


def test_free_space_below_the_estimate_refuses_before_writing_anything(env, small_volume):
    assert run(env).returncode == 0
    before = sorted(os.listdir(env["BACKUP_DIR"]))
    # Leave about 1 MiB free: less than the last dump plus the volume plus 1 MiB of headroom.
    size = (free_kib(small_volume) - 1000) * 1024
    subprocess.run(["dd", "if=/dev/zero", f"of={small_volume}/filler", "bs=1024", f"count={size // 1024}"],
                   check=True, capture_output=True)
    result = run(env)
    assert result.returncode == 1 and "this backup needs about" in result.stderr
    assert sorted(os.listdir(env["BACKUP_DIR"])) == before


def test_a_dump_larger_than_the_estimate_runs_out_of_space_and_leaves_only_the_good_sets(env, small_volume):
    assert run(env).returncode == 0
    good, _ = state(env)
    result = run(env, DUMP_BYTES="3000000")
    assert result.returncode == 1 and "pg_dump ran out of space" in result.stderr
    sets, metrics = state(env)
    assert sets == good and 'platform_backup_space_short{database="main"} 1' in metrics
    assert {p.name.split(".", 1)[0] for p in Path(env["BACKUP_DIR"]).glob("2*")} == {good[0][:-5]}
    assert free_kib(small_volume) > 1000  # this run's partial files are gone
