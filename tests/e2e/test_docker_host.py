"""The product on a real Docker engine (devenv/docker/engine.sh), through the real Pulumi
engine and the docker and command providers: first launch, HTTPS at the edge, isolation of the
database network, and releases that switch with no failed request."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from cluster import http_get
from components.targets.jobs import JOB_SCRIPT
from docker_host import DockerHost, Traffic, deploy_to_docker, write_report
from engine import Project

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

SECRETS = {"mainDbPassword": "docker-e2e-db-password-5c1d", "sessionSigningKey": "docker-e2e-signing-key-0b7e"}
STACK = "staging"
HTTP_PORT, HTTPS_PORT = 18080, 18443
HOST = "shop.staging.localhost"
API = f"https://127.0.0.1:{HTTPS_PORT}/api/healthz"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_host):
    """staging on the Docker engine, deployed once from empty for the module's tests."""
    docker_host.remove_stack_leftovers(STACK, ports=(HTTP_PORT, HTTPS_PORT))
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("docker-host"))
    project.init_stack(STACK, SECRETS)
    deploy_to_docker(project, STACK, docker_host.host, HTTP_PORT, HTTPS_PORT, "172.30.140.0/24")
    started = time.monotonic()
    project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=900)
    project.first_up_seconds = time.monotonic() - started
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(STACK)


def test_from_empty_every_container_is_healthy_and_the_api_answers_over_https(stack, docker_host):
    containers = docker_host.containers(STACK)
    with_checks = {name: c["State"]["Health"]["Status"] for name, c in containers.items() if c["State"].get("Health")}
    deadline = time.monotonic() + 60
    while any(status != "healthy" for status in with_checks.values()) and time.monotonic() < deadline:
        time.sleep(2)
        with_checks = {name: c["State"]["Health"]["Status"] for name, c in docker_host.containers(STACK).items()
                       if c["State"].get("Health")}
    assert with_checks and all(status == "healthy" for status in with_checks.values()), with_checks
    answer = http_get(API, HOST)
    assert answer.status == 200 and answer.version == "1.4.2" and answer.seconds < 3
    print(f"docker: up from empty took {stack.first_up_seconds:.1f}s")


def test_a_triggered_backup_writes_a_dump_and_its_checksum(stack, docker_host):
    log = docker_host.docker("exec", f"{STACK}-backup-main", "sh", JOB_SCRIPT, timeout=300)
    assert " ok: " in log
    # The backup container mounts the dump volume: check what the job left there with its own tools.
    listing = docker_host.docker("exec", f"{STACK}-backup-main", "sh", "-c",
                                 'cd /backups/main && ls && sha256sum -c "$(ls -1 *.dump | sort | tail -n 1).sha256"')
    dumps = sorted(name for name in listing.split() if name.endswith(".dump"))
    assert dumps and f"{dumps[-1]}.sha256" in listing.split()
    assert f"{dumps[-1]}: OK" in listing


def test_deployctl_drill_restore_brings_a_table_back_from_the_dump_and_records_rto_and_rpo(stack, docker_host):
    docker_host.docker("exec", f"{STACK}-postgres-main", "sh", "-c",
                       # local connections are trusted inside the database container (its entrypoint's initdb)
                       'psql -q -h /var/run/postgresql -U "$POSTGRES_USER" -d "$POSTGRES_DB" '
                       '-c "create table if not exists drill_probe (id int)"')
    result = stack.deployctl("drill", "restore", STACK, "--backup-first")
    assert "PASS main" in result.output
    [evidence] = (stack.dir / "evidence" / STACK).glob("drill-restore-*.json")
    record = json.loads(evidence.read_text())
    main = record["details"]["databases"]["main"]
    assert record["passed"] is True and main["backup"]["succeeded"] is True
    assert main["report"]["tables"] >= 1  # drill_probe came back from the dump
    assert main["rto_seconds"] <= main["rto_threshold_seconds"]
    assert 0 <= main["rpo_seconds"] <= main["rpo_threshold_seconds"]
    print(f"docker: restore drill RTO {main['rto_seconds']:.1f}s, RPO {main['rpo_seconds']:.0f}s, "
          f"{main['report']['tables']} tables")


def test_http_redirects_to_https_on_the_port_clients_reach(stack):
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}/api/healthz", headers={"Host": HOST})
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=3)
        raise AssertionError("HTTP answered without redirecting")
    except urllib.error.HTTPError as redirect:
        assert redirect.code in (301, 308)
        assert redirect.headers["Location"] == f"https://{HOST}:{HTTPS_PORT}/api/healthz"


def test_no_secret_value_appears_in_docker_inspect(stack, docker_host):
    inspected = docker_host.docker("inspect", *docker_host.containers(STACK))
    for value in SECRETS.values():
        assert value not in inspected


def test_a_version_update_switches_with_no_failed_request(stack, docker_host):
    stack.set_config(STACK, "services.api.version", "1.5.0")
    with Traffic(API, HOST) as traffic:
        time.sleep(1)
        stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)
        time.sleep(1)
    write_report(traffic.report("docker version update 1.4.2 -> 1.5.0"))
    assert traffic.per_second >= 20 and traffic.failures == []
    assert http_get(API, HOST).version == "1.5.0"
    names = [name for name in docker_host.containers(STACK) if name.startswith(f"{STACK}-api-")]
    assert names and all(name.startswith(f"{STACK}-api-1-5-0-") for name in names)  # the old slot is gone


def test_a_broken_release_fails_fast_never_takes_traffic_and_is_rolled_back(stack, docker_host):
    stack.set_config(STACK, "services.api.version", "1.7.0-broken")
    with Traffic(API, HOST) as traffic:
        started = time.monotonic()
        deployed = stack.deployctl("deploy", STACK, check=False)
        seconds = time.monotonic() - started
    write_report(traffic.report(f"docker broken release: deployctl deploy failed and rolled back in {seconds:.1f}s"))
    assert deployed.code != 0 and "release not ready" in deployed.output and "rolled back to version" in deployed.output
    assert "KeyboardInterrupt" not in deployed.output  # the program ends at once when the engine stops it
    assert traffic.per_second >= 20 and traffic.failures == [] and traffic.versions() == {"1.5.0"}
    # Every replica serves the last good version again, and the broken slot is gone.
    assert {http_get(API, HOST).version for _ in range(10)} == {"1.5.0"}
    names = [name for name in docker_host.containers(STACK) if name.startswith(f"{STACK}-api-")]
    assert names and all(name.startswith(f"{STACK}-api-1-5-0-") for name in names), names
    history = stack.history(STACK)
    assert history[0]["message"].startswith("rollback to ") and history[1]["result"] == "failed"
    assert stack.pulumi("config", "get", "--path", "platform:services.api.version", "-s", STACK).stdout.strip() == "1.5.0"
    # The failed update dumped the database; its rollback, to the versions still serving, did not again.
    said = stack.predeploy_backup_said(STACK)
    assert said and all("before deploy skipped" in text for text in said.values()), said


def test_latest_is_refused_by_the_policy_pack_and_no_container_changes(stack, docker_host):
    before = {name: c["Id"] for name, c in docker_host.containers(STACK).items()}
    stack.set_config(STACK, "services.web.version", "latest")
    refused = stack.deployctl("deploy", STACK, check=False)
    stack.set_config(STACK, "services.web.version", "1.4.2")
    assert refused.code != 0 and "latest" in refused.output
    assert {name: c["Id"] for name, c in docker_host.containers(STACK).items()} == before


def test_a_failed_deploy_rolls_back_automatically_with_no_failed_request(stack, docker_host):
    stack.set_config(STACK, "services.api.version", "1.7.1-mislabeled")
    with Traffic(API, HOST) as traffic:
        deployed = stack.deployctl("deploy", STACK, check=False)
    write_report(traffic.report("docker failed deploy + automatic rollback (mislabeled release)"))
    assert deployed.code != 0 and "rolled back to version" in deployed.output
    assert traffic.per_second >= 20 and traffic.failures == []
    assert {http_get(API, HOST).version for _ in range(10)} == {"1.5.0"}
    history = stack.history(STACK)
    assert history[0]["message"].startswith("rollback to ") and history[1]["result"] == "failed"


def test_deployctl_rollback_serves_the_previous_version_with_no_failed_request(stack):
    stack.set_config(STACK, "services.api.version", "1.6.0")
    stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)
    assert http_get(API, HOST).version == "1.6.0"
    with Traffic(API, HOST) as traffic:
        stack.deployctl("rollback", STACK, "--last-good", "--reason", "e2e")
    write_report(traffic.report("docker deployctl rollback 1.6.0 -> 1.5.0"))
    assert traffic.per_second >= 20 and traffic.failures == []
    assert {http_get(API, HOST).version for _ in range(10)} == {"1.5.0"}


def test_a_canary_at_ten_percent_gets_about_a_tenth_and_abort_returns_none(stack):
    stack.set_config(STACK, "services.api.canary.version", "1.6.0")
    stack.set_config(STACK, "services.api.canary.weight", 10)
    stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)
    versions = [http_get(API, HOST).version for _ in range(1000)]
    share = versions.count("1.6.0") / len(versions)
    write_report(f"docker canary at 10%: {share:.1%} of 1000 requests reached 1.6.0")
    assert 0.07 <= share <= 0.13
    stack.deployctl("rollout", STACK, "api", "--abort")
    assert [http_get(API, HOST).version for _ in range(200)].count("1.6.0") == 0
    stack.pulumi("config", "rm", "--path", "platform:services.api.canary", "-s", STACK)
    stack.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=600)


def test_log_rotation_and_restart_policy_are_what_docker_inspect_shows(stack, docker_host):
    for name, container in docker_host.containers(STACK).items():
        log = container["HostConfig"]["LogConfig"]
        assert log["Type"] == "json-file" and log["Config"].get("max-size"), name
        assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", name


def test_a_container_whose_process_is_killed_comes_back(stack, docker_host):
    [web] = [name for name in docker_host.containers(STACK) if name.startswith(f"{STACK}-web-")]
    # The process dies (`docker kill` would count as an operator's stop, which restart policies honour).
    os.kill(docker_host.containers(STACK)[web]["State"]["Pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = docker_host.containers(STACK)[web]["State"]
        if state["Running"] and state.get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(1)
    assert state["Running"] and docker_host.containers(STACK)[web]["RestartCount"] >= 1


def pg_isready_from(docker_host: DockerHost, network: str) -> int:
    """pg_isready (from the database image) against the database's name, from a network."""
    probe = subprocess.run(["docker", "--host", docker_host.host, "run", "--rm", "--network", network,
                            "--entrypoint", "pg_isready", "127.0.0.1:5000/shop/postgres:15.18.0",
                            "-h", "postgres-main", "-p", "5432", "-t", "3"],
                           capture_output=True, text=True, timeout=60)
    return probe.returncode


def test_the_database_is_not_reachable_from_the_frontend_network(stack, docker_host):
    assert pg_isready_from(docker_host, f"{STACK}-backend") == 0  # the probe itself works
    assert pg_isready_from(docker_host, f"{STACK}-frontend") != 0


@pytest.fixture
def host_listener():
    """An HTTP server on every host address, like any service a Docker host runs."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def wget_host_from(docker_host: DockerHost, network: str, port: int) -> str:
    return docker_host.docker(
        "run", "--rm", "--network", network, "--entrypoint", "sh", "127.0.0.1:5000/shop/busybox:1.35.0", "-c",
        f"gw=$(ip route | awk '/default/{{print $3}}'); gw=${{gw:-$(hostname -i | sed 's/[0-9]*$/1/')}}; "
        f"if timeout 3 wget -q -O /dev/null http://$gw:{port}/; then echo reachable; else echo unreachable; fi",
        check=False, timeout=60).strip()


def test_containers_on_the_database_network_cannot_reach_the_host(stack, docker_host, host_listener):
    assert wget_host_from(docker_host, f"{STACK}-frontend", host_listener) == "reachable"  # the probe works
    assert wget_host_from(docker_host, f"{STACK}-backend", host_listener) == "unreachable"
