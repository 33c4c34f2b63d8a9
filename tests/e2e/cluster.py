"""The local Kubernetes cluster scripts/setup.sh starts (devenv/cluster/, docs/cluster.md), seen
from the tests: kubectl against it, a namespace per test stack, HTTP through Services and the edge."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from engine import Project

CLUSTER_CACHE = Path(os.environ.get("DEPLOY_CACHE", Path.home() / ".cache" / "deployplatform")) / "cluster"
KUBECONFIG = CLUSTER_CACHE / "kubeconfig"
KUBECTL = CLUSTER_CACHE / "bin" / "kubectl"
CONTEXT = "deployplatform"


@dataclass(frozen=True)
class Answer:
    status: int
    version: str | None  # X-App-Version: which build answered
    seconds: float


class Cluster:
    # Namespaces a test stack was deployed to and not yet dropped: tests/e2e/conftest.py drops
    # them after each module, so a module whose fixture failed half-way (its teardown never runs)
    # does not leave pods behind that fill the node (110 pods, kubelet's maxPods) for the modules after it.
    lent: set[str] = set()

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run([str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "--context", CONTEXT, *args],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc.stdout

    def get(self, namespace: str, *what: str) -> dict:
        return json.loads(self.kubectl("--namespace", namespace, "get", *what, "-o", "json"))

    def require_ready(self) -> None:
        if not KUBECTL.exists() or not KUBECONFIG.exists():
            raise AssertionError(f"no local cluster ({KUBECTL} or {KUBECONFIG} missing): run scripts/setup.sh, "
                                 "which builds and starts it")
        ready = self.kubectl("get", "nodes", "-o",
                             "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}").split()
        if ready != ["True"]:
            raise AssertionError(f"the local cluster's node is not Ready ({ready}): "
                                 "bash devenv/cluster/cluster.sh status")

    def fresh_namespace(self, namespace: str) -> None:
        """Whatever an earlier run left there is gone before a test stack deploys into it."""
        self.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=180s",
                     timeout=200)
        Cluster.lent.add(namespace)

    def drop_namespace(self, namespace: str) -> None:
        self.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
        Cluster.lent.discard(namespace)

    def deployments(self, namespace: str) -> dict[str, dict]:
        return {d["metadata"]["name"]: d for d in self.get(namespace, "deployments")["items"]}

    def image_of(self, namespace: str, deployment: str) -> str:
        return self.deployments(namespace)[deployment]["spec"]["template"]["spec"]["containers"][0]["image"]

    def run_job(self, namespace: str, cronjob: str, name: str, timeout: int = 180) -> str:
        """A Job from the CronJob's template (what `kubectl create job --from` does by hand); its log."""
        self.kubectl("--namespace", namespace, "create", "job", name, f"--from=cronjob/{cronjob}")
        self.kubectl("--namespace", namespace, "wait", "--for=condition=complete", f"--timeout={timeout}s",
                     f"job/{name}", timeout=timeout + 20)
        return self.kubectl("--namespace", namespace, "logs", f"job/{name}")

    def exec(self, namespace: str, target: str, script: str) -> str:
        return self.kubectl("--namespace", namespace, "exec", target, "--", "sh", "-c", script)


def _unverified_context() -> ssl.SSLContext:
    # The stack's own CA signs the edge's certificate; what is tested is the answer, not the chain.
    # One context for every request: building one loads the system's CA store, which costs more
    # CPU than the request itself and would slow the traffic clients down on a busy machine.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


UNVERIFIED = _unverified_context()


def http_get(url: str, host: str | None = None, timeout: float = 3) -> Answer:
    """One request on a new connection (as a new client would make it)."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=UNVERIFIED) as response:
            response.read()
            return Answer(response.status, response.headers.get("X-App-Version"), time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers.get("X-App-Version"), time.monotonic() - started)


def deploy_to_cluster(project: Project, stack: str, namespace: str, http_port: int, https_port: int) -> None:
    """Point a test copy of `stack` at the local cluster, in its own namespace and node ports, with a
    certificate from the program's own CA (`local-ca`): no ACME order per test stack, and no DNS entry
    in Pebble to point at its edge. The ACME path dev and staging take has its own module
    (test_acme_certificates.py)."""
    settings = {
        "kubernetes.namespace": namespace,
        "kubernetes.kubeconfig": str(KUBECONFIG),
        "kubernetes.context": CONTEXT,
        "kubernetes.edgeServiceType": "NodePort",
        "edge.httpPort": http_port,
        "edge.httpsPort": https_port,
        "edge.tls.mode": "local-ca",
        "smokeTest.verifyTls": False,
    }
    # Three stacks (and the developer's dev) share one 2-CPU node: small requests let them all,
    # and their backup jobs, be scheduled. Limits stay as configured.
    for workload in ("services.web", "services.api", "services.worker", "edge", "databases.main"):
        settings[f"{workload}.resources.cpuRequest"] = "20m"
    for key, value in settings.items():
        project.set_config(stack, key, value)
