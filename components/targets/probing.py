"""What the release gates (docker_gate.py, kubernetes_gate.py) share: running a CLI with a bound,
and the verdict that a release cannot become ready. No Pulumi import: the gates run as commands."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    from components.targets.base import WorkloadSpec  # a type only: the gates run without Pulumi


class NotReady(Exception):
    pass


class GateArgs:
    """A gate's arguments (a frozen dataclass), as its `command:local:Command` passes them on stdin."""

    @classmethod
    def from_json(cls, text: str):
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess]


def run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"timed out after {timeout:g}s")


# A service's HTTP health check as a command run inside its container: what the Docker HEALTHCHECK
# and both release gates run. Busybox-based images have wget but rarely curl. `timeout` bounds the
# probe like Kubernetes' timeoutSeconds: busybox's own `wget -T` segfaults in the images built here.
PROBE = "timeout {timeout} wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1"


def health_probe(spec: "WorkloadSpec") -> list[str]:
    """The workload's readiness probe as argv run inside its container: its command, or HTTP."""
    check = spec.health_check
    if check.command:
        return list(check.command)
    return ["sh", "-c", PROBE.format(timeout=check.timeout_seconds, port=check.port or spec.port, path=check.path)]
