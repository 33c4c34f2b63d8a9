"""`deployctl rollback` across migrations, decided before anything changes (deployctl/migrations.py,
deployctl/rollbacks.py schema_rollback): chains read from the exported state, refusal naming the
irreversible migration, the backup set chosen for --restore-data and the RPO window recorded."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from components.migration_plan import Applied, Plan, record_text
from components.migrations import TYPE
from components.config.loading import parse_platform_config
from components.targets.job_environment import job_environment
from deployctl import migrations
from deployctl.history import releases_from_history
from deployctl.rollbacks import schema_rollback
from deployctl.records import ReleaseRecord
from deployctl.workspace import DeployError, UpdateNotStarted
from support import raw_stack_config

DOWN = ["/app/migrate", "down"]


def epoch(text: str) -> float:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()


A = Applied("1.4.2@100", "1.4.2", "shop/api:1.4.2", "0001-initial", tuple(DOWN), False, 100, "main")
B = Applied("1.5.0@200", "1.5.0", "shop/api:1.5.0", "0002-add-sku", tuple(DOWN), False, 200, "main")
C = Applied("1.6.0@300", "1.6.0", "shop/api:1.6.0", "0003-prices-in-cents", None, True, 300, "main")


def exported(chain, service="api", secret=False):
    stdout = record_text(service, chain, [])
    if secret:
        stdout = {migrations._ENVELOPE: "1b47061264138c4ac30d75fd1eb44270", "plaintext": json.dumps(stdout)}
    step = f"urn:pulumi:staging::platform::{TYPE}::platform-{service}-migration"
    return {"deployment": {"resources": [
        {"urn": step, "type": TYPE},
        {"urn": step + "$command:local:Command::run", "type": "command:local:Command", "parent": step,
         "outputs": {"stdout": stdout, "environment": {"SERVICE": service}}},
        {"urn": "other", "type": "command:local:Command", "outputs": {"stdout": record_text("web", [A], [])}},
    ]}}


class FakeEngine:
    def __init__(self, state, secret_state=None):
        self.state, self.secret_state, self.calls = state, secret_state, []

    def cli(self, *args):
        self.calls.append(args)
        state = self.secret_state if "--show-secrets" in args else self.state
        return subprocess.CompletedProcess(args, 0, json.dumps(state), "")


def release_with(version: str, migration: dict | None):
    services = raw_stack_config("staging")["services"]
    services["api"]["version"] = version
    if migration:
        services["api"]["migration"] = migration
    config = {f"platform:{k}": {"value": "", "secret": False, "objectValue": v} if isinstance(v, (dict, list))
              else {"value": v, "secret": False} for k, v in {**raw_stack_config("staging"), "services": services}.items()}
    [release] = releases_from_history([{"kind": "update", "result": "succeeded", "message": "", "version": 1,
                                        "startTime": "2026-12-02T06:00:00Z", "config": config}])
    return release


def test_reads_each_service_chain_from_the_migration_step_output():
    assert migrations.applied_chains(FakeEngine(exported([A, B])), "staging") == {"api": [A, B]}


def test_reads_a_secret_chain_decrypted_only_when_it_has_to():
    engine = FakeEngine(exported([A], secret=True) | {}, secret_state=exported([A, B], secret=True))
    engine.state["deployment"]["resources"][1]["outputs"]["stdout"].pop("plaintext")  # ciphertext only
    assert migrations.applied_chains(engine, "staging") == {"api": [A, B]}
    assert any("--show-secrets" in call for call in engine.calls)


def test_rollback_across_a_reversible_migration_goes_ahead_and_records_the_down_step():
    record = ReleaseRecord("rollback", "staging", "me", "test", "c1")
    target = release_with("1.4.2", {"name": "0001-initial", "command": ["/app/migrate", "up"], "down": DOWN})
    plans = schema_rollback(FakeEngine(exported([A, B])), "staging", target, record, restore_data=False)
    assert [s.kind for s in plans["api"].steps] == ["down"]
    assert record.details["migrations"]["api"]["steps"][0] == {"kind": "down", "migration": "0002-add-sku",
                                                               "version": "1.5.0", "image": "shop/api:1.5.0"}


def test_fails_a_rollback_across_an_irreversible_migration_naming_it_before_anything_changes():
    record = ReleaseRecord("rollback", "staging", "me", "test", "c1")
    target = release_with("1.5.0", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "down": DOWN})
    engine = FakeEngine(exported([A, B, C]))
    with pytest.raises(UpdateNotStarted, match=r"irreversible migration '0003-prices-in-cents' \(applied by api "
                                               r"1.6.0\).*--restore-data.*Nothing changed"):
        schema_rollback(engine, "staging", target, record, restore_data=False)
    assert all(call[0] == "stack" and call[1] == "export" for call in engine.calls)  # it only read the state
    assert record.details["migrations"]["api"]["irreversible"] == [
        {"migration": "0003-prices-in-cents", "version": "1.6.0", "id": "1.6.0@300"}]


def test_with_restore_data_the_irreversible_rollback_is_planned_for_a_restore():
    record = ReleaseRecord("rollback", "staging", "me", "test", "c1")
    target = release_with("1.5.0", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "down": DOWN})
    plans = schema_rollback(FakeEngine(exported([A, B, C])), "staging", target, record, restore_data=True)
    assert plans["api"].refused == (C,)


def test_the_backup_set_restored_is_the_newest_one_started_before_the_migration():
    listing = "\n".join(["20261202T060000Z.dump", "20261202T060000Z.dump.sha256", "20261202T061000Z.dump",
                         "20261202T062000Z.dump", "20261202T061500Z.dump.partial", "last_success", ".metrics"])
    assert migrations.set_before(listing, epoch("20261202T061500Z")) == "20261202T061000Z"
    assert migrations.set_before(listing, epoch("20261202T055959Z")) is None


def test_the_record_of_a_restore_gives_the_rpo_as_a_window_from_the_backup_to_the_restore():
    restored = migrations.Restored("api", C, {"backup": "20261202T061000Z", "dump": "20261202T061000Z.dump",
                                              "restored_at": epoch("20261202T063000Z"), "seconds": 2})
    entry = restored.to_record()
    assert entry["rpo_seconds"] == 1200
    assert entry["rpo_window"] == {"from": "2026-12-02T06:10:00+00:00", "to": "2026-12-02T06:30:00+00:00"}
    assert (entry["migration"], entry["database"], entry["backup"]) == ("0003-prices-in-cents", "main",
                                                                        "20261202T061000Z")


def test_the_backups_are_listed_where_the_stack_target_runs_its_jobs():
    config = parse_platform_config(raw_stack_config("staging"), "staging")
    settings = job_environment(config, "staging")
    assert settings["target"] == "kubernetes" and settings["namespace"] == "shop-staging"


def test_fails_to_restore_a_stack_that_only_renders_manifests_naming_why():
    config = parse_platform_config(raw_stack_config("staging"), "staging")
    rendered = config.model_copy(update={"kubernetes": config.kubernetes.model_copy(
        update={"render_to_directory": "rendered/staging"})})
    with pytest.raises(DeployError, match=r"^staging: nothing of it runs in a cluster \(rendered manifests\): "
                                          "restore there$"):
        migrations.restore_before(rendered, "staging", "api", Plan(steps=(), chain=(A, B), refused=(C,)))
