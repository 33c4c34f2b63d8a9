"""deployctl when deploys collide or die: a second deploy is refused at once, naming the holder;
a deploy killed at any moment is recovered by the next one, which ships what it was asked for.
Real engine, stacks that render their manifests, smoke tests through the fake edge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import ROOT, Project, Result

pytestmark = pytest.mark.e2e

@pytest.fixture
def staging(staging):
    """The rendering staging stack (conftest.py), deployed once at 1.4.2."""
    staging.pulumi("up", "--yes", "-s", "staging", "--message", "api 1.4.2")
    return staging


def start_deploy(project: Project) -> subprocess.Popen:
    """`deployctl deploy staging` in its own process group (deployctl and the engine under it)."""
    return subprocess.Popen([sys.executable, "-m", "deployctl", "deploy", "staging", "--cwd", str(project.dir)],
                            cwd=ROOT, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def lease_file(project: Project) -> Path:
    return Path(project.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".deployctl" / "leases" / "staging.json"


def engine_lock_files(project: Project) -> list[Path]:
    return list((Path(project.env["PULUMI_BACKEND_URL"].removeprefix("file://")) / ".pulumi" / "locks").glob(
        "**/staging/*.json"))


def refusal_timed(project: Project):
    """`deployctl deploy staging`, printing on stderr how long deployctl itself ran."""
    timed = ("import sys, time\n"
             "from deployctl.cli import app\n"
             "started = time.monotonic()\n"
             "try:\n"
             f"    app(['deploy', 'staging', '--cwd', {str(project.dir)!r}])\n"
             "finally:\n"
             "    print(f'deployctl-seconds {time.monotonic() - started:.3f}', file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", timed], cwd=ROOT, env=project.env, capture_output=True,
                          text=True, timeout=300)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def running_versions(project: Project) -> dict:
    return project.outputs("staging")["versions"]


def test_a_second_deploy_is_refused_within_two_seconds_naming_the_holder(staging):
    staging.set_config("staging", "services.api.version", "1.5.0")
    # The first deploy's smoke test takes a while, well inside its 3 s request timeout even on a
    # busy machine (1.5 s was not: every attempt timed out with both cores saturated).
    staging.edge.delay_seconds = 0.5
    staging.edge.requests.clear()
    first = start_deploy(staging)
    try:
        wait_for(lease_file(staging).exists, "the first deploy's lease")
        holder = json.loads(lease_file(staging).read_text())
        # Timed inside the second deployctl, from the moment its modules are imported to its exit:
        # the interpreter's start-up is not deployctl's work, and on a saturated machine it alone
        # varied by more than 10 s between two runs (measured beside it, it was no baseline).
        second = refusal_timed(staging)
        assert "deployctl-seconds " in second.stderr, second.output
        refused_in = float(second.stderr.rsplit("deployctl-seconds ", 1)[1].split()[0])
        print(f"second deploy refused {refused_in:.2f}s after deployctl started: "
              f"{[line for line in second.output.splitlines() if 'is busy' in line]}")
        assert second.code != 0 and "is busy" in second.output and f"pid {holder['pid']}" in second.output
        assert refused_in < 2
        assert first.wait(timeout=600) == 0, first.stdout.read()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    config = json.loads(staging.pulumi("config", "--json", "-s", "staging").stdout)
    assert config["platform:services"]["objectValue"]["api"]["version"] == "1.5.0"
    assert running_versions(staging)["api"] == "1.5.0"
    assert staging.outputs("staging")["verifiedVersions"]["api"] == "1.5.0"


@pytest.mark.parametrize("moment", ["preview", "update", "smoke test"])
def test_a_deploy_killed_during_the_moment_is_recovered_by_the_next_deploy(staging, moment):
    staging.set_config("staging", "services.api.version", "1.5.0")
    staging.edge.delay_seconds = 2.0
    history_before = staging.history("staging")
    staging.edge.requests.clear()  # the fixture's own deploy ran a smoke test already
    deploy = start_deploy(staging)
    output: list[str] = []

    def preview_done() -> bool:
        output.append(deploy.stdout.readline())
        return any(line.startswith("Updating (staging)") for line in output)

    staging.preview_done = preview_done
    if moment == "preview":
        wait_for(lambda: lease_file(staging).exists(), "the lease")
        time.sleep(0.5)
    elif moment == "update":
        wait_for(preview_done, "the update to start")
        time.sleep(0.5)
    else:
        wait_for(staging.edge.requests.is_set, "the smoke test")
    assert deploy.poll() is None, "the deploy ended before it could be interrupted"
    os.killpg(deploy.pid, signal.SIGKILL)
    deploy.wait()
    staging.edge.delay_seconds = 0

    recovered = staging.deployctl("deploy", "staging", check=False)
    print(f"killed during the {moment}; the next deploy said:\n" + "\n".join(
        line for line in recovered.output.splitlines() if line.startswith("deployctl:") or "deployed" in line))
    assert recovered.code == 0, recovered.output[-3000:]
    assert "took over a stale deployctl lease" in recovered.output
    assert running_versions(staging)["api"] == "1.5.0"
    history = staging.history("staging")
    assert history[-len(history_before):] == history_before  # every earlier update is still there
    assert history[0]["result"] == "succeeded"
