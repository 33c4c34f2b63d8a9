"""A real OpenSSH server on a loopback port, with keys made for the test, in front of the
project's Docker engine: what `docker.host: ssh://user@host` reaches on a remote VPS.

The server sets DOCKER_HOST for its sessions (sshd_config SetEnv), as a host whose engine
listens on a non-default socket would, so `docker system dial-stdio` on the far side reaches
devenv/docker/engine.sh's engine. The client side is an ssh config file (host alias, key,
known_hosts, connection sharing) put in front of PATH as `ssh -F <config>`: the operator's
~/.ssh/config in real use, which this test must not touch."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
ALIAS = "docker-e2e-host"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class SshHost:
    port: int
    bin_dir: Path  # holds the `ssh` front; put it first on PATH
    process: subprocess.Popen
    user: str = "root"

    @property
    def docker_host(self) -> str:
        return f"ssh://{self.user}@{ALIAS}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sshd(workdir: Path, engine_socket: str) -> SshHost:
    if not os.path.exists(SSHD):
        raise AssertionError(f"{SSHD} is missing: scripts/setup.sh installs Debian's openssh-server")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_ed25519", workdir / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (workdir / "authorized_keys").write_text((workdir / "client_ed25519.pub").read_text())
    port = free_port()
    (workdir / "known_hosts").write_text(f"[127.0.0.1]:{port} {(workdir / 'host_ed25519.pub').read_text()}")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    (workdir / "sshd_config").write_text("\n".join([
        f"ListenAddress 127.0.0.1:{port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        f"PidFile {workdir / 'sshd.pid'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # the keys live in a pytest temporary directory
        f"SetEnv DOCKER_HOST={engine_socket}",
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "",
    ]))
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(workdir / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=open(workdir / "sshd.log", "w"))
    (workdir / "ssh_config").write_text("\n".join([
        f"Host {ALIAS}",
        "  HostName 127.0.0.1",
        f"  Port {port}",
        f"  IdentityFile {client_key}",
        "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {workdir / 'known_hosts'}",
        "  StrictHostKeyChecking yes",
        "  BatchMode yes",
        # Kamal's advice for many short docker commands over ssh: share one connection.
        "  ControlMaster auto",
        f"  ControlPath {workdir}/cm-%C",
        "  ControlPersist 120",
        "",
    ]))
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    front = bin_dir / "ssh"
    front.write_text(f"#!/bin/sh\nexec /usr/bin/ssh -F {workdir / 'ssh_config'} \"$@\"\n")
    front.chmod(0o755)
    host = SshHost(port, bin_dir, process)
    deadline = time.monotonic() + 30
    while True:
        probe = subprocess.run([str(front), ALIAS, "docker", "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return host
        if time.monotonic() > deadline or process.poll() is not None:
            host.stop()
            raise AssertionError(f"sshd on 127.0.0.1:{port} did not serve the Docker engine: {probe.stderr[-500:]} "
                                 f"{(workdir / 'sshd.log').read_text()[-1000:]}")
        time.sleep(0.5)
