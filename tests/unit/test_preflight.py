"""Preflight: each check in order, and the first that fails stops the operation naming itself."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

from components.config.loading import parse_platform_config
from components.targets.hosts import DockerHost, KubernetesCluster, RenderDirectory, host_for
from deployctl.preflight import PreflightFailed, run_checks
from support import raw_stack_config

DIGEST = "sha256:" + "c" * 64
RESOLVED = {"api": {"image": "127.0.0.1:5000/shop/api", "version": "1.5.0", "digest": DIGEST, "error": None}}


def config(stack: str = "staging", **changes):
    raw = raw_stack_config(stack)
    for key, value in changes.items():
        raw[key] = value
    return parse_platform_config(raw, stack)


def answers(table: dict[str, tuple[int, str]]):
    """A runner that answers commands by their first matching words."""
    calls: list[list[str]] = []

    def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
        calls.append(command)
        text = " ".join(command)
        for words, (code, out) in table.items():
            if words in text:
                return subprocess.CompletedProcess(command, code, out, "" if code == 0 else out)
        return subprocess.CompletedProcess(command, 1, "", f"unexpected command {text}")

    run.calls = calls
    return run


def test_render_directory_passes_every_check_with_room_to_spare(tmp_path):
    checks = run_checks(config(preflight={"minFreeDiskPercent": 0}), RenderDirectory(tmp_path / "rendered"), RESOLVED)
    assert [c.name for c in checks] == ["target", "disk", "registry"] and all(c.ok for c in checks)


def test_fails_the_disk_check_below_the_configured_threshold(tmp_path):
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(preflight={"minFreeDiskPercent": 100}), RenderDirectory(tmp_path), RESOLVED)
    assert failed.value.failed.name == "disk"
    assert "preflight check 'disk' failed" in str(failed.value) and "needs >= 100%" in str(failed.value)
    assert "minFreeDiskPercent" in str(failed.value) and "nothing was changed" in str(failed.value)


def test_the_default_disk_threshold_is_twenty_percent():
    assert config().preflight.min_free_disk_percent == 20


def test_fails_the_registry_check_naming_the_missing_image(tmp_path):
    missing = {**RESOLVED, "web": {"image": "127.0.0.1:5000/shop/web", "version": "9.9.9", "digest": None,
                                   "error": "127.0.0.1:5000/shop/web:9.9.9: not in the registry"}}
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(preflight={"minFreeDiskPercent": 0}), RenderDirectory(tmp_path), missing)
    assert failed.value.failed.name == "registry" and "shop/web:9.9.9: not in the registry" in str(failed.value)
    assert "push the image" in str(failed.value)


def test_an_unreachable_docker_daemon_fails_first_and_nothing_else_is_asked():
    runner = answers({"info": (1, "Cannot connect to the Docker daemon")})
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(), DockerHost("unix:///nowhere.sock", "staging", True, runner), RESOLVED)
    assert failed.value.failed.name == "target" and len(runner.calls) == 1
    assert runner.calls[0][:3] == ["docker", "--host", "unix:///nowhere.sock"]


def test_a_deployed_docker_stack_without_its_edge_network_fails(tmp_path):
    info = json.dumps({"ServerVersion": "28.0", "DockerRootDir": str(tmp_path)})
    runner = answers({"info": (0, info), "network inspect staging-frontend": (1, "No such network")})
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(preflight={"minFreeDiskPercent": 0}), DockerHost(None, "staging", True, runner), RESOLVED)
    assert failed.value.failed.name == "network" and "pulumi refresh" in str(failed.value)


def test_a_first_docker_deploy_needs_no_edge_network_yet(tmp_path):
    info = json.dumps({"ServerVersion": "28.0", "DockerRootDir": str(tmp_path)})
    runner = answers({"info": (0, info), "network inspect": (1, "No such network")})
    checks = run_checks(config(preflight={"minFreeDiskPercent": 0}), DockerHost(None, "staging", False, runner), RESOLVED)
    assert [c.name for c in checks] == ["target", "disk", "network", "registry"]


def test_docker_over_ssh_measures_the_remote_data_root_with_df():
    info = json.dumps({"ServerVersion": "28.0", "DockerRootDir": "/srv/docker"})
    df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1200 900 100 90% /srv\n"
    runner = answers({"info": (0, info), "ssh deploy@host df -Pk /srv/docker": (0, df),
                      "network inspect": (0, "staging-frontend")})
    host = DockerHost("ssh://deploy@host", "staging", True, runner)
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(), host, RESOLVED)
    assert failed.value.failed.name == "disk" and "10.0% free on /srv/docker on deploy@host" in str(failed.value)


def test_free_disk_is_counted_as_df_does_without_reserved_blocks():
    from components.targets.hosts import free_share

    # df: 1200 blocks, 900 used, 100 available to users (200 reserved): Use% 90, so 10 % free.
    assert free_share(100, 900) == 10.0


def test_kubernetes_disk_is_the_fullest_nodes_from_the_kubelet_summary():
    nodes = json.dumps({"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]})
    runner = answers({"/readyz": (0, "ok"), "get nodes": (0, nodes),
                      "nodes/a/proxy": (0, json.dumps({"node": {"fs": {"availableBytes": 50, "capacityBytes": 100}}})),
                      "nodes/b/proxy": (0, json.dumps({"node": {"fs": {"availableBytes": 10, "capacityBytes": 100}}}))})
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(), KubernetesCluster(["kubectl"], runner), RESOLVED)
    assert "10.0% free on node b" in str(failed.value)


def test_a_cluster_that_is_not_ready_fails_the_target_check():
    runner = answers({"/readyz": (1, "connection refused")})
    with pytest.raises(PreflightFailed) as failed:
        run_checks(config(), KubernetesCluster(["kubectl"], runner), RESOLVED)
    assert failed.value.failed.name == "target" and "connection refused" in str(failed.value)


def test_a_rendering_stack_is_checked_at_its_render_directory(tmp_path):
    raw = raw_stack_config("staging")
    raw["kubernetes"] = {**raw.get("kubernetes", {}), "renderToDirectory": "rendered/staging"}
    raw["edge"]["tls"] = {"mode": "self-signed"}
    host = host_for(parse_platform_config(raw, "staging"), "staging", tmp_path, True)
    assert isinstance(host, RenderDirectory) and host.directory == tmp_path / "rendered" / "staging"


class StackEngine:
    """The engine slice ops.deploy uses, with the committed staging config rendering to tmp_path."""

    def __init__(self, tmp_path, raw: dict) -> None:
        from deployctl.lease import LeaseStore

        self.project, self.env, self.notices, self.previews, self.ups = tmp_path, {}, [], 0, []
        self.leases = LeaseStore(tmp_path / "leases", notify=self.notices.append)
        self.entries = {f"platform:{key}": ({"value": json.dumps(value), "objectValue": value, "secret": False}
                                            if isinstance(value, (dict, list)) else {"value": value, "secret": False})
                        for key, value in raw.items()}
        self.stack_file("staging").write_text("config: {}\n")

    def on_notice(self, line: str) -> None:
        self.notices.append(line)

    def stack_file(self, stack):
        return self.project / f"Pulumi.{stack}.yaml"

    def backend_directory(self):
        return self.project / "state"

    def reads_held(self):
        return contextlib.nullcontext()

    def forget_reads(self) -> None:
        pass

    def recover_interrupted(self, stack):
        pass

    def releases(self, stack):
        return []

    def config(self, stack):
        return self.entries

    def outputs(self, stack):
        return {}

    def preview(self, stack, policy_config=None):
        self.previews += 1

    def up(self, stack, message, policy_config=None, backups_covered=()):
        self.ups.append(message)


def rendering_staging(**preflight) -> dict:
    raw = raw_stack_config("staging")
    raw["kubernetes"] = {**raw.get("kubernetes", {}), "renderToDirectory": "rendered/staging"}
    raw["edge"]["tls"] = {"mode": "self-signed"}
    raw["preflight"] = preflight
    return raw


def test_a_deploy_that_fails_preflight_never_previews_and_records_the_refusal(tmp_path):
    from deployctl import operations as ops
    from deployctl.records import Audit, store_for
    from deployctl.workspace import UpdateNotStarted

    engine = StackEngine(tmp_path, rendering_staging(minFreeDiskPercent=100))
    audit = Audit(actor="alice", store=store_for(engine), notify=False)
    with pytest.raises(UpdateNotStarted, match="preflight check 'disk' failed"):
        ops.deploy(engine, "staging", "api 1.5.0", audit=audit)
    assert engine.previews == 0 and engine.ups == []
    [record] = audit.store.records("staging")
    assert record["outcome"] == "refused" and [c["name"] for c in record["preflight"]] == ["target", "disk"]


def test_a_forced_deploy_without_a_reason_is_refused(tmp_path):
    from deployctl import operations as ops
    from deployctl.records import Audit, store_for
    from deployctl.workspace import UpdateNotStarted

    engine = StackEngine(tmp_path, rendering_staging())
    with pytest.raises(UpdateNotStarted, match="needs --reason"):
        ops.deploy(engine, "staging", "m", audit=Audit(store=store_for(engine), notify=False, preflight=False))
    assert engine.previews == 0
