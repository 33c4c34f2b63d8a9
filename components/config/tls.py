"""ACME directories, shared by cert-manager issuers (Kubernetes) and Traefik's resolver (Docker):
Let's Encrypt's two by name, or any directory's URL (the development machine's Pebble)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

ACME_SERVERS = {
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "production": "https://acme-v02.api.letsencrypt.org/directory",
}

AcmeDirectoryUrl = Annotated[str, Field(pattern=r"^https://[^\s/]+(/\S*)?$")]

# Where Traefik finds the private directory's CA inside the edge (lego reads LEGO_CA_CERTIFICATES).
EDGE_ACME_CA_PATH = "/etc/traefik/acme-ca.pem"
# Traefik's ACME storage (account key, certificates and their keys), in a directory the target
# keeps on a volume (Docker: a named volume), never in the container's own layer.
EDGE_ACME_STORAGE = "/etc/traefik/acme/acme.json"


def acme_directory(server: str) -> str:
    """The directory URL of `edge.tls.acmeServer`: a name from ACME_SERVERS or a URL as given."""
    return ACME_SERVERS.get(server, server)


def acme_ca_bundle(path: str | None) -> str | None:
    """The PEM text of `edge.tls.acmeCaBundleFile` (read where `pulumi up` runs), None without one."""
    if path is None:
        return None
    file = Path(path).expanduser()
    text = file.read_text()
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"edge.tls.acmeCaBundleFile {file} holds no PEM certificate")
    return text


def edge_certificate_verifiable(tls) -> bool:
    """Whether a client trusting only the system's CAs can verify the edge's certificate (`tls`: a
    TlsSpec): one from a public ACME CA. A private directory (trusted through acmeCaBundleFile,
    such as Pebble) signs with a CA no client has, like Let's Encrypt's staging, the self-signed
    chain and the local CA: probes of those measure the certificate without verifying it."""
    return tls.mode == "acme" and tls.acme_ca_bundle_file is None and tls.acme_server != "staging"
