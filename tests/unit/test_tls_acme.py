"""ACME certificates under mocks: a private directory (Pebble) with its CA bundle, HTTP-01 through
the edge on Kubernetes (cert-manager's solvers behind per-host routes), Traefik's resolver on
Docker trusting the directory through LEGO_CA_CERTIFICATES, and short-lived certificates."""

from __future__ import annotations

import base64
import posixpath

import pytest
import yaml

from components.config import TlsSpec
from components.edge import STATIC_PATH
from components.targets.kubernetes_tls import SOLVER_LABEL, solver_id
from components.config.tls import EDGE_ACME_CA_PATH, EDGE_ACME_STORAGE, acme_ca_bundle, edge_certificate_verifiable
from support import UNIT_ACME_CA_BUNDLE, deploy_stack, on_docker, with_local_ca

CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
SERVICE = "kubernetes:core/v1:Service"
DIRECTORY = "https://10.250.0.1:14000/dir"
HOST = "shop.staging.localhost"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "pebble-ca.pem"
    path.write_text(PEM)
    return str(path)


def pebble(bundle, **extra):
    def change(raw):
        raw["edge"]["tls"] = {"mode": "acme", "email": "ops@shop.example", "acmeServer": DIRECTORY,
                              "acmeCaBundleFile": bundle, **extra}
    return change


def on_kubernetes(mocks, change):
    deploy_stack("staging", change)
    return mocks


def routes_configmap(mocks) -> dict:
    return yaml.safe_load(mocks.named("kubernetes:core/v1:ConfigMap", "edge-files").get("data")["routes.yml"])


def static_configmap(mocks) -> dict:
    return yaml.safe_load(mocks.named("kubernetes:core/v1:ConfigMap", "edge-files").get("data")["traefik.yml"])


def test_cluster_issuer_uses_the_directory_url_and_trusts_its_ca_bundle(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle))
    issuer = mocks.named(ISSUER, "cluster-issuer")
    assert issuer.get("spec.acme.server") == DIRECTORY
    assert base64.b64decode(issuer.get("spec.acme.caBundle")).decode() == PEM


def test_each_host_has_a_solver_whose_pods_carry_its_label(mocks, bundle):
    on_kubernetes(mocks, lambda raw: (pebble(bundle)(raw), raw["edge"].update(
        hosts=[HOST, "api.staging.localhost"])))
    solvers = mocks.named(ISSUER, "cluster-issuer").get("spec.acme.solvers")
    by_host = {s["selector"]["dnsNames"][0]: s["http01"]["ingress"]["podTemplate"]["metadata"]["labels"]
               for s in solvers}
    assert by_host == {HOST: {SOLVER_LABEL: solver_id(HOST)},
                       "api.staging.localhost": {SOLVER_LABEL: solver_id("api.staging.localhost")}}


def test_a_service_selects_each_hosts_solver_pods(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle))
    service = mocks.named(SERVICE, f"acme-http01-{solver_id(HOST)}")
    assert service.get("spec.selector") == {"acme.cert-manager.io/http01-solver": "true",
                                            SOLVER_LABEL: solver_id(HOST)}
    assert service.get("spec.ports") == [{"name": "http", "port": 8089, "targetPort": 8089}]
    # without solver pods it has no endpoints: `pulumi up` must not wait for them
    assert service.get("metadata.annotations") == {"pulumi.com/skipAwait": "true"}


def test_the_edge_routes_each_hosts_challenges_to_its_solver_over_plain_http(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle))
    dynamic = routes_configmap(mocks)["http"]
    router = dynamic["routers"]["acme-http01-shop-staging-localhost"]
    assert router["rule"] == f"Host(`{HOST}`) && PathPrefix(`/.well-known/acme-challenge/`)"
    assert router["entryPoints"] == ["web"]
    assert dynamic["services"][router["service"]]["loadBalancer"]["servers"] == [
        {"url": f"http://acme-http01-{solver_id(HOST)}.shop-staging.svc.cluster.local:8089"}]


def test_the_https_redirect_yields_to_the_challenge_routes(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle))
    redirect = static_configmap(mocks)["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]
    assert redirect["priority"] == 1


def test_without_acme_the_redirect_keeps_traefiks_default_priority(mocks):
    on_kubernetes(mocks, with_local_ca)
    redirect = static_configmap(mocks)["entryPoints"]["web"]["http"]["redirections"]["entryPoint"]
    assert "priority" not in redirect
    assert not [r for r in routes_configmap(mocks)["http"]["routers"] if r.startswith("acme-http01-")]


def test_the_first_certificate_is_a_temporary_one_so_the_edge_can_start(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle))
    certificate = mocks.named(CERTIFICATE, "edge-certificate-shop-staging-localhost")
    assert certificate.get("metadata.annotations") == {"cert-manager.io/issue-temporary-certificate": "true"}


def test_a_short_lived_certificate_asks_the_directory_for_its_lifetime(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle, durationHours=2))
    certificate = mocks.named(CERTIFICATE, "edge-certificate-shop-staging-localhost")
    assert certificate.get("spec.duration") == "2h"
    assert certificate.get("spec.renewBefore") is None  # 30 days would exceed the lifetime
    assert mocks.named(ISSUER, "cluster-issuer").get("spec.acme.enableDurationFeature") is True


def test_the_default_lifetime_sends_no_not_after_that_lets_encrypt_would_refuse(mocks, staging_verified):
    staging_verified({"web": "1.4.2", "api": "1.4.2", "worker": "1.4.2", "edge": "3.1.4"})
    deploy_stack("prod")
    issuer = mocks.named(ISSUER, "cluster-issuer")
    assert issuer.get("spec.acme.enableDurationFeature") is None
    assert issuer.get("spec.acme.caBundle") is None
    certificate = mocks.of_type(CERTIFICATE)[0]
    assert (certificate.get("spec.duration"), certificate.get("spec.renewBefore")) == ("2160h", "720h")


def docker_edge(mocks):
    [edge] = [c for c in mocks.of_type("docker:index/container:Container") if c.name == "edge"]
    return edge


def test_traefik_on_docker_trusts_the_directory_through_lego_ca_certificates(mocks, bundle):
    deploy_stack("staging", lambda raw: (on_docker(raw), pebble(bundle)(raw)))
    edge = docker_edge(mocks)
    uploads = {entry["file"]: entry.get("content") for entry in edge.get("uploads")}
    assert uploads[EDGE_ACME_CA_PATH] == PEM
    assert f"LEGO_CA_CERTIFICATES={EDGE_ACME_CA_PATH}" in edge.get("envs")
    resolver = yaml.safe_load(uploads[STATIC_PATH])["certificatesResolvers"]["acme"]["acme"]
    assert resolver["caServer"] == DIRECTORY
    assert resolver["httpChallenge"] == {"entryPoint": "web"}


def test_traefik_on_docker_without_a_bundle_trusts_only_the_system_cas(mocks):
    deploy_stack("staging", lambda raw: (on_docker(raw), raw["edge"].update(
        tls={"mode": "acme", "email": "ops@shop.example"})))
    edge = docker_edge(mocks)
    assert not [env for env in edge.get("envs") or [] if env.startswith("LEGO_CA_CERTIFICATES=")]


def test_a_bundle_file_without_a_certificate_is_refused_by_name(tmp_path):
    path = tmp_path / "empty.pem"
    path.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="acmeCaBundleFile .*empty.pem holds no PEM certificate"):
        acme_ca_bundle(str(path))


def test_the_cluster_issuer_is_named_after_the_namespace_so_stack_copies_do_not_collide(mocks, bundle):
    on_kubernetes(mocks, pebble(bundle))
    issuer = mocks.named(ISSUER, "cluster-issuer")
    assert issuer.get("metadata.name") == "shop-staging-acme"
    certificate = mocks.named(CERTIFICATE, "edge-certificate-shop-staging-localhost")
    assert certificate.get("spec.issuerRef") == {"name": "shop-staging-acme", "kind": "ClusterIssuer"}


def test_traefiks_acme_storage_on_docker_is_a_named_volume_of_the_stack(mocks, bundle):
    # A re-created edge container (a new image, a changed setting) keeps account and certificates:
    # without the volume every such deploy ordered again and served Traefik's default certificate meanwhile.
    deploy_stack("staging", lambda raw: (on_docker(raw), pebble(bundle)(raw)))
    edge = docker_edge(mocks)
    [volume] = edge.get("volumes")
    assert volume["containerPath"] == posixpath.dirname(EDGE_ACME_STORAGE)
    named = mocks.named("docker:index/volume:Volume", "volume-edge-acme")
    assert named.get("name") == "staging-edge-acme" and volume["volumeName"] == "staging-edge-acme"
    uploads = {entry["file"]: entry.get("content") for entry in edge.get("uploads")}
    resolver = yaml.safe_load(uploads[STATIC_PATH])["certificatesResolvers"]["acme"]["acme"]
    assert resolver["storage"] == EDGE_ACME_STORAGE


def test_without_traefiks_resolver_the_docker_edge_has_no_volume(mocks):
    deploy_stack("staging", lambda raw: (on_docker(raw), with_local_ca(raw)))
    assert docker_edge(mocks).get("volumes") is None


def test_traefik_renews_by_the_lifetime_the_stack_declares(mocks, bundle):
    # Traefik requests no lifetime; certificatesDuration tells it when to renew (2 h: 20 min before expiry).
    deploy_stack("staging", lambda raw: (on_docker(raw), pebble(bundle, durationHours=2)(raw)))
    uploads = {entry["file"]: entry.get("content") for entry in docker_edge(mocks).get("uploads")}
    assert yaml.safe_load(uploads[STATIC_PATH])["certificatesResolvers"]["acme"]["acme"]["certificatesDuration"] == 2


@pytest.mark.parametrize(("tls", "verifiable"), [
    ({"mode": "acme", "email": "a@b.example", "acmeServer": "production"}, True),
    ({"mode": "acme", "email": "a@b.example", "acmeServer": "staging"}, False),
    ({"mode": "acme", "email": "a@b.example", "acmeServer": DIRECTORY, "acmeCaBundleFile": str(UNIT_ACME_CA_BUNDLE)}, False),
    ({"mode": "self-signed"}, False),
    ({"mode": "local-ca"}, False),
])
def test_probes_verify_only_certificates_from_a_public_ca(tls, verifiable):
    assert edge_certificate_verifiable(TlsSpec.model_validate(tls)) is verifiable


def test_a_ca_bundle_file_missing_on_this_machine_is_refused_at_its_key(tmp_path):
    missing = tmp_path / "pebble-ca.pem"
    with pytest.raises(ValueError, match=r"acmeCaBundleFile: .*pebble-ca.pem is not a file on this machine.*pebble.sh start"):
        TlsSpec.model_validate({"mode": "acme", "email": "a@b.example", "acmeServer": DIRECTORY,
                                "acmeCaBundleFile": str(missing)})


def test_a_ca_bundle_file_only_matters_in_acme_mode(tmp_path):
    # A copy switched to local-ca keeps the ACME keys it inherited; they are not read.
    spec = TlsSpec.model_validate({"mode": "local-ca", "acmeCaBundleFile": str(tmp_path / "gone.pem")})
    assert spec.mode == "local-ca"
