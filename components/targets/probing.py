"""What the release gates (docker_gate.py, kubernetes_gate.py) share: running a CLI with a bound,
and the verdict that a release cannot become ready. No Pulumi import: the gates run as commands."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Callable, Sequence


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


def health_check_argv(command: Sequence[str] | None, timeout_seconds: int, port: int | None, path: str) -> list[str]:
    """The readiness probe as argv run inside the container: the service's command, or HTTP."""
    if command:
        return list(command)
    return ["sh", "-c", PROBE.format(timeout=timeout_seconds, port=port, path=path)]
