"""Hardened defaults for workloads on Kubernetes (docs/security.md): who a pod runs as, and how
much redundancy the public path keeps. The Kubernetes target applies them; the policy pack's
hardening rules (policy/rules/require_*) check what it wrote.

`KubernetesHardening` is what the target needs to know beyond a workload's own spec; it is
derived from the stack's config by `hardening_for` (no stack key of its own yet: prod gets two
replicas on the public path, every environment the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.config import PlatformConfig

# The user the product's images run as: `nobody` (devenv/images/build.sh sets it for the shop
# images; Traefik and busybox run as it too, they need no account of their own). Above 10000,
# so it collides with no host account.
UNPRIVILEGED_UID = 65534
# PostgreSQL's image (devenv/images/build.sh) runs initdb and postgres as its `postgres` user,
# uid/gid 999: initdb refuses a uid without an /etc/passwd entry, and the data already on every
# volume belongs to 999. Backup jobs and the backup-results exporter share the dumps' volume,
# so they run as the same user. (kube-score wants > 10000: accepted, docs/security.md.)
DATABASE_UID = 999
# The edge listens on 80 and 443 as a non-root user: the pod's network namespace lets every
# user bind ports from 0 (a namespaced, "safe" sysctl; no capability needed).
UNPRIVILEGED_PORT_SYSCTL = ("net.ipv4.ip_unprivileged_port_start", "0")
# Writable scratch space in an otherwise read-only root filesystem.
SCRATCH_SIZE = "64Mi"
# Where each image needs to write besides /tmp and its volumes (emptyDirs on a read-only root).
WRITABLE_PATHS: dict[str, tuple[str, ...]] = {
    "database": ("/var/run/postgresql",),  # postgres' Unix socket and lock file
}
# Prometheus scrapes from its own namespace (the Prometheus Operator's usual one).
MONITORING_NAMESPACE = "monitoring"


@dataclass(frozen=True)
class KubernetesHardening:
    """What the Kubernetes target needs to harden a stack beyond each workload's own spec."""

    # Services the edge routes to; with the edge, they are the public path.
    public_services: frozenset[str] = frozenset()
    # At least this many replicas on the public path (prod: 2, so one pod can go at any time).
    min_public_replicas: int = 1
    monitoring_namespace: str = MONITORING_NAMESPACE
    # The ports of the public services, for the edge's egress policy: service -> port.
    public_ports: dict[str, int] = field(default_factory=dict)


def hardening_for(config: PlatformConfig) -> KubernetesHardening:
    public = {name: spec.port for name, spec in config.services.items() if spec.public and spec.port}
    return KubernetesHardening(
        public_services=frozenset(public),
        min_public_replicas=2 if config.environment == "prod" else 1,
        public_ports=public,
    )
