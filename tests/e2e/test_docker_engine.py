"""The Docker engine devenv/docker/engine.sh runs beside the local cluster (devenv/docker/README.md):
started through the script (idempotent), answering on its own socket with its own data-root, leaving
the FORWARD policy at ACCEPT, pulling from the local registry, and keeping containers on an internal
network away from every address of the host. The engine is left running, like the cluster."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("docker")]  # its lane: tests/e2e/conftest.py

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "devenv" / "docker" / "engine.sh"
DOCKER_HOST = "unix:///run/deployplatform-docker.sock"
REGISTRY = "127.0.0.1:5000"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static, which the cluster's scripts install
PROBE_IMAGE = "deployplatform/probe:busybox"
# An internal network from the engine's internal pool (172.30.128.0/17, guarded); its last /24,
# away from what the product's stacks take.
INTERNAL_NET, INTERNAL_SUBNET, INTERNAL_GATEWAY = "dp-e2e-internal", "172.30.255.0/24", "172.30.255.1"
INTERNAL_UNGUARDED_NET = "dp-e2e-internal-auto"  # --internal without a subnet: status warns
OPEN_NET = "dp-e2e-open"
PEER = "dp-e2e-peer"
HOST_BODY = b"host listener for test_docker_engine\n"


def run(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


def engine(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("bash", str(ENGINE), *args, timeout=180, check=check)


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    client = shutil.which("docker")
    if client is None:
        raise AssertionError("no docker client on PATH (devenv/docker/engine.sh install)")
    return run(client, "-H", DOCKER_HOST, *args, check=check, timeout=timeout)


def host_addresses() -> list[str]:
    """Every IPv4 address of this machine but loopback's 127/8 (eth0, the cluster's node address
    on lo, the engine's own bridge gateways)."""
    rows = json.loads(run("ip", "-4", "-j", "addr", "show").stdout)
    return sorted({a["local"] for row in rows for a in row.get("addr_info", [])
                   if not a["local"].startswith("127.")})


def probe(network: str, targets: list[str]) -> dict[str, int]:
    """wget each http://target from one container on `network`, in parallel, 3 s each (busybox
    `wget -T` segfaults in images built here: `timeout` instead); exit status per target."""
    script = " ".join(f"( timeout 3 wget -q -O /dev/null http://{t}/ >/dev/null 2>&1; echo \"{t} $?\" ) &"
                      for t in targets) + " wait"
    out = docker("run", "--rm", "--network", network, PROBE_IMAGE, "sh", "-c", script).stdout
    return {target: int(code) for target, code in (line.split() for line in out.splitlines() if line.strip())}


def guard_drops() -> int:
    out = run("iptables", "-t", "mangle", "-L", "DP-DOCKER-GUARD", "-v", "-x", "-n").stdout
    return sum(int(line.split()[0]) for line in out.splitlines()[2:] if line.strip())


@pytest.fixture(scope="module")
def started() -> str:
    """The engine, started through its script; a second start changes nothing."""
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        raise AssertionError("the Docker engine needs root (network, iptables): run the tests as root")
    engine("install")
    first = engine("start").stdout
    again = engine("start").stdout
    assert f"export DOCKER_HOST={DOCKER_HOST}" in first and f"export DOCKER_HOST={DOCKER_HOST}" in again
    assert "already running" in again, again
    return first


@pytest.fixture(scope="module")
def probe_image(started: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """FROM scratch + the static busybox, built once (rebuilt when /bin/busybox changes)."""
    if not BUSYBOX.exists():
        raise AssertionError(f"{BUSYBOX} is missing (Debian busybox-static; scripts/cluster installs it)")
    digest = hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()
    seen = docker("image", "inspect", "-f", '{{index .Config.Labels "busybox.sha256"}}', PROBE_IMAGE, check=False)
    if seen.returncode == 0 and seen.stdout.strip() == digest:
        return PROBE_IMAGE
    context = tmp_path_factory.mktemp("docker-probe")
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
        f"LABEL busybox.sha256={digest}\nCMD [\"/bin/sh\"]\n")
    client = shutil.which("docker")
    subprocess.run([client, "-H", DOCKER_HOST, "build", "-q", "-t", PROBE_IMAGE, str(context)], check=True,
                   capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=120)  # the classic builder
    return PROBE_IMAGE


@pytest.fixture(scope="module")
def networks(probe_image: str):
    """An internal network in the guarded pool with a peer serving on it, and an ordinary one;
    whatever an interrupted run left is removed first."""
    def clean() -> None:
        docker("rm", "-f", PEER, check=False)
        for net in (INTERNAL_NET, INTERNAL_UNGUARDED_NET, OPEN_NET):
            docker("network", "rm", net, check=False)
    clean()
    docker("network", "create", "--internal", "--subnet", INTERNAL_SUBNET, "--gateway", INTERNAL_GATEWAY, INTERNAL_NET)
    docker("network", "create", OPEN_NET)
    docker("run", "-d", "--name", PEER, "--network", INTERNAL_NET, probe_image,
           "sh", "-c", "mkdir -p /www && echo peer > /www/index.html && exec httpd -f -p 8080 -h /www")
    yield
    clean()


@pytest.fixture(scope="module")
def host_port():
    """A small HTTP server on every host address (0.0.0.0), like the API server on 6443."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(HOST_BODY)))
            self.end_headers()
            self.wfile.write(HOST_BODY)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_engine_runs_on_its_own_socket_and_roots(started: str) -> None:
    status = engine("status")
    assert status.returncode == 0 and "engine:        running" in status.stdout, status.stdout
    assert "negotiated" in status.stdout and "guards:        installed" in status.stdout, status.stdout
    info = json.loads(docker("info", "--format", "{{json .}}").stdout)
    assert info["DockerRootDir"].endswith("/deployplatform/docker/data"), info["DockerRootDir"]
    assert info["RegistryConfig"]["IndexConfigs"][REGISTRY]["Secure"] is False
    assert info["DefaultAddressPools"] == [{"Base": "172.30.0.0/17", "Size": 24}]
    log_config = docker("info", "--format", "{{.LoggingDriver}}").stdout.strip()
    assert log_config == "json-file"


def test_forward_policy_stays_accept(started: str) -> None:
    """The cluster's pod and Service traffic needs FORWARD ACCEPT; dockerd would set DROP if it
    had to turn ip_forward on itself."""
    policy = run("iptables", "-S", "FORWARD").stdout.splitlines()[0]
    assert policy == "-P FORWARD ACCEPT", policy
    assert run("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"


def test_internal_network_cannot_reach_the_host(networks, host_port: int) -> None:
    addresses = host_addresses()
    assert INTERNAL_GATEWAY in addresses, addresses
    targets = [f"{a}:{host_port}" for a in addresses]
    api = socket.socket()
    api.settimeout(1)
    if api.connect_ex(("127.0.0.1", 6443)) == 0:  # the cluster's API server, when it runs
        targets.append(f"{INTERNAL_GATEWAY}:6443")
    api.close()

    # Control: the listener answers containers on an ordinary network, on every host address.
    reached = probe(OPEN_NET, [f"{a}:{host_port}" for a in addresses])
    assert all(code == 0 for code in reached.values()), f"the host listener must answer an ordinary network: {reached}"

    before = guard_drops()
    refused = probe(INTERNAL_NET, targets)
    print(f"\ninternal network -> host: {refused} (0 would mean reached)")
    assert set(refused) == set(targets), refused
    assert all(code != 0 for code in refused.values()), f"an internal container reached the host: {refused}"
    assert guard_drops() > before, "the engine's guard (mangle DP-DOCKER-GUARD) did not see the probes"

    # The internal network still works for its own members (the database's clients).
    peer = probe(INTERNAL_NET, [f"{PEER}:8080"])
    assert peer == {f"{PEER}:8080": 0}, peer


def test_status_flags_an_internal_network_outside_the_guarded_pool(networks) -> None:
    docker("network", "create", "--internal", INTERNAL_UNGUARDED_NET)
    status = engine("status").stdout
    assert f"internal:      {INTERNAL_NET} {INTERNAL_SUBNET} (host-isolated)" in status, status
    assert f"internal:      {INTERNAL_UNGUARDED_NET}" in status and "NOT host-isolated" in status, status
    docker("network", "rm", INTERNAL_UNGUARDED_NET)


def test_pulls_and_runs_from_the_local_registry(started: str) -> None:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/shop/busybox/tags/list", timeout=5) as response:
            tags = json.load(response).get("tags") or []
    except OSError as error:
        raise AssertionError(f"the local registry on {REGISTRY} does not answer ({error}): "
                             "bash scripts/cluster/cluster.sh registry && bash devenv/images/build.sh busybox") from error
    assert tags, f"{REGISTRY}/shop/busybox has no tags: bash devenv/images/build.sh busybox"
    image = f"{REGISTRY}/shop/busybox:{sorted(tags)[-1]}"
    docker("pull", "-q", image, timeout=180)
    out = docker("run", "--rm", image, "-c", "echo ok from the registry").stdout  # its entrypoint is /bin/sh
    assert out.strip() == "ok from the registry", out
