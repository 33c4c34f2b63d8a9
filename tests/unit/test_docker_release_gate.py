"""The Docker release gate decides from the first signals whether a new slot may take traffic."""

from __future__ import annotations

import subprocess

import pytest
from support import ManualClock as Clock

from components.targets.docker_gate import Gate, NotReady, wait_ready


class FakeDocker:
    """Answers `docker inspect` and `docker exec` from scripted states and probe results."""

    def __init__(self, states: list[str], probes: list[int]) -> None:
        self.states, self.probes, self.calls = list(states), list(probes), []

    def __call__(self, argv, timeout):
        self.calls.append(argv)
        if "inspect" in argv:
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            if state.startswith("error: "):  # the CLI failed: "error: <code> <stderr>"
                code, stderr = state.removeprefix("error: ").split(" ", 1)
                return subprocess.CompletedProcess(argv, int(code), "", stderr)
            return subprocess.CompletedProcess(argv, 0, state, "")
        if "logs" in argv:
            return subprocess.CompletedProcess(argv, 0, "panic: config missing\n", "")
        code = self.probes.pop(0) if len(self.probes) > 1 else self.probes[0]
        return subprocess.CompletedProcess(argv, code, "", "" if code == 0 else "connection refused")



def gate(**changes) -> Gate:
    settings = dict(docker=["docker"], containers=["dev-api-1"], probe=["true"], start_period_seconds=2,
                    interval_seconds=1, timeout_seconds=3, failure_threshold=3, success_threshold=1,
                    deadline_seconds=30)
    return Gate(**{**settings, **changes})


def test_a_container_answering_its_probe_is_ready_at_once():
    clock = Clock()
    ready = wait_ready(gate(), FakeDocker(["running 0 0"], [0]), clock, clock.sleep)
    assert ready == {"dev-api-1": 0.0}


def test_probe_failures_during_the_start_period_do_not_count():
    clock = Clock()
    ready = wait_ready(gate(), FakeDocker(["running 0 0"], [1, 1, 1, 0]), clock, clock.sleep)
    assert ready == {"dev-api-1": 3.0}


def test_consecutive_probe_failures_after_the_start_period_fail_the_release_naming_the_probe_error():
    clock = Clock()
    with pytest.raises(NotReady, match="readiness probe failed 3 times in a row: connection refused") as caught:
        wait_ready(gate(), FakeDocker(["running 0 0"], [1]), clock, clock.sleep)
    assert clock.now <= 5  # start period 2 s + 3 failures 1 s apart: long before the 30 s deadline
    assert "panic: config missing" in str(caught.value)


def test_a_crash_loop_fails_the_release_on_its_first_restart():
    clock = Clock()
    with pytest.raises(NotReady, match="restarted 1 time.*crash loop"):
        wait_ready(gate(), FakeDocker(["running 0 0", "restarting 1 2"], [1]), clock, clock.sleep)
    assert clock.now <= 1


def test_an_exited_container_fails_the_release_with_its_exit_code():
    with pytest.raises(NotReady, match="exited with code 3"):
        wait_ready(gate(), FakeDocker(["exited 0 3"], [0]), Clock(), Clock().sleep)


def test_a_release_that_never_answers_fails_at_the_deadline():
    clock = Clock()
    never = gate(start_period_seconds=100, deadline_seconds=10)
    with pytest.raises(NotReady, match="not ready within 10s: dev-api-1"):
        wait_ready(never, FakeDocker(["running 0 0"], [1]), clock, clock.sleep)


def test_every_replica_must_be_ready():
    docker = FakeDocker(["running 0 0"], [0])
    ready = wait_ready(gate(containers=["dev-api-1", "dev-api-2"]), docker, Clock(), Clock().sleep)
    assert set(ready) == {"dev-api-1", "dev-api-2"}
    assert [c for c in docker.calls if "exec" in c] == [["docker", "exec", "dev-api-1", "true"],
                                                        ["docker", "exec", "dev-api-2", "true"]]


def test_gate_round_trips_through_the_commands_stdin():
    assert Gate.from_json(gate().to_json()) == gate()


def test_an_inspect_timing_out_on_a_busy_daemon_does_not_fail_a_healthy_release():
    clock = Clock()
    docker = FakeDocker(["error: 124 timed out after 10s", "running 0 0"], [0])
    assert wait_ready(gate(), docker, clock, clock.sleep) == {"dev-api-1": 0.0}


def test_a_container_that_is_gone_fails_the_release():
    docker = FakeDocker(["error: 1 Error: No such object: dev-api-1"], [0])
    with pytest.raises(NotReady, match="gone: Error: No such object"):
        wait_ready(gate(), docker, Clock(), Clock().sleep)
