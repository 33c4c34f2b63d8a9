"""What a deploy may change when something goes wrong: deployctl's lease, refusals that change
nothing, and automatic rollback only after an update that changed something (engine faked)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.migration_plan import Applied, record_text
from components.migrations import TYPE as MIGRATION_TYPE
from deployctl import operations as ops
from deployctl.history import Release
from deployctl.lease import Lease, LeaseHeld, LeaseStore, process_start
from deployctl.workspace import DeployError, UpdateNotStarted
from support import raw_stack_config


def release(number: int, api: str, result: str = "succeeded", changes: dict | None = None) -> Release:
    return Release(number=number, kind="update", result=result, message=f"api {api}", start_time="",
                   end_time=None, resource_changes=changes if changes is not None else {"update": 1},
                   config={"platform:services": {"value": "", "secret": False,
                                                 "objectValue": {"api": {"version": api}}}})


class FakeEngine:
    """The slice of deployctl.workspace.Engine the operations use; the stack file is real."""

    def __init__(self, tmp_path: Path, history: list[Release]) -> None:
        self.project = tmp_path
        self.history = list(history)
        self.notices: list[str] = []
        self.leases = LeaseStore(tmp_path / "leases", notify=self.notices.append)
        self.ups: list[str] = []
        self.covered: list[list[str]] = []  # per up: the databases whose pre-deploy backup it may skip
        self.applied: list[dict] = []
        self.up_behaviour: list = []  # per up: None (succeeds), or (exception, recorded Release | None)
        self.preview_error: Exception | None = None
        self.exported_state: dict = {}  # `pulumi stack export`: where the migration chains are read
        self.stack_file("staging").write_text("config:\n  platform:services:\n    api: {version: 2.0.0}\n")

    def on_notice(self, line: str) -> None:
        self.notices.append(line)

    def stack_file(self, stack: str) -> Path:
        return self.project / f"Pulumi.{stack}.yaml"

    def reads_held(self):
        return contextlib.nullcontext()

    def forget_reads(self) -> None:
        pass

    def recover_interrupted(self, stack: str) -> None:
        pass

    def releases(self, stack: str) -> list[Release]:
        return list(self.history)

    def config(self, stack: str) -> dict:
        return {"platform:services": {"value": "", "secret": False, "objectValue": {"api": {"version": "2.0.0"}}}}

    def outputs(self, stack: str) -> dict:
        return {}

    def set_config_json(self, stack: str, entries: dict) -> None:
        self.applied.append(entries)

    def remove_config(self, stack: str, keys: list[str]) -> None:
        pass

    def set_path(self, stack: str, path: str, value) -> None:
        self.stack_file(stack).write_text(f"config: {{changed: {path}={value}}}\n")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        assert args[:2] == ("stack", "export"), args  # the only engine read besides history and config
        return subprocess.CompletedProcess(args, 0, json.dumps(self.exported_state), "")

    def preview(self, stack: str, policy_config=None) -> None:
        if self.preview_error:
            raise self.preview_error

    def up(self, stack: str, message: str, policy_config=None, backups_covered=()) -> None:
        self.ups.append(message)
        self.covered.append(list(backups_covered))
        behaviour = self.up_behaviour.pop(0) if self.up_behaviour else None
        if behaviour is None:
            self.history.append(release(len(self.history) + 1, "x"))
            return
        error, recorded = behaviour
        if recorded is not None:
            self.history.append(recorded)
        raise error


@pytest.fixture
def engine(tmp_path):
    return FakeEngine(tmp_path, [release(1, "1.0.0"), release(2, "1.1.0")])


def test_deploy_refused_by_the_engine_lock_changes_no_configuration_and_does_not_roll_back(engine):
    engine.up_behaviour = [(UpdateNotStarted("stack is locked by another pulumi process"), None)]
    before = engine.stack_file("staging").read_bytes()
    with pytest.raises(UpdateNotStarted):
        ops.deploy(engine, "staging", "api 2.0.0")
    assert engine.ups == ["api 2.0.0"] and engine.applied == []
    assert engine.stack_file("staging").read_bytes() == before


def test_deploy_whose_update_left_no_history_entry_is_not_started_and_does_not_roll_back(engine):
    engine.up_behaviour = [(DeployError("error: could not start the program"), None)]
    with pytest.raises(UpdateNotStarted, match="did not start"):
        ops.deploy(engine, "staging", "api 2.0.0")
    assert engine.ups == ["api 2.0.0"] and engine.applied == []


def test_deploy_stopped_by_the_policy_preview_never_runs_up(engine):
    engine.preview_error = DeployError("[mandatory] require-verified-version")
    with pytest.raises(UpdateNotStarted, match="require-verified-version"):
        ops.deploy(engine, "staging", "api 2.0.0")
    assert engine.ups == [] and engine.applied == []


def test_failed_update_that_changed_resources_rolls_back_to_what_ran_before_it(engine):
    engine.up_behaviour = [(DeployError("error: smoke test failed"), release(3, "2.0.0", "failed"))]
    outcome = ops.deploy(engine, "staging", "api 2.0.0")
    assert not outcome.ok and outcome.rolled_back_to.number == 2
    assert engine.ups == ["api 2.0.0", "rollback to 2"]
    assert engine.applied[-1]["platform:services"]["objectValue"] == {"api": {"version": "1.1.0"}}


def test_rollback_target_is_what_ran_before_the_update_even_if_history_grew_meanwhile(engine):
    # A concurrent `pulumi up` outside deployctl recorded update 3; ours is 4 and failed.
    engine.history.append(release(3, "9.9.9", "failed"))
    engine.up_behaviour = [(DeployError("error: rollout failed"), release(4, "2.0.0", "failed"))]
    outcome = ops.deploy(engine, "staging", "api 2.0.0")
    assert outcome.rolled_back_to.number == 2


def migrated_release(number: int, api: str, result: str = "succeeded") -> Release:
    """A release whose configuration is a whole stack's (the migration check loads it)."""
    config = raw_stack_config("staging")
    config["services"]["api"]["version"] = api
    config["services"]["api"]["migration"] = {"name": f"migration-of-{api}", "command": ["/app/migrate", "up"],
                                              "down": ["/app/migrate", "down"]}
    entries = {f"platform:{key}": {"value": "", "secret": False, "objectValue": value} if isinstance(value, (dict, list))
               else {"value": value, "secret": False} for key, value in config.items()}
    return Release(number=number, kind="update", result=result, message=f"api {api}", start_time="",
                   end_time=None, resource_changes={"update": 1}, config=entries)


def migration_state(applied: list[Applied]) -> dict:
    """`pulumi stack export` of a stack whose api migration step recorded `applied`."""
    step = f"urn:pulumi:staging::platform::{MIGRATION_TYPE}::platform-api-migration"
    return {"deployment": {"resources": [
        {"urn": step, "type": MIGRATION_TYPE},
        {"urn": f"{step}$command:local:Command::run", "type": "command:local:Command", "parent": step,
         "outputs": {"stdout": record_text("api", applied, []), "environment": {"SERVICE": "api"}}}]}}


def test_a_failed_update_after_an_irreversible_migration_is_not_rolled_back_automatically_and_says_why(engine):
    engine.history = [migrated_release(1, "1.4.2"), migrated_release(2, "1.5.0")]
    applied = [Applied("1.5.0@200", "1.5.0", "shop/api:1.5.0", "0002-add-sku", ("/app/migrate", "down"), False, 200,
                       "main"),
               Applied("1.6.0@300", "1.6.0", "shop/api:1.6.0", "0003-prices-in-cents", None, True, 300, "main")]
    engine.exported_state = migration_state(applied)
    engine.up_behaviour = [(DeployError("error: api 1.6.0 never became ready"), release(3, "1.6.0", "failed"))]
    with pytest.raises(DeployError, match=r"(?s)never became ready.*not rolled back automatically to 2: .*"
                                          r"irreversible migration '0003-prices-in-cents'.*--restore-data"):
        ops.deploy(engine, "staging", "api 1.6.0")
    assert engine.ups == ["api 1.6.0"] and engine.applied == []


def test_the_automatic_rollback_skips_a_second_backup_when_it_reverts_no_schema(engine):
    # The failed update dumped the database seconds before, and the rollback returns to the
    # versions still serving: a second dump would protect nothing (components/predeploy.py).
    engine.history = [migrated_release(1, "1.4.2"), migrated_release(2, "1.5.0")]
    engine.config = lambda stack: migrated_release(3, "1.6.0").config
    engine.up_behaviour = [(DeployError("error: api 1.6.0 never became ready"), release(3, "1.6.0", "failed"))]
    outcome = ops.deploy(engine, "staging", "api 1.6.0")
    assert outcome.rolled_back_to.number == 2
    databases = sorted(raw_stack_config("staging")["databases"])
    assert databases and engine.covered == [[], databases]  # the deploy itself always backs up


def test_an_automatic_rollback_that_reverts_a_migration_backs_up_again(engine):
    engine.history = [migrated_release(1, "1.4.2"), migrated_release(2, "1.5.0")]
    engine.config = lambda stack: migrated_release(3, "1.6.0").config
    applied = [Applied("1.5.0@200", "1.5.0", "shop/api:1.5.0", "0002-add-sku", ("/app/migrate", "down"), False, 200,
                       "main"),
               Applied("1.6.0@300", "1.6.0", "shop/api:1.6.0", "0003-add-colour", ("/app/migrate", "down"), False,
                       300, "main")]
    engine.exported_state = migration_state(applied)
    engine.up_behaviour = [(DeployError("error: api 1.6.0 never became ready"), release(3, "1.6.0", "failed"))]
    outcome = ops.deploy(engine, "staging", "api 1.6.0")
    assert outcome.rolled_back_to.number == 2
    assert engine.covered == [[], []]


def test_a_failed_update_is_told_from_one_that_never_started_by_history_numbers_not_counts(engine):
    # A history read that holds only the newest entries (as `pulumi stack history` without
    # --page-size answers past 10 updates) has as many entries after the update as before.
    engine.history = [release(number, "1.0.0") for number in range(1, 13)]
    newest_ten = engine.releases
    engine.releases = lambda stack: newest_ten(stack)[-10:]
    engine.up_behaviour = [(DeployError("error: rollout failed"), release(13, "2.0.0", "failed"))]
    outcome = ops.deploy(engine, "staging", "api 2.0.0")
    assert not outcome.ok and outcome.rolled_back_to.number == 12
    assert engine.ups == ["api 2.0.0", "rollback to 12"]


def test_failed_update_that_changed_nothing_is_not_rolled_back(engine):
    engine.up_behaviour = [(DeployError("error: program failed"), release(3, "2.0.0", "failed", {"same": 40}))]
    with pytest.raises(DeployError, match="changed no resource"):
        ops.deploy(engine, "staging", "api 2.0.0")
    assert engine.ups == ["api 2.0.0"] and engine.applied == []


def test_a_second_operation_is_refused_at_once_naming_the_holder_and_changes_nothing(engine):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from deployctl.lease import LeaseStore\n"
         "with LeaseStore(Path(sys.argv[1])).hold('staging', 'deploy'):\n    print('held', flush=True); time.sleep(60)",
         str(engine.leases.directory)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert holder.stdout.readline().strip() == "held"
        before = engine.stack_file("staging").read_bytes()
        started = time.monotonic()
        with pytest.raises(UpdateNotStarted, match=r"'deploy' by .* \(pid %d\)" % holder.pid):
            ops.deploy(engine, "staging", "api 2.0.0")
        assert time.monotonic() - started < 2
        assert engine.ups == [] and engine.stack_file("staging").read_bytes() == before
    finally:
        holder.kill()
        holder.wait()


def test_a_promotion_refused_by_the_engine_lock_restores_the_stack_file(engine):
    engine.outputs = lambda stack: {"verifiedVersions": {"api": "3.0.0"}}
    engine.config = lambda stack: {"platform:services": {"value": "", "secret": False,
                                                         "objectValue": {"api": {"version": "2.0.0"}}}}
    engine.up_behaviour = [(UpdateNotStarted("locked"), None)]
    before = engine.stack_file("staging").read_bytes()
    with pytest.raises(UpdateNotStarted):
        ops.promote(engine, "dev", "staging")
    assert engine.stack_file("staging").read_bytes() == before
    assert any("back as it was" in notice for notice in engine.notices)


def test_lease_is_released_after_the_operation(tmp_path):
    store = LeaseStore(tmp_path)
    with store.hold("prod", "deploy"):
        assert store.read("prod").operation == "deploy"
    assert store.read("prod") is None


def test_lease_is_reentrant_within_one_process(tmp_path):
    store = LeaseStore(tmp_path)
    with store.hold("prod", "drill rollback"), store.hold("prod", "rollback"):
        assert store.read("prod").operation == "drill rollback"
    assert store.read("prod") is None


def test_lease_of_a_dead_process_on_this_host_is_taken_over_and_reported(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    notices: list[str] = []
    store = LeaseStore(tmp_path, notify=notices.append)
    stale = Lease(stack="prod", operation="deploy", owner="ci", host=socket.gethostname(), pid=dead.pid,
                  pid_start="1", started=time.time(), expires=time.time() + 3600)
    (tmp_path / "prod.json").write_text(json.dumps(stale.__dict__))
    with store.hold("prod", "deploy"):
        assert store.read("prod").pid == os.getpid()
    assert "stale deployctl lease" in notices[0] and f"pid {dead.pid}" in notices[0]


def test_lease_of_a_live_process_is_not_taken_over_whatever_its_expiry(tmp_path):
    store = LeaseStore(tmp_path)
    live = Lease(stack="prod", operation="deploy", owner="ci", host=socket.gethostname(), pid=os.getppid(),
                 pid_start=process_start(os.getppid()), started=time.time() - 7200, expires=time.time() - 3600)
    (tmp_path / "prod.json").write_text(json.dumps(live.__dict__))
    with pytest.raises(LeaseHeld, match=f"pid {os.getppid()}"):
        store.acquire("prod", "deploy")


def test_lease_from_another_host_is_honoured_until_it_expires(tmp_path):
    store = LeaseStore(tmp_path)
    remote = Lease(stack="prod", operation="deploy", owner="ci", host="runner-7", pid=1, pid_start="1",
                   started=time.time(), expires=time.time() + 60)
    (tmp_path / "prod.json").write_text(json.dumps(remote.__dict__))
    with pytest.raises(LeaseHeld, match="runner-7"):
        store.acquire("prod", "deploy")
    remote.expires = time.time() - 1
    (tmp_path / "prod.json").write_text(json.dumps(remote.__dict__))
    assert store.acquire("prod", "deploy").host == socket.gethostname()


def test_lease_holder_keeps_renewing_it(tmp_path):
    store = LeaseStore(tmp_path, ttl=0.3)
    with store.hold("prod", "deploy"):
        first = store.read("prod").expires
        time.sleep(0.5)
        assert store.read("prod").expires > first


def test_a_killed_holder_not_yet_reaped_counts_as_gone(tmp_path):
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not waited for: a zombie
    deadline = time.time() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.time() < deadline:
        time.sleep(0.05)
    assert process_start(zombie.pid) == ""
    zombie.wait()
