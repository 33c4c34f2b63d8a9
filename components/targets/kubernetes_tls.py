"""cert-manager resources for the edge certificate (Kubernetes target).

ACME: a ClusterIssuer with the account e-mail and the staging or production directory, HTTP-01
through the ingress class. Self-signed (dev, staging): a local CA — a self-signed issuer signs a
CA certificate, a CA issuer signs the edge certificate — so clients can trust one root.
Ref: https://cert-manager.io/docs/configuration/selfsigned/#bootstrapping-ca-issuers
Local CA (clusters without cert-manager's controller, such as the embedded local cluster): this
program's CA (components/local_ca.py) issues one certificate for every host into a
`kubernetes.io/tls` Secret; the key is a Pulumi secret, encrypted in state.
"""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.config import KubernetesTarget, TlsSpec
from components.local_ca import LocalCertificateAuthority, LocalCertificateAuthorityArgs
from components.targets.base import TlsMaterial
from components.tls_settings import ACME_SERVERS

API = "cert-manager.io/v1"
CERT_DIR = "/etc/traefik/certs"
LABELS = {"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/name": "edge"}


def issue_edge_certificate(hosts: Sequence[str], tls: TlsSpec, settings: KubernetesTarget, stack: str,
                           opts: ResourceOptions) -> TlsMaterial:
    namespace = settings.namespace
    if tls.mode == "acme":
        issuer_ref = {"name": f"{stack}-acme", "kind": "ClusterIssuer"}
        issuers = [_resource("cluster-issuer", "ClusterIssuer", {"name": issuer_ref["name"], "labels": LABELS}, {
            "acme": {"email": tls.email, "server": ACME_SERVERS[tls.acme_server],
                     "privateKeySecretRef": {"name": f"{stack}-acme-account-key"},
                     "solvers": [{"http01": {"ingress": {"ingressClassName": settings.ingress_class}}}]}}, opts)]
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
        _resource(f"edge-certificate-{slug}", "Certificate",
                  {"name": secret, "namespace": namespace, "labels": LABELS}, {
                      "secretName": secret, "dnsNames": [host], "issuerRef": issuer_ref,
                      "duration": "2160h", "renewBefore": f"{tls.renew_before_days * 24}h",
                      "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                  }, ResourceOptions.merge(opts, ResourceOptions(depends_on=issuers)))
        mounts[secret] = f"{CERT_DIR}/{slug}"
        certificates.append((f"{CERT_DIR}/{slug}/tls.crt", f"{CERT_DIR}/{slug}/tls.key"))
    return TlsMaterial(certificates=certificates, secret_mounts=mounts)


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
