"""A pidfile left behind by an ended session never stands for a process it did not start.

devenv/pidfile.sh is what cluster.sh, pebble.sh and engine.sh use to decide whether their
daemon runs (and which pid `stop` signals). These run it in bash on real processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import ROOT

HELPER = ROOT / "devenv" / "pidfile.sh"


def bash(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source {HELPER}; {script}"],
                          capture_output=True, text=True, timeout=30)


def pid_named_by(pidfile: Path, comm: str = "") -> str:
    return bash(f"pidfile_pid {pidfile} {comm} || echo none").stdout.strip()


@pytest.fixture
def sleeper():
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


def start_ticks(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def test_a_pidfile_written_for_a_running_process_names_it(tmp_path, sleeper):
    pidfile = tmp_path / "daemon.pid"
    assert bash(f"pidfile_write {pidfile} {sleeper.pid}").returncode == 0
    assert pid_named_by(pidfile) == str(sleeper.pid)


def test_a_pid_now_held_by_another_process_does_not_count(tmp_path, sleeper):
    # What a reused pid looks like: the file's start time is the old process's, not this one's.
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{sleeper.pid} {int(start_ticks(sleeper.pid)) - 1}\n")
    assert pid_named_by(pidfile, "sleep") == "none"


def test_a_pidfile_whose_process_has_ended_does_not_count(tmp_path):
    ended = subprocess.Popen(["true"])
    ended.wait()
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{ended.pid} 12345\n")
    assert pid_named_by(pidfile) == "none"


def test_a_zombie_does_not_count_as_running(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.time() < deadline, "the child did not exit"
        time.sleep(0.05)
    pidfile = tmp_path / "daemon.pid"
    assert bash(f"pidfile_write {pidfile} {zombie.pid}").returncode == 0
    assert pid_named_by(pidfile) == "none"
    zombie.wait()


def test_a_pid_only_pidfile_counts_when_the_process_has_the_expected_name(tmp_path, sleeper):
    # dockerd writes its own --pidfile with the pid alone.
    pidfile = tmp_path / "dockerd.pid"
    pidfile.write_text(f"{sleeper.pid}")
    assert pid_named_by(pidfile, "sleep") == str(sleeper.pid)


def test_a_pid_only_pidfile_naming_a_process_of_another_name_does_not_count(tmp_path, sleeper):
    pidfile = tmp_path / "dockerd.pid"
    pidfile.write_text(f"{sleeper.pid}\n")
    assert pid_named_by(pidfile, "dockerd") == "none"
    assert pid_named_by(pidfile) == "none"


def test_a_missing_or_garbled_pidfile_does_not_count(tmp_path):
    garbled = tmp_path / "garbled.pid"
    garbled.write_text("not-a-pid\n")
    assert pid_named_by(tmp_path / "absent.pid", "sleep") == "none"
    assert pid_named_by(garbled, "sleep") == "none"
