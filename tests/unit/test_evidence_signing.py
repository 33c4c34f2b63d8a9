"""Evidence is signed with Ed25519 and `deployctl verify` refuses any change and any missed target."""

from __future__ import annotations

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from deployctl import signing
from deployctl.cli import app
from deployctl.evidence import Evidence, threshold_failures

runner = CliRunner()


@pytest.fixture(autouse=True)
def key_dir(tmp_path, monkeypatch):
    directory = tmp_path / "keys"
    monkeypatch.setenv("DEPLOYCTL_SIGNING_DIR", str(directory))
    return directory


def drill(tmp_path, duration: float = 12.5, threshold: float = 180) -> "os.PathLike":
    evidence = Evidence(kind="drill-rollback", stack="staging", threshold_seconds=threshold, actor="alice",
                        reason="monthly drill", correlation_id="c-1")
    evidence.finish(passed=duration <= threshold, rolled_back_to=3)
    evidence.duration_seconds = duration
    return evidence.write(tmp_path / "project")


def verify(path, *extra: str):
    return runner.invoke(app, ["verify", str(path), *extra])


def test_the_key_is_made_on_first_use_outside_the_repository_readable_only_by_its_owner(tmp_path, key_dir):
    drill(tmp_path)
    private = key_dir / "evidence-ed25519.key"
    assert private.exists() and (key_dir / "evidence-ed25519.pub").exists()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_the_same_key_signs_every_later_file(tmp_path):
    first = json.loads(drill(tmp_path).read_text())["signature"]["keyId"]
    second = json.loads(drill(tmp_path).read_text())["signature"]["keyId"]
    assert first == second


def test_verify_accepts_a_good_evidence_file(tmp_path):
    result = verify(drill(tmp_path))
    assert result.exit_code == 0, result.output
    assert "signature ok" in result.output and "every target met" in result.output


def test_verify_refuses_a_file_with_one_changed_value_byte(tmp_path):
    path = drill(tmp_path)
    path.write_text(path.read_text().replace('"rolled_back_to": 3', '"rolled_back_to": 2'))
    result = verify(path)
    assert result.exit_code != 0 and "signature check failed" in result.output
    assert "changed after signing" in result.output


def test_verify_refuses_a_file_with_one_changed_whitespace_byte(tmp_path):
    path = drill(tmp_path)
    text = path.read_text()
    path.write_text(text.replace("\n  ", "\n ", 1))
    result = verify(path)
    assert result.exit_code != 0 and "bytes differ" in result.output


@pytest.mark.parametrize("offset", [0, 40, 200, -2])
def test_verify_refuses_a_file_with_any_byte_flipped(tmp_path, offset):
    path = drill(tmp_path)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    assert verify(path).exit_code != 0


def test_verify_refuses_a_file_signed_by_another_key(tmp_path):
    path = drill(tmp_path)
    body = {k: v for k, v in json.loads(path.read_text()).items() if k != "signature"}
    path.write_text(signing.render(signing.sign(body, Ed25519PrivateKey.generate())))
    result = verify(path)
    assert result.exit_code != 0 and "not the trusted key" in result.output


def test_verify_refuses_a_file_without_a_signature(tmp_path):
    path = drill(tmp_path)
    document = json.loads(path.read_text())
    del document["signature"]
    path.write_text(signing.render(document))
    assert "no signature" in verify(path).output


def test_verify_refuses_a_signed_file_that_missed_its_threshold(tmp_path):
    result = verify(drill(tmp_path, duration=200.0, threshold=180))
    assert result.exit_code != 0 and "signature ok" in result.output
    assert "took 200.0s, target <= 180s" in result.output


def test_verify_trusts_a_public_key_given_on_the_command_line(tmp_path, key_dir):
    path = drill(tmp_path)
    elsewhere = tmp_path / "trusted.pub"
    elsewhere.write_bytes((key_dir / "evidence-ed25519.pub").read_bytes())
    (key_dir / "evidence-ed25519.pub").unlink()
    assert verify(path, "--public-key", str(elsewhere)).exit_code == 0


def test_restore_evidence_missing_rpo_names_the_database():
    record = {"passed": False, "details": {"databases": {"main": {
        "rto_seconds": 30, "rto_threshold_seconds": 3600, "rpo_seconds": 100000, "rpo_threshold_seconds": 93600}}}}
    assert threshold_failures(record) == ["main: RPO 100000s, target <= 93600s"]


def test_release_record_with_a_failed_analysis_misses_its_threshold():
    record = {"outcome": "failed", "analysis": {"success_rate": 0.5, "min_success_rate": 0.95,
                                                "timeout_rate": 0.0, "max_timeout_rate": 0.05}}
    assert threshold_failures(record) == ["analysis success rate 50.0%, target >= 95%", "outcome failed"]


def test_evidence_records_who_why_and_the_correlation_id(tmp_path):
    document = json.loads(drill(tmp_path).read_text())
    assert (document["actor"], document["reason"], document["correlation_id"]) == ("alice", "monthly drill", "c-1")
