"""The whole program on the Kubernetes target, under mocks: what gets registered, with which inputs."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from support import DEV_SECRETS, deploy_stack, is_secret, with_local_ca

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
CRON_JOB = "kubernetes:batch/v1:CronJob"
SECRET = "kubernetes:core/v1:Secret"


def deploy(mocks, stack="staging", change=None):
    return deploy_stack(stack, change)


def container(registered):
    return registered.get("spec.template.spec.containers.0")


def test_image_reference_is_repository_plus_version(mocks):
    deploy(mocks)
    api = mocks.named(DEPLOYMENT, "api")
    assert container(api)["image"] == "127.0.0.1:5000/shop/api:1.4.2"


def test_digest_versions_use_at_sign(mocks):
    digest = "sha256:" + "b" * 64
    deploy(mocks, change=lambda raw: raw["services"]["api"].update(version=digest))
    assert container(mocks.named(DEPLOYMENT, "api"))["image"] == f"127.0.0.1:5000/shop/api@{digest}"


def test_readiness_probes_the_health_check_with_three_second_timeout(mocks):
    deploy(mocks)
    api = container(mocks.named(DEPLOYMENT, "api"))
    assert api["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert api["readinessProbe"]["timeoutSeconds"] == 3
    assert api["readinessProbe"]["failureThreshold"] == 3


def test_liveness_probes_the_serving_port_not_the_health_check(mocks):
    # An unhealthy dependency makes a pod unready; only a process that stopped answering is restarted.
    deploy(mocks)
    api = container(mocks.named(DEPLOYMENT, "api"))
    assert api["livenessProbe"]["tcpSocket"] == {"port": 8080}
    assert "httpGet" not in api["livenessProbe"]
    postgres = container(mocks.named(STATEFUL_SET, "postgres-main"))
    assert postgres["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert postgres["livenessProbe"]["tcpSocket"] == {"port": 5432}


def test_containers_get_requests_and_limits(mocks):
    deploy(mocks)
    api = container(mocks.named(DEPLOYMENT, "api"))
    assert api["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"}}


def test_replicas_and_rolling_update_keep_capacity(mocks):
    deploy(mocks)
    api = mocks.named(DEPLOYMENT, "api")
    assert api.get("spec.replicas") == 2
    assert api.get("spec.strategy.rollingUpdate") == {"maxSurge": 1, "maxUnavailable": 0}


def test_workloads_carry_the_standard_labels(mocks):
    deploy(mocks)
    labels = mocks.named(DEPLOYMENT, "api").get("spec.template.metadata.labels")
    assert labels["app.kubernetes.io/name"] == "api"
    assert labels["app.kubernetes.io/version"] == "1.4.2"
    assert labels["app.kubernetes.io/component"] == "api"
    assert labels["deploy.platform/stack"] == "staging"
    assert labels["deploy.platform/track"] == "stable"


def test_service_secrets_are_secret_inputs_referenced_by_secret_key_ref(mocks):
    deploy(mocks)
    secret = mocks.named(SECRET, "api-secrets")
    data = secret.inputs["stringData"]
    assert is_secret(data) or is_secret(data["SESSION_SIGNING_KEY"])
    assert secret.get("stringData.SESSION_SIGNING_KEY") == DEV_SECRETS["sessionSigningKey"]
    env = {e["name"]: e for e in container(mocks.named(DEPLOYMENT, "api"))["env"]}
    assert env["SESSION_SIGNING_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "api-secrets",
                                                                        "key": "SESSION_SIGNING_KEY"}
    assert "value" not in env["SESSION_SIGNING_KEY"]


def test_no_secret_value_appears_in_plain_inputs(mocks):
    deploy(mocks)
    for registered in mocks.resources:
        if registered.typ == SECRET:
            continue
        text = repr(registered.inputs)
        for value in DEV_SECRETS.values():
            assert value not in text, f"{registered.typ} {registered.name} carries a secret in plain text"


def test_database_is_a_stateful_set_with_a_volume_claim_and_pg_isready_probes(mocks):
    deploy(mocks)
    postgres = mocks.named(STATEFUL_SET, "postgres-main")
    claim = postgres.get("spec.volumeClaimTemplates.0")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    probe = container(postgres)["readinessProbe"]
    assert probe["exec"]["command"][0] == "pg_isready"


def test_database_accepts_traffic_only_from_its_declared_clients(mocks):
    deploy(mocks)
    policy = mocks.named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "postgres-main-internal-only")
    rule = policy.get("spec.ingress.0")
    assert rule["from"][0]["podSelector"]["matchLabels"] == {"db.deploy.platform/postgres-main": "client"}
    api_labels = mocks.named(DEPLOYMENT, "api").get("spec.template.metadata.labels")
    web_labels = mocks.named(DEPLOYMENT, "web").get("spec.template.metadata.labels")
    assert api_labels["db.deploy.platform/postgres-main"] == "client"
    assert "db.deploy.platform/postgres-main" not in web_labels


def test_backup_cron_job_runs_daily_forbids_overlap_and_keeps_failures_longer(mocks):
    deploy(mocks)
    backup = mocks.named(CRON_JOB, "backup-main")
    assert backup.get("spec.schedule") == "0 2 * * *"
    assert backup.get("spec.concurrencyPolicy") == "Forbid"
    assert backup.get("spec.failedJobsHistoryLimit") > backup.get("spec.successfulJobsHistoryLimit")
    script = backup.get("spec.jobTemplate.spec.template.spec.containers.0.command")[-1]
    assert "pg_dump" in script and "sha256sum" in script and "RETENTION_DAYS" in script


def test_a_failed_backup_attempt_keeps_its_pod_and_log_for_whoever_debugs_it(mocks):
    deploy(mocks)
    job = mocks.named(CRON_JOB, "backup-main").get("spec.jobTemplate.spec")
    assert job["template"]["spec"]["restartPolicy"] == "Never" and job["backoffLimit"] >= 1


def test_restore_drill_runs_monthly_and_checks_the_checksum(mocks):
    deploy(mocks)
    drill = mocks.named(CRON_JOB, "restore-drill-main")
    assert drill.get("spec.schedule") == "0 4 1 * *"
    script = drill.get("spec.jobTemplate.spec.template.spec.containers.0.command")[-1]
    assert "sha256sum -c" in script and "pg_restore" in script and "rto_seconds" in script


def test_canary_gets_its_own_deployment_and_service(mocks):
    deploy(mocks, change=lambda raw: raw["services"]["api"].update(canary={"version": "1.5.0", "weight": 10}))
    canary = mocks.named(DEPLOYMENT, "api-canary")
    assert container(canary)["image"] == "127.0.0.1:5000/shop/api:1.5.0"
    assert canary.get("spec.template.metadata.labels")["deploy.platform/track"] == "canary"
    assert mocks.named("kubernetes:core/v1:Service", "api-canary").get("spec.selector") == {
        "app.kubernetes.io/name": "api", "deploy.platform/track": "canary"}


def rendering(raw):
    raw["kubernetes"]["renderToDirectory"] = "rendered/dev"


def self_signed(raw):
    raw["edge"]["tls"] = {"mode": "self-signed"}


def test_render_mode_writes_no_secret_objects(mocks):
    deploy(mocks, stack="dev", change=lambda raw: (self_signed(raw), rendering(raw)))
    assert mocks.of_type(SECRET) == []
    provider = mocks.named("pulumi:providers:kubernetes", "dev-kubernetes")
    assert provider.inputs["renderYamlToDirectory"] == "rendered/dev"


def test_every_namespaced_object_lands_in_the_stack_namespace(mocks):
    deploy(mocks)
    cluster_scoped = {"kubernetes:core/v1:Namespace", "kubernetes:cert-manager.io/v1:ClusterIssuer"}
    namespaced = [r for r in mocks.resources if r.typ.startswith("kubernetes:") and r.typ not in cluster_scoped]
    assert namespaced
    assert {r.get("metadata.namespace") for r in namespaced} == {"shop-staging"}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_whole_program_runs_for_each_shipped_stack(mocks, stack, staging_verified):
    staging_verified({"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"})
    platform = deploy(mocks, stack=stack)
    assert platform.versions == {"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2"}
    names = {d.name for d in mocks.of_type(DEPLOYMENT)}
    assert names == {"web", "api", "worker", "edge", "backup-metrics-main", "postgres-exporter-main", "blackbox-exporter"}


def test_edge_certificate_is_issued_by_cert_manager_and_renewed_thirty_days_early(mocks):
    deploy(mocks, change=self_signed)
    certificate = mocks.named("kubernetes:cert-manager.io/v1:Certificate", "edge-certificate-shop-staging-localhost")
    assert certificate.get("spec.dnsNames") == ["shop.staging.localhost"]
    assert certificate.get("spec.renewBefore") == "720h"
    assert certificate.get("spec.issuerRef") == {"name": "platform-ca", "kind": "Issuer"}
    assert watched_secrets(mocks.named(DEPLOYMENT, "edge")) == {
        "edge-tls-shop-staging-localhost": ["certs/shop-staging-localhost/tls.crt", "certs/shop-staging-localhost/tls.key"]}


def test_every_edge_host_gets_its_own_certificate(mocks):
    deploy(mocks, change=lambda raw: (self_signed(raw), raw["edge"].update(
        hosts=["shop.staging.localhost", "api.staging.localhost"])))
    certificates = mocks.of_type("kubernetes:cert-manager.io/v1:Certificate")
    hosts = sorted(c.get("spec.dnsNames")[0] for c in certificates if not c.get("spec.isCA"))
    assert hosts == ["api.staging.localhost", "shop.staging.localhost"]
    files = mocks.named("kubernetes:core/v1:ConfigMap", "edge-files").get("data")["routes.yml"]
    assert "/etc/traefik/dynamic/certs/api-staging-localhost/tls.crt" in files


def test_self_signed_mode_issues_from_a_cert_manager_ca_chain(mocks):
    deploy(mocks, change=self_signed)
    root = mocks.named("kubernetes:cert-manager.io/v1:Certificate", "root-ca")
    assert root.get("spec.isCA") is True
    assert root.get("spec.issuerRef") == {"name": "platform-selfsigned", "kind": "Issuer"}
    ca = mocks.named("kubernetes:cert-manager.io/v1:Issuer", "ca-issuer")
    assert ca.get("spec.ca.secretName") == "platform-root-ca"


def test_prod_issues_certificates_from_the_acme_production_directory(mocks, staging_verified):
    staging_verified({"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"})
    deploy(mocks, stack="prod")
    issuer = mocks.named("kubernetes:cert-manager.io/v1:ClusterIssuer", "cluster-issuer")
    assert issuer.get("spec.acme.server") == "https://acme-v02.api.letsencrypt.org/directory"
    assert issuer.get("spec.acme.email") == "platform-team@shop.example"


def test_local_ca_mode_writes_the_edge_tls_secret_without_cert_manager(mocks):
    deploy(mocks, change=with_local_ca)
    assert mocks.of_type("kubernetes:cert-manager.io/v1:Certificate") == []
    secret = mocks.named(SECRET, "edge-tls")
    assert secret.get("type") == "kubernetes.io/tls"
    assert is_secret(secret.inputs["stringData"]) or is_secret(secret.inputs["stringData"]["tls.key"])
    assert watched_secrets(mocks.named(DEPLOYMENT, "edge")) == {"edge-tls": ["certs/edge/tls.crt", "certs/edge/tls.key"]}


def watched_secrets(edge) -> dict[str, list[str]]:
    """Secret -> paths of its keys in the edge's watched directory (the projected volume)."""
    [live] = [v for v in edge.get("spec.template.spec.volumes") if v["name"] == "live"]
    return {source["secret"]["name"]: [item["path"] for item in source["secret"]["items"]]
            for source in live["projected"]["sources"] if "secret" in source}


def test_the_edge_watches_one_directory_holding_its_routes_and_certificates(mocks):
    # Traefik reloads on an event in the directory it watches: the kubelet's update of a projected
    # volume (a renewed certificate) is one; a subPath file or a Secret volume beside it is not.
    deploy(mocks, change=self_signed)
    edge = mocks.named(DEPLOYMENT, "edge")
    [mount] = [m for m in container(edge)["volumeMounts"] if m["name"] == "live"]
    assert mount["mountPath"] == "/etc/traefik/dynamic" and "subPath" not in mount
    [live] = [v for v in edge.get("spec.template.spec.volumes") if v["name"] == "live"]
    [routes] = [s["configMap"] for s in live["projected"]["sources"] if "configMap" in s]
    assert routes["items"] == [{"key": "routes.yml", "path": "routes.yml"}]
    config_map = mocks.named("kubernetes:core/v1:ConfigMap", "edge-live")
    # Immutable and named after its content: running pods keep the routes they started with.
    assert config_map.get("immutable") is True and routes["name"] == config_map.get("metadata.name")
    assert config_map.get("metadata.name").startswith("edge-live-")
    static = yaml.safe_load(mocks.named("kubernetes:core/v1:ConfigMap", "edge-files").get("data")["traefik.yml"])
    assert static["providers"]["file"] == {"directory": "/etc/traefik/dynamic", "watch": True}


def test_the_routes_config_map_is_named_after_its_content(mocks):
    # A routes change is a new ConfigMap (the edge rolls), never an in-place update of running pods.
    deploy(mocks, change=self_signed)
    routes = mocks.named("kubernetes:core/v1:ConfigMap", "edge-files").get("data")["routes.yml"]
    digest = hashlib.sha256(f"/etc/traefik/dynamic/routes.yml\0{routes}".encode()).hexdigest()[:16]
    assert mocks.named("kubernetes:core/v1:ConfigMap", "edge-live").get("metadata.name") == f"edge-live-{digest}"


def test_edge_is_exposed_outside_the_cluster_on_http_and_https(mocks):
    deploy(mocks, change=lambda raw: raw["kubernetes"].update(edgeServiceType="LoadBalancer"))
    service = mocks.named("kubernetes:core/v1:Service", "edge")
    assert service.get("spec.type") == "LoadBalancer"
    assert {p["port"] for p in service.get("spec.ports")} == {80, 443}


def test_a_node_port_edge_answers_on_the_stack_edge_ports(mocks):
    deploy(mocks)
    service = mocks.named("kubernetes:core/v1:Service", "edge")
    assert service.get("spec.type") == "NodePort"
    # Its own ports are 80 and 443 beside the node ports: inside the cluster (an ACME server's
    # HTTP-01 fetch at the Service's address, the blackbox probes) the edge answers where clients expect.
    assert {(p["port"], p["nodePort"], p["targetPort"]) for p in service.get("spec.ports")} == {
        (80, 31080, 80), (443, 31443, 443)}


def test_workers_are_probed_by_command(mocks):
    deploy(mocks)
    worker = container(mocks.named(DEPLOYMENT, "worker"))
    assert worker["livenessProbe"]["exec"]["command"] == ["/app/worker", "--check"]


COMMAND = "command:local:Command"


def test_a_health_checked_deployment_is_waited_for_by_its_rollout_gate_not_the_provider(mocks):
    deploy(mocks, change=lambda raw: raw["kubernetes"].update(progressDeadlineSeconds=40))
    api = mocks.named(DEPLOYMENT, "api")
    assert api.get("spec.progressDeadlineSeconds") == 40
    assert api.get("metadata.annotations")["pulumi.com/skipAwait"] == "true"
    gate = json.loads(mocks.named(COMMAND, "api-rolled-out").inputs["stdin"])
    assert (gate["deployment"], gate["container"], gate["deadline_seconds"]) == ("api", "api", 40)
    assert gate["probe"][-1].startswith("timeout 3 wget -q -O /dev/null http://127.0.0.1:8080/healthz")


def test_rendered_manifests_get_no_rollout_gate(mocks):
    # Nothing is applied to a cluster here, so there is no rollout to wait for.
    deploy(mocks, stack="dev", change=lambda raw: (self_signed(raw), rendering(raw)))
    assert not [r for r in mocks.of_type(COMMAND) if r.name.endswith("-rolled-out")]
    assert "pulumi.com/skipAwait" not in mocks.named(DEPLOYMENT, "api").get("metadata.annotations")


def test_a_database_statefulset_keeps_the_providers_wait_bounded_by_the_progress_deadline(mocks):
    deploy(mocks, change=lambda raw: raw["kubernetes"].update(progressDeadlineSeconds=40))
    [database] = mocks.of_type("kubernetes:apps/v1:StatefulSet")
    assert database.get("metadata.annotations")["pulumi.com/timeoutSeconds"] == "60"
    assert "pulumi.com/skipAwait" not in database.get("metadata.annotations")


NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def pod_templates(mocks):
    """(kind/name, pod spec) of every workload the program registers."""
    for kind, path in ((DEPLOYMENT, "spec.template"), (STATEFUL_SET, "spec.template"),
                       (CRON_JOB, "spec.jobTemplate.spec.template")):
        for registered in mocks.of_type(kind):
            yield f"{kind.rsplit(':', 1)[-1]}/{registered.name}", registered.get(path)


def test_job_pods_have_their_own_name_and_component_labels(mocks):
    deploy(mocks)
    for job, component in (("backup-main", "backup"), ("restore-drill-main", "restore-drill")):
        labels = mocks.named(CRON_JOB, job).get("spec.jobTemplate.spec.template.metadata.labels")
        assert labels["app.kubernetes.io/name"] == job
        assert labels["app.kubernetes.io/component"] == component
        assert labels["deploy.platform/database"] == "postgres-main"


def test_the_database_service_and_policy_select_no_job_pod(mocks):
    deploy(mocks)
    selectors = [mocks.named("kubernetes:core/v1:Service", "postgres-main").get("spec.selector"),
                 mocks.named(NETWORK_POLICY, "postgres-main-internal-only").get("spec.podSelector.matchLabels")]
    for name, template in pod_templates(mocks):
        labels = template["metadata"]["labels"]
        selected = [s for s in selectors if all(labels.get(k) == v for k, v in s.items())]
        assert bool(selected) == (name == "StatefulSet/postgres-main"), name


def test_every_pod_runs_as_non_root_with_runtime_default_seccomp(mocks):
    deploy(mocks)
    for name, template in pod_templates(mocks):
        pod = template["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] > 0 and pod["runAsGroup"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name


def test_every_container_has_a_read_only_root_no_capabilities_and_no_escalation(mocks):
    deploy(mocks)
    for name, template in pod_templates(mocks):
        for c in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]:
            context = c["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, c["name"])


def test_containers_write_only_to_emptydirs_and_volumes(mocks):
    deploy(mocks)
    postgres = mocks.named(STATEFUL_SET, "postgres-main").get("spec.template.spec")
    empty = {v["name"] for v in postgres["volumes"] if "emptyDir" in v}
    mounted = {m["mountPath"] for m in postgres["containers"][0]["volumeMounts"] if m["name"] in empty}
    assert mounted == {"/tmp", "/var/run/postgresql"}
    worker = mocks.named(DEPLOYMENT, "worker").get("spec.template.spec")
    assert {"name": "tmp", "mountPath": "/tmp"} in worker["containers"][0]["volumeMounts"]


def test_only_the_volume_owner_step_runs_as_root_with_chown_alone(mocks):
    deploy(mocks)
    roots = []
    for name, template in pod_templates(mocks):
        for c in [*template["spec"].get("initContainers", []), *template["spec"]["containers"]]:
            if c["securityContext"].get("runAsUser") == 0:
                roots.append((name, c["name"]))
                assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
                assert c["securityContext"]["runAsNonRoot"] is False
    assert sorted(roots) == [("CronJob/backup-main", "volume-owner"), ("CronJob/restore-drill-main", "volume-owner"),
                             ("Deployment/backup-metrics-main", "volume-owner"),
                             ("StatefulSet/postgres-main", "volume-owner")]


def test_database_and_its_jobs_run_as_the_postgres_images_user(mocks):
    deploy(mocks)
    for kind, name, path in ((STATEFUL_SET, "postgres-main", "spec.template.spec"),
                             (CRON_JOB, "backup-main", "spec.jobTemplate.spec.template.spec")):
        pod = mocks.named(kind, name).get(path)["securityContext"]
        assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (999, 999, 999)
    assert mocks.named(DEPLOYMENT, "api").get("spec.template.spec.securityContext.runAsUser") == 65534


def test_the_edge_listens_on_low_ports_through_a_sysctl_not_a_capability(mocks):
    deploy(mocks)
    pod = mocks.named(DEPLOYMENT, "edge").get("spec.template.spec")
    assert pod["securityContext"]["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    assert "add" not in pod["containers"][0]["securityContext"]["capabilities"]


def test_the_namespace_denies_all_traffic_by_default_and_allows_dns(mocks):
    deploy(mocks)
    deny = mocks.named(NETWORK_POLICY, "default-deny")
    assert deny.get("spec.podSelector") == {}
    assert deny.get("spec.policyTypes") == ["Ingress", "Egress"]
    assert deny.get("spec.ingress") is None and deny.get("spec.egress") is None
    dns = mocks.named(NETWORK_POLICY, "allow-dns").get("spec.egress.0")
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}


def _allowed(policies, direction: str, pod: dict, peer: dict, port: int) -> bool:
    """NetworkPolicy semantics within one namespace: `pod` (labels) is isolated in `direction`
    when a policy of that type selects it; then some selecting rule must admit `peer` on `port`."""
    def matches(selector, labels):
        return all(labels.get(k) == v for k, v in (selector or {}).get("matchLabels", {}).items())
    kind, key, peers = ("Ingress", "ingress", "from") if direction == "in" else ("Egress", "egress", "to")
    selecting = [p for p in policies if kind in p["policyTypes"] and matches(p["podSelector"], pod)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy.get(key) or []:
            ports_ok = not rule.get("ports") or any(p["port"] == port for p in rule["ports"])
            peer_ok = not rule.get(peers) or any(
                "namespaceSelector" not in p and matches(p.get("podSelector"), peer) for p in rule[peers])
            if ports_ok and peer_ok:
                return True
    return False


def _can_connect(mocks, source: str, target: str, port: int) -> bool:
    policies = [r.get("spec") for r in mocks.of_type(NETWORK_POLICY)]
    labels = {name.split("/", 1)[1]: t["metadata"]["labels"] for name, t in pod_templates(mocks)}
    return (_allowed(policies, "out", labels[source], labels[target], port)
            and _allowed(policies, "in", labels[target], labels[source], port))


@pytest.mark.parametrize("source,target,port,allowed", [
    ("edge", "web", 8080, True), ("edge", "api", 8080, True), ("api", "postgres-main", 5432, True),
    ("worker", "postgres-main", 5432, True), ("backup-main", "postgres-main", 5432, True),
    ("postgres-main", "postgres-main", 5432, True),
    ("web", "postgres-main", 5432, False), ("web", "api", 8080, False), ("worker", "api", 8080, False),
    ("edge", "postgres-main", 5432, False), ("api", "web", 8080, False), ("edge", "api", 9999, False),
])
def test_network_paths_are_exactly_edge_to_services_to_database(mocks, source, target, port, allowed):
    deploy(mocks)
    assert _can_connect(mocks, source, target, port) is allowed


@pytest.mark.parametrize("stack,replicas", [("staging", {"edge": 1, "web": 1, "api": 2}),
                                            ("prod", {"edge": 2, "web": 2, "api": 3})])
def test_prod_runs_the_public_path_on_at_least_two_replicas(mocks, staging_verified, stack, replicas):
    staging_verified({"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"})
    deploy(mocks, stack=stack)
    assert {name: mocks.named(DEPLOYMENT, name).get("spec.replicas") for name in replicas} == replicas
    assert mocks.named(DEPLOYMENT, "worker").get("spec.replicas") == 1


def test_the_public_path_has_disruption_budgets_of_one_pod_at_a_time(mocks):
    deploy(mocks)
    budgets = {b.name: b for b in mocks.of_type(PDB)}
    assert set(budgets) == {"edge", "web", "api"}
    assert budgets["api"].get("spec.maxUnavailable") == 1
    assert budgets["api"].get("spec.selector.matchLabels") == {"app.kubernetes.io/name": "api",
                                                               "deploy.platform/track": "stable"}



def test_acme_solver_pods_are_reachable_from_the_edge_on_the_solver_port_only(mocks, staging_verified):
    staging_verified({"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"})
    deploy(mocks, stack="prod")
    solvers = {"acme.cert-manager.io/http01-solver": "true"}
    ingress = mocks.named(NETWORK_POLICY, "acme-solvers-from-edge").get("spec")
    assert ingress["podSelector"]["matchLabels"] == solvers
    assert ingress["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "edge"}}}],
                                   "ports": [{"port": 8089, "protocol": "TCP"}]}]
    egress = mocks.named(NETWORK_POLICY, "edge-to-services").get("spec.egress")
    assert {"to": [{"podSelector": {"matchLabels": solvers}}], "ports": [{"port": 8089, "protocol": "TCP"}]} in egress


def with_uploads(raw):
    raw["services"]["api"]["volumes"] = {"uploads": {"mountPath": "/data/uploads", "size": "64Mi"}}


def test_a_backup_job_archiving_a_services_volume_reads_it_as_a_member_of_the_services_group(mocks):
    # The api's volume root is 0750 nobody:nogroup; the backup job runs as the database's user.
    deploy(mocks, change=with_uploads)
    pod = mocks.named(CRON_JOB, "backup-main").get("spec.jobTemplate.spec.template.spec.securityContext")
    assert pod["runAsUser"] != 65534 and pod["supplementalGroups"] == [65534]


def test_a_backup_job_without_service_volumes_joins_no_other_group(mocks):
    deploy(mocks)
    pod = mocks.named(CRON_JOB, "backup-main").get("spec.jobTemplate.spec.template.spec.securityContext")
    assert "supplementalGroups" not in pod


def test_the_edge_leaves_health_to_the_service_it_routes_to(mocks):
    # One server per track, the Service, which readiness probes already keep to ready pods: an
    # edge check of it took the whole service out of the edge on one failed probe (503 after a
    # promotion).
    deploy(mocks)
    files = yaml.safe_load(mocks.named("kubernetes:core/v1:ConfigMap", "edge-files").get("data")["routes.yml"])
    balancers = [service["loadBalancer"] for service in files["http"]["services"].values() if "loadBalancer" in service]
    assert balancers and all("healthCheck" not in balancer for balancer in balancers)
