"""A long-running workload on the Docker host: its containers, in a release slot when it is
stateless, the readiness gate that waits for them (docker_gate.py) and, for the edge, the switch
that points its live routes at the new slot (docker_routes.py). docker.py's docstring says how a
release switches without dropping a request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import TYPE_CHECKING

import pulumi
import pulumi_command as command
import pulumi_docker as docker
from pulumi import ResourceOptions

from components.config import memory_mebibytes
from components.targets.base import LiveConfig, WorkloadHandle, WorkloadSpec, standard_labels
from components.targets.docker_containers import cpus, envs, healthcheck, labels, uploads
from components.targets.docker_gate import Gate
from components.targets.probing import health_probe
from components.targets.docker_routes import Switch
from components.versioning import version_annotations

if TYPE_CHECKING:
    from components.targets.docker import DockerRuntime

GATE_COMMAND = "python -m components.targets.docker_gate"
SWITCH_COMMAND = "python -m components.targets.docker_routes"


def workload(target: "DockerRuntime", spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
    if spec.external and target.acme_storage is not None:
        spec = dataclasses.replace(spec, volume=target.acme_storage)  # the edge's ACME storage
    image = target.image(spec.image, parent)
    container_labels = {**standard_labels(target.stack, spec.service, spec.component, spec.version, spec.track),
                        **version_annotations(spec.version), **spec.extra_labels}
    files = uploads(spec.files, spec.secret_env)
    slot = release_slot(spec) if _slotted(spec) else None
    base = f"{spec.name}-{slot}" if slot else spec.name
    if slot:
        container_labels["deploy.platform/slot"] = slot
    names, containers = [], []
    for replica in range(1, spec.replicas + 1):
        suffix = f"-{replica}" if spec.replicas > 1 else ""
        names.append(f"{target.stack}-{base}{suffix}")
        containers.append(docker.Container(
            f"{base}{suffix}",
            name=names[-1],
            # The reference, not the image ID: policies and operators read the version from it.
            image=spec.image,
            # The whole argv, as a Kubernetes `command` is: it replaces the image's entrypoint.
            entrypoints=list(spec.command) if spec.command else None,
            envs=envs(spec.env, spec.secret_env),
            labels=labels(container_labels),
            restart=spec.restart_policy,
            healthcheck=healthcheck(spec),
            memory=int(memory_mebibytes(spec.resources.memory_limit)),
            # No swap beyond the limit; also what the engine reports back, so no perpetual diff.
            memory_swap=int(memory_mebibytes(spec.resources.memory_limit)),
            memory_reservation=int(memory_mebibytes(spec.resources.memory_request)),
            cpus=cpus(spec.resources.cpu_limit),
            log_driver="json-file",
            log_opts={"max-size": spec.log_rotation.max_size, "max-file": str(spec.log_rotation.max_files)},
            networks_advanced=target.networks(spec.internal_only, spec.internal_network, spec.clients_of, spec.name),
            ports=[docker.ContainerPortArgs(internal=inner, external=outer, ip=target.settings.bind_address)
                   for inner, outer in sorted(spec.published_ports.items())] or None,
            uploads=files or None,
            # The mounts before their owners: an owner is made for a volume the mounts made.
            volumes=target.volumes.mounts(spec.volume or spec.shared_volume, spec.data_volumes, spec.service, parent),
            privileged=False,
            # Readiness is the gate's job (fails on the first crash or run of failed probes);
            # the provider's own wait would only give up at its timeout.
            wait=False,
            opts=ResourceOptions(parent=parent, provider=target.provider, depends_on=[
                image, *spec.after, *target.volumes.owners(spec.data_volumes, spec.image, image, parent)]),
        ))
    ready = [_readiness_gate(target, base, names, spec, containers, parent)] if spec.health_check else []
    switched = [_switch_routes(target, names[0], spec.live_config, [*containers, *ready], parent)] \
        if spec.live_config else []
    address = pulumi.Output.from_input(target.service_address(spec.name, spec.port) if spec.port else "")
    return WorkloadHandle(address=address, resources=[image, *containers, *ready, *switched],
                          endpoints=[f"{name}:{spec.port}" for name in names] if spec.port else [],
                          ready=ready)


def _readiness_gate(target: "DockerRuntime", base: str, names: list[str], spec: WorkloadSpec,
                    containers: list[docker.Container], parent: pulumi.Resource) -> command.local.Command:
    check = spec.health_check
    gate = Gate(docker=target.docker_cli(), containers=names, probe=health_probe(spec),
                start_period_seconds=check.start_period_seconds, interval_seconds=1,
                timeout_seconds=check.timeout_seconds, failure_threshold=check.retries, success_threshold=1,
                deadline_seconds=target.settings.readiness_timeout_seconds)
    return command.local.Command(
        f"{base}-ready", create=GATE_COMMAND, update=GATE_COMMAND, stdin=gate.to_json(),
        # A container replaced in place (same name, new id) is gated again.
        triggers=[container.id for container in containers],
        logging=command.local.Logging.STDERR,
        opts=ResourceOptions(parent=parent, depends_on=containers))


def _switch_routes(target: "DockerRuntime", proxy: str, live: LiveConfig, proxy_ready: list[pulumi.Resource],
                   parent: pulumi.Resource) -> command.local.Command:
    switch = Switch(docker=target.docker_cli(), edge=proxy, path=live.path, routes=live.content,
                    status_url=live.status_url, servers=live.servers,
                    deadline_seconds=target.settings.readiness_timeout_seconds)
    return command.local.Command(
        "edge-routes", create=SWITCH_COMMAND, update=SWITCH_COMMAND, stdin=switch.to_json(),
        # A new edge container starts without routes: write them again.
        triggers=[resource.id for resource in proxy_ready if isinstance(resource, docker.Container)],
        logging=command.local.Logging.STDERR,
        opts=ResourceOptions(parent=parent, depends_on=[*proxy_ready, *live.after]))


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
