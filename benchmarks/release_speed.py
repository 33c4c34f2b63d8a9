"""Issue 18's figures side by side, each with its reference, in one run, on each target.

    source scripts/env.sh && python benchmarks/release_speed.py [--target docker kubernetes] [--runs 3]

For each target it deploys a copy of dev into its own stack (Docker: its own ports and subnet on
the project's engine; Kubernetes: its own namespace and node ports on the local cluster), then
prints, median of --runs, in seconds:
  - failed release -> last good serving: `deployctl deploy` of a version whose readiness never
    passes (1.7.0-broken), until deployctl returns (it says "rolled back" only once the last good
    version answers through the edge), with the requests a 30 req/s client saw fail meanwhile;
    target <= 30 s, no request failed;
  - `deployctl rollback --last-good` against the same change made by hand (`pulumi config set` +
    `pulumi up --yes`, the issue's reference: the engine previews, then updates; api 1.5.0 -> 1.4.2
    both times); target ratio <= 1.0. Also printed: the same by hand with `--skip-preview` (no
    preview, no policy pack: the engine's floor for that change), which deployctl cannot reach
    without dropping its policy preview;
  - `pulumi preview` of the stack against the preview of an empty Python program on the same
    engine (benchmarks/preview_profile.py's floor); target ratio <= 1.5;
  - a no-change `pulumi up`; target <= 3 s.
Every figure runs with what normally runs: the policy pack and smoke test in deployctl, nothing
skipped. Print the machine's load with it: these are wall-clock figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from docker_host import DockerHost, Traffic, deploy_to_docker, start_engine  # noqa: E402
from engine import Project  # noqa: E402
from preview_profile import empty_program  # noqa: E402

SECRETS = {"mainDbPassword": "benchmark-db-password", "sessionSigningKey": "benchmark-signing-key"}
STACK = "dev"
HOST = "shop.dev.localhost"
GOOD, NEXT, BROKEN = "1.4.2", "1.5.0", "1.7.0-broken"


def seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def phases(output: str, project: Project) -> str:
    """The phase durations of the release record deployctl names in its output."""
    found = re.search(r"release record: (\S+)", output)
    if not found:
        return "no release record named in deployctl's output"
    record = json.loads((project.dir / found.group(1)).read_text())
    return ", ".join(f"{name} {value:.1f}s" for name, value in record.get("durations", {}).items()) + \
        f" (total {record.get('duration_seconds', 0):.1f}s)"


class Target:
    """Where the benchmark's copy of dev runs, and how it is put there and taken away."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "docker":
            self.docker = DockerHost(start_engine())
            self.https_port, self.http_port = 19443, 19080
        else:
            from cluster import Cluster
            self.cluster = Cluster()
            self.cluster.require_ready()
            self.https_port, self.http_port = 32446, 32083
        self.url = f"https://127.0.0.1:{self.https_port}/api/healthz"

    def place(self, project: Project) -> None:
        if self.name == "docker":
            self.docker.remove_stack_leftovers(STACK)
            deploy_to_docker(project, STACK, self.docker.host, self.http_port, self.https_port, "172.30.141.0/24")
        else:
            from cluster import deploy_to_cluster
            self.cluster.fresh_namespace("bench-speed")
            deploy_to_cluster(project, STACK, "bench-speed", http_port=self.http_port, https_port=self.https_port)

    def clear(self, project: Project) -> None:
        project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, timeout=900, check=False)
        if self.name == "docker":
            self.docker.remove_stack_leftovers(STACK)
        else:
            self.cluster.drop_namespace("bench-speed")


def measure(target: Target, runs: int, floor: Project) -> list[tuple[str, float, str, str]]:
    """(figure, median, unit, reference, verdict) rows for one target."""
    figures: dict[str, list[float]] = {}
    failed_requests = 0
    with tempfile.TemporaryDirectory(prefix=f"release-speed-{target.name}-") as work:
        project = Project(Path(work))
        project.init_stack(STACK, SECRETS)
        target.place(project)
        try:
            up = lambda: project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=900)  # noqa: E731
            up()
            for run in range(runs):
                print(f"{target.name}: run {run + 1}/{runs}", flush=True)
                figures.setdefault("no-change up", []).append(seconds(up))
                figures.setdefault("preview", []).append(seconds(lambda: project.pulumi("preview", "-s", STACK)))
                figures.setdefault("floor", []).append(seconds(lambda: floor.pulumi("preview", "-s", "floor")))
                project.set_config(STACK, "services.api.version", NEXT)
                up()
                figures.setdefault("rollback", []).append(seconds(lambda: project.deployctl(
                    "rollback", STACK, "--last-good", "--reason", "benchmark", timeout=900)))
                project.set_config(STACK, "services.api.version", NEXT)
                up()

                def by_hand(*flags: str) -> None:
                    project.set_config(STACK, "services.api.version", GOOD)
                    project.pulumi("up", "--yes", *flags, "-s", STACK, timeout=900)
                figures.setdefault("by hand", []).append(seconds(by_hand))
                project.set_config(STACK, "services.api.version", NEXT)
                up()
                figures.setdefault("by hand, no preview", []).append(seconds(lambda: by_hand("--skip-preview")))
                project.set_config(STACK, "services.api.version", BROKEN)
                deployed = []
                with Traffic(target.url, HOST) as traffic:
                    failed = seconds(lambda: deployed.append(project.deployctl("deploy", STACK, check=False, timeout=900)))
                figures.setdefault("failed release", []).append(failed)
                failed_requests += len(traffic.failures)
                print(f"  {traffic.report('failed release')}", flush=True)
                print(f"  where the failed release's time went: {phases(deployed[0].output, project)}", flush=True)
                project.set_config(STACK, "services.api.version", GOOD)  # what the rollback left running
        finally:
            target.clear(project)
    median = {name: statistics.median(values) for name, values in figures.items()}
    rollback_ratio = median["rollback"] / median["by hand"]
    preview_ratio = median["preview"] / median["floor"]
    return [
        ("failed release -> last good serving", median["failed release"], "s",
         f"<= 30 s, 0 failed requests (saw {failed_requests})",
         "meets" if median["failed release"] <= 30 and failed_requests == 0 else "misses"),
        ("deployctl rollback --last-good", median["rollback"], "s",
         f"by hand {median['by hand']:.1f} s (--skip-preview {median['by hand, no preview']:.1f} s)", ""),
        ("  rollback / (config set + up)", rollback_ratio, "x", "<= 1.0x", "meets" if rollback_ratio <= 1.0 else "misses"),
        ("  rollback / (config set + up --skip-preview)", median["rollback"] / median["by hand, no preview"], "x",
         "the engine's floor", ""),
        ("pulumi preview", median["preview"], "s", f"empty program {median['floor']:.1f} s", ""),
        ("  preview / empty program", preview_ratio, "x", "<= 1.5x", "meets" if preview_ratio <= 1.5 else "misses"),
        ("no-change pulumi up", median["no-change up"], "s", "<= 3 s",
         "meets" if median["no-change up"] <= 3 else "misses"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", nargs="+", choices=["docker", "kubernetes"], default=["docker", "kubernetes"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows: dict[str, list] = {}
    with tempfile.TemporaryDirectory(prefix="release-speed-floor-") as tmp:
        floor = empty_program(Path(tmp) / "floor")
        floor.pulumi("preview", "-s", "floor")  # warm: plugins loaded once, bytecode compiled
        for name in args.target:
            rows[name] = measure(Target(name), args.runs, floor)
    print(f"\nissue 18 figures, median of {args.runs} runs (load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after):")
    for name, figures in rows.items():
        print(f"  {name}")
        for figure, value, unit, reference, verdict in figures:
            print(f"    {figure:38s} {value:7.2f} {unit}   {reference:40s} {verdict}")
    print("reproduce: source scripts/env.sh && python benchmarks/release_speed.py --target",
          " ".join(args.target), "--runs", args.runs)


if __name__ == "__main__":
    main()
