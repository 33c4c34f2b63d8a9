"""The machine a stack's target runs on, as deployctl's preflight checks it (deployctl/preflight.py):
does it answer, how much disk is free, is the edge network there. One class per kind of target,
chosen by `host_for` (the only place here that looks at the target kind); each reaches its host
the way the target's own code does: kubectl aimed by the stack's KubernetesTarget settings, the
docker CLI aimed at `docker.host` (over ssh for an ssh:// host), the render directory's filesystem.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from components.config import PlatformConfig
from components.config.targets import docker_cli


def frontend_network(stack: str) -> str:
    """The Docker network carrying edge -> web/api traffic (components/targets/docker.py creates it)."""
    return f"{stack}-frontend"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Host(Protocol):
    """Where the stack runs, as preflight sees it."""

    def reachable(self) -> Check: ...

    def free_disk_percent(self) -> tuple[float, str]: ...  # (percent free, where it was measured)

    def edge_network(self) -> Check | None: ...  # None: the target has no such network


Runner = Callable[[list[str], float], subprocess.CompletedProcess]


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(command, 127, "", f"{command[0]}: not found on PATH")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"no answer within {timeout:.0f}s")


def free_share(available: float, used: float) -> float:
    """Free space as `df` counts it: available / (used + available). Blocks reserved for root, or a
    filesystem larger than what its host may use, are neither; so 100 - df's Use% (POSIX df -P)."""
    return 100.0 * available / (used + available) if used + available > 0 else 0.0


def percent_free(path: Path) -> float:
    stats = os.statvfs(path)
    return free_share(stats.f_bavail, stats.f_blocks - stats.f_bfree)


def existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


class RenderDirectory:
    """kubernetes.renderToDirectory: the manifests go to a directory, so that is the target."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def reachable(self) -> Check:
        parent = existing_parent(self.directory)
        ok = os.access(parent, os.W_OK)
        return Check("target", ok, f"render directory {self.directory} ({'writable' if ok else 'not writable'})",
                     None if ok else f"make {parent} writable for this user")

    def free_disk_percent(self) -> tuple[float, str]:
        where = existing_parent(self.directory)
        return percent_free(where), f"the filesystem of {where}"

    def edge_network(self) -> Check | None:
        return None


class KubernetesCluster:
    def __init__(self, kubectl: list[str], runner: Runner = run, timeout: float = 30) -> None:
        self.kubectl, self.runner, self.timeout = kubectl, runner, timeout

    def _get(self, *args: str) -> subprocess.CompletedProcess:
        return self.runner([*self.kubectl, *args], self.timeout)

    def reachable(self) -> Check:
        result = self._get("get", "--raw", "/readyz")
        ok = result.returncode == 0 and result.stdout.strip() == "ok"
        return Check("target", ok, "the cluster's API server is ready" if ok else
                     f"the cluster's API server did not answer /readyz: {(result.stderr or result.stdout).strip()[-300:]}",
                     None if ok else "start the cluster or fix kubernetes.kubeconfig/context in the stack file")

    def free_disk_percent(self) -> tuple[float, str]:
        nodes = json.loads(self._get("get", "nodes", "-o", "json").stdout or "{}").get("items", [])
        if not nodes:
            raise RuntimeError("the cluster lists no nodes")
        lowest, where = 100.0, ""
        for node in nodes:
            name = node["metadata"]["name"]
            # The kubelet's summary API: the node's root filesystem as the kubelet sees it.
            # Ref: https://kubernetes.io/docs/reference/instrumentation/node-metrics/
            summary = self._get("get", "--raw", f"/api/v1/nodes/{name}/proxy/stats/summary")
            if summary.returncode != 0:
                raise RuntimeError(f"node {name}: the kubelet's stats/summary did not answer: {summary.stderr.strip()[-200:]}")
            fs = json.loads(summary.stdout)["node"]["fs"]
            used = fs.get("usedBytes", fs["capacityBytes"] - fs["availableBytes"])
            free = free_share(fs["availableBytes"], used)
            if free < lowest or not where:
                lowest, where = free, f"node {name}"
        return lowest, where

    def edge_network(self) -> Check | None:
        return None


class DockerHost:
    def __init__(self, host: str | None, stack: str, deployed: bool, runner: Runner = run,
                 timeout: float = 30) -> None:
        self.docker = docker_cli(host)
        self.host, self.stack, self.deployed = host, stack, deployed
        self.runner, self.timeout = runner, timeout
        self._info: dict[str, Any] | None = None

    def _docker(self, *args: str) -> subprocess.CompletedProcess:
        return self.runner([*self.docker, *args], self.timeout)

    def reachable(self) -> Check:
        result = self._docker("info", "--format", "{{json .}}")
        if result.returncode != 0:
            return Check("target", False, f"the Docker daemon {self.host or '(DOCKER_HOST)'} did not answer: "
                         f"{result.stderr.strip()[-300:]}", "start the Docker engine or fix docker.host in the stack file")
        self._info = json.loads(result.stdout)
        return Check("target", True, f"Docker {self._info.get('ServerVersion', '?')} at {self.host or 'DOCKER_HOST'}")

    def free_disk_percent(self) -> tuple[float, str]:
        root = (self._info or {}).get("DockerRootDir") or "/var/lib/docker"
        if self.host and self.host.startswith("ssh://"):
            target = self.host.removeprefix("ssh://")
            result = self.runner(["ssh", target, "df", "-Pk", root], self.timeout)
            if result.returncode != 0:
                raise RuntimeError(f"df on {target} failed: {result.stderr.strip()[-200:]}")
            fields = result.stdout.strip().splitlines()[-1].split()
            return free_share(int(fields[3]), int(fields[2])), f"{root} on {target}"
        # A unix socket: the daemon runs on this machine, so its data root is a local path.
        return percent_free(existing_parent(Path(root))), f"{root} (Docker's data root)"

    def edge_network(self) -> Check | None:
        name = frontend_network(self.stack)
        result = self._docker("network", "inspect", name, "--format", "{{.Name}}")
        if result.returncode == 0:
            return Check("network", True, f"edge network {name} present")
        if not self.deployed:
            return Check("network", True, f"edge network {name} absent; the first deploy creates it")
        return Check("network", False, f"edge network {name} is missing although the stack was deployed",
                     f"someone removed it outside Pulumi: run `pulumi refresh --stack {self.stack}` so the next "
                     "deploy recreates it")


def host_for(config: PlatformConfig, stack: str, project: Path, deployed: bool) -> Host:
    if config.target == "kubernetes":
        settings = config.kubernetes
        if settings.render_to_directory:
            return RenderDirectory(project / settings.render_to_directory)
        return KubernetesCluster(settings.kubectl())
    return DockerHost(config.docker.host or os.environ.get("DOCKER_HOST"), stack, deployed)
