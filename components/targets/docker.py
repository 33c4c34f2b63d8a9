"""Docker target: one host, containers on two user-defined networks (pulumi-docker).

`frontend` carries edge -> web/api traffic; `backend` is internal (no route
out) and is the only network databases join, so nothing outside the stack can
reach them.

Releases switch without dropping a request (docs/docker-host.md). A stateless workload (no
published port, no volume) runs in a *release slot*: its containers are named after the version
and a digest of everything else that defines them, so a new release is a new set of containers
beside the old one, never a replacement (pulumi-docker replaces a container by deleting it
first). A readiness gate (docker_gate.py) waits for the new slot; only then does the edge's
route switch (docker_routes.py) point Traefik at it, inside the running edge; the engine
deletes the old slot at the end of the update. A slot that never becomes ready fails the update
before the switch, so the old slot keeps serving. Workloads that hold a published port or a
volume (the edge, databases) keep one name and are replaced in place.

`DockerRuntime` is the seam (components/targets/base.py): it owns the provider, the networks,
the images and the named volumes (docker_volumes.py) every container shares; each kind of
container is built in a module of its own: workloads (docker_workloads.py), scheduled jobs
(docker_cronjobs.py), the stack's monitoring (docker_monitoring.py), from the parts every
container is given (docker_containers.py).
"""

from __future__ import annotations

import posixpath
from typing import Sequence

import pulumi
import pulumi_docker as docker
from pulumi import ResourceOptions

from components.config import DockerTarget, memory_mebibytes
from components.config.tls import EDGE_ACME_STORAGE
from components.config.targets import docker_cli
from components.local_ca import LocalCertificateAuthority, LocalCertificateAuthorityArgs
from components.targets import docker_cronjobs, docker_monitoring, docker_workloads
from components.targets.base import (
    JobSpec,
    MonitoringBundle,
    OneOffJob,
    OneOffJobSpec,
    TlsMaterial,
    Volume,
    WorkloadHandle,
    WorkloadSpec,
    standard_labels,
)
from components.targets.docker_containers import network_labels, resource_safe
from components.targets.docker_volumes import NamedVolumes
from components.targets.gate import after
from components.targets.hosts import frontend_network
from components.targets.jobs import docker_job_command


class DockerRuntime:
    name = "docker"

    def __init__(self, settings: DockerTarget, stack: str, parent: pulumi.Resource,
                 gate: pulumi.Output | None = None):
        self.settings = settings
        self.stack = stack
        self.provider = docker.Provider(f"{stack}-docker", host=after(gate, settings.host),
                                        opts=ResourceOptions(parent=parent))
        opts = ResourceOptions(parent=parent, provider=self.provider)
        self.frontend = docker.Network(
            "frontend", name=frontend_network(stack), labels=network_labels(stack), opts=opts)
        self.backend = docker.Network(
            "backend", name=f"{stack}-backend", internal=True, labels=network_labels(stack),
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=settings.internal_subnet)]
            if settings.internal_subnet else None, opts=opts)
        self._images: dict[str, docker.RemoteImage] = {}
        self.volumes = NamedVolumes(stack, self.provider, self.docker_cli())
        self.acme_storage: Volume | None = None  # Traefik's ACME storage (edge_tls sets it)

    # What the containers of every module share.

    def docker_cli(self) -> list[str]:
        """The docker CLI pointed at this stack's engine (for the gate, the switch and exec)."""
        return docker_cli(self.settings.host)

    def image(self, reference: str, parent: pulumi.Resource) -> docker.RemoteImage:
        if reference not in self._images:
            self._images[reference] = docker.RemoteImage(
                f"image-{resource_safe(reference)}",
                name=reference,
                # Rolling back must not need the registry: keep the previous image on the host.
                keep_locally=True,
                opts=ResourceOptions(parent=parent, provider=self.provider),
            )
        return self._images[reference]

    def networks(self, internal_only: bool, internal_network: bool, clients_of: Sequence[str], name: str):
        """The networks a container joins: `frontend` unless it is internal only, `backend` (internal)
        when it is, reaches a database (`clients_of`) or runs beside them (`internal_network`)."""
        networks = []
        if not internal_only:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=self.frontend.name, aliases=[name]))
        if internal_only or internal_network or clients_of:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=self.backend.name, aliases=[name]))
        return networks

    # RuntimeTarget.

    def service_address(self, name: str, port: int) -> str:
        # Containers reach each other by network alias; Docker's DNS round-robins replicas.
        return f"{name}:{port}"

    def workload(self, spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
        return docker_workloads.workload(self, spec, parent)

    def scheduled_job(self, spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        return docker_cronjobs.scheduled_job(self, spec, parent)

    def monitoring(self, bundle: MonitoringBundle, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        """The stack's own Prometheus and Alertmanager, with the same rules rendered to a file, and the
        exporters the rules read (node disk, database connections, HTTPS probes through the edge)."""
        return docker_monitoring.monitoring(self, bundle, parent)

    def exec_command(self, workload: str, script: str, stateful: bool = False) -> list[str] | None:
        return [*self.docker_cli(), "exec", f"{self.stack}-{workload}", "sh", "-c", script]

    def backup_now_command(self, job_name: str) -> list[str] | None:
        # The same script crond runs on schedule, run now inside the backup container.
        return docker_job_command(self.settings.host, self.stack, job_name)

    def edge_tls(self, hosts, tls, parent: pulumi.Resource) -> TlsMaterial | None:
        if tls.mode == "acme":
            # Traefik's own ACME resolver issues and renews, into storage on a named volume
            # (workload): a re-created edge keeps its account and certificates, no new order.
            self.acme_storage = Volume(name="edge-acme", mount_path=posixpath.dirname(EDGE_ACME_STORAGE), size="16Mi")
            return None
        authority = LocalCertificateAuthority("local-ca", LocalCertificateAuthorityArgs(
            hosts=hosts, renew_before_days=tls.renew_before_days), opts=ResourceOptions(parent=parent))
        cert_dir = "/etc/traefik/certs"
        # One certificate from the local CA covers every edge host (subject alternative names).
        return TlsMaterial(certificates=[(f"{cert_dir}/tls.crt", f"{cert_dir}/tls.key")],
                           files={f"{cert_dir}/tls.crt": authority.certificate,
                                  f"{cert_dir}/tls.key": authority.private_key},
                           issuer="local-ca")

    def one_off_job(self, spec: OneOffJobSpec, parent: pulumi.Resource) -> OneOffJob | None:
        # A one-off container on the internal network (components/targets/oneoff_jobs.py); its
        # images are pulled (and kept) first, so a run never waits on the registry.
        images = [self.image(image, parent) for image in spec.images]
        labels = {**standard_labels(self.stack, spec.name, spec.component, spec.version), "deploy.platform/one-off": "true"}
        secrets = pulumi.Output.all(**dict(spec.secret_env)) if spec.secret_env else pulumi.Output.from_input({})
        settings = pulumi.Output.all(network=self.backend.name, secrets=secrets).apply(
            lambda values: {"target": "docker", "docker": self.docker_cli(), "network": values["network"],
                            "name": f"{self.stack}-{spec.name}", "labels": labels, "env": dict(spec.env),
                            "secrets": values["secrets"], "memory": f"{int(memory_mebibytes(spec.resources.memory_limit))}m"})
        return OneOffJob(settings=pulumi.Output.secret(settings) if spec.secret_env else settings,
                         resources=[*images, self.backend])
