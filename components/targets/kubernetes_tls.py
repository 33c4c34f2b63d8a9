"""cert-manager resources for the edge certificate (Kubernetes target).

ACME: a ClusterIssuer with the account e-mail and the directory (Let's Encrypt's staging or
production, or a private one such as the development machine's Pebble, trusted through
`edge.tls.acmeCaBundleFile`), HTTP-01 through the edge: one solver per host, whose solver pods
carry a label a Service of this stack selects, and the edge routes that host's
`/.well-known/acme-challenge/` to that Service (TlsMaterial.challenge_routes). Until the first
certificate is issued cert-manager writes a temporary one into the Secret, so the edge can start
and answer the challenge (docs/tls.md). Self-signed (dev, staging): a local CA — a self-signed issuer signs a
CA certificate, a CA issuer signs the edge certificate — so clients can trust one root.
Ref: https://cert-manager.io/docs/configuration/selfsigned/#bootstrapping-ca-issuers
Local CA (clusters without cert-manager's controller, such as the embedded local cluster): this
program's CA (components/local_ca.py) issues one certificate for every host into a
`kubernetes.io/tls` Secret; the key is a Pulumi secret, encrypted in state.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.config import KubernetesTarget, TlsSpec
from components.edge import DYNAMIC_PATH
from components.local_ca import LocalCertificateAuthority, LocalCertificateAuthorityArgs
from components.targets.base import TlsMaterial
from components.config.tls import acme_ca_bundle, acme_directory

API = "cert-manager.io/v1"
# Inside the directory the edge proxy watches, so it loads a renewed certificate without a restart
# (kubernetes_workloads.py, _live_volume); Traefik reads only .yml/.toml files there as configuration.
CERT_DIR = posixpath.join(posixpath.dirname(DYNAMIC_PATH), "certs")
TLS_KEYS = ("tls.crt", "tls.key")  # what a kubernetes.io/tls Secret holds for the edge
LABELS = {"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/name": "edge"}
SOLVER_LABEL = "deploy.platform/acme-host"  # on cert-manager's HTTP-01 solver pods: which host they answer for
SOLVER_PORT = 8089  # acmesolver's listen port


def issue_edge_certificate(hosts: Sequence[str], tls: TlsSpec, settings: KubernetesTarget, stack: str,
                           opts: ResourceOptions) -> TlsMaterial:
    namespace = settings.namespace
    challenge_routes: dict[str, str] = {}
    if tls.mode == "acme":
        # Named after the namespace: cluster-scoped, and two stacks of one name (a test copy) may share a cluster.
        issuer_ref = {"name": f"{namespace}-acme", "kind": "ClusterIssuer"}
        issuers = [_resource("cluster-issuer", "ClusterIssuer", {"name": issuer_ref["name"], "labels": LABELS},
                             {"acme": acme_issuer_spec(hosts, tls, settings)}, opts)]
        for host in hosts:
            service = _solver_service(host, namespace, opts)
            challenge_routes[host] = f"http://{service}.{namespace}.svc.cluster.local:{SOLVER_PORT}"
    else:
        issuer_ref = {"name": "platform-ca", "kind": "Issuer"}
        bootstrap = _resource("selfsigned-issuer", "Issuer",
                              {"name": "platform-selfsigned", "namespace": namespace, "labels": LABELS},
                              {"selfSigned": {}}, opts)
        root = _resource("root-ca", "Certificate",
                         {"name": "platform-root-ca", "namespace": namespace, "labels": LABELS},
                         {"isCA": True, "commonName": f"platform {stack} root CA", "secretName": "platform-root-ca",
                          "duration": "87600h", "privateKey": {"algorithm": "ECDSA", "size": 256},
                          "issuerRef": {"name": "platform-selfsigned", "kind": "Issuer"}},
                         ResourceOptions.merge(opts, ResourceOptions(depends_on=[bootstrap])))
        issuers = [_resource("ca-issuer", "Issuer",
                             {"name": "platform-ca", "namespace": namespace, "labels": LABELS},
                             {"ca": {"secretName": "platform-root-ca"}},
                             ResourceOptions.merge(opts, ResourceOptions(depends_on=[root])))]
    mounts, certificates = {}, []
    for host in hosts:
        # One Certificate per host: a failed renewal or validation affects that host only.
        slug = host.replace(".", "-")
        secret = f"edge-tls-{slug}"
        metadata = {"name": secret, "namespace": namespace, "labels": LABELS}
        if tls.mode == "acme":
            # The edge mounts this Secret and must be up to answer the challenge that fills it.
            metadata["annotations"] = {"cert-manager.io/issue-temporary-certificate": "true"}
        _resource(f"edge-certificate-{slug}", "Certificate", metadata,
                  certificate_spec(host, secret, issuer_ref, tls),
                  ResourceOptions.merge(opts, ResourceOptions(depends_on=issuers)))
        mounts[secret] = f"{CERT_DIR}/{slug}"
        certificates.append((f"{CERT_DIR}/{slug}/tls.crt", f"{CERT_DIR}/{slug}/tls.key"))
    return TlsMaterial(certificates=certificates, secret_mounts=mounts, challenge_routes=challenge_routes)


def acme_issuer_spec(hosts: Sequence[str], tls: TlsSpec, settings: KubernetesTarget) -> dict:
    """The ClusterIssuer's `acme` block: one HTTP-01 solver per host (selected by dnsNames), whose
    pods carry that host's label, so each host's challenges reach exactly its solver pods."""
    solvers = [{"selector": {"dnsNames": [host]}, "http01": {"ingress": {
        "ingressClassName": settings.ingress_class,
        "podTemplate": {"metadata": {"labels": {SOLVER_LABEL: solver_id(host)}}}}}} for host in hosts]
    spec: dict = {"email": tls.email, "server": acme_directory(tls.acme_server),
                  "privateKeySecretRef": {"name": f"{settings.namespace}-acme-account-key"}, "solvers": solvers}
    bundle = acme_ca_bundle(tls.acme_ca_bundle_file)
    if bundle:
        spec["caBundle"] = base64.b64encode(bundle.encode()).decode()
    if tls.duration_hours != TlsSpec.model_fields["duration_hours"].default:
        # The order asks for the lifetime (notAfter). Let's Encrypt refuses such orders; Pebble
        # and other private directories honour it.
        spec["enableDurationFeature"] = True
    return spec


def certificate_spec(host: str, secret: str, issuer_ref: dict, tls: TlsSpec) -> dict:
    spec = {"secretName": secret, "dnsNames": [host], "issuerRef": issuer_ref,
            "duration": f"{tls.duration_hours}h",
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}}
    if tls.renew_before_days * 24 < tls.duration_hours:
        spec["renewBefore"] = f"{tls.renew_before_days * 24}h"
    # Otherwise cert-manager renews at 2/3 of the lifetime (a renewBefore >= duration is refused).
    return spec


def solver_id(host: str) -> str:
    """A label value (at most 63 characters) naming one host's HTTP-01 solver."""
    return hashlib.sha256(host.encode()).hexdigest()[:16]


def _solver_service(host: str, namespace: str, opts: ResourceOptions) -> str:
    """A Service over the host's solver pods (cert-manager's own per-challenge Service has a
    generated name the edge's static routes cannot know). No endpoints while nothing is pending."""
    name = f"acme-http01-{solver_id(host)}"
    k8s.core.v1.Service(
        # Pulumi would wait for endpoints this Service has only while a challenge is pending.
        name, metadata={"name": name, "namespace": namespace, "labels": LABELS,
                        "annotations": {"pulumi.com/skipAwait": "true"}},
        spec={"selector": {"acme.cert-manager.io/http01-solver": "true", SOLVER_LABEL: solver_id(host)},
              "ports": [{"name": "http", "port": SOLVER_PORT, "targetPort": SOLVER_PORT}]},
        opts=opts)
    return name


def _resource(name: str, kind: str, metadata: dict, spec: dict, opts: ResourceOptions) -> pulumi.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=API, kind=kind, metadata=metadata, spec=spec, opts=opts)


def issue_local_ca_certificate(hosts: Sequence[str], tls: TlsSpec, namespace: str,
                               opts: ResourceOptions) -> TlsMaterial:
    authority = LocalCertificateAuthority("local-ca", LocalCertificateAuthorityArgs(
        hosts=hosts, renew_before_days=tls.renew_before_days), opts=ResourceOptions(parent=opts.parent))
    secret = k8s.core.v1.Secret(
        "edge-tls", metadata={"name": "edge-tls", "namespace": namespace, "labels": LABELS},
        type="kubernetes.io/tls",
        string_data={"tls.crt": authority.certificate, "tls.key": authority.private_key,
                     "ca.crt": authority.ca_certificate},
        opts=opts)
    return TlsMaterial(certificates=[(f"{CERT_DIR}/edge/tls.crt", f"{CERT_DIR}/edge/tls.key")],
                       secret_mounts={"edge-tls": f"{CERT_DIR}/edge"}, resources=[secret],
                       issuer="local-ca")
