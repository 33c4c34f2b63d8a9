"""Helpers of tests/e2e/test_acme_certificates.py: Pebble (devenv/acme/pebble.sh), the certificate a
client gets from an edge, and the two Prometheus servers' view of the probes and alerts."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from docker_host import DockerHost
from engine import ROOT

PEBBLE = ROOT / "devenv" / "acme" / "pebble.sh"


@dataclass(frozen=True)
class Pebble:
    directory: str
    ca_bundle: str
    management: str
    validity_seconds: int

    def intermediate(self) -> x509.Certificate:
        """The CA Pebble signs with now (it makes a new one on every start)."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        with urllib.request.urlopen(f"{self.management}/intermediates/0", context=context, timeout=10) as answer:
            return x509.load_pem_x509_certificate(answer.read())

    def dns(self, *args: str) -> None:
        run = pebble_sh(*args)
        assert run.returncode == 0, f"pebble.sh {' '.join(args)}: {run.stdout}{run.stderr}"


def pebble_sh(*args: str, validity_seconds: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PEBBLE_VALIDITY_SECONDS": str(validity_seconds)} if validity_seconds else {})}
    return subprocess.run(["bash", str(PEBBLE), *args], capture_output=True, text=True, timeout=120, env=env)


def running_pebble() -> Pebble:
    printed = pebble_sh("env")
    assert printed.returncode == 0, printed.stderr
    values = dict(line.split("=", 1) for line in printed.stdout.split())
    assert "ACME_VALIDITY_SECONDS" in values, f"devenv/acme/pebble.sh env prints no ACME_VALIDITY_SECONDS: {values}"
    return Pebble(values["ACME_DIRECTORY"], values["ACME_CA_BUNDLE"], values["ACME_MANAGEMENT"],
                  int(values["ACME_VALIDITY_SECONDS"]))


def start_pebble(validity_seconds: int) -> Pebble:
    """Pebble running with certificates valid `validity_seconds` (started again if it runs with another:
    it reads PEBBLE_VALIDITY_SECONDS at start)."""
    started = pebble_sh("start", validity_seconds=validity_seconds)
    assert started.returncode == 0, f"devenv/acme/pebble.sh start failed:\n{started.stdout}{started.stderr}"
    if running_pebble().validity_seconds != validity_seconds:
        pebble_sh("stop")
        started = pebble_sh("start", validity_seconds=validity_seconds)
        assert started.returncode == 0, f"pebble.sh start failed:\n{started.stdout}{started.stderr}"
    pebble = running_pebble()
    assert pebble.validity_seconds == validity_seconds, pebble
    return pebble


def served_certificate(port: int, host: str) -> x509.Certificate:
    """The certificate the edge presents for `host` (SNI), as a client sees it."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
        return True
    except (InvalidSignature, ValueError, TypeError):  # a bad signature, another issuer's name or key type
        return False


def dns_names(certificate: x509.Certificate) -> set[str]:
    return set(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))


def wait_until(what: str, timeout: float, check, describe, interval: float = 3):
    """check() -> a truthy value when done (errors of a not-yet-answering edge are retried)."""
    deadline, error = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, ssl.SSLError, AssertionError, KeyError, json.JSONDecodeError) as failure:
            error = failure
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout:.0f}s: {describe()}" + (f" (last error: {error})" if error else ""))


def docker_prometheus(docker_host: DockerHost, stack: str, path: str) -> dict:
    """A Docker stack's Prometheus HTTP API, asked from inside its (slotted) container."""
    names = docker_host.docker("ps", "--format", "{{.Names}}", "--filter", f"label=deploy.platform/stack={stack}",
                               "--filter", "label=app.kubernetes.io/name=prometheus").split()
    assert len(names) == 1, f"expected one running Prometheus container of {stack}, found {names}"
    answer = json.loads(docker_host.docker("exec", names[0], "wget", "-qO-", f"http://127.0.0.1:9090{path}"))
    assert answer["status"] == "success", answer
    return answer["data"]


def expiry_by_instance(result: list[dict]) -> dict[str, float]:
    """probe_ssl_earliest_cert_expiry by `instance` (the probed public URL), from a query result."""
    return {sample["metric"]["instance"]: float(sample["value"][1]) for sample in result}


def rule_for(groups: list[dict], alert: str) -> str:
    """The `for:` of `alert` in a rule file's groups, as the program declared it."""
    [rule] = [rule for group in groups for rule in group["rules"] if rule.get("alert") == alert]
    return rule["for"]


def firing(alerts: list[dict], name: str) -> dict[str, dict]:
    """Alerts of `name` that fire, by `instance`."""
    return {a["labels"].get("instance", ""): a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"}


def states(alerts: list[dict], name: str) -> dict[str, str]:
    return {a["labels"].get("instance", ""): a["state"] for a in alerts if a["labels"]["alertname"] == name}
