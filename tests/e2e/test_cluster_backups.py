"""Backups of a service's volume with its database on the real local cluster (issue 15, files
half): a file the api writes to its uploads claim survives backup -> wipe -> restore drill, checked
by sha256; a backup claim that is really full (a size-limited tmpfs under its hostPath volume)
fails the next backup Job loudly, deletes nothing, and makes BackupStale's expression true
(evaluated by promtool on the rule the stack deployed, with the values the exporter serves)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest
import yaml

from cluster import deploy_to_cluster
from engine import Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "e2e-backups-db-password-2b7d", "sessionSigningKey": "e2e-backups-signing-key-6a1f"}
STACK, NAMESPACE = "staging", "e2e-backups"
SET_RE = r"^[0-9]{8}T[0-9]{6}Z\.dump$"


@pytest.fixture(scope="module")
def stack(cluster, tmp_path_factory):
    cluster.fresh_namespace(NAMESPACE)
    project = Project(tmp_path_factory.mktemp("cluster-backups"))
    project.init_stack(STACK, SECRETS)
    deploy_to_cluster(project, STACK, NAMESPACE, http_port=32087, https_port=32449)
    project.set_config(STACK, "services.api.volumes.uploads.mountPath", "/data/uploads")
    project.set_config(STACK, "services.api.volumes.uploads.size", "64Mi")
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=1200)
    yield project
    cluster.drop_namespace(NAMESPACE)


def in_exporter(cluster, script: str) -> str:
    """The backup-results exporter mounts the backup claim: read what the jobs left there."""
    return cluster.exec(NAMESPACE, "deploy/backup-metrics-main", script)


def sets(cluster) -> list[str]:
    listing = in_exporter(cluster, f"ls -1 /backups/main | grep -E '{SET_RE}' || true").split()
    return sorted(name[:-5] for name in listing)


def evidence(project: Project) -> dict:
    newest = sorted((project.dir / "evidence" / STACK).glob("drill-restore-*.json"))[-1]
    return json.loads(newest.read_text())


def test_the_api_writes_a_file_to_its_claim_and_it_survives_backup_wipe_and_restore_drill_by_sha256(cluster, stack):
    written = cluster.exec(NAMESPACE, "deploy/api", "head -c 300000 /dev/urandom > /data/uploads/photo.bin && "
                                                   "id -u && sha256sum /data/uploads/photo.bin").split()
    uid, digest = written[0], written[1]
    assert uid == "65534"  # the api's own user: the claim's root was handed to it
    stack.deployctl("drill", "restore", STACK, "--backup-first")
    first = evidence(stack)["details"]["databases"]["main"]
    listed = in_exporter(cluster, f"cat /backups/main/{first['backup_set']}.api-uploads.files.sha256")
    assert f"{digest}  ./photo.bin" in listed
    assert first["stack_update"]["update"] == 1

    cluster.exec(NAMESPACE, "deploy/api", "rm -f /data/uploads/photo.bin")
    stack.deployctl("drill", "restore", STACK)
    drill = evidence(stack)
    main = drill["details"]["databases"]["main"]
    assert drill["passed"] is True and main["backup_set"] == first["backup_set"]
    uploads = main["volumes"]["api-uploads"]
    assert uploads["files"] == uploads["files_verified"] == 1
    assert uploads["file_list_sha256"] == hashlib.sha256(listed.encode()).hexdigest()

    # The restore for real (what `deployctl rollback --restore-data` runs): the restore job writes
    # the api's claim as its owner, and the file is back in the api, the api's own.
    report = stack.restore_live(STACK, "main", first["backup_set"])
    assert report["report"]["into"] == "live" and report["backup_set"] == first["backup_set"]
    back = cluster.exec(NAMESPACE, "deploy/api", "sha256sum /data/uploads/photo.bin && stat -c %u /data/uploads/photo.bin")
    assert back.split()[0] == digest and back.split()[-1] == "65534"
    print(f"cluster: volume file restored by the drill (RTO {main['rto_seconds']:.0f}s) and live "
          f"(RPO {report['rpo_seconds']:.0f}s)")


def claim_directory(cluster, claim: str) -> str:
    volume = cluster.get(NAMESPACE, "pvc", claim)["spec"]["volumeName"]
    return os.path.realpath(json.loads(cluster.kubectl("get", "pv", volume, "-o", "json"))["spec"]["hostPath"]["path"])


def run_job(cluster, cronjob: str, name: str, timeout: int = 240) -> tuple[bool, str]:
    cluster.kubectl("--namespace", NAMESPACE, "create", "job", name, f"--from=cronjob/{cronjob}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = {c["type"] for c in cluster.get(NAMESPACE, "job", name)["status"].get("conditions", [])
                      if c["status"] == "True"}
        if conditions & {"Complete", "Failed"}:
            break
        time.sleep(2)
    # Each attempt is a pod of its own (restartPolicy Never): the newest one's log is the last attempt's.
    pods = sorted(cluster.get(NAMESPACE, "pods", "-l", f"job-name={name}")["items"],
                  key=lambda pod: pod["metadata"]["creationTimestamp"])
    logs = "".join(cluster.kubectl("--namespace", NAMESPACE, "logs", pod["metadata"]["name"], "-c", "backup")
                   for pod in pods[-1:])
    return "Complete" in conditions, logs


def test_a_full_backup_claim_fails_the_backup_loudly_deletes_nothing_and_makes_backup_stale_true(cluster, stack, tmp_path):
    ok, log = run_job(cluster, "backup-main", f"backup-good-{int(time.time())}")
    assert ok, log
    before = sets(cluster)
    checksums = in_exporter(cluster, "cd /backups/main && cat *.sha256 | sort")
    directory = claim_directory(cluster, "backups-main")
    info = os.stat(directory)
    used_kib = int(subprocess.run(["du", "-sk", directory], capture_output=True, text=True, check=True).stdout.split()[0])
    saved = tmp_path / "saved"
    subprocess.run(["cp", "-a", f"{directory}/.", str(saved)], check=True)
    options = f"size={used_kib + 1024}k,mode={oct(info.st_mode & 0o7777)[2:]},uid={info.st_uid},gid={info.st_gid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "backups-e2e", directory], check=True)
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", directory], check=True)
        subprocess.run(["sh", "-c", f"dd if=/dev/zero of={directory}/filler bs=64k 2>/dev/null; sync"], check=False)
        # The exporter's pod bound the claim before the tmpfs: a new pod sees it (new Jobs do anyway).
        cluster.kubectl("--namespace", NAMESPACE, "rollout", "restart", "deployment/backup-metrics-main")
        cluster.kubectl("--namespace", NAMESPACE, "rollout", "status", "deployment/backup-metrics-main", "--timeout=180s",
                        timeout=200)
        deadline = time.monotonic() + 120  # the old pod gone, so exec reaches the new one
        while len(cluster.get(NAMESPACE, "pods", "-l", "app.kubernetes.io/name=backup-metrics-main")["items"]) > 1:
            assert time.monotonic() < deadline, "the old backup-metrics pod did not go away"
            time.sleep(2)
        assert int(in_exporter(cluster, "df -Pk /backups | tail -1").split()[3]) < 64
        ok, log = run_job(cluster, "backup-main", f"backup-full-{int(time.time())}")
        print(f"cluster: full backup claim: {log.strip()[-300:]}")
        assert not ok and "backup of main REFUSED" in log and "none is deleted to make room" in log
        assert sets(cluster) == before
        assert in_exporter(cluster, "cd /backups/main && cat *.sha256 | sort") == checksums
        served = in_exporter(cluster, "wget -qO- http://127.0.0.1:9102/metrics")
        assert 'platform_backup_space_short{database="main"} 1' in served
        assert 'platform_backup_last_run_status{database="main"} 0' in served
        assert_backup_stale_true(cluster, served, tmp_path)
    finally:
        subprocess.run(["umount", directory], check=False)


def assert_backup_stale_true(cluster, served: str, tmp_path) -> None:
    """BackupStale's expression, from the PrometheusRule the stack deployed, evaluated by promtool
    on the values the exporter serves now (at time() 0: only the space branch can be true)."""
    spec = cluster.get(NAMESPACE, "prometheusrule", "platform-alerts")["spec"]
    [expr] = [rule["expr"] for group in spec["groups"] for rule in group["rules"] if rule.get("alert") == "BackupStale"]
    values = {line.split("{")[0]: line.rsplit(" ", 1)[1] for line in served.splitlines() if line.startswith("platform_")}
    series = [{"series": f'{name}{{database="main"}}', "values": f"{value}x5"} for name, value in values.items()]
    age = -float(values["platform_backup_last_success_timestamp_seconds"])
    (tmp_path / "empty.yml").write_text("groups: []\n")
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["empty.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": expr, "eval_time": "0m",
                              "exp_samples": [{"labels": '{database="main"}', "value": age}]}]}]}))
    checked = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True,
                             timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
