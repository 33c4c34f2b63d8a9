"""Backups of a service's volume with its database on a real Docker engine (issue 15, files half):
a file the api writes to its uploads volume survives backup -> wipe -> restore (drill and live),
checked by sha256; retention by count and age keeps the newest good set; a backup volume that is
really full (a size-limited tmpfs under the volume) fails the next backup loudly, deletes nothing,
and makes the BackupStale expression true in the stack's own Prometheus."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.parse

import pytest
import yaml

from components.targets.jobs import JOB_SCRIPT
from docker_host import DockerHost, deploy_to_docker
from engine import Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "docker-backups-db-password-8e21", "sessionSigningKey": "docker-backups-signing-4d0c"}
STACK = "backups"
HTTP_PORT, HTTPS_PORT = 18580, 18943
SUBNET = "172.30.148.0/24"
BACKUP = f"{STACK}-backup-main"
SET_RE = r"^[0-9]{8}T[0-9]{6}Z\.dump$"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_host):
    """staging on the Docker engine, the api with an uploads volume, deployed once from empty."""
    docker_host.remove_stack_leftovers(STACK, ports=(HTTP_PORT, HTTPS_PORT))
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("docker-backups"))
    (project.dir / f"Pulumi.{STACK}.yaml").write_text((project.dir / "Pulumi.staging.yaml").read_text())
    project.init_stack(STACK, SECRETS)
    deploy_to_docker(project, STACK, docker_host.host, HTTP_PORT, HTTPS_PORT, SUBNET)
    project.set_config(STACK, "services.api.volumes.uploads.mountPath", "/data/uploads")
    project.set_config(STACK, "services.api.volumes.uploads.size", "64Mi")
    project.set_config(STACK, "databases.main.backup.retentionCount", 3)
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=1200)
    project.host = docker_host
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def api_container(docker_host: DockerHost) -> str:
    names = docker_host.docker("ps", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={STACK}",
                               "--filter", "label=app.kubernetes.io/name=api",
                               "--filter", "label=deploy.platform/track=stable").split()
    assert names, "no running api container"
    return sorted(names)[0]


def in_backup(docker_host: DockerHost, script: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", "--host", docker_host.host, "exec", BACKUP, "sh", "-c", script],
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def backup_now(docker_host: DockerHost) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "--host", docker_host.host, "exec", BACKUP, "sh", JOB_SCRIPT],
                          capture_output=True, text=True, timeout=300)


def sets(docker_host: DockerHost) -> list[str]:
    listing = in_backup(docker_host, f"ls -1 /backups/main | grep -E '{SET_RE}' || true").stdout.split()
    return sorted(name[:-5] for name in listing)


def evidence(project: Project) -> dict:
    newest = sorted((project.dir / "evidence" / STACK).glob("drill-restore-*.json"))[-1]
    return json.loads(newest.read_text())


def test_the_api_writes_a_file_to_its_volume_and_it_survives_backup_wipe_and_restore_by_sha256(stack, docker_host):
    api = api_container(docker_host)
    # Written by the api's own user (nobody): the volume's root was handed to it.
    written = docker_host.docker("exec", api, "sh", "-c", "head -c 300000 /dev/urandom > /data/uploads/photo.bin && "
                                 "id -u && sha256sum /data/uploads/photo.bin").split()
    uid, digest = written[0], written[1]
    assert uid == "65534"
    stack.deployctl("drill", "restore", STACK, "--backup-first")
    first = evidence(stack)["details"]["databases"]["main"]
    backup_set = first["backup_set"]
    listed = in_backup(docker_host, f"cat /backups/main/{backup_set}.api-uploads.files.sha256").stdout
    assert f"{digest}  ./photo.bin" in listed
    # The stack-history update whose configuration belongs to this backup is named.
    assert first["stack_update"]["update"] == 1 and first["stack_update"]["versions"]["api"] == "1.4.2"

    docker_host.docker("exec", api, "rm", "-f", "/data/uploads/photo.bin")
    assert docker_host.docker("exec", api, "ls", "-A", "/data/uploads").strip() == ""
    stack.deployctl("drill", "restore", STACK)
    drill = evidence(stack)
    main = drill["details"]["databases"]["main"]
    assert drill["passed"] is True and main["backup_set"] == backup_set
    uploads = main["volumes"]["api-uploads"]
    # Every restored file matched the checksum list taken at backup time, which holds this file's sha256.
    assert uploads["files"] == uploads["files_verified"] == 1
    assert uploads["file_list_sha256"] == hashlib.sha256(listed.encode()).hexdigest()

    # The restore for real (what `deployctl rollback --restore-data` reuses): the file is back in the api.
    report = stack.restore_live(STACK, "main", backup_set)
    assert report["report"]["into"] == "live" and report["backup_set"] == backup_set
    back = docker_host.docker("exec", api, "sha256sum", "/data/uploads/photo.bin").split()[0]
    assert back == digest
    print(f"docker: volume file restored by drill in {main['rto_seconds']:.0f}s and live; "
          f"RPO of the live restore {report['rpo_seconds']:.0f}s")


def stamp(days_ago: float) -> str:
    """`touch -t` time (the containers run in UTC) `days_ago` days back."""
    return time.strftime("%Y%m%d%H%M.%S", time.gmtime(time.time() - days_ago * 86400))


def test_retention_by_count_and_age_keeps_the_newest_good_backup(stack, docker_host):
    for _ in range(4):
        time.sleep(1.1)  # sets are named by the second
        result = backup_now(docker_host)
        assert result.returncode == 0, result.stdout + result.stderr
    kept = sets(docker_host)
    assert len(kept) == 3  # databases.main.backup.retentionCount
    # Age: make every set but the newest 8 days old; the next run deletes them (retentionDays 7).
    for old in kept:
        in_backup(docker_host, f"touch -t {stamp(8)} /backups/main/{old}.*")
    time.sleep(1.1)
    result = backup_now(docker_host)
    assert result.returncode == 0, result.stdout + result.stderr
    [newest] = sets(docker_host)
    assert newest > kept[-1] and "retention: deleted backup set" in result.stdout
    # With every set old and backups failing, the newest good one still stays.
    in_backup(docker_host, f"touch -t {stamp(30)} /backups/main/{newest}.*")
    failed = subprocess.run(["docker", "--host", docker_host.host, "exec", "-e", "PGHOST=nowhere.invalid", BACKUP, "sh",
                             JOB_SCRIPT], capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and sets(docker_host) == [newest]


def prometheus_container(docker_host: DockerHost) -> str:
    [name] = docker_host.docker("ps", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={STACK}",
                                "--filter", "label=app.kubernetes.io/name=prometheus").split()
    return name


def prometheus(docker_host: DockerHost, path: str) -> dict:
    answer = json.loads(docker_host.docker("exec", prometheus_container(docker_host), "wget", "-qO-",
                                           f"http://127.0.0.1:9090{path}"))
    assert answer["status"] == "success", answer
    return answer["data"]


def test_a_full_backup_volume_fails_the_backup_loudly_deletes_nothing_and_makes_backup_stale_true(stack, docker_host):
    good = backup_now(docker_host)
    assert good.returncode == 0, good.stdout + good.stderr
    before = sets(docker_host)
    checksums = in_backup(docker_host, "cd /backups/main && cat *.sha256 | sort").stdout
    volume = json.loads(docker_host.docker("volume", "inspect", f"{STACK}-backups-main"))[0]["Mountpoint"]
    used_kib = int(subprocess.run(["du", "-sk", volume], capture_output=True, text=True, check=True).stdout.split()[0])
    saved = subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["cp", "-a", f"{volume}/.", saved], check=True)
    # A real file system that fills up: tmpfs with room for what is there plus 1 MiB, then filled.
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used_kib + 1024}k", "backups-e2e", volume], check=True)
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", volume], check=True)
        subprocess.run(["sh", "-c", f"dd if=/dev/zero of={volume}/filler bs=64k 2>/dev/null; sync"], check=False)
        assert int(subprocess.run(["df", "-Pk", volume], capture_output=True, text=True).stdout.split()[-3]) < 64
        # Containers bind the volume when they start: these two now see the full file system.
        docker_host.docker("restart", BACKUP, f"{STACK}-backup-metrics-main")
        refused = backup_now(docker_host)
        print(f"docker: full backup volume: exit {refused.returncode}: {refused.stderr.strip()[-300:]}")
        assert refused.returncode == 1
        assert "backup of main REFUSED" in refused.stderr and "none is deleted to make room" in refused.stderr
        assert sets(docker_host) == before
        assert in_backup(docker_host, "cd /backups/main && cat *.sha256 | sort").stdout == checksums
        in_backup(docker_host, f"cd /backups/main && sha256sum -c {before[-1]}.dump.sha256")
        served = docker_host.docker("exec", prometheus_container(docker_host), "wget", "-qO-",
                                    "http://backup-metrics-main:9102/metrics")
        assert 'platform_backup_space_short{database="main"} 1' in served
        assert 'platform_backup_last_run_status{database="main"} 0' in served
        # The rule's own expression, as the stack's Prometheus evaluates it.
        rules = yaml.safe_load(docker_host.docker("exec", prometheus_container(docker_host), "cat",
                                                  "/etc/prometheus/rules.yml"))
        [expr] = [rule["expr"] for group in rules["groups"] for rule in group["rules"] if rule.get("alert") == "BackupStale"]
        deadline, result = time.monotonic() + 120, []
        while time.monotonic() < deadline and not result:
            result = prometheus(docker_host, "/api/v1/query?query=" + urllib.parse.quote(expr))["result"]
            time.sleep(3)
        assert [r["metric"]["database"] for r in result] == ["main"], result
        print(f"docker: BackupStale's expression true {float(result[0]['value'][1]):.0f}s after the last good backup")
    finally:
        subprocess.run(["umount", volume], check=False)
        subprocess.run(["rm", "-rf", saved], check=False)
        docker_host.docker("restart", BACKUP, f"{STACK}-backup-metrics-main", check=False)
