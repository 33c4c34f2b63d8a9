"""Times what operators wait for on the single Docker host, end to end, with the failed
requests a client saw at each step (the Docker host issue's benchmark).

    source scripts/env.sh && python benchmarks/docker_timings.py [--runs 3]

Starts the engine (devenv/docker/engine.sh), deploys a copy of dev on the Docker target into
its own stack and ports, then prints, in seconds (median of --runs where a step repeats): up
from empty, a no-change up, an update of one version, `deployctl rollback --last-good` end to
end, and a failed deploy (a release that never becomes ready) until the last good version
serves again after the automatic rollback; each with the requests a 30 req/s client sent
through the edge meanwhile and how many failed. Compare: benchmarks/cluster_timings.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from docker_host import DockerHost, Traffic, deploy_to_docker, start_engine  # noqa: E402
from engine import Project  # noqa: E402

SECRETS = {"mainDbPassword": "benchmark-db-password", "sessionSigningKey": "benchmark-signing-key"}
STACK = "dev"
HTTP_PORT, HTTPS_PORT = 19080, 19443
HOST = "shop.dev.localhost"
API = f"https://127.0.0.1:{HTTPS_PORT}/api/healthz"


def measured(project: Project, what: str, action) -> tuple[float, Traffic]:
    with Traffic(API, HOST) as traffic:
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
    print(f"  {what}: {seconds:.1f}s; {traffic.report('client').split(': ', 1)[1]}", flush=True)
    return seconds, traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    host = DockerHost(start_engine())
    host.remove_stack_leftovers(STACK)
    with tempfile.TemporaryDirectory() as work:
        project = Project(Path(work))
        project.init_stack(STACK, SECRETS)
        deploy_to_docker(project, STACK, host.host, HTTP_PORT, HTTPS_PORT, "172.30.141.0/24")
        up = lambda: project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=900)  # noqa: E731
        results: dict[str, list[float]] = {}
        failed: dict[str, int] = {}

        def record(name: str, seconds: float, traffic: Traffic | None = None) -> None:
            results.setdefault(name, []).append(seconds)
            if traffic is not None:
                failed[name] = failed.get(name, 0) + len(traffic.failures)

        started = time.perf_counter()
        up()
        record("up from empty", time.perf_counter() - started)
        print(f"  up from empty: {results['up from empty'][0]:.1f}s", flush=True)
        for run in range(runs):
            print(f"run {run + 1}/{runs}", flush=True)
            record("no-change up", *measured(project, "no-change up", up))
            project.set_config(STACK, "services.api.version", "1.5.0")
            record("update of one version", *measured(project, "update 1.4.2 -> 1.5.0", up))
            record("deployctl rollback --last-good", *measured(
                project, "deployctl rollback --last-good", lambda: project.deployctl("rollback", STACK, "--last-good", "--reason", "benchmark")))
            project.set_config(STACK, "services.api.version", "1.7.0-broken")
            record("failed deploy + automatic rollback", *measured(
                project, "failed deploy + automatic rollback",
                lambda: project.deployctl("deploy", STACK, check=False)))
            project.set_config(STACK, "services.api.version", "1.4.2")
        project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, timeout=600)
    host.remove_stack_leftovers(STACK)
    print("\nDocker host (median seconds; failed requests of a 30 req/s client, all runs):")
    for name, values in results.items():
        extra = f"  failed requests: {failed[name]}" if name in failed else ""
        print(f"  {name:38s} {statistics.median(values):6.1f}{extra}")
    print("reproduce: source scripts/env.sh && python benchmarks/docker_timings.py --runs", runs)


if __name__ == "__main__":
    main()
