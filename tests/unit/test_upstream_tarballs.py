"""The toolchain builds only from upstream tarballs whose sha256 the project pins."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import ROOT

SCRIPT = ROOT / "devenv" / "toolchain" / "upstream.sh"
PINS = ROOT / "devenv" / "toolchain" / "upstream.sha256"


def pinned_tarballs() -> list[str]:
    return [line.split()[1] for line in PINS.read_text().splitlines() if line.strip()]


def run_upstream(upstream: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEPLOY_UPSTREAM_DIR": str(upstream), "DEPLOY_CACHE": str(cache)}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)


def test_every_tarball_the_build_reads_is_pinned():
    script = SCRIPT.read_text()
    for name in pinned_tarballs():
        stem = name.split("-")[0]
        assert stem in script
    assert len(pinned_tarballs()) == 5


def test_a_tarball_with_a_changed_byte_is_refused_by_name_and_nothing_is_built(tmp_path):
    real = ROOT.parent / "shared" / "upstream"
    if not (real / "pulumi-command-1.2.1.tar.gz").exists():
        pytest.skip(f"the upstream tarballs are not at {real} (set beside the checkout by the team)")
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    for name in pinned_tarballs():
        shutil.copyfile(real / name, upstream / name)
    tampered = upstream / "pulumi-docker-5.1.0.tar.gz"
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    cache = tmp_path / "cache"

    result = run_upstream(upstream, cache, "all")

    assert result.returncode != 0
    assert f"refusing {tampered}" in result.stderr and "the project pins" in result.stderr
    assert [path for path in cache.rglob("*") if path.is_file()] == []  # nothing unpacked, built or stamped


def test_a_missing_tarball_names_the_directory_to_set(tmp_path):
    result = run_upstream(tmp_path / "nowhere", tmp_path / "cache", "verify")
    assert result.returncode != 0
    assert "DEPLOY_UPSTREAM_DIR" in result.stderr


def test_verify_accepts_the_pinned_tarballs(tmp_path):
    real = ROOT.parent / "shared" / "upstream"
    if not (real / "pulumi-command-1.2.1.tar.gz").exists():
        pytest.skip(f"the upstream tarballs are not at {real} (set beside the checkout by the team)")
    result = run_upstream(real, tmp_path / "cache", "verify")
    assert result.returncode == 0, result.stderr
    assert "all tarballs match" in result.stdout
