"""The Kubernetes rollout gate: an update of a Deployment passes once its rollout is complete, and
fails at the first sign the new ReplicaSet cannot become ready, not at the progress deadline.

pulumi-kubernetes' own await only notices ProgressDeadlineExceeded (and then waits out its
timeout): a release whose pods crash-loop or never pass readiness held `pulumi up` for minutes
before anything reacted (issue 18 measured 99-105 s). A gated Deployment is applied with
`pulumi.com/skipAwait` and this gate, run by a `command:local:Command` after it as
`python -m components.targets.kubernetes_gate` with the gate as JSON on stdin, does the waiting
the way the Docker gate (docker_gate.py) does it:
- it passes when the rollout is complete, read as `kubectl rollout status` reads it (the
  Deployment's controller has seen this generation, every replica is updated and available, no
  old replica is left);
- it fails at once when a new pod's container cannot start (image pull errors, crash-loop
  back-off, a bad container config), exits or restarts, or when the service's own health check,
  run in the new pod every `interval_seconds` (`kubectl exec`, the probe the Docker gate runs),
  fails `failure_threshold` times in a row after the start period; or when Kubernetes marks the
  Deployment ProgressDeadlineExceeded, or `deadline_seconds` passed.
The rollout keeps `maxUnavailable: 0`: the previous ReplicaSet serves every request until the new
one is ready, so failing the gate fails `pulumi up` with traffic still on the last good version.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from components.targets.probing import GateArgs, NotReady, Runner, run

# A container waiting for one of these is not going to start by waiting longer.
CANNOT_START = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                          "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
REVISION = "deployment.kubernetes.io/revision"
KUBECTL_TIMEOUT = 30  # one kubectl call on a busy machine; the gate's deadline bounds the whole wait


@dataclass(frozen=True)
class RolloutGate(GateArgs):
    kubectl: Sequence[str]  # kubectl with its --namespace (and --kubeconfig/--context)
    deployment: str
    selector: Mapping[str, str]  # the Deployment's pod selector
    container: str
    probe: Sequence[str]  # run inside the new pods' container; exit 0 = ready
    start_period_seconds: float
    interval_seconds: float
    timeout_seconds: float  # one probe
    failure_threshold: int
    deadline_seconds: float


def rollout_waiting(deployment: dict) -> str | None:
    """What the rollout still waits for, None once complete (kubectl's rollout status rules);
    NotReady once Kubernetes itself gave up on it."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "the controller to see the new generation"
    for condition in status.get("conditions", []):
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            raise NotReady(f"ProgressDeadlineExceeded: {condition.get('message', '')}")
    wanted, updated = spec.get("replicas", 1), status.get("updatedReplicas", 0)
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    if status.get("replicas", 0) > updated:
        return f"{status.get('replicas', 0) - updated} old replica(s) to terminate"
    if status.get("availableReplicas", 0) < updated:
        return f"{status.get('availableReplicas', 0)} of {updated} updated replicas available"
    return None


def new_pods(deployment: dict, listed: list[dict]) -> list[dict]:
    """The pods of the Deployment's current ReplicaSet (the one at its revision), not terminating."""
    revision = deployment["metadata"].get("annotations", {}).get(REVISION)
    uid = deployment["metadata"].get("uid")
    hashes = {rs["metadata"].get("labels", {}).get("pod-template-hash") for rs in listed
              if rs.get("kind") == "ReplicaSet"
              and rs["metadata"].get("annotations", {}).get(REVISION) == revision
              and any(owner.get("uid") == uid for owner in rs["metadata"].get("ownerReferences", []))}
    return [pod for pod in listed if pod.get("kind") == "Pod" and not pod["metadata"].get("deletionTimestamp")
            and pod["metadata"].get("labels", {}).get("pod-template-hash") in hashes]


def container_problem(pod: dict, container: str) -> str | None:
    """Why the pod's container can no longer become ready (cannot start, exited, restarted), else None."""
    for status in pod.get("status", {}).get("containerStatuses", []):
        if status.get("name") != container:
            continue
        state = status.get("state", {})
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in CANNOT_START:
            return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
        terminated = state.get("terminated") or (status.get("lastState") or {}).get("terminated") or {}
        if status.get("restartCount", 0) > 0:
            return (f"restarted {status['restartCount']} time(s) (last exit code {terminated.get('exitCode', '?')}"
                    f"{', ' + terminated['reason'] if terminated.get('reason') else ''}): crash loop")
        if state.get("terminated"):
            return f"exited with code {terminated.get('exitCode', '?')}"
    return None


def running_unready(pod: dict, container: str) -> bool:
    return any(status.get("name") == container and "running" in status.get("state", {}) and not status.get("ready")
               for status in pod.get("status", {}).get("containerStatuses", []))


@dataclass
class _Watch:
    running_since: dict[str, float] = field(default_factory=dict)  # pod -> when the gate saw it running
    failures: dict[str, int] = field(default_factory=dict)
    last_error: str = ""


def _kubectl_json(gate: RolloutGate, runner: Runner, *args: str) -> dict | None:
    got = runner([*gate.kubectl, *args, "-o", "json"], KUBECTL_TIMEOUT)
    if got.returncode != 0:
        # A busy API server says nothing about the release: look again; the deadline bounds the wait.
        return None
    return json.loads(got.stdout)


def last_logs(gate: RolloutGate, pod: str, runner: Runner) -> str:
    logs = runner([*gate.kubectl, "logs", "--tail", "5", pod, "-c", gate.container], 20)
    text = (logs.stdout + logs.stderr).strip()
    return f"\n    last log lines of {pod}:\n      " + text.replace("\n", "\n      ") if text else ""


# What kubectl prints when the command it ran in the container exited non-zero; any other failure
# is kubectl's own (exec forbidden, the pod gone, the API server unreachable, a timeout).
REMOTE_EXIT = "command terminated with exit code"


def kubectl_failed(stderr: str) -> bool:
    """kubectl itself failed (it could not run the probe), as opposed to the probe failing."""
    return REMOTE_EXIT not in stderr


def _probe(gate: RolloutGate, watch: _Watch, pod: str, runner: Runner, elapsed: float) -> None:
    probe = runner([*gate.kubectl, "exec", pod, "-c", gate.container, "--", *gate.probe], gate.timeout_seconds + 10)
    if probe.returncode == 0:
        watch.failures[pod] = 0
        return
    said = "\n".join(line for line in probe.stderr.splitlines() if REMOTE_EXIT not in line).strip()
    watch.last_error = (said or probe.stdout.strip() or f"exit {probe.returncode}")[-200:]
    if kubectl_failed(probe.stderr):
        # No verdict on the release (exec forbidden, the API server busy, a kubectl timeout): the
        # kubelet's readiness and the deadline still decide.
        return
    if elapsed >= gate.start_period_seconds:
        watch.failures[pod] = watch.failures.get(pod, 0) + 1
        if watch.failures[pod] >= gate.failure_threshold:
            raise NotReady(f"{pod}: readiness probe failed {watch.failures[pod]} times in a row: "
                           f"{watch.last_error}{last_logs(gate, pod, runner)}")


def wait_rolled_out(gate: RolloutGate, runner: Runner = run, clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> float:
    """Seconds the rollout took; NotReady naming the first new pod that cannot become ready."""
    started, watch, waiting = clock(), _Watch(), "the Deployment"
    selector = ",".join(f"{key}={value}" for key, value in sorted(gate.selector.items()))
    while True:
        deployment = _kubectl_json(gate, runner, "get", "deployment", gate.deployment)
        if deployment is not None:
            waiting = rollout_waiting(deployment)
            if waiting is None:
                return round(clock() - started, 3)
            listed = _kubectl_json(gate, runner, "get", "replicasets,pods", "-l", selector)
            for pod in new_pods(deployment, listed["items"] if listed else []):
                name = pod["metadata"]["name"]
                problem = container_problem(pod, gate.container)
                if problem:
                    raise NotReady(f"{name}: {problem}{last_logs(gate, name, runner)}")
                if running_unready(pod, gate.container):
                    since = watch.running_since.setdefault(name, clock())
                    _probe(gate, watch, name, runner, clock() - since)
        if clock() - started >= gate.deadline_seconds:
            raise NotReady(f"not rolled out within {gate.deadline_seconds:g}s: waiting for {waiting}"
                           + (f" (last probe: {watch.last_error})" if watch.last_error else ""))
        sleep(gate.interval_seconds)


def main() -> int:
    gate = RolloutGate.from_json(sys.stdin.read())
    try:
        seconds = wait_rolled_out(gate)
    except NotReady as problem:
        print(f"release not ready, the previous ReplicaSet keeps serving: {gate.deployment}: {problem}",
              file=sys.stderr)
        return 1
    print(json.dumps({"rolled_out_seconds": seconds, "deployment": gate.deployment}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
