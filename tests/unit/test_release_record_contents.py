"""Release records: what they hold, where they are kept, and how history joins them."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.config import PlatformConfig
from components.config.loading import parse_platform_config
from components import registry
from deployctl import signing
from deployctl.history import Release, attach_records
from components.images import stack_images
from deployctl.records import Audit, RecordStore, ReleaseRecord, version_set_sha256
from deployctl.recording import recorded, running_versions
from deployctl.workspace import DeployError, UpdateNotStarted
from support import raw_stack_config

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def signing_key(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOYCTL_SIGNING_DIR", str(tmp_path / "keys"))


@pytest.fixture
def fake_registry():
    """A registry answering HEAD /v2/<repo>/manifests/<tag> for the tags in `tags`."""
    tags = {("shop/api", "1.5.0"): DIGEST_A}
    accepts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802
            accepts.append(self.headers.get("Accept", ""))
            repo, _, tag = self.path.removeprefix("/v2/").partition("/manifests/")
            digest = tags.get((repo, tag))
            self.send_response(200 if digest else 404)
            if digest:
                self.send_header("Docker-Content-Digest", digest)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}", tags, accepts
    server.shutdown()
    server.server_close()


def release(number: int, api: str, result: str = "succeeded", environment: dict | None = None) -> Release:
    return Release(number=number, kind="update", result=result, message=f"api {api}", start_time="2026-01-01T00:00:0"
                   f"{number}Z", end_time=None, config={"platform:services": {"value": "", "secret": False,
                                                                            "objectValue": {"api": {"version": api}}}},
                   environment=environment or {})


class Engine:
    """The slice of the engine a record needs: a project, history and an environment."""

    def __init__(self, tmp_path: Path, history: list[Release]) -> None:
        self.project, self.history, self.env, self.notices = tmp_path, history, {}, []
        self.env_during: dict = {}

    def releases(self, stack: str) -> list[Release]:
        return list(self.history)

    def on_notice(self, line: str) -> None:
        self.notices.append(line)

    def config(self, stack: str) -> dict:
        return {}


def test_registry_digest_is_the_docker_content_digest_of_a_head_request(fake_registry):
    host, _, accepts = fake_registry
    resolved = registry.resolve(f"{host}/shop/api", "1.5.0")
    assert resolved.digest == DIGEST_A and resolved.error is None
    assert "application/vnd.oci.image.index.v1+json" in accepts[0]
    assert "application/vnd.docker.distribution.manifest.v2+json" in accepts[0]


def test_fails_to_resolve_a_tag_the_registry_lacks_naming_the_image(fake_registry):
    host, _, _ = fake_registry
    resolved = registry.resolve(f"{host}/shop/api", "9.9.9")
    assert resolved.digest is None and f"{host}/shop/api:9.9.9: not in the registry" in resolved.error


def test_fails_to_resolve_when_the_registry_is_unreachable():
    resolved = registry.resolve("127.0.0.1:9/shop/api", "1.5.0", timeout=2)
    assert resolved.digest is None and "registry unreachable" in resolved.error


def test_a_repository_without_a_registry_host_means_docker_hub():
    assert registry.split_repository("postgres") == ("registry-1.docker.io", "library/postgres")
    assert registry.split_repository("127.0.0.1:5000/shop/api") == ("127.0.0.1:5000", "shop/api")
    assert registry.manifest_url("127.0.0.1:5000/shop/api", "1.4.2") == "http://127.0.0.1:5000/v2/shop/api/manifests/1.4.2"


def test_version_set_sha256_is_the_sha256_of_the_pinned_images_in_name_order():
    images = {"web": {"image": "r/web", "digest": DIGEST_B}, "api": {"image": "r/api", "digest": DIGEST_A}}
    expected = hashlib.sha256(json.dumps({"api": f"r/api@{DIGEST_A}", "web": f"r/web@{DIGEST_B}"},
                                         separators=(",", ":")).encode()).hexdigest()
    assert version_set_sha256(images) == expected


def test_version_set_sha256_changes_when_one_digest_changes():
    one = {"api": {"image": "r/api", "digest": DIGEST_A}}
    other = {"api": {"image": "r/api", "digest": DIGEST_B}}
    assert version_set_sha256(one) != version_set_sha256(other)


def test_version_set_sha256_is_unknown_while_a_digest_is():
    assert version_set_sha256({"api": {"image": "r/api", "digest": None}}) is None


def test_stack_images_cover_services_canaries_edge_databases_and_the_backup_exporter():
    raw = raw_stack_config("staging")
    raw["services"]["api"]["canary"] = {"version": "1.5.0", "weight": 10}
    config: PlatformConfig = parse_platform_config(raw, "staging")
    images = stack_images(config)
    assert images["api"] == ("127.0.0.1:5000/shop/api", config.services["api"].version)
    assert images["api-canary"] == ("127.0.0.1:5000/shop/api", "1.5.0")
    assert images["edge"] == (config.edge.image, config.edge.version)
    assert set(images) >= {"web", "worker", "database-main", "backup-exporter", "prometheus", "alertmanager"}
    assert "node-exporter" not in images  # Kubernetes: the stack runs no exporters of its own


def test_stack_images_on_docker_include_its_prometheus_and_alertmanager():
    raw = raw_stack_config("staging")
    raw["target"] = "docker"
    raw.pop("kubernetes", None)
    images = stack_images(parse_platform_config(raw, "staging"))
    assert {"prometheus", "alertmanager", "node-exporter", "postgres-exporter", "blackbox-exporter"} <= set(images)


def test_running_versions_are_the_newest_succeeded_updates():
    assert running_versions([release(1, "1.0.0"), release(2, "2.0.0", "failed")]) == {"api": "1.0.0"}


def test_record_of_a_refused_operation_says_refused_and_why(tmp_path):
    engine = Engine(tmp_path, [release(1, "1.0.0")])
    store = RecordStore(tmp_path / "records")
    audit = Audit(actor="alice", reason="hotfix", correlation_id="c-1", store=store, notify=False)
    with pytest.raises(UpdateNotStarted):
        with recorded(engine, "staging", "deploy", audit, engine.history):
            raise UpdateNotStarted("preflight check 'disk' failed")
    [record] = store.records("staging")
    assert record["outcome"] == "refused" and "'disk'" in record["error"]
    assert (record["actor"], record["reason"], record["correlation_id"]) == ("alice", "hotfix", "c-1")
    assert record["versions_before"] == record["versions_after"] == {"api": "1.0.0"} and record["updates"] == []


def test_record_of_a_failed_operation_lists_the_update_it_made(tmp_path):
    engine = Engine(tmp_path, [release(1, "1.0.0")])
    store = RecordStore(tmp_path / "records")
    audit = Audit(actor="bob", correlation_id="c-2", store=store, notify=False)
    with pytest.raises(DeployError):
        with recorded(engine, "staging", "deploy", audit, list(engine.history)):
            engine.history.append(release(2, "2.0.0", "failed", {"ci.system": "deployctl", "ci.build.id": "c-2"}))
            raise DeployError("smoke test failed")
    [record] = store.records("staging")
    assert record["outcome"] == "failed" and record["updates"] == [2]
    assert record["duration_seconds"] >= 0 and record["finished_at"]


def test_updates_made_under_another_correlation_id_are_not_the_records(tmp_path):
    engine = Engine(tmp_path, [release(1, "1.0.0")])
    store = RecordStore(tmp_path / "records")
    with recorded(engine, "staging", "deploy", Audit(correlation_id="mine", store=store, notify=False),
                  list(engine.history)):
        engine.history.append(release(2, "2.0.0", environment={"ci.system": "deployctl", "ci.build.id": "theirs"}))
    assert store.records("staging")[0]["updates"] == []


def test_pulumi_gets_the_correlation_id_and_operation_as_ci_metadata_during_the_operation(tmp_path):
    engine = Engine(tmp_path, [])
    engine.env["PULUMI_CI_SYSTEM"] = "outer"
    store = RecordStore(tmp_path / "records")
    with recorded(engine, "staging", "promote", Audit(correlation_id="c-3", store=store, notify=False), []) as record:
        during = dict(engine.env)
    assert during["PULUMI_CI_SYSTEM"] == "deployctl" and during["PULUMI_CI_BUILD_ID"] == "c-3"
    assert during["PULUMI_CI_BUILD_TYPE"] == "promote" and during["PULUMI_CI_BUILD_URL"] == record.path.as_uri()
    assert engine.env == {"PULUMI_CI_SYSTEM": "outer"}  # restored afterwards


def test_record_files_are_signed_evidence(tmp_path):
    engine = Engine(tmp_path, [])
    store = RecordStore(tmp_path / "records")
    with recorded(engine, "staging", "deploy", Audit(store=store, notify=False), []) as record:
        pass
    body = signing.verify_text(record.path.read_text(), signing.trusted_public_key())
    assert body["kind"] == "release" and body["outcome"] == "succeeded"


def test_without_an_audit_nothing_is_written(tmp_path):
    engine = Engine(tmp_path, [])
    with recorded(engine, "staging", "deploy", None, []) as record:
        pass
    assert record.path is None and not (tmp_path / ".state").exists() and engine.env == {}


def test_history_joins_each_update_to_the_record_that_made_it():
    releases = [release(1, "1.0.0"), release(2, "2.0.0"), release(3, "3.0.0", environment={
        "ci.system": "deployctl", "ci.build.id": "lost-record"})]
    records = [{"operation": "deploy", "actor": "alice", "reason": "r", "correlation_id": "c-9", "outcome": "succeeded",
                "updates": [2], "images": {"api": {"digest": DIGEST_A}}, "version_set_sha256": "f" * 64}]
    entries = attach_records(releases, records)
    assert "record" not in entries[0]
    assert entries[1]["record"]["actor"] == "alice" and entries[1]["record"]["digests"] == {"api": DIGEST_A}
    assert entries[2]["record"] == {"correlationId": "lost-record"}


def test_a_record_times_each_phase_and_adds_up_repeated_ones():
    record = ReleaseRecord("deploy", "staging", "a", None, "c")
    for _ in range(2):
        with record.phase("update"):
            pass
    assert set(record.durations) == {"update"} and record.durations["update"] >= 0


def test_a_rollback_keeps_todays_notification_and_preflight_settings(tmp_path):
    from deployctl.stack_settings import apply_release_config

    class ConfigEngine:
        def __init__(self) -> None:
            self.removed, self.set = [], {}

        def stack_file(self, stack):
            return tmp_path / f"Pulumi.{stack}.yaml"

        def config(self, stack):
            return {"platform:services": {"value": "", "objectValue": {"api": {"version": "2.0.0"}}, "secret": False},
                    "platform:notifications": {"value": "", "objectValue": {"webhook": {"urlSecret": "u"}},
                                               "secret": False},
                    "platform:preflight": {"value": "", "objectValue": {"minFreeDiskPercent": 30}, "secret": False}}

        def remove_config(self, stack, keys):
            self.removed += keys

        def set_config_json(self, stack, entries):
            self.set = entries

    engine = ConfigEngine()
    old = Release(number=1, kind="update", result="succeeded", message="", start_time="", end_time=None, config={
        "platform:services": {"value": "", "objectValue": {"api": {"version": "1.0.0"}}, "secret": False},
        "platform:notifications": {"value": "", "objectValue": {}, "secret": False}})
    apply_release_config(engine, "staging", old)
    assert engine.removed == [] and set(engine.set) == {"platform:services"}


def test_a_rollback_leaves_out_project_defaults_the_stack_file_does_not_set(tmp_path):
    from deployctl.stack_settings import apply_release_config

    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  platform:services: {api: {version: 2.0.0}}\n"
                                               "  platform:rollout: {}\n")
    written = {}

    class ConfigEngine:
        def stack_file(self, stack):
            return tmp_path / f"Pulumi.{stack}.yaml"

        def config(self, stack):  # `pulumi config` shows Pulumi.yaml's `default: {}` keys too
            return {key: {"value": "", "objectValue": value, "secret": False} for key, value in
                    {"platform:services": {"api": {"version": "2.0.0"}}, "platform:rollout": {},
                     "platform:smokeTest": {}, "platform:docker": {}}.items()}

        def remove_config(self, stack, keys):
            pass

        def set_config_json(self, stack, entries):
            written.update(entries)

    old = Release(number=1, kind="update", result="succeeded", message="", start_time="", end_time=None, config={
        key: {"value": "", "objectValue": value, "secret": False} for key, value in
        {"platform:services": {"api": {"version": "1.0.0"}}, "platform:rollout": {}, "platform:smokeTest": {},
         "platform:docker": {}}.items()})
    apply_release_config(ConfigEngine(), "dev", old)
    assert set(written) == {"platform:services", "platform:rollout"}


def dead_process() -> dict:
    """host/pid/pid_start of a process that ran and has ended (reaped)."""
    import socket
    import subprocess

    from deployctl.lease import process_start

    child = subprocess.Popen(["sleep", "30"])
    identity = {"host": socket.gethostname(), "pid": child.pid, "pid_start": process_start(child.pid)}
    child.kill()
    child.wait()
    return identity


def left_running(store: RecordStore, process: dict) -> Path:
    """The record file a killed deployctl leaves: outcome still "running"."""
    from deployctl.recording import write

    record = ReleaseRecord(operation="deploy", stack="staging", actor="alice", reason=None, correlation_id="c-old")
    record.process = process
    write(store, record)
    return record.path


def test_a_record_left_running_by_a_killed_operation_is_marked_interrupted_by_the_next(tmp_path):
    engine = Engine(tmp_path, [release(1, "1.0.0")])
    store = RecordStore(tmp_path / "records")
    left = left_running(store, dead_process())
    with recorded(engine, "staging", "deploy", Audit(correlation_id="c-new", store=store, notify=False), engine.history):
        pass
    old = json.loads(left.read_text())
    assert old["outcome"] == "interrupted"
    assert "c-new" in old["error"] and "ended before the operation finished" in old["error"]
    assert signing.verify_text(left.read_text(), signing.trusted_public_key())["outcome"] == "interrupted"


def test_a_record_whose_process_still_runs_stays_running(tmp_path):
    from deployctl.records import this_process

    engine = Engine(tmp_path, [release(1, "1.0.0")])
    store = RecordStore(tmp_path / "records")
    left = left_running(store, this_process())
    with recorded(engine, "staging", "deploy", Audit(correlation_id="c-new", store=store, notify=False), engine.history):
        pass
    assert json.loads(left.read_text())["outcome"] == "running"
