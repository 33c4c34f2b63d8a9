"""deployctl reads a stack once per operation (issue 18): inside Engine.reads_held, the frame every
operation that changes a stack runs in, each read of config, history, state or outputs runs the
CLI once until something writes; outside it every read asks the engine again."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.predeploy import COVERED_ENV
from deployctl import workspace
from deployctl.workspace import Engine


@pytest.fixture
def engine(monkeypatch, tmp_path):
    ran: list[tuple[str, ...]] = []

    def run(argv, **_):
        ran.append(tuple(argv[1:-1]))  # without "pulumi" and "--non-interactive"
        answer = "[]" if argv[1:3] == ["stack", "history"] else f'{{"calls": {len(ran)}}}'
        return subprocess.CompletedProcess(argv, 0, answer, "")

    monkeypatch.setattr(workspace.subprocess, "run", run)
    engine = Engine(project=tmp_path, env={})
    engine.ran = ran
    return engine


def test_an_operation_reads_config_and_history_once(engine):
    with engine.reads_held():
        first = [engine.config("dev"), engine.releases("dev"), engine.outputs("dev"), engine.config("prod")]
        again = [engine.config("dev"), engine.releases("dev"), engine.outputs("dev"), engine.config("prod")]
    assert again == first
    assert len(engine.ran) == 4


def test_a_config_write_makes_the_next_read_ask_the_engine(engine):
    with engine.reads_held():
        before = engine.config("dev")
        engine.set_path("dev", "services.api.version", "1.5.0")
        after = engine.config("dev")
    assert before != after
    assert [call[:2] for call in engine.ran] == [("config", "--json"), ("config", "set"), ("config", "--json")]


def test_reads_of_one_stack_do_not_answer_for_another(engine):
    with engine.reads_held():
        engine.config("staging")
        engine.config("prod")
    assert [call[-1] for call in engine.ran] == ["staging", "prod"]


def test_outside_an_operation_every_read_asks_the_engine(engine):
    with engine.reads_held():
        engine.config("dev")
    engine.config("dev")
    engine.config("dev")
    assert len(engine.ran) == 3


def test_a_failed_read_is_not_kept(engine, monkeypatch):
    results = iter([1, 0])

    def run(argv, **_):
        engine.ran.append(tuple(argv[1:-1]))
        return subprocess.CompletedProcess(argv, next(results), "{}", "not yet")

    monkeypatch.setattr(workspace.subprocess, "run", run)
    with engine.reads_held():
        assert engine.cli("config", "--json", "--stack", "dev", check=False).returncode == 1
        assert engine.cli("config", "--json", "--stack", "dev", check=False).returncode == 0
    assert len(engine.ran) == 2


def test_putting_the_stack_file_back_forgets_what_was_read(engine):
    with engine.reads_held():
        engine.config("dev")
        engine.forget_reads()
        engine.config("dev")
    assert len(engine.ran) == 2


def test_history_asks_for_every_update_not_the_cli_default_newest_ten(engine):
    engine.releases("prod")
    [call] = engine.ran
    assert call[:2] == ("stack", "history") and call[call.index("--page-size") + 1] == "0"


def test_only_the_update_deployctl_names_databases_for_may_skip_their_pre_deploy_backup(tmp_path):
    # An inherited PLATFORM_PREDEPLOY_BACKUP_COVERED (an operator's shell) never reaches an update.
    engine = Engine(project=tmp_path, env={"PATH": "/usr/bin", COVERED_ENV: "main"})
    seen: list[dict] = []
    engine._engine_command = lambda stack, *args, env=None: (seen.append(env), (0, ""))[1]
    engine.up("dev", "api 2.0.0")
    engine.up("dev", "rollback to 3", backups_covered=["main", "audit"])
    assert COVERED_ENV not in seen[0] and seen[0]["PATH"] == "/usr/bin"
    assert seen[1][COVERED_ENV] == "main,audit"
