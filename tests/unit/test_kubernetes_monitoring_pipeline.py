"""The stack's own Prometheus and Alertmanager on Kubernetes, as Prometheus Operator objects (under mocks)."""

from __future__ import annotations

import yaml

from support import deploy_stack

PROMETHEUS = "kubernetes:monitoring.coreos.com/v1:Prometheus"
ALERTMANAGER = "kubernetes:monitoring.coreos.com/v1:Alertmanager"
PART_OF_PLATFORM = {"matchLabels": {"app.kubernetes.io/part-of": "platform"}}


def test_prometheus_selects_the_stack_rules_and_pod_monitors_of_its_own_namespace_only(mocks):
    deploy_stack("staging")
    spec = mocks.named(PROMETHEUS, "prometheus").get("spec")
    assert spec["ruleSelector"] == PART_OF_PLATFORM
    assert spec["podMonitorSelector"] == PART_OF_PLATFORM
    assert not {"ruleNamespaceSelector", "podMonitorNamespaceSelector", "serviceMonitorSelector"} & set(spec)
    for kind in ("PrometheusRule", "PodMonitor"):
        for registered in mocks.of_type(f"kubernetes:monitoring.coreos.com/v1:{kind}"):
            assert registered.get("metadata.labels")["app.kubernetes.io/part-of"] == "platform"
            assert registered.get("metadata.namespace") == "shop-staging"


def test_prometheus_is_told_its_image_version_and_names_the_stack_on_every_alert(mocks):
    deploy_stack("staging")
    spec = mocks.named(PROMETHEUS, "prometheus").get("spec")
    assert spec["image"] == "127.0.0.1:5000/shop/prometheus:2.55.1"
    assert spec["version"] == "v2.55.1"
    assert spec["externalLabels"] == {"stack": "staging"}
    assert spec["evaluationInterval"] == spec["scrapeInterval"] == "15s"
    assert spec["alerting"]["alertmanagers"] == [
        {"namespace": "shop-staging", "name": "alertmanager-operated", "port": "web", "apiVersion": "v2"}]


def test_alertmanager_loads_the_routing_secret_the_program_renders(mocks):
    deploy_stack("staging")
    spec = mocks.named(ALERTMANAGER, "alertmanager").get("spec")
    assert (spec["image"], spec["version"]) == ("127.0.0.1:5000/shop/alertmanager:0.25.0", "v0.25.0")
    secret = mocks.named("kubernetes:core/v1:Secret", "alertmanager-config")
    assert secret.get("metadata.name") == spec["configSecret"] == "alertmanager-platform"
    assert "route" in yaml.safe_load(secret.get("stringData")["alertmanager.yaml"])


def test_a_digest_version_is_not_passed_to_the_operator_as_a_version(mocks):
    digest = "sha256:" + "a" * 64

    def by_digest(raw):
        raw.setdefault("monitoring", {})["prometheusVersion"] = digest

    deploy_stack("staging", by_digest)
    spec = mocks.named(PROMETHEUS, "prometheus").get("spec")
    assert spec["image"] == f"127.0.0.1:5000/shop/prometheus@{digest}"
    assert "version" not in spec


def test_prometheus_may_only_read_what_discovery_needs_in_its_namespace(mocks):
    deploy_stack("staging")
    role = mocks.named("kubernetes:rbac.authorization.k8s.io/v1:Role", "prometheus-discovery")
    assert {verb for rule in role.get("rules") for verb in rule["verbs"]} <= {"get", "list", "watch"}
    binding = mocks.named("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", "prometheus-discovery")
    assert binding.get("subjects") == [{"kind": "ServiceAccount", "name": "prometheus-platform",
                                        "namespace": "shop-staging"}]
    assert mocks.named(PROMETHEUS, "prometheus").get("spec")["serviceAccountName"] == "prometheus-platform"


def test_each_database_gets_a_postgres_exporter_scraped_with_the_database_labels(mocks):
    deploy_stack("staging")
    exporter = mocks.named("kubernetes:apps/v1:Deployment", "postgres-exporter-main")
    [container] = exporter.get("spec.template.spec.containers")
    assert container["image"] == "127.0.0.1:5000/shop/postgres-exporter:0.11.1"
    assert container["command"] == ["postgres-exporter", "--web.listen-address=:9187"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATA_SOURCE_URI"]["value"].startswith("postgres-main.shop-staging.svc.cluster.local:5432/")
    assert "value" not in env["DATA_SOURCE_PASS"] and env["DATA_SOURCE_PASS"]["valueFrom"]["secretKeyRef"]
    monitor = mocks.named("kubernetes:monitoring.coreos.com/v1:PodMonitor", "scrape-postgres-main")
    assert monitor.get("metadata.labels")["app.kubernetes.io/part-of"] == "platform"
    [endpoint] = monitor.get("spec.podMetricsEndpoints")
    assert endpoint["targetPort"] == 9187
    # The labels the Docker scrape config sets statically, which the database rules select and name.
    assert endpoint["relabelings"] == [
        {"targetLabel": "job", "replacement": "postgres-main"},
        {"targetLabel": "database", "replacement": "main"},
        {"targetLabel": "service", "replacement": "postgres-main"},
        {"targetLabel": "version", "replacement": "15.18.0"},
    ]


def test_prometheus_and_alertmanager_have_their_paths_through_the_default_deny(mocks):
    deploy_stack("staging")
    policies = {p.name: p for p in mocks.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")}
    egress = policies["prometheus-egress"]
    assert egress.get("spec.podSelector.matchLabels") == {"app.kubernetes.io/name": "prometheus",
                                                          "app.kubernetes.io/instance": "platform"}
    assert egress.get("spec.policyTypes") == ["Egress"]
    assert {"to": [{"podSelector": {}}]} in egress.get("spec.egress")
    ingress = policies["alertmanager-ingress"]
    assert ingress.get("spec.ingress") == [{"from": [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "platform"}}}],
        "ports": [{"port": 9093, "protocol": "TCP"}]}]
    assert policies["alertmanager-egress"].get("spec.egress") == [{}]
