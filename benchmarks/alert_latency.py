"""Alert delivery latency on the Docker target: from a fault (the api's containers stopped) to
ServiceDown arriving at a webhook, over several runs (issue 14's benchmark).

    source scripts/env.sh && python benchmarks/alert_latency.py [--runs 5] [--for 30s] [--scrape 5] [--group-wait 5s]

Starts the engine (devenv/docker/engine.sh), deploys a copy of staging on the Docker target into
its own stack (`alertbench`), ports and subnet, with the stack's Prometheus and Alertmanager
alerting to a webhook receiver in this process; then, per run: stop the api, wait for
ServiceDown at the webhook, start the api, wait for the resolved notification. Prints each
run's seconds, min/median/max, and the evaluation interval, `for:` and `group_wait` used. The
expected latency is about: `for:` + one or two evaluation intervals + scrape timeout + group_wait.
Destroys the stack at the end. The e2e test tests/e2e/test_docker_alerting.py asserts < 5 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # receivers.py
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT))

from docker_host import DockerHost, deploy_to_docker, start_engine  # noqa: E402
from engine import Project  # noqa: E402
from docker_alerting import Receiver, host_address, set_plain  # noqa: E402

STACK = "alertbench"
HTTP_PORT, HTTPS_PORT = 19380, 19743
SUBNET = "172.30.147.0/24"
SECRETS = {"mainDbPassword": "benchmark-alert-db-password", "sessionSigningKey": "benchmark-alert-signing-key"}


def api_containers(host: DockerHost) -> list[str]:
    return host.docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={STACK}",
                       "--filter", "label=app.kubernetes.io/name=api",
                       "--filter", "label=deploy.platform/track=stable").split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--for", dest="for_", default="30s", help="ServiceDown's for: (alerting.thresholds.serviceDownFor)")
    parser.add_argument("--scrape", type=int, default=5, help="scrape and evaluation interval, seconds")
    parser.add_argument("--group-wait", default="5s", help="critical group_wait (alerting.criticalGroupWait)")
    args = parser.parse_args()
    host = DockerHost(start_engine())
    host.remove_stack_leftovers(STACK)
    host.refresh_images()
    receiver = Receiver()
    address = host_address()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        project = Project(Path(work))
        (project.dir / f"Pulumi.{STACK}.yaml").write_text((project.dir / "Pulumi.staging.yaml").read_text())
        project.init_stack(STACK, {**SECRETS, "alertWebhookUrl": f"http://{address}:{receiver.port}/alerts"})
        deploy_to_docker(project, STACK, host.host, HTTP_PORT, HTTPS_PORT, SUBNET)
        for key, value in {"monitoring.scrapeIntervalSeconds": args.scrape,
                           "alerting.thresholds.serviceDownFor": args.for_,
                           "alerting.criticalGroupWait": args.group_wait}.items():
            project.set_config(STACK, key, value)
        set_plain(project, STACK, "alerting.webhookUrlSecretKey", "alertWebhookUrl")
        try:
            started = time.monotonic()
            project.pulumi("up", "--yes", "--skip-preview", "-s", STACK, timeout=1200)
            print(f"up from empty: {time.monotonic() - started:.1f}s", flush=True)
            api = api_containers(host)
            for run in range(1, args.runs + 1):
                host.docker("stop", "-t", "5", *api, timeout=120)
                fault = time.time()
                arrived, _ = receiver.wait_for("/alerts", fault, lambda labels: labels["alertname"] == "ServiceDown"
                                               and labels.get("service") == "api", 600)
                latencies.append(arrived - fault)
                print(f"  run {run}: ServiceDown at the webhook {arrived - fault:.1f}s after the api stopped", flush=True)
                host.docker("start", *api, timeout=120)
                _wait_resolved(receiver, arrived)
        finally:
            project.pulumi("destroy", "--yes", "--skip-preview", "-s", STACK, check=False, timeout=600)
            host.remove_stack_leftovers(STACK)
            receiver.close()
    print(f"fault to webhook over {len(latencies)} runs: min {min(latencies):.1f}s, "
          f"median {statistics.median(latencies):.1f}s, max {max(latencies):.1f}s")
    print(f"settings: evaluation interval = scrape interval {args.scrape}s, ServiceDown for: {args.for_}, "
          f"critical group_wait {args.group_wait} (group_interval 1m, Alertmanager's defaults otherwise)")
    print("reproduce: source scripts/env.sh && python benchmarks/alert_latency.py "
          f"--runs {args.runs} --for {args.for_} --scrape {args.scrape} --group-wait {args.group_wait}")


def _wait_resolved(receiver: Receiver, since: float, timeout: float = 600) -> None:
    """The resolved notification of ServiceDown, so the next run starts from a quiet alert."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, path, body in receiver.received:
            if path == "/alerts" and at > since and body.get("status") == "resolved" and \
                    body.get("commonLabels", {}).get("alertname") == "ServiceDown":
                return
        time.sleep(1)
    raise SystemExit(f"ServiceDown did not resolve within {timeout:.0f}s after the api started again")


if __name__ == "__main__":
    main()
