"""Where a stack runs: `platform:kubernetes` and `platform:docker` (part of components/config/; what
each target needs of the other keys it checks itself: components/targets/config_checks.py)."""

from __future__ import annotations

import ipaddress
import os
from typing import Literal

from pydantic import Field, field_validator

from components.config.model import DnsLabel, DnsSubdomain, IpAddress, Model, NonEmpty


class KubernetesTarget(Model):
    # A namespace is a DNS label: the API server refuses anything else, but only at `pulumi up`.
    namespace: DnsLabel = "platform"
    kubeconfig: NonEmpty | None = Field(None, description="Path of the kubeconfig (or its contents); default: kubectl's.")
    context: NonEmpty | None = None
    render_to_directory: NonEmpty | None = Field(
        None, description="Write manifests here instead of applying them (GitOps hand-off)."
    )
    storage_class: DnsSubdomain | None = None
    edge_service_type: Literal["LoadBalancer", "NodePort", "ClusterIP"] = Field(
        "LoadBalancer", description="How the edge proxy is exposed outside the cluster. NodePort: "
        "edge.httpPort/httpsPort are the node ports (the embedded local cluster has no load balancer).")
    ingress_class: DnsSubdomain = Field("traefik", description="Ingress class cert-manager's HTTP-01 solver uses.")
    # The longest a rollout may take. A release that shows it cannot become ready (pods that
    # cannot start, crash, or fail their health check `retries` times after the start period)
    # fails the update at once (components/targets/kubernetes_gate.py); one that just never
    # finishes fails after this long (Kubernetes' ProgressDeadlineExceeded, the gate's deadline),
    # not after Pulumi's 10-minute default. The StatefulSet's await stops 20 s after it.
    progress_deadline_seconds: int = Field(180, ge=10, le=3600)

    @field_validator("kubeconfig")
    @classmethod
    def _expand_home(cls, value: str | None) -> str | None:
        # Stack files are shared; `~/.cache/...` names the same file on every operator's machine.
        return os.path.expanduser(value) if value and not value.lstrip().startswith("apiVersion") else value

    def kubectl(self) -> list[str]:
        """kubectl aimed at this stack's cluster and namespace (pre-deploy backups, smoke checks, drills)."""
        return ["kubectl", "--namespace", self.namespace,
                *(["--kubeconfig", self.kubeconfig] if self.kubeconfig else []),
                *(["--context", self.context] if self.context else [])]


DOCKER_HOST_SCHEMES = ("unix://", "ssh://")


def docker_cli(host: str | None) -> list[str]:
    """The docker CLI aimed at the engine at `host` (the client's own default when unset)."""
    return ["docker", *(["--host", host] if host else [])]


class DockerTarget(Model):
    host: str | None = Field(None, description="Docker daemon address (unix:// or ssh://).")
    # Published ports listen on loopback only unless the stack says otherwise.
    bind_address: IpAddress = "127.0.0.1"
    # How long a new release slot may take to answer its readiness probe before the release fails
    # (and the edge stays on the previous slot); Kamal's deploy_timeout is 30 s.
    readiness_timeout_seconds: int = Field(30, ge=5, le=1800)
    # The internal (database) network's subnet. Docker picks one from its pools when unset; a host
    # whose firewall isolates internal networks by address (devenv/docker/engine.sh guards
    # 172.30.128.0/17) names one inside the guarded range, one per stack.
    internal_subnet: str | None = None

    @field_validator("internal_subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise ValueError("expected an IPv4 network in CIDR form with its host bits zero, such as 172.30.130.0/24") from None
        if network.version != 4 or network.prefixlen > 28:
            raise ValueError("expected an IPv4 network of at least 16 addresses (/28 or wider), such as 172.30.130.0/24")
        return value

    @field_validator("host")
    @classmethod
    def _daemon_address(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith(DOCKER_HOST_SCHEMES) and value.split("://", 1)[1]):
            raise ValueError("expected a Docker daemon address: unix:///var/run/docker.sock or ssh://user@host")
        return value
