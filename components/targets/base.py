"""The seam between what runs (components) and where it runs (Docker or Kubernetes).

Components describe workloads with these target-neutral specs; a RuntimeTarget
turns them into provider resources. Nothing outside components/targets/ knows
which target it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Protocol, Sequence

import pulumi

from components.config import HealthCheck, LogRotation, MonitoringSpec, Resources, TlsSpec
from components.versioning import version_labels

PART_OF = "platform"

Track = Literal["stable", "canary"]


@dataclass(frozen=True)
class Volume:
    """Persistent storage mounted into a workload (one per workload is enough here)."""

    name: str
    mount_path: str
    size: str


@dataclass(frozen=True)
class WorkloadSpec:
    """One long-running workload: a service track, the edge proxy or a database."""

    name: str
    service: str
    component: str
    image: str
    version: str
    replicas: int = 1
    port: int | None = None
    published_ports: Mapping[int, int] = field(default_factory=dict)  # container -> host, where hosts publish
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    files: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # absolute path -> content
    resources: Resources = field(default_factory=Resources)
    health_check: HealthCheck | None = None
    restart_policy: str = "unless-stopped"
    log_rotation: LogRotation = field(default_factory=LogRotation)
    track: Track = "stable"
    volume: Volume | None = None
    internal_only: bool = False  # reachable only by the services that declare it (databases)
    clients_of: Sequence[str] = ()  # databases this workload may reach
    # Runs beside the databases even without naming one (monitoring, backups, the api and worker tiers):
    # Docker's internal network; on Kubernetes the paths are NetworkPolicies, from clients_of and scrapes.
    internal_network: bool = False
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    secret_mounts: Mapping[str, str] = field(default_factory=dict)  # secret object name -> directory
    external: bool = False  # reachable from outside the target (the edge)
    after: Sequence[pulumi.Resource] = ()  # created/updated only once these are done (pre-deploy backups)
    shared_volume: Volume | None = None  # a volume other workloads also mount (backups), not owned per pod
    live_config: "LiveConfig | None" = None  # the proxy's routes, switched without restarting it
    # A service's declared volumes (uploads): shared by its tracks, replicas and its database's backup job.
    data_volumes: Sequence[Volume] = ()


@dataclass(frozen=True)
class LiveConfig:
    """A file the edge proxy watches. Kubernetes mounts it like any file (the edge rolls); a
    Docker host replaces it inside the running edge once `after` is done, then waits until the
    proxy reports exactly `servers`, so a release switches without recreating the edge."""

    path: str
    content: str
    status_url: str  # inside the proxy: its loaded services as Traefik's API lists them
    servers: Mapping[str, Sequence[str] | Mapping[str, int]]  # proxy service -> server URLs or track weights it must report
    after: Sequence[pulumi.Resource] = ()  # the readiness gates of the workloads it routes to


@dataclass(frozen=True)
class TlsMaterial:
    """Where the edge finds the certificate the target issued, and how it gets there."""

    certificates: Sequence[tuple[str, str]]  # (cert file, key file) pairs the edge serves
    secret_mounts: Mapping[str, str] = field(default_factory=dict)  # Kubernetes Secret -> directory
    files: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # path -> content (secret key)
    resources: Sequence[pulumi.Resource] = ()  # what the edge waits for (the Secret it mounts)
    issuer: str = "cert-manager"
    # host -> URL of the HTTP-01 solver that answers its ACME challenges (cert-manager's solver
    # pods): the edge routes http://<host>/.well-known/acme-challenge/ there instead of redirecting.
    challenge_routes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ScrapeTarget:
    """A workload serving Prometheus metrics at /metrics on `port`, scraped as job `job`."""

    job: str
    workload: str
    port: int
    # Added to every series of the target (`service`, `version`, `track`): alerts name what fired.
    labels: Mapping[str, str] = field(default_factory=dict)
    # Kubernetes: `version` from each scraped pod's own version label (what that pod runs, mid-rollout
    # too); False when the pod is a helper of what `labels` describes (a database's backup exporter).
    version_from_pod: bool = True


@dataclass(frozen=True)
class ProbeTarget:
    """A public endpoint the blackbox exporter probes through the edge, as users reach it."""

    url: str  # https://<edge host>:<public port><path>, the `instance` of the probe's series
    host: str  # the edge host (Host header and TLS server name)
    path: str
    labels: Mapping[str, str] = field(default_factory=dict)  # the probed service's `service` and `version`


@dataclass(frozen=True)
class PostgresExporterTarget:
    """One database as postgres_exporter connects to it."""

    database: str  # the configured name: the `database` label the rules select on
    host: str
    port: int
    user: str
    dbname: str
    password: pulumi.Input[str]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MonitoringBundle:
    """Everything a target needs to evaluate the alert rules and route the alerts."""

    rule_file: Mapping  # the `groups:` document promtool checks; PrometheusRule spec on Kubernetes
    alertmanager_config: pulumi.Output[str]  # secret alertmanager.yml
    scrape_targets: Sequence[ScrapeTarget]
    settings: MonitoringSpec
    external_labels: Mapping[str, str] = field(default_factory=dict)  # on every alert: the stack
    probes: Sequence[ProbeTarget] = ()
    databases: Sequence[PostgresExporterTarget] = ()
    edge_tls_verified: bool = True  # False: the edge serves a certificate no public CA signed (local-ca)


@dataclass(frozen=True)
class JobSpec:
    """A scheduled batch job (backups, restore drills)."""

    name: str
    service: str
    component: str
    image: str
    version: str
    schedule: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    volume: Volume | None = None
    clients_of: Sequence[str] = ()
    internal_network: bool = False  # as WorkloadSpec's
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    data_volumes: Sequence[Volume] = ()  # services' volumes the job archives and restores
    # It writes into data_volumes (a live restore), so it runs as their owner where files have owners.
    writes_data_volumes: bool = False


@dataclass(frozen=True)
class OneOffJobSpec:
    """A job run once, now, during an update (a migration), with the image it names per run."""

    name: str
    service: str
    component: str
    version: str
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    clients_of: Sequence[str] = ()  # database workloads it reaches
    images: Sequence[str] = ()  # pulled before it runs (Docker)


@dataclass(frozen=True)
class OneOffJob:
    """How components/targets/oneoff_jobs.py runs the job on this target (JSON-able settings,
    secret where they hold secret values) and what must exist before it runs."""

    settings: pulumi.Input[dict]
    resources: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class WorkloadHandle:
    """What the rest of the program may know about a deployed workload."""

    address: pulumi.Output[str]  # host:port other workloads use, "" when it has no port
    resources: Sequence[pulumi.Resource]
    # host:port of each server the edge sends this workload's traffic to: one Service address on
    # Kubernetes, one per container of the current release slot on a Docker host.
    endpoints: Sequence[str] = ()
    ready: Sequence[pulumi.Resource] = ()  # done once every replica answers its readiness probe
    # The endpoint balances over ready replicas itself (a Kubernetes Service, fed by readiness
    # probes): an edge health check on it would only add a second, coarser verdict on one server.
    balanced: bool = False


class RuntimeTarget(Protocol):
    """Where workloads run. Implementations: DockerRuntime, KubernetesRuntime."""

    name: str

    def workload(self, spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle: ...

    def scheduled_job(self, spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]: ...

    def service_address(self, name: str, port: int) -> str:
        """The address other workloads use to reach `name` on `port`."""
        ...

    def monitoring(self, bundle: MonitoringBundle, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        """Deliver alert rules and routing to the target's Prometheus and Alertmanager."""
        ...

    def exec_command(self, workload: str, script: str, stateful: bool = False) -> list[str] | None:
        """A command, run where `pulumi up` runs, that runs `script` with sh inside `workload`
        (a StatefulSet's pod when `stateful`); None when nothing runs on this target."""
        ...

    def backup_now_command(self, job_name: str) -> list[str] | None:
        """A command, run where `pulumi up` runs, that takes a backup with `job_name` now and exits
        non-zero if it fails; None when nothing runs on this target (rendered manifests)."""
        ...

    def one_off_job(self, spec: OneOffJobSpec, parent: pulumi.Resource) -> OneOffJob | None:
        """What running `spec` once needs here; None when nothing runs on this target (rendered manifests)."""
        ...

    def edge_tls(self, hosts: Sequence[str], tls: TlsSpec, parent: pulumi.Resource) -> TlsMaterial | None:
        """Issue (and keep renewing) the edge certificate, or None when the edge proxy does it itself."""
        ...


def standard_labels(stack: str, service: str, component: str, version: str, track: str = "stable") -> dict[str, str]:
    """Labels every workload carries (docs/conventions.md)."""
    return {
        "app.kubernetes.io/name": service,
        **version_labels(version),  # shortened for a digest; the full version: version_annotations
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "deploy.platform/stack": stack,
        "deploy.platform/track": track,
    }


def database_client_label(database: str) -> str:
    return f"db.deploy.platform/{database}"
