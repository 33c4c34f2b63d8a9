"""The Kubernetes rollout gate passes a complete rollout and fails a release at its first signs."""

from __future__ import annotations

import json
import subprocess

import pytest
from support import ManualClock as Clock

from components.targets.kubernetes_gate import NotReady, RolloutGate, wait_rolled_out

GATE = RolloutGate(kubectl=["kubectl", "--namespace", "shop"], deployment="api", selector={"app": "api"},
                   container="api", probe=["sh", "-c", "probe"], start_period_seconds=10, interval_seconds=1,
                   timeout_seconds=3, failure_threshold=3, deadline_seconds=180)


def deployment(generation=2, observed=2, replicas=1, updated=0, total=2, available=1, revision="2", stalled=False):
    conditions = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "api has timed out"}] \
        if stalled else []
    return {"metadata": {"name": "api", "uid": "d-1", "generation": generation,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "conditions": conditions}}


def replica_set(revision: str, template_hash: str) -> dict:
    return {"kind": "ReplicaSet", "metadata": {
        "labels": {"pod-template-hash": template_hash}, "ownerReferences": [{"uid": "d-1"}],
        "annotations": {"deployment.kubernetes.io/revision": revision}}}


def pod(name: str, template_hash: str, state: dict, ready=False, restarts=0, last_state=None) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "labels": {"pod-template-hash": template_hash}},
            "status": {"containerStatuses": [{"name": "api", "state": state, "ready": ready, "restartCount": restarts,
                                              "lastState": last_state or {}}]}}


RUNNING = {"running": {"startedAt": "2026-12-03T10:00:00Z"}}
OLD_POD = pod("api-old", "aaa", RUNNING, ready=True)
SETS = [replica_set("1", "aaa"), replica_set("2", "bbb")]


class FakeKubectl:
    """Answers the gate's kubectl calls from scripted Deployment states, pods and probe results."""

    def __init__(self, deployments: list[dict], new_pod: dict | None, probes: list[int] = (0,),
                 old_pod: dict = OLD_POD, exec_answer: tuple[int, str] | None = None) -> None:
        self.deployments, self.new_pod, self.probes, self.calls = list(deployments), new_pod, list(probes), []
        self.old_pod, self.exec_answer = old_pod, exec_answer  # exec_answer: (exit code, stderr) of every exec

    def __call__(self, argv, timeout):
        self.calls.append(argv)
        if "deployment" in argv:
            state = self.deployments.pop(0) if len(self.deployments) > 1 else self.deployments[0]
            return subprocess.CompletedProcess(argv, 0, json.dumps(state), "")
        if "replicasets,pods" in argv:
            items = [*SETS, self.old_pod, *([self.new_pod] if self.new_pod else [])]
            return subprocess.CompletedProcess(argv, 0, json.dumps({"items": items}), "")
        if "logs" in argv:
            return subprocess.CompletedProcess(argv, 0, "panic: config missing\n", "")
        if self.exec_answer:
            return subprocess.CompletedProcess(argv, self.exec_answer[0], "", self.exec_answer[1])
        code = self.probes.pop(0) if len(self.probes) > 1 else self.probes[0]
        # kubectl exec ends with this line when the command in the container failed.
        said = "wget: server returned error: HTTP/1.1 503\ncommand terminated with exit code 1"
        return subprocess.CompletedProcess(argv, code, "", "" if code == 0 else said)



def wait(kubectl: FakeKubectl, gate: RolloutGate = GATE) -> tuple[float, Clock]:
    clock = Clock()
    return wait_rolled_out(gate, runner=kubectl, clock=clock, sleep=clock.sleep), clock


def test_a_rollout_passes_once_every_replica_is_updated_and_available_and_no_old_one_is_left():
    rolling = deployment(updated=1, total=2, available=1)
    done = deployment(updated=1, total=1, available=1)
    seconds, _ = wait(FakeKubectl([rolling, rolling, done], pod("api-new", "bbb", RUNNING)))
    assert seconds == 2


def test_a_generation_the_controller_has_not_seen_yet_is_waited_for():
    unseen = deployment(generation=3, observed=2, updated=1, total=1, available=1)
    done = deployment(generation=3, observed=3, updated=1, total=1, available=1)
    seconds, _ = wait(FakeKubectl([unseen, done], None))
    assert seconds == 1


def test_a_crash_looping_new_pod_fails_at_once_with_its_last_logs():
    crashing = pod("api-new", "bbb", {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                   restarts=2, last_state={"terminated": {"exitCode": 2}})
    with pytest.raises(NotReady, match=r"api-new: CrashLoopBackOff: back-off 10s(.|\n)*panic: config missing"):
        wait(FakeKubectl([deployment(updated=1)], crashing))


def test_an_image_that_cannot_be_pulled_fails_at_once():
    pulling = pod("api-new", "bbb", {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}})
    with pytest.raises(NotReady, match="ImagePullBackOff"):
        wait(FakeKubectl([deployment(updated=1)], pulling))


def test_a_restarted_container_is_a_crash_loop_even_while_it_runs():
    restarted = pod("api-new", "bbb", RUNNING, restarts=1, last_state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
    with pytest.raises(NotReady, match=r"restarted 1 time\(s\) \(last exit code 137, OOMKilled\): crash loop"):
        wait(FakeKubectl([deployment(updated=1)], restarted))


def test_readiness_failing_threshold_times_after_the_start_period_fails_the_release_without_the_deadline():
    kubectl = FakeKubectl([deployment(updated=1)], pod("api-new", "bbb", RUNNING), probes=[1])
    clock = Clock()
    with pytest.raises(NotReady, match="readiness probe failed 3 times in a row: wget: server returned error: HTTP/1.1 503\n"):
        wait_rolled_out(GATE, runner=kubectl, clock=clock, sleep=clock.sleep)
    # Failures count from the start period (10 s) on: the third is at 12 s, long before 180 s.
    assert clock.now == 12


def test_failed_probes_inside_the_start_period_do_not_count():
    probes = [1] * 8 + [0]
    rolling = [deployment(updated=1)] * 9
    done = deployment(updated=1, total=1, available=1)
    seconds, _ = wait(FakeKubectl([*rolling, done], pod("api-new", "bbb", RUNNING), probes=probes))
    assert seconds == 9


def test_a_success_resets_the_run_of_failures():
    probes = [0] * 10 + [1, 1, 0, 1, 1, 0, 0]
    rolling = [deployment(updated=1)] * 17
    done = deployment(updated=1, total=1, available=1)
    seconds, _ = wait(FakeKubectl([*rolling, done], pod("api-new", "bbb", RUNNING), probes=probes))
    assert seconds == 17


def test_only_the_new_replicasets_pods_are_judged():
    # The old ReplicaSet's pod restarting says nothing about the release.
    restarting_old = pod("api-old", "aaa", RUNNING, ready=True, restarts=4)
    done = deployment(updated=1, total=1, available=1)
    seconds, _ = wait(FakeKubectl([deployment(updated=1), done], pod("api-new", "bbb", RUNNING, ready=True),
                                  old_pod=restarting_old))
    assert seconds == 1


def test_kubernetes_giving_up_on_the_progress_deadline_fails_the_gate():
    with pytest.raises(NotReady, match="ProgressDeadlineExceeded: api has timed out"):
        wait(FakeKubectl([deployment(updated=1, stalled=True)], None))


def test_a_rollout_that_never_completes_fails_at_the_deadline_naming_what_it_waited_for():
    gate = RolloutGate(**{**GATE.__dict__, "deadline_seconds": 5})
    pending = pod("api-new", "bbb", {"waiting": {"reason": "ContainerCreating"}})
    with pytest.raises(NotReady, match="not rolled out within 5s: waiting for 0 of 1 updated replicas available"):
        wait(FakeKubectl([deployment(updated=1, total=1, available=0)], pending), gate)


def test_a_failing_kubectl_call_is_looked_at_again_not_taken_for_a_failed_release():
    class Flaky(FakeKubectl):
        def __call__(self, argv, timeout):
            if "deployment" in argv and len(self.calls) < 2:
                self.calls.append(argv)
                return subprocess.CompletedProcess(argv, 1, "", "Unable to connect to the server: timeout")
            return super().__call__(argv, timeout)
    seconds, _ = wait(Flaky([deployment(updated=1, total=1, available=1)], None))
    assert seconds == 2


def test_the_gate_round_trips_through_json():
    assert RolloutGate.from_json(GATE.to_json()) == RolloutGate(**{**GATE.__dict__, "kubectl": list(GATE.kubectl),
                                                                    "probe": list(GATE.probe)})


def test_a_probe_kubectl_could_not_run_is_no_verdict_on_the_release():
    forbidden = (1, 'Error from server (Forbidden): pods "api-new" is forbidden')
    rolling = [deployment(updated=1)] * 20
    done = deployment(updated=1, total=1, available=1)
    seconds, _ = wait(FakeKubectl([*rolling, done], pod("api-new", "bbb", RUNNING), exec_answer=forbidden))
    assert seconds == 20  # the kubelet made it ready; exec being refused failed nothing


def test_a_health_command_that_says_error_is_a_failed_probe_not_a_kubectl_failure():
    says_error = (3, "error: db down\ncommand terminated with exit code 3")
    with pytest.raises(NotReady, match="readiness probe failed 3 times in a row: error: db down"):
        wait(FakeKubectl([deployment(updated=1)], pod("api-new", "bbb", RUNNING), exec_answer=says_error))
