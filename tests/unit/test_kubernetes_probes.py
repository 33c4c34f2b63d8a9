"""The blackbox exporter on Kubernetes under mocks: it probes every public endpoint on every edge
host through the edge Service's HTTPS port, and its PodMonitor labels the probes as the Docker
scrape job does (job blackbox, the public URL as instance, the probed service and version)."""

from __future__ import annotations

import yaml

from components.monitoring import BLACKBOX_CONFIG
from support import deploy_stack

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
HOSTS = ["shop.staging.localhost", "api.staging.localhost"]


def two_hosts(raw):
    raw["edge"]["hosts"] = list(HOSTS)


def endpoints(mocks) -> dict[str, dict]:
    monitor = mocks.named(POD_MONITOR, "scrape-blackbox")
    assert monitor.get("spec.selector") == {"matchLabels": {"app.kubernetes.io/name": "blackbox-exporter"}}
    found = {}
    for endpoint in monitor.get("spec.podMetricsEndpoints"):
        labels = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
        found[labels["instance"]] = {"labels": labels, **endpoint}
    return found


def test_every_public_endpoint_on_every_edge_host_is_probed_through_the_edge_service(mocks):
    deploy_stack("staging", two_hosts)
    probes = endpoints(mocks)
    assert sorted(probes) == sorted(f"https://{host}:31443{path}" for host in HOSTS for path in ("/api/healthz", "/healthz"))
    api = probes["https://api.staging.localhost:31443/api/healthz"]
    assert api["path"] == "/probe" and api["targetPort"] == 9115
    assert api["params"] == {"module": ["https_api_staging_localhost"],
                             "target": ["https://edge.shop-staging.svc.cluster.local:443/api/healthz"]}
    assert api["labels"] == {"job": "blackbox", "instance": "https://api.staging.localhost:31443/api/healthz",
                             "service": "api", "version": "1.4.2"}


def test_each_host_has_a_module_sending_its_name(mocks):
    deploy_stack("staging", two_hosts)
    files = mocks.named("kubernetes:core/v1:ConfigMap", "blackbox-exporter-files").get("data")
    modules = yaml.safe_load(files["blackbox.yml"])["modules"]
    assert modules["https_api_staging_localhost"]["http"]["tls_config"]["server_name"] == "api.staging.localhost"
    assert modules["https_api_staging_localhost"]["http"]["headers"] == {"Host": "api.staging.localhost"}
    exporter = mocks.named(DEPLOYMENT, "blackbox-exporter")
    assert f"--config.file={BLACKBOX_CONFIG}" in exporter.get("spec.template.spec.containers.0.command")


def test_the_exporter_may_reach_the_edge_and_prometheus_may_scrape_it(mocks):
    deploy_stack("staging")
    to_edge = mocks.named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "blackbox-exporter-to-edge")
    assert to_edge.get("spec.podSelector") == {"matchLabels": {"app.kubernetes.io/name": "blackbox-exporter"}}
    [rule] = to_edge.get("spec.egress")
    assert rule["ports"] == [{"port": 443, "protocol": "TCP"}]
    assert rule["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge"}}}]
    scrape = mocks.named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "scrape-blackbox")
    assert scrape.get("spec.ingress.0.ports") == [{"port": 9115, "protocol": "TCP"}]
