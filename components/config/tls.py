"""The edge's certificates: `platform:edge.tls` (part of components/config/), and the ACME
directories shared by cert-manager issuers (Kubernetes) and Traefik's resolver (Docker):
Let's Encrypt's two by name, or any directory's URL (the development machine's Pebble)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.config.model import EmailAddress, Model, Problem, refuse

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


class TlsSpec(Model):
    # acme: a public CA (cert-manager on Kubernetes, Traefik's resolver on Docker).
    # self-signed: a CA chain in the cluster, issued by cert-manager (Traefik's local CA on Docker).
    # local-ca: this program's own CA (components/local_ca.py) writes the edge Secret itself, for
    #   clusters without cert-manager's controller (the embedded local cluster).
    mode: Literal["acme", "self-signed", "local-ca"] = "self-signed"
    email: EmailAddress | None = Field(None, description="ACME account e-mail.")
    # Let's Encrypt's staging or production directory, or another ACME directory's https URL (the
    # development machine's Pebble, devenv/acme/pebble.sh; docs/tls.md).
    acme_server: Literal["staging", "production"] | AcmeDirectoryUrl = "staging"
    # PEM file of the CA that signed a private ACME directory's own TLS certificate (Pebble's).
    acme_ca_bundle_file: str | None = None
    # cert-manager's default is 2/3 of the lifetime; 30 days leaves time for a human if renewal breaks.
    renew_before_days: int = Field(30, ge=1, le=89)
    # The lifetime cert-manager asks for (ACME: the order's notAfter). Shorter than renewBeforeDays,
    # renewal comes at 2/3 of it: a short-lived certificate exercises renewal and the expiry alert.
    duration_hours: int = Field(2160, ge=1, le=2160)

    @model_validator(mode="after")
    def _acme_needs_email(self) -> "TlsSpec":
        if self.mode == "acme" and not self.email:
            refuse([Problem("email", "mode acme needs an e-mail address for the ACME account "
                                     "(e.g. platform-team@example.com), found nothing")])
        if self.mode == "acme" and self.acme_ca_bundle_file is not None:
            # Read where `pulumi up` runs, so checked here: a missing file would otherwise stop the
            # program half-way through registering resources.
            problem = _ca_bundle_problem(self.acme_ca_bundle_file)
            if problem:
                refuse([Problem("acmeCaBundleFile", problem)])
        return self


def _ca_bundle_problem(path: str) -> str | None:
    file = Path(path).expanduser()
    if not file.is_file():
        return (f"{path} is not a file on this machine; it must hold the PEM CA that signed the ACME "
                "directory's TLS certificate (the development machine's Pebble: bash devenv/acme/pebble.sh start "
                "writes ~/.cache/deployplatform/acme/certs/ca.pem)")
    if "-----BEGIN CERTIFICATE-----" not in file.read_text(errors="replace"):
        return f"{path} holds no PEM certificate"
    return None


def acme_directory(server: str) -> str:
    """The directory URL of `edge.tls.acmeServer`: a name from ACME_SERVERS or a URL as given."""
    return ACME_SERVERS.get(server, server)


def acme_ca_bundle(path: str | None) -> str | None:
    """The PEM text of `edge.tls.acmeCaBundleFile` (read where `pulumi up` runs), None without one."""
    if path is None:
        return None
    problem = _ca_bundle_problem(path)
    if problem:
        raise ValueError(f"edge.tls.acmeCaBundleFile {problem}")
    return Path(path).expanduser().read_text()


def edge_certificate_verifiable(tls) -> bool:
    """Whether a client trusting only the system's CAs can verify the edge's certificate (`tls`: a
    TlsSpec): one from a public ACME CA. A private directory (trusted through acmeCaBundleFile,
    such as Pebble) signs with a CA no client has, like Let's Encrypt's staging, the self-signed
    chain and the local CA: probes of those measure the certificate without verifying it."""
    return tls.mode == "acme" and tls.acme_ca_bundle_file is None and tls.acme_server != "staging"
