"""A local certificate authority for edges that have no ACME (Docker dev and staging).

A dynamic resource holds a CA and an edge certificate signed by it, generated with the
`cryptography` library (pulumi-tls would be the natural provider; it cannot be built here,
docs/toolchain.md). Keys live only in state, as secrets. The certificate is re-issued when
the hosts change or when it is within `renew_before_days` of expiry, checked on every update.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi.dynamic as dynamic
from pulumi import ResourceOptions

LEAF_DAYS = 90
CA_DAYS = 3650


@dataclass(frozen=True)
class LocalCertificateAuthorityArgs:
    hosts: Sequence[str]
    renew_before_days: int


class LocalCertificateAuthority(pulumi.ComponentResource):
    def __init__(self, name: str, args: LocalCertificateAuthorityArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:tls:LocalCertificateAuthority", name, None, opts)
        issued = _Issued(f"{name}-issued", {
            "hosts": list(args.hosts), "renew_before_days": args.renew_before_days,
            "ca_cert": None, "ca_key": None, "cert": None, "key": None, "not_after": None,
        }, opts=ResourceOptions(parent=self, additional_secret_outputs=["ca_key", "key"]))
        self.ca_certificate = issued.ca_cert
        self.certificate = issued.cert
        self.private_key = pulumi.Output.secret(issued.key)
        self.not_after = issued.not_after
        self.register_outputs({"ca_certificate": self.ca_certificate, "not_after": self.not_after})


class _Issued(dynamic.Resource):
    ca_cert: pulumi.Output[str]
    ca_key: pulumi.Output[str]
    cert: pulumi.Output[str]
    key: pulumi.Output[str]
    not_after: pulumi.Output[str]

    def __init__(self, name: str, props: dict, opts: ResourceOptions | None = None):
        super().__init__(_IssuerProvider(), name, props, opts)


class _IssuerProvider(dynamic.ResourceProvider):
    def create(self, props):
        return dynamic.CreateResult(id_="local-ca", outs=issue(props["hosts"], props["renew_before_days"]))

    def diff(self, _id, olds, news):
        due = _renewal_due(olds.get("not_after"), int(news["renew_before_days"]))
        changed = due or olds.get("hosts") != news["hosts"]
        return dynamic.DiffResult(changes=changed, replaces=["cert"] if changed else [], delete_before_replace=False)

    def update(self, _id, olds, news):
        # The CA stays: clients that trust it keep trusting the renewed certificate.
        return dynamic.UpdateResult(outs=issue(news["hosts"], news["renew_before_days"],
                                               ca=(olds.get("ca_cert"), olds.get("ca_key"))))


def _renewal_due(not_after: str | None, renew_before_days: int) -> bool:
    if not not_after:
        return True
    expires = dt.datetime.fromisoformat(not_after)
    return expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=renew_before_days)


def issue(hosts: list[str], renew_before_days: int, ca: tuple[str | None, str | None] = (None, None)) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "platform local CA")])
    if ca[0] and ca[1]:
        ca_cert = x509.load_pem_x509_certificate(ca[0].encode())
        ca_key = serialization.load_pem_private_key(ca[1].encode(), password=None)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
                   .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=LEAF_DAYS)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))

    def pem_key(private) -> str:
        return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()

    return {"hosts": hosts, "renew_before_days": renew_before_days,
            "ca_cert": ca_cert.public_bytes(serialization.Encoding.PEM).decode(), "ca_key": pem_key(ca_key),
            "cert": cert.public_bytes(serialization.Encoding.PEM).decode(), "key": pem_key(key),
            "not_after": not_after.isoformat()}
