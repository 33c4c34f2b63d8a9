"""Certificates issued over ACME for real (issue 14), from the development machine's Pebble
(devenv/acme/pebble.sh), HTTP-01 through the edge: by cert-manager's controller on the local cluster
(the program's ClusterIssuer and Certificates, solver pods behind the edge's challenge routes) and by
Traefik's own resolver on the Docker engine. Two edge hosts per stack.

Certificates are short-lived (2 hours: Pebble runs with that validity for this module, and cert-manager
asks for it), so each stack's blackbox probes see a certificate inside every expiry window and its
Prometheus fires CertificateExpiryImminent: the alert tests come last, when both stacks have been
probed for the rule's `for:` (docs/tls.md). Measured seconds are printed (pytest -s)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
import yaml
from cryptography import x509

from acme_checks import (
    docker_prometheus,
    dns_names,
    expiry_by_instance,
    firing,
    issued_by,
    pebble_sh,
    rule_for,
    served_certificate,
    start_pebble,
    states,
    wait_until,
)
from cluster import deploy_to_cluster
from cluster_alerting import Prometheus, statefulset_ready
from components.alerting.models import AlertingThresholds, duration_seconds
from docker_host import deploy_to_docker
from engine import ROOT, Project
from stack_config_filter import clean  # engine puts scripts/ on the path

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("cluster")]  # its lane: tests/e2e/conftest.py

EMAIL = "platform-team@shop.example"
SECRETS = {"mainDbPassword": "acme-e2e-db-password-3d9f", "sessionSigningKey": "acme-e2e-signing-key-8e21"}
DURATION_HOURS = 2  # a short-lived certificate: inside every expiry alert window
ALERT = "CertificateExpiryImminent"  # fires below certCriticalDays (7 by default) left
# The certificate rules' `for:` in the test stacks (15m by default): long enough to ride out a probe
# or two, short enough that the alert tests take minutes, not a quarter of an hour each.
CERTIFICATE_FOR = "1m"

K8S_NAMESPACE = "e2e-acme"
K8S_HOSTS = ["shop.acme-k8s.localhost", "api.acme-k8s.localhost"]
K8S_HTTP, K8S_HTTPS = 32177, 32577

DOCKER_STACK = "acmedocker"  # its own containers and networks, beside the other Docker tests' staging
DOCKER_HOSTS = ["shop.acme-docker.localhost", "api.acme-docker.localhost"]
# HTTP-01 is validated on port 80; Pebble resolves names nobody registered to 127.0.0.1, where this
# edge publishes its HTTP port.
DOCKER_HTTP, DOCKER_HTTPS = 80, 18843
PUBLIC_PATHS = ("/api/healthz", "/healthz")  # staging's public services' health paths (the probes)


@pytest.fixture(scope="module")
def pebble():
    before = pebble_sh("env")
    previous = next((int(line.split("=", 1)[1]) for line in before.stdout.split()
                     if line.startswith("ACME_VALIDITY_SECONDS=")), None) if before.returncode == 0 else None
    pebble = start_pebble(DURATION_HOURS * 3600)
    yield pebble
    if previous and previous != pebble.validity_seconds:  # as it was: Pebble's default lifetime
        start_pebble(previous)


def replace_config(project: Project, stack: str, key: str, value: object) -> None:
    """Replace a list or object value whole: `pulumi config set --path` sets one leaf at a time."""
    project.pulumi("config", "rm", "--path", f"platform:{key}", "-s", stack)
    entries = enumerate(value) if isinstance(value, list) else value.items()
    for name, leaf in entries:
        project.set_config(stack, f"{key}[{name}]" if isinstance(value, list) else f"{key}.{name}", leaf)


def acme_settings(pebble, **extra) -> dict:
    return {"mode": "acme", "email": EMAIL, "acmeServer": pebble.directory, "acmeCaBundleFile": pebble.ca_bundle,
            "durationHours": DURATION_HOURS, **extra}


def probe_urls(hosts, port) -> set[str]:
    return {f"https://{host}:{port}{path}" for host in hosts for path in PUBLIC_PATHS}


# ------------------------------------------------------------------ Kubernetes: cert-manager


def slug(host: str) -> str:
    return host.replace(".", "-")


def certificate(cluster, host: str) -> dict:
    return cluster.get(K8S_NAMESPACE, "certificate", f"edge-tls-{slug(host)}")


def ready(resource: dict) -> dict:
    return next((c for c in resource.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})


def acme_state(cluster) -> str:
    """What cert-manager and the solver are doing, for a failure message."""
    try:
        return cluster.kubectl("--namespace", K8S_NAMESPACE, "get", "certificate,certificaterequest,order,challenge,pods",
                               "-o", "wide") + cluster.kubectl("--namespace", K8S_NAMESPACE, "describe", "challenges")
    except AssertionError as error:
        return str(error)


def edge_pods(cluster) -> dict[str, int]:
    """The edge's pods and their restart counts."""
    pods = cluster.get(K8S_NAMESPACE, "pods", "-l", "app.kubernetes.io/name=edge")["items"]
    return {p["metadata"]["name"]: sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", []))
            for p in pods if not p["metadata"].get("deletionTimestamp")}


@pytest.fixture(scope="module")
def cluster_stack(cluster, pebble, tmp_path_factory):
    """A copy of staging in its own namespace, its edge certificates from the cluster issuer over ACME."""
    controller = cluster.get("cert-manager", "deployment", "cert-manager")
    assert controller["status"].get("availableReplicas") == 1, (
        f"cert-manager's controller is not available: {controller['status']} "
        "(bash devenv/cluster/addons/cert-manager.sh apply; it runs with devenv/cluster/cluster.sh start)")
    cluster.fresh_namespace(K8S_NAMESPACE)
    cluster.kubectl("delete", "clusterissuer", f"{K8S_NAMESPACE}-acme", "--ignore-not-found")  # an earlier run's
    project = Project(tmp_path_factory.mktemp("acme-cluster"))
    project.init_stack("staging", SECRETS)
    deploy_to_cluster(project, "staging", K8S_NAMESPACE, http_port=K8S_HTTP, https_port=K8S_HTTPS)
    replace_config(project, "staging", "edge.hosts", K8S_HOSTS)
    project.set_config("staging", "smokeTest.hostHeader", K8S_HOSTS[0])
    replace_config(project, "staging", "edge.tls", acme_settings(pebble))
    project.set_config("staging", "alerting.thresholds.certificateFor", CERTIFICATE_FOR)
    started = time.monotonic()
    # Up completes on cert-manager's temporary certificates: the edge must run to answer the challenges.
    project.pulumi("up", "--yes", "--skip-preview", "-s", "staging", timeout=900)
    up_seconds = time.monotonic() - started
    # Pebble and cert-manager's self-check (its nameserver is Pebble's) find each host at the edge
    # Service's port 80: what external DNS does for a real cluster.
    edge_ip = cluster.get(K8S_NAMESPACE, "service", "edge")["spec"]["clusterIP"]
    for host in K8S_HOSTS:
        pebble.dns("dns-add", host, edge_ip)
    wait_until("every edge Certificate Ready", 420,
               lambda: all(ready(certificate(cluster, host)).get("status") == "True" for host in K8S_HOSTS),
               lambda: acme_state(cluster))
    project.issued_at = time.monotonic()
    print(f"cluster: pulumi up {up_seconds:.0f}s, ACME issuance of {len(K8S_HOSTS)} certificates "
          f"{project.issued_at - started - up_seconds:.0f}s more")
    yield project
    for host in K8S_HOSTS:
        pebble.dns("dns-del", host)
    # What the namespace does not hold goes by name; the namespace takes the rest with it.
    cluster.kubectl("delete", "clusterissuer", f"{K8S_NAMESPACE}-acme", "--ignore-not-found")
    cluster.drop_namespace(K8S_NAMESPACE)


def test_cert_manager_reports_every_edge_certificate_ready(cluster, cluster_stack):
    for host in K8S_HOSTS:
        condition = ready(certificate(cluster, host))
        assert (condition["status"], condition["reason"]) == ("True", "Ready"), (host, condition)


def test_the_certificates_come_from_pebbles_intermediate_over_acme_orders(cluster, cluster_stack, pebble):
    intermediate = pebble.intermediate()
    for host in K8S_HOSTS:
        secret = cluster.get(K8S_NAMESPACE, "secret", f"edge-tls-{slug(host)}")
        leaf = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
        assert leaf.issuer == intermediate.subject, f"{leaf.issuer.rfc4514_string()} is not Pebble's intermediate"
        assert issued_by(leaf, intermediate) and dns_names(leaf) == {host}
    orders = cluster.get(K8S_NAMESPACE, "orders")["items"]
    assert len(orders) == len(K8S_HOSTS) and {o["status"]["state"] for o in orders} == {"valid"}
    assert all(o["status"]["url"].startswith(pebble.directory.removesuffix("/dir")) for o in orders)
    issuer = cluster.get(K8S_NAMESPACE, "clusterissuer", f"{K8S_NAMESPACE}-acme")
    assert issuer["status"]["acme"]["uri"].startswith(pebble.directory.removesuffix("/dir"))


def test_the_edge_serves_the_issued_certificates_without_a_restart(cluster, cluster_stack, pebble):
    # The edge started on cert-manager's temporary certificates; Traefik watches the projected volume
    # that holds the Secrets, so it loads the issued ones when the kubelet updates that volume.
    intermediate, pods = pebble.intermediate(), edge_pods(cluster)
    for host in K8S_HOSTS:
        wait_until(f"the edge serving Pebble's certificate for {host}", 240,
                   lambda host=host: served_certificate(K8S_HTTPS, host).issuer == intermediate.subject,
                   lambda host=host: served_certificate(K8S_HTTPS, host).issuer.rfc4514_string())
        assert issued_by(served_certificate(K8S_HTTPS, host), intermediate)
    print(f"cluster: the edge served the issued certificates {time.monotonic() - cluster_stack.issued_at:.0f}s "
          "after cert-manager reported them Ready")
    assert edge_pods(cluster) == pods, "the edge pods were restarted or replaced"


def cluster_prometheus(cluster) -> Prometheus:
    try:
        wait_until(f"statefulset {K8S_NAMESPACE}/prometheus-platform ready (the Prometheus Operator's)", 300,
                   lambda: statefulset_ready(cluster, K8S_NAMESPACE, "prometheus-platform"), lambda: "")
    except AssertionError as error:
        try:  # why: the pod's state and events
            why = cluster.kubectl("--namespace", K8S_NAMESPACE, "describe", "pod", "prometheus-platform-0")[-3000:]
        except AssertionError as failure:
            why = str(failure)
        raise AssertionError(f"{error}\n{why}") from None
    return Prometheus(cluster, K8S_NAMESPACE)


def measured(found: dict[str, float], expected: set[str], port: int) -> dict[str, float] | None:
    """`found` (instance -> probe_ssl_earliest_cert_expiry) when it covers exactly the `expected` probes and
    each equals the notAfter of the certificate the edge serves for that probe's host now."""
    if set(found) != expected:
        return None
    served = {host: served_certificate(port, host).not_valid_after_utc.timestamp()
              for host in {instance.split("//")[1].split(":")[0] for instance in found}}
    ok = all(abs(seconds - served[instance.split("//")[1].split(":")[0]]) < 60 for instance, seconds in found.items())
    return found if ok else None


def test_the_blackbox_probes_measure_every_edge_hosts_certificate_on_the_cluster(cluster, cluster_stack):
    prometheus = cluster_prometheus(cluster)

    def found() -> dict[str, float]:
        return expiry_by_instance(prometheus.api("query", query='probe_ssl_earliest_cert_expiry{job="blackbox"}')["result"])

    wait_until("probe_ssl_earliest_cert_expiry of the served certificate for every public endpoint of every edge host",
               300, lambda: measured(found(), probe_urls(K8S_HOSTS, K8S_HTTPS), K8S_HTTPS), found)
    cluster_stack.probed_at = time.monotonic()


# ------------------------------------------------------------------ Docker: Traefik's resolver


@pytest.fixture(scope="module")
def docker_stack(docker_host, pebble, tmp_path_factory):
    docker_host.remove_stack_leftovers(DOCKER_STACK)
    docker_host.refresh_images()
    project = Project(tmp_path_factory.mktemp("acme-docker"))
    # A stack of its own name (staging's settings), so its containers never meet staging's.
    staging = (ROOT / "Pulumi.staging.yaml").read_text().splitlines(keepends=True)
    (project.dir / f"Pulumi.{DOCKER_STACK}.yaml").write_text("".join(clean(staging)))
    project.init_stack(DOCKER_STACK, SECRETS)
    deploy_to_docker(project, DOCKER_STACK, docker_host.host, DOCKER_HTTP, DOCKER_HTTPS, "172.30.147.0/24")
    replace_config(project, DOCKER_STACK, "edge.hosts", DOCKER_HOSTS)
    project.set_config(DOCKER_STACK, "smokeTest.hostHeader", DOCKER_HOSTS[0])
    replace_config(project, DOCKER_STACK, "edge.tls", acme_settings(pebble))
    project.set_config(DOCKER_STACK, "alerting.thresholds.certificateFor", CERTIFICATE_FOR)
    started = time.monotonic()
    project.pulumi("up", "--yes", "--skip-preview", "-s", DOCKER_STACK, timeout=900)
    project.up_at = time.monotonic()
    print(f"docker: pulumi up {project.up_at - started:.0f}s")
    project.docker_host = docker_host
    yield project
    project.pulumi("destroy", "--yes", "--skip-preview", "-s", DOCKER_STACK, check=False, timeout=600)
    docker_host.remove_stack_leftovers(DOCKER_STACK)


def edge(project) -> dict:
    return json.loads(project.docker_host.docker("inspect", f"{DOCKER_STACK}-edge"))[0]


def edge_log(project) -> str:
    return project.docker_host.docker("logs", "--tail", "40", f"{DOCKER_STACK}-edge", check=False)[-3000:]


def test_traefik_on_docker_serves_a_certificate_from_pebble(docker_stack, pebble):
    intermediate = pebble.intermediate()
    started = time.monotonic()
    wait_until("Traefik serving Pebble's certificate", 300,
               lambda: all(served_certificate(DOCKER_HTTPS, h).issuer == intermediate.subject for h in DOCKER_HOSTS),
               lambda: f"served {served_certificate(DOCKER_HTTPS, DOCKER_HOSTS[0]).issuer.rfc4514_string()}; "
                       f"edge log:\n{edge_log(docker_stack)}")
    print(f"docker: Traefik served Pebble's certificate {time.monotonic() - started:.0f}s after up")
    for host in DOCKER_HOSTS:
        served = served_certificate(DOCKER_HTTPS, host)
        assert issued_by(served, intermediate) and dns_names(served) == set(DOCKER_HOSTS)
        assert served.not_valid_after_utc - served.not_valid_before_utc <= dt.timedelta(hours=DURATION_HOURS, minutes=1)


def test_traefik_on_docker_trusts_pebble_through_its_ca_bundle_only(docker_stack):
    env = edge(docker_stack)["Config"]["Env"]
    assert "LEGO_CA_CERTIFICATES=/etc/traefik/acme-ca.pem" in env
    assert not [entry for entry in env if entry.startswith(("LEGO_CA_SYSTEM_CERT_POOL", "LEGO_INSECURE"))]


def test_the_acme_storage_is_on_a_volume_and_no_key_is_in_docker_inspect(docker_stack):
    inspected = edge(docker_stack)
    [mount] = [m for m in inspected["Mounts"] if m["Destination"] == "/etc/traefik/acme"]
    assert (mount["Type"], mount["Name"]) == ("volume", f"{DOCKER_STACK}-edge-acme")
    assert "PRIVATE KEY" not in json.dumps(inspected) and "privateKey" not in json.dumps(inspected)


def test_a_re_created_edge_serves_its_certificate_without_a_new_order(docker_stack):
    # The edge container lost (a host reboot's cleanup, `docker rm`): `pulumi up --refresh` creates it
    # again, and its resolver finds account and certificate on the volume. (`--replace` would create the
    # new container before removing the old one: the fixed name and published ports forbid that.)
    serial = served_certificate(DOCKER_HTTPS, DOCKER_HOSTS[0]).serial_number
    before = edge(docker_stack)["Id"]
    docker_stack.docker_host.docker("rm", "-f", f"{DOCKER_STACK}-edge")
    started = time.monotonic()
    docker_stack.pulumi("up", "--yes", "--skip-preview", "--refresh", "-s", DOCKER_STACK, timeout=900)
    assert edge(docker_stack)["Id"] != before, "the edge container was not re-created"
    wait_until("the re-created edge answering HTTPS", 120, lambda: served_certificate(DOCKER_HTTPS, DOCKER_HOSTS[0]),
               lambda: edge_log(docker_stack))
    print(f"docker: edge re-created in {time.monotonic() - started:.0f}s")
    assert served_certificate(DOCKER_HTTPS, DOCKER_HOSTS[0]).serial_number == serial, \
        f"the re-created edge ordered a new certificate:\n{edge_log(docker_stack)}"


def test_the_blackbox_probes_measure_every_edge_hosts_certificate_on_docker(docker_stack):
    def found() -> dict[str, float]:
        return expiry_by_instance(docker_prometheus(docker_stack.docker_host, DOCKER_STACK,
                                                    "/api/v1/query?query=probe_ssl_earliest_cert_expiry")["result"])

    wait_until("probe_ssl_earliest_cert_expiry of the served certificate for every public endpoint of every edge host",
               240, lambda: measured(found(), probe_urls(DOCKER_HOSTS, DOCKER_HTTPS), DOCKER_HTTPS), found)
    docker_stack.probed_at = time.monotonic()


# ------------------------------------------------------------------ Kubernetes: renewal, while the alerts are pending


def test_a_renewed_certificate_is_served_without_a_restart(cluster, cluster_stack):
    host, pods = K8S_HOSTS[0], edge_pods(cluster)
    before = served_certificate(K8S_HTTPS, host)
    # What `cmctl renew` does: the Issuing condition, set by hand, makes cert-manager renew now.
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
                 "message": "renewal triggered by tests/e2e/test_acme_certificates.py", "lastTransitionTime": now}
    cluster.kubectl("--namespace", K8S_NAMESPACE, "patch", "certificate", f"edge-tls-{slug(host)}",
                    "--subresource=status", "--type=merge", "-p", json.dumps({"status": {"conditions": [condition]}}))
    started = time.monotonic()
    renewed = wait_until(f"the edge serving a renewed certificate for {host}", 300,
                         lambda: (lambda served: served if served.serial_number != before.serial_number else None)(
                             served_certificate(K8S_HTTPS, host)),
                         lambda: acme_state(cluster))
    print(f"cluster: renewal of {host} triggered, served by the running edge {time.monotonic() - started:.0f}s later")
    assert renewed.not_valid_after_utc > before.not_valid_after_utc
    assert edge_pods(cluster) == pods, "the edge pods were restarted or replaced"


def test_the_short_lived_certificates_expire_within_the_alert_window(cluster, cluster_stack):
    window = dt.timedelta(days=AlertingThresholds().cert_critical_days)
    for host in K8S_HOSTS:
        status = certificate(cluster, host)["status"]
        left = dt.datetime.fromisoformat(status["notAfter"].replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)
        print(f"cluster certificate {host}: notAfter {status['notAfter']} ({left.total_seconds() / 3600:.2f} h left), "
              f"renewal at {status.get('renewalTime')}; {ALERT} window {window.days} days")
        assert dt.timedelta(0) < left <= dt.timedelta(hours=DURATION_HOURS) < window


# ------------------------------------------------------------------ the expiry alert, both targets


def wait_for_alert(what: str, alerts, declared_for: str, expected: set[str], since: float) -> float:
    """Seconds from `since` until the alert fires for every `expected` instance (the rule's `for:` after
    the first probe of a short-lived certificate, plus a few scrapes and evaluations)."""
    timeout = duration_seconds(declared_for) + 300 - (time.monotonic() - since)
    wait_until(f"{ALERT} firing for every probed endpoint on {what}", max(timeout, 60),
               lambda: set(firing(alerts(), ALERT)) >= expected, lambda: states(alerts(), ALERT), interval=10)
    return time.monotonic() - since


def test_the_expiry_alert_fires_on_the_cluster(cluster, cluster_stack):
    prometheus = cluster_prometheus(cluster)
    declared_for = rule_for(cluster.get(K8S_NAMESPACE, "prometheusrule", "platform-alerts")["spec"]["groups"], ALERT)
    since = getattr(cluster_stack, "probed_at", time.monotonic())  # the first probe of the issued certificates
    seconds = wait_for_alert("the cluster", lambda: prometheus.api("alerts")["alerts"], declared_for,
                             probe_urls(K8S_HOSTS, K8S_HTTPS), since)
    print(f"cluster: {ALERT} (for: {declared_for}) firing {seconds:.0f}s after the probes first measured the certificates")
    alert = firing(prometheus.api("alerts")["alerts"], ALERT)[f"https://{K8S_HOSTS[0]}:{K8S_HTTPS}/api/healthz"]
    assert (alert["labels"]["severity"], alert["labels"]["service"]) == ("critical", "api")


def test_the_expiry_alert_fires_on_docker(docker_stack):
    [prometheus] = docker_stack.docker_host.docker(
        "ps", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={DOCKER_STACK}",
        "--filter", "label=app.kubernetes.io/name=prometheus").split()
    rules = yaml.safe_load(docker_stack.docker_host.docker("exec", prometheus, "cat", "/etc/prometheus/rules.yml"))
    declared_for = rule_for(rules["groups"], ALERT)

    def alerts() -> list[dict]:
        return docker_prometheus(docker_stack.docker_host, DOCKER_STACK, "/api/v1/alerts")["alerts"]

    since = getattr(docker_stack, "probed_at", docker_stack.up_at)
    seconds = wait_for_alert("docker", alerts, declared_for, probe_urls(DOCKER_HOSTS, DOCKER_HTTPS), since)
    print(f"docker: {ALERT} (for: {declared_for}) firing {seconds:.0f}s after the probes first measured the certificate")
    alert = firing(alerts(), ALERT)[f"https://{DOCKER_HOSTS[0]}:{DOCKER_HTTPS}/api/healthz"]
    assert (alert["labels"]["severity"], alert["labels"]["service"]) == ("critical", "api")
