"""Edge certificates: issued and renewed by the target (cert-manager on Kubernetes), by this
program's local CA (`tls.mode: local-ca`, and Docker's self-signed mode) or by the edge proxy
itself (Traefik's ACME resolver on Docker).
An expiry alert covers both (components/alerting, CertificateExpiringSoon)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
from pulumi import ResourceOptions

from components.config import TlsSpec
from components.targets.base import RuntimeTarget


@dataclass(frozen=True)
class EdgeCertificatesArgs:
    hosts: Sequence[str]
    tls: TlsSpec
    target: RuntimeTarget


class EdgeCertificates(pulumi.ComponentResource):
    def __init__(self, name: str, args: EdgeCertificatesArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:tls:EdgeCertificates", name, None, opts)
        self.material = args.target.edge_tls(args.hosts, args.tls, parent=self)
        self.issuer = self.material.issuer if self.material else "edge-proxy"
        self.mode = args.tls.mode
        self.hosts = list(args.hosts)
        self.renew_before_days = args.tls.renew_before_days
        self.register_outputs({"issuer": self.issuer, "mode": self.mode, "hosts": self.hosts,
                               "renew_before_days": self.renew_before_days})
