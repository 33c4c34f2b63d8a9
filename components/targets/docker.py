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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import posixpath
import re
import shlex
from typing import Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker
import yaml
from pulumi import ResourceOptions

from components.config import DockerTarget, HealthCheck, Resources, cpu_millicores, memory_mebibytes
from components.local_ca import LocalCertificateAuthority, LocalCertificateAuthorityArgs
from components.tls_settings import EDGE_ACME_STORAGE
from components.monitoring import (
    NODE_EXPORTER_PORT,
    POSTGRES_EXPORTER_PORT,
    blackbox_workload,
    postgres_exporter_name,
    prometheus_config,
)
from components.targets.gate import after
from components.targets.hosts import frontend_network
from components.targets.jobs import JOB_SCRIPT, docker_container, docker_job_command
from components.targets.docker_gate import Gate
from components.targets.docker_routes import Switch
from components.targets.base import (
    JobSpec,
    LiveConfig,
    MonitoringBundle,
    TlsMaterial,
    Volume,
    OneOffJob,
    OneOffJobSpec,
    WorkloadHandle,
    WorkloadSpec,
    standard_labels,
)
from components.versioning import image_reference, version_annotations

# Busybox-based images have wget but rarely curl. `timeout` bounds the probe like Kubernetes'
# timeoutSeconds: busybox's own `wget -T` segfaults in the images built here.
PROBE = "timeout {timeout} wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1"
GATE_COMMAND = "python -m components.targets.docker_gate"
SWITCH_COMMAND = "python -m components.targets.docker_routes"
# Docker's convention for secrets (as Swarm secrets and the postgres image use it): the value is a
# file under /run/secrets and the environment only names the file (`<NAME>_FILE`).
SECRETS_DIR = "/run/secrets"


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
            "frontend", name=frontend_network(stack), labels=_network_labels(stack), opts=opts)
        self.backend = docker.Network(
            "backend", name=f"{stack}-backend", internal=True, labels=_network_labels(stack),
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=settings.internal_subnet)]
            if settings.internal_subnet else None, opts=opts)
        self._images: dict[str, docker.RemoteImage] = {}
        self._volumes: dict[str, docker.Volume] = {}
        self._acme_storage: Volume | None = None  # Traefik's ACME storage (edge_tls sets it)
        self._owners: dict[str, command.local.Command] = {}

    def service_address(self, name: str, port: int) -> str:
        # Containers reach each other by network alias; Docker's DNS round-robins replicas.
        return f"{name}:{port}"

    def monitoring(self, bundle: MonitoringBundle, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        """The stack's own Prometheus and Alertmanager, with the same rules rendered to a file, and the
        exporters the rules read (node disk, database connections, HTTPS probes through the edge)."""
        settings = bundle.settings
        alertmanager = self.workload(WorkloadSpec(
            name="alertmanager", service="alertmanager", component="monitoring",
            image=image_reference(settings.alertmanager_image, settings.alertmanager_version),
            version=settings.alertmanager_version, port=9093,
            command=["alertmanager", "--config.file=/etc/alertmanager/alertmanager.yml",
                     "--storage.path=/alertmanager"],
            files={"/etc/alertmanager/alertmanager.yml": bundle.alertmanager_config},
            health_check=HealthCheck(path="/-/ready"),
        ), parent)
        exporters = self._monitoring_exporters(bundle, parent)
        prometheus = self.workload(WorkloadSpec(
            name="prometheus", service="prometheus", component="monitoring",
            image=image_reference(settings.prometheus_image, settings.prometheus_version),
            version=settings.prometheus_version, port=9090,
            command=["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                     "--storage.tsdb.retention.time=15d"],
            files={"/etc/prometheus/prometheus.yml": prometheus_config(
                       bundle, "/etc/prometheus/rules.yml", self.service_address("alertmanager", 9093),
                       self.service_address, exporters=True),
                   "/etc/prometheus/rules.yml": yaml.safe_dump(dict(bundle.rule_file), sort_keys=False)},
            health_check=HealthCheck(path="/-/ready"),
        ), parent)
        return [*alertmanager.resources, *exporters, *prometheus.resources]

    def _monitoring_exporters(self, bundle: MonitoringBundle, parent: pulumi.Resource) -> list[pulumi.Resource]:
        settings, created = bundle.settings, []
        # node_exporter reads the host's filesystems through a read-only bind mount of its root.
        node_image = image_reference(settings.node_exporter_image, settings.node_exporter_version)
        image = self._image(node_image, parent)
        labels = {**standard_labels(self.stack, "node-exporter", "monitoring", settings.node_exporter_version),
                  **version_annotations(settings.node_exporter_version)}
        created += [image, docker.Container(
            "node-exporter", name=f"{self.stack}-node-exporter", image=node_image,
            entrypoints=["node-exporter", "--path.rootfs=/host", f"--web.listen-address=:{NODE_EXPORTER_PORT}",
                         "--no-collector.textfile", "--no-collector.systemd",  # no textfiles, no systemd here
                         # The host's filesystems, not the files Docker binds into this container.
                         r"--collector.filesystem.mount-points-exclude=^/(dev|proc|run|sys|var/lib/docker/.+)($|/)"
                         r"|^/etc/(hostname|hosts|resolv\.conf)$"],
            labels=_labels(labels), restart="unless-stopped", memory=64, memory_swap=64, cpus=_cpus("200m"),
            log_driver="json-file", log_opts={"max-size": "10m", "max-file": "3"},
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self.backend.name, aliases=["node-exporter"])],
            mounts=[docker.ContainerMountArgs(type="bind", source="/", target="/host", read_only=True)],
            # Every long-running container has a health check (policy require-health-checks).
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "sh", "-c", PROBE.format(timeout=5, port=NODE_EXPORTER_PORT, path="/metrics")],
                interval="15s", timeout="6s", retries=3, start_period="10s"),
            wait=False, opts=ResourceOptions(parent=parent, provider=self.provider, depends_on=[image]))]
        pg_image = image_reference(settings.postgres_exporter_image, settings.postgres_exporter_version)
        for db in bundle.databases:
            created += self.workload(WorkloadSpec(
                name=postgres_exporter_name(db.database), service=postgres_exporter_name(db.database),
                component="monitoring", image=pg_image, version=settings.postgres_exporter_version,
                port=POSTGRES_EXPORTER_PORT,
                command=["postgres-exporter", f"--web.listen-address=:{POSTGRES_EXPORTER_PORT}"],
                env={"DATA_SOURCE_URI": f"{db.host}:{db.port}/{db.dbname}?sslmode=disable",
                     "DATA_SOURCE_USER": db.user},
                secret_env={"DATA_SOURCE_PASS": db.password},  # DATA_SOURCE_PASS_FILE names the file
                resources=Resources(cpu_request="10m", cpu_limit="200m", memory_request="32Mi", memory_limit="64Mi"),
                health_check=HealthCheck(path="/metrics", port=POSTGRES_EXPORTER_PORT),
                clients_of=(db.labels.get("service", ""),),
            ), parent).resources
        if bundle.probes:
            created += self.workload(blackbox_workload(bundle), parent).resources
        return created

    def _docker_exec(self, container: str) -> list[str]:
        return ["docker", *(["--host", self.settings.host] if self.settings.host else []),
                "exec", f"{self.stack}-{container}"]

    def exec_command(self, workload: str, script: str, stateful: bool = False) -> list[str] | None:
        return [*self._docker_exec(workload), "sh", "-c", script]

    def backup_now_command(self, job_name: str) -> list[str] | None:
        # The same script crond runs on schedule, run now inside the backup container.
        return docker_job_command(self.settings.host, self.stack, job_name)

    def edge_tls(self, hosts, tls, parent: pulumi.Resource) -> TlsMaterial | None:
        if tls.mode == "acme":
            # Traefik's own ACME resolver issues and renews, into storage on a named volume
            # (workload): a re-created edge keeps its account and certificates, no new order.
            self._acme_storage = Volume(name="edge-acme", mount_path=posixpath.dirname(EDGE_ACME_STORAGE), size="16Mi")
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
        images = [self._image(image, parent) for image in spec.images]
        labels = {**standard_labels(self.stack, spec.name, spec.component, spec.version), "deploy.platform/one-off": "true"}
        secrets = pulumi.Output.all(**dict(spec.secret_env)) if spec.secret_env else pulumi.Output.from_input({})
        settings = pulumi.Output.all(network=self.backend.name, secrets=secrets).apply(
            lambda values: {"target": "docker", "docker": self.docker_cli(), "network": values["network"],
                            "name": f"{self.stack}-{spec.name}", "labels": labels, "env": dict(spec.env),
                            "secrets": values["secrets"], "memory": f"{int(memory_mebibytes(spec.resources.memory_limit))}m"})
        return OneOffJob(settings=pulumi.Output.secret(settings) if spec.secret_env else settings,
                         resources=[*images, self.backend])

    def _image(self, reference: str, parent: pulumi.Resource) -> docker.RemoteImage:
        if reference not in self._images:
            self._images[reference] = docker.RemoteImage(
                f"image-{_resource_safe(reference)}",
                name=reference,
                # Rolling back must not need the registry: keep the previous image on the host.
                keep_locally=True,
                opts=ResourceOptions(parent=parent, provider=self.provider),
            )
        return self._images[reference]

    def _networks(self, spec_internal_only: bool, component: str, clients_of: Sequence[str], name: str):
        networks = []
        if not spec_internal_only:
            networks.append(docker.ContainerNetworksAdvancedArgs(name=self.frontend.name, aliases=[name]))
        if spec_internal_only or clients_of or component in ("api", "worker", "backup", "monitoring"):
            networks.append(docker.ContainerNetworksAdvancedArgs(name=self.backend.name, aliases=[name]))
        return networks

    def docker_cli(self) -> list[str]:
        """The docker CLI pointed at this stack's engine (for the gate, the switch and exec)."""
        return ["docker", *(["--host", self.settings.host] if self.settings.host else [])]

    def workload(self, spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
        if spec.external and self._acme_storage is not None:
            spec = dataclasses.replace(spec, volume=self._acme_storage)  # the edge's ACME storage
        image = self._image(spec.image, parent)
        labels = {**standard_labels(self.stack, spec.service, spec.component, spec.version, spec.track),
                  **version_annotations(spec.version), **spec.extra_labels}
        uploads = _uploads(spec.files, spec.secret_env)
        slot = release_slot(spec) if _slotted(spec) else None
        base = f"{spec.name}-{slot}" if slot else spec.name
        if slot:
            labels["deploy.platform/slot"] = slot
        names, containers = [], []
        for replica in range(1, spec.replicas + 1):
            suffix = f"-{replica}" if spec.replicas > 1 else ""
            names.append(f"{self.stack}-{base}{suffix}")
            containers.append(docker.Container(
                f"{base}{suffix}",
                name=names[-1],
                # The reference, not the image ID: policies and operators read the version from it.
                image=spec.image,
                # The whole argv, as a Kubernetes `command` is: it replaces the image's entrypoint.
                entrypoints=list(spec.command) if spec.command else None,
                envs=_envs(spec.env, spec.secret_env),
                labels=_labels(labels),
                restart=spec.restart_policy,
                healthcheck=_healthcheck(spec),
                memory=int(memory_mebibytes(spec.resources.memory_limit)),
                # No swap beyond the limit; also what the engine reports back, so no perpetual diff.
                memory_swap=int(memory_mebibytes(spec.resources.memory_limit)),
                memory_reservation=int(memory_mebibytes(spec.resources.memory_request)),
                cpus=_cpus(spec.resources.cpu_limit),
                log_driver="json-file",
                log_opts={"max-size": spec.log_rotation.max_size, "max-file": str(spec.log_rotation.max_files)},
                networks_advanced=self._networks(spec.internal_only, spec.component, spec.clients_of, spec.name),
                ports=[docker.ContainerPortArgs(internal=inner, external=outer, ip=self.settings.bind_address)
                       for inner, outer in sorted(spec.published_ports.items())] or None,
                uploads=uploads or None,
                volumes=self._mount_all(spec.volume or spec.shared_volume, spec.data_volumes, spec.service, parent),
                privileged=False,
                # Readiness is the gate's job (fails on the first crash or run of failed probes);
                # the provider's own wait would only give up at its timeout.
                wait=False,
                opts=ResourceOptions(parent=parent, provider=self.provider, depends_on=[
                    image, *spec.after, *self._volume_owners(spec.data_volumes, spec.image, image, parent)]),
            ))
        ready = [self._readiness_gate(base, names, spec, containers, parent)] if spec.health_check else []
        switched = [self._switch_routes(names[0], spec.live_config, [*containers, *ready], parent)] \
            if spec.live_config else []
        address = pulumi.Output.from_input(self.service_address(spec.name, spec.port) if spec.port else "")
        return WorkloadHandle(address=address, resources=[image, *containers, *ready, *switched],
                              endpoints=[f"{name}:{spec.port}" for name in names] if spec.port else [],
                              ready=ready)

    def _readiness_gate(self, base: str, names: list[str], spec: WorkloadSpec,
                        containers: list[docker.Container], parent: pulumi.Resource) -> command.local.Command:
        check = spec.health_check
        gate = Gate(docker=self.docker_cli(), containers=names, probe=_probe(spec),
                    start_period_seconds=check.start_period_seconds, interval_seconds=1,
                    timeout_seconds=check.timeout_seconds, failure_threshold=check.retries, success_threshold=1,
                    deadline_seconds=self.settings.readiness_timeout_seconds)
        return command.local.Command(
            f"{base}-ready", create=GATE_COMMAND, update=GATE_COMMAND, stdin=gate.to_json(),
            # A container replaced in place (same name, new id) is gated again.
            triggers=[container.id for container in containers],
            logging=command.local.Logging.STDERR,
            opts=ResourceOptions(parent=parent, depends_on=containers))

    def _switch_routes(self, proxy: str, live: LiveConfig, proxy_ready: list[pulumi.Resource],
                       parent: pulumi.Resource) -> command.local.Command:
        switch = Switch(docker=self.docker_cli(), edge=proxy, path=live.path, routes=live.content,
                        status_url=live.status_url, servers=live.servers,
                        deadline_seconds=self.settings.readiness_timeout_seconds)
        return command.local.Command(
            "edge-routes", create=SWITCH_COMMAND, update=SWITCH_COMMAND, stdin=switch.to_json(),
            # A new edge container starts without routes: write them again.
            triggers=[resource.id for resource in proxy_ready if isinstance(resource, docker.Container)],
            logging=command.local.Logging.STDERR,
            opts=ResourceOptions(parent=parent, depends_on=[*proxy_ready, *live.after]))

    def _mount(self, volume: Volume | None, service: str, parent: pulumi.Resource):
        """Named volumes are shared by name: a backup job mounts the one its database writes."""
        if volume is None:
            return None
        if volume.name not in self._volumes:
            self._volumes[volume.name] = docker.Volume(
                f"volume-{volume.name}", name=f"{self.stack}-{volume.name}",
                labels=[docker.VolumeLabelArgs(label="app.kubernetes.io/name", value=service),
                        docker.VolumeLabelArgs(label="deploy.platform/stack", value=self.stack)],
                opts=ResourceOptions(parent=parent, provider=self.provider))
        return [docker.ContainerVolumeArgs(volume_name=self._volumes[volume.name].name,
                                           container_path=volume.mount_path)]

    def _mount_all(self, own: Volume | None, data: Sequence[Volume], service: str, parent: pulumi.Resource):
        mounts = [*(self._mount(own, service, parent) or []),
                  *(mount for volume in data for mount in self._mount(volume, service, parent))]
        return mounts or None

    def _volume_owners(self, data: Sequence[Volume], reference: str, image: docker.RemoteImage,
                       parent: pulumi.Resource) -> list[pulumi.Resource]:
        """A new named volume's root belongs to root; a service's image runs as its own user (nobody),
        which could then not write its uploads. Once per volume, hand the root to the image's user."""
        owners = []
        for volume in data:
            if volume.name not in self._owners:
                cli, name = shlex.join(self.docker_cli()), self._volumes[volume.name].name
                script = (f"user=$({cli} image inspect -f '{{{{.Config.User}}}}' {shlex.quote(reference)}) && "
                          f'{{ [ -z "$user" ] || {cli} run --rm --user 0 --network none -v "$VOLUME:/v" '
                          f'--entrypoint chown {shlex.quote(reference)} "$user" /v; }}')
                self._owners[volume.name] = command.local.Command(
                    f"volume-{volume.name}-owner", create=script, environment={"VOLUME": name},
                    opts=ResourceOptions(parent=parent, depends_on=[image, self._volumes[volume.name]]))
            owners.append(self._owners[volume.name])
        return owners

    def scheduled_job(self, spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        # Docker has no scheduler: a long-running container runs crond with the job's schedule.
        image = self._image(spec.image, parent)
        labels = {**standard_labels(self.stack, spec.service, spec.component, spec.version),
                  **version_annotations(spec.version), **spec.extra_labels, "deploy.platform/schedule": spec.schedule}
        # crond runs one line per job: the job's script lives in a file, its output goes to the container log.
        script = spec.command[2] if list(spec.command[:2]) == ["sh", "-c"] else shlex.join(spec.command)
        crontab = f"{spec.schedule} sh {JOB_SCRIPT} > /proc/1/fd/1 2>&1\n"
        job = docker.Container(
            spec.name,
            name=docker_container(self.stack, spec.name),
            image=spec.image,
            entrypoints=["crond", "-f", "-c", "/etc/crontabs"],
            envs=_envs(spec.env, spec.secret_env),
            labels=_labels(labels),
            restart="unless-stopped",
            memory=int(memory_mebibytes(spec.resources.memory_limit)),
            memory_swap=int(memory_mebibytes(spec.resources.memory_limit)),
            cpus=_cpus(spec.resources.cpu_limit),
            log_driver="json-file",
            log_opts={"max-size": "10m", "max-file": "5"},
            networks_advanced=self._networks(False, spec.component, spec.clients_of, spec.name),
            uploads=[docker.ContainerUploadArgs(file="/etc/crontabs/root", content=crontab),
                     docker.ContainerUploadArgs(file=JOB_SCRIPT, content=script),
                     *_uploads({}, spec.secret_env)],
            volumes=self._mount_all(spec.volume, spec.data_volumes, spec.service, parent),
            opts=ResourceOptions(parent=parent, provider=self.provider, depends_on=[image]),
        )
        return [image, job]


def _envs(plain, secret_env) -> list[str]:
    entries = {**plain, **{f"{name}_FILE": f"{SECRETS_DIR}/{name}" for name in secret_env}}
    return [f"{key}={value}" for key, value in sorted(entries.items())]


def _uploads(files, secret_env) -> list[docker.ContainerUploadArgs]:
    uploads = [docker.ContainerUploadArgs(file=path, content=content) for path, content in sorted(files.items())]
    uploads += [docker.ContainerUploadArgs(file=f"{SECRETS_DIR}/{name}", content=pulumi.Output.secret(value))
                for name, value in sorted(secret_env.items())]
    return uploads


def _labels(labels: dict[str, str]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=key, value=value) for key, value in sorted(labels.items())]


def _network_labels(stack: str) -> list[docker.NetworkLabelArgs]:
    return [docker.NetworkLabelArgs(label="deploy.platform/stack", value=stack),
            docker.NetworkLabelArgs(label="app.kubernetes.io/part-of", value="platform")]


def _probe(spec: WorkloadSpec) -> list[str]:
    """The readiness probe as argv run inside the container: the service's command, or HTTP."""
    check = spec.health_check
    if check.command:
        return list(check.command)
    return ["sh", "-c", PROBE.format(timeout=check.timeout_seconds, port=check.port or spec.port, path=check.path)]


def _slotted(spec: WorkloadSpec) -> bool:
    """Stateless workloads run in release slots; a published port or a volume allows one copy."""
    return not spec.published_ports and spec.volume is None and spec.shared_volume is None


def release_slot(spec: WorkloadSpec) -> str:
    """`<version>-<digest>`: the digest covers every plain input that defines the containers, so
    any change of them is a new slot beside the old one (secret values are not in it: a changed
    secret alone is applied in place)."""
    defining = {
        "image": spec.image, "command": list(spec.command or []), "env": dict(spec.env),
        "files": {path: content for path, content in spec.files.items() if isinstance(content, str)},
        "secrets": sorted(spec.secret_env), "resources": repr(spec.resources),
        "health": repr(spec.health_check), "restart": spec.restart_policy, "logs": repr(spec.log_rotation),
        "track": spec.track, "clients": list(spec.clients_of), "labels": dict(spec.extra_labels),
        # Only when there are any: slots of services without volumes keep the digest they had.
        **({"volumes": [(v.name, v.mount_path) for v in spec.data_volumes]} if spec.data_volumes else {}),
    }
    digest = hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()[:6]
    version = re.sub(r"[^a-z0-9]+", "-", spec.version.lower()).strip("-")[:24]
    return f"{version}-{digest}"


def _healthcheck(spec: WorkloadSpec) -> docker.ContainerHealthcheckArgs | None:
    check = spec.health_check
    if check is None:
        return None
    return docker.ContainerHealthcheckArgs(
        tests=["CMD", *_probe(spec)],
        interval=f"{check.interval_seconds}s",
        timeout=f"{check.timeout_seconds}s",
        retries=check.retries,
        start_period=f"{check.start_period_seconds}s",
    )


def _cpus(limit: str) -> str:
    """CPUs as the provider reads them back from the engine ("1.0", "0.5"): any other spelling of
    the same number is a diff on every `pulumi up`, which replaces the container in place."""
    cpus = cpu_millicores(limit) / 1000
    return f"{cpus:.1f}" if cpus == int(cpus) else f"{cpus:g}"


def _resource_safe(reference: str) -> str:
    return reference.replace("/", "-").replace(":", "-").replace("@", "-")
