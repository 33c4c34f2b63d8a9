"""Times the operations operators wait for, on the real engine, in a throw-away copy of the project.

    source scripts/env.sh && python benchmarks/engine_timings.py [--repeat 3]

Prints, per operation, the median and the individual runs in seconds: a preview, an up that
changes one version, an up with no change, `deployctl history`, and a rollback end to end
(`deployctl rollback --last-good`, including its `pulumi up`). The stack renders its Kubernetes
manifests, so these time the engine, the program and the provider, not a rollout in a cluster
(benchmarks/cluster_timings.py times those).
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

from engine import Project  # noqa: E402

SECRETS = {"mainDbPassword": "benchmark-db-password", "sessionSigningKey": "benchmark-signing-key"}


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        project = Project(Path(workdir))
        project.init_stack("dev", SECRETS)
        project.render_only("dev")
        project.pulumi("up", "--yes", "-s", "dev", "--message", "baseline")
        runs: dict[str, list[float]] = {name: [] for name in
                                        ("preview", "up (one version changed)", "up (no change)",
                                         "deployctl history", "rollback --last-good (end to end)")}
        for attempt in range(args.repeat):
            runs["preview"].append(timed(lambda: project.pulumi("preview", "-s", "dev")))
            project.set_config("dev", "services.api.version", f"1.5.{attempt}")
            runs["up (one version changed)"].append(timed(lambda: project.pulumi("up", "--yes", "-s", "dev")))
            runs["up (no change)"].append(timed(lambda: project.pulumi("up", "--yes", "-s", "dev")))
            runs["deployctl history"].append(timed(lambda: project.deployctl("history", "dev", "--json")))
            runs["rollback --last-good (end to end)"].append(
                timed(lambda: project.deployctl("rollback", "dev", "--last-good", "--reason", "benchmark")))
    print(f"engine timings, {args.repeat} runs each (seconds); reproduce: "
          f"source scripts/env.sh && python benchmarks/engine_timings.py --repeat {args.repeat}")
    for name, values in runs.items():
        print(f"  {name:36s} median {statistics.median(values):6.2f}   runs " +
              " ".join(f"{v:.2f}" for v in values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
