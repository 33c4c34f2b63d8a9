"""Times what operators wait for on the local Kubernetes cluster (issue 7), end to end.

    source scripts/env.sh && python benchmarks/cluster_timings.py [--cold PIECE...] [--restart] [--canary-requests 300]

Prints, in seconds: the cold build of each cluster piece (recorded by devenv/cluster/build.sh
when it last really built it; with --cold, built again now into an empty cache and build
directory: kubernetes takes about 10 minutes on 2 cores, coredns 3, traefik 6; the Go module
download cache stays warm), a warm `cluster.sh start` (with --restart: stop, then start;
the developer's running pods restart with it), `pulumi up` of the dev stack from empty (its own
namespace), an update of one version, `deployctl rollback --last-good` end to end (including
the rollout back), and the share of requests a 10 % canary really receives through the edge.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from cluster import CLUSTER_CACHE, Cluster, deploy_to_cluster, http_get  # noqa: E402
from engine import Project  # noqa: E402

SECRETS = {"mainDbPassword": "benchmark-db-password", "sessionSigningKey": "benchmark-signing-key"}
NAMESPACE = "bench-dev"
HTTPS_PORT = 32446


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cold_builds(rebuild: list[str]) -> dict[str, str]:
    recorded = {}
    for piece in ("kubernetes", "coredns", "traefik"):
        if piece in rebuild:
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "CLUSTER_CACHE": cache, "CLUSTER_GOCACHE": f"{cache}/go-build"}
                subprocess.run(["bash", str(ROOT / "devenv/cluster/build.sh"), piece], check=True, env=env,
                               capture_output=True)
                recorded[piece] = f"{(Path(cache) / 'stamps' / f'{piece}.seconds').read_text().strip()} s (now, cold)"
            continue
        path = CLUSTER_CACHE / "stamps" / f"{piece}.seconds"
        recorded[piece] = (f"{path.read_text().strip()} s (recorded at its last build)" if path.exists()
                           else "not recorded (built before timings were kept; --cold rebuilds)")
    return recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", nargs="+", default=[], choices=["kubernetes", "coredns", "traefik"],
                        help="build these again from an empty build cache and time them")
    parser.add_argument("--restart", action="store_true", help="also time cluster.sh stop + start")
    parser.add_argument("--canary-requests", type=int, default=300)
    args = parser.parse_args()
    cluster = Cluster()
    results: dict[str, str] = {f"cold build {piece}": value for piece, value in cold_builds(args.cold).items()}
    if args.restart:
        subprocess.run(["bash", str(ROOT / "devenv/cluster/cluster.sh"), "stop"], check=True, capture_output=True)
        results["warm cluster.sh start"] = "%.1f s" % timed(lambda: subprocess.run(
            ["bash", str(ROOT / "devenv/cluster/cluster.sh"), "start"], check=True, capture_output=True))
    cluster.require_ready()
    cluster.fresh_namespace(NAMESPACE)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            project = Project(Path(workdir))
            project.init_stack("dev", SECRETS)
            deploy_to_cluster(project, "dev", NAMESPACE, http_port=32083, https_port=HTTPS_PORT)
            results["pulumi up -s dev from empty"] = "%.1f s" % timed(
                lambda: project.pulumi("up", "--yes", "-s", "dev", "--message", "baseline", timeout=900))
            results["pulumi up (no change)"] = "%.1f s" % timed(lambda: project.pulumi("up", "--yes", "-s", "dev"))
            project.set_config("dev", "services.api.version", "1.5.0")
            results["pulumi up (api 1.4.2 -> 1.5.0)"] = "%.1f s" % timed(
                lambda: project.pulumi("up", "--yes", "-s", "dev", "--message", "api 1.5.0", timeout=900))
            results["deployctl rollback --last-good (end to end)"] = "%.1f s" % timed(
                lambda: project.deployctl("rollback", "dev", "--last-good", "--reason", "benchmark"))
            project.set_config("dev", "services.api.canary.version", "1.6.0")
            project.set_config("dev", "services.api.canary.weight", 10)
            project.pulumi("up", "--yes", "-s", "dev", "--message", "canary 10%", timeout=900)
            answers = [http_get(f"https://127.0.0.1:{HTTPS_PORT}/api/healthz", host="shop.dev.localhost")
                       for _ in range(args.canary_requests)]
            served = Counter(a.version for a in answers)
            results["canary share at weight 10"] = (f"{served['1.6.0'] / len(answers):.1%} "
                                                    f"({served['1.6.0']} of {len(answers)}; {dict(served)})")
    finally:
        cluster.drop_namespace(NAMESPACE)
    print("cluster timings; reproduce: source scripts/env.sh && python benchmarks/cluster_timings.py"
          + (f" --cold {' '.join(args.cold)}" if args.cold else "") + (" --restart" if args.restart else ""))
    for name, value in results.items():
        print(f"  {name:44s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
