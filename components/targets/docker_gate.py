"""The Docker release gate: a new release slot takes traffic only once every container is ready.

Run by a `command:local:Command` (pulumi-command) after a slot's containers are created and
before the edge's routes name them, as `python -m components.targets.docker_gate` with the gate
as JSON on stdin. Like kamal-proxy, it probes each container every second itself (through
`docker exec`, so the probe is the service's own health check run where the service runs)
instead of waiting for Docker's HEALTHCHECK, whose first result arrives only after a whole
interval. It passes when each container answered `success_threshold` probes in a row, and fails
at once on the first sign a release cannot become healthy: the container exited or restarted
(crash loop), or `failure_threshold` probes in a row failed after the start period, or the
deadline passed. Failing the command fails `pulumi up` before the routes change, so the edge
keeps sending every request to the previous slot.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from components.targets.probing import GateArgs, NotReady, Runner, run


@dataclass(frozen=True)
class Gate(GateArgs):
    docker: Sequence[str]  # the docker CLI with its --host, e.g. ["docker", "--host", "unix:///run/x.sock"]
    containers: Sequence[str]
    probe: Sequence[str]  # run inside each container; exit 0 = ready
    start_period_seconds: float
    interval_seconds: float
    timeout_seconds: float  # one probe
    failure_threshold: int
    success_threshold: int
    deadline_seconds: float


def state_problem(gate: Gate, container: str, runner: Runner) -> str | None:
    """Why the container can no longer become ready (exited, restarting, gone), else None."""
    inspected = runner([*gate.docker, "inspect", "--format",
                        "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", container], 10)
    if inspected.returncode != 0:
        error = inspected.stderr.strip()[-200:]
        if "no such" in error.lower():
            return f"gone: {error}"
        # A busy daemon (an inspect timing out, a refused connection) says nothing about the
        # container: probe on; the deadline still bounds the wait. CI saw one 10 s inspect
        # timeout fail a healthy release on a saturated machine.
        return None
    status, restarts, exit_code = (inspected.stdout.split() + ["?", "?", "?"])[:3]
    if status in ("exited", "dead"):
        return f"exited with code {exit_code}"
    if status == "restarting" or restarts not in ("0", "?"):
        return f"restarted {restarts} time(s) (last exit code {exit_code}): crash loop"
    return None


def last_logs(gate: Gate, container: str, runner: Runner) -> str:
    logs = runner([*gate.docker, "logs", "--tail", "5", container], 10)
    text = (logs.stdout + logs.stderr).strip()
    return f"\n    last log lines of {container}:\n      " + text.replace("\n", "\n      ") if text else ""


def wait_ready(gate: Gate, runner: Runner = run, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> dict[str, float]:
    """Seconds each container took to become ready; NotReady naming the first that cannot."""
    started = clock()
    ready: dict[str, float] = {}
    failures = {name: 0 for name in gate.containers}
    successes = {name: 0 for name in gate.containers}
    last_error = {name: "" for name in gate.containers}
    while True:
        for name in gate.containers:
            if name in ready:
                continue
            problem = state_problem(gate, name, runner)
            if problem:
                raise NotReady(f"{name}: {problem}{last_logs(gate, name, runner)}")
            probe = runner([*gate.docker, "exec", name, *gate.probe], gate.timeout_seconds + 5)
            if probe.returncode == 0:
                successes[name] += 1
                failures[name] = 0
                if successes[name] >= gate.success_threshold:
                    ready[name] = round(clock() - started, 3)
                continue
            successes[name] = 0
            last_error[name] = (probe.stderr.strip() or probe.stdout.strip() or f"exit {probe.returncode}")[-200:]
            if clock() - started >= gate.start_period_seconds:
                failures[name] += 1
                if failures[name] >= gate.failure_threshold:
                    raise NotReady(f"{name}: readiness probe failed {failures[name]} times in a row: "
                                   f"{last_error[name]}{last_logs(gate, name, runner)}")
        if len(ready) == len(gate.containers):
            return ready
        if clock() - started >= gate.deadline_seconds:
            waiting = [name for name in gate.containers if name not in ready]
            raise NotReady(f"not ready within {gate.deadline_seconds:g}s: {', '.join(waiting)} "
                           f"(last probe: {last_error[waiting[0]] or 'no answer'})")
        sleep(gate.interval_seconds)


def main() -> int:
    gate = Gate.from_json(sys.stdin.read())
    try:
        ready = wait_ready(gate)
    except NotReady as problem:
        print(f"release not ready, the edge keeps serving the previous one: {problem}", file=sys.stderr)
        return 1
    print(json.dumps({"ready_seconds": ready}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
