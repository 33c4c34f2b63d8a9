"""A long-running workload on Kubernetes: its pod template (files from ConfigMaps, volumes,
hardened security contexts), a Deployment or, with a volume of its own, a StatefulSet, its Service,
a PodDisruptionBudget and, in prod, at least two replicas on the public path, and the network paths
it needs (kubernetes_network.py).
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from components.hardening import DATABASE_UID, UNPRIVILEGED_PORT_SYSCTL, UNPRIVILEGED_UID
from components.targets.base import WorkloadHandle, WorkloadSpec, database_client_label, standard_labels
from components.targets.kubernetes_network import NAME_LABEL, workload_paths
from components.targets.kubernetes_rollout import gated, rollout_gate
from components.targets.kubernetes_pods import (
    claim_volume,
    config_key,
    container_security,
    digest,
    liveness_probe,
    pod_security,
    readiness_probe,
    resources,
    scratch,
    volume_owner,
    within,
    without_version,
)
from components.targets.kubernetes_tls import TLS_KEYS
from components.versioning import version_annotations

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

meta = k8s.meta.v1
core = k8s.core.v1

TRACK_LABEL = "deploy.platform/track"
# Marks the public path (the edge and the services it routes to): PodDisruptionBudgets, replicas.
EXPOSURE_LABEL = "deploy.platform/exposure"


def workload(target: "KubernetesRuntime", spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
    spec, live_dir = _inline_live_config(spec)
    labels = {**standard_labels(target.stack, spec.service, spec.component, spec.version, spec.track),
              **spec.extra_labels, **{database_client_label(db): "client" for db in spec.clients_of}}
    selector = {NAME_LABEL: spec.service, TRACK_LABEL: spec.track}
    unversioned = without_version(labels)
    public = spec.external or spec.service in target.hardening.public_services
    created: list[pulumi.Resource] = []
    env, secret = target.env(spec.name, spec.env, spec.secret_env, unversioned, parent)
    if secret:
        created.append(secret)
    volumes, mounts, owned, uid = _storage(target, spec, unversioned, parent, live_dir, created)
    template = _template(spec, labels, env, volumes, mounts, owned, uid)
    depends = [*created, *spec.after]
    if spec.volume:
        created.append(_stateful_set(target, spec, labels, unversioned, selector, template, parent, depends))
    else:
        replicas = spec.replicas
        if public and spec.track == "stable":
            replicas = max(replicas, target.hardening.min_public_replicas)
        object_labels = {**labels, EXPOSURE_LABEL: "public"} if public else labels
        deployment = _deployment(target, dataclasses.replace(spec, replicas=replicas), object_labels, selector,
                                 template, parent, depends)
        created.append(deployment)
        if gated(target, spec):
            created.append(rollout_gate(target, spec, deployment, selector, parent))
        if public:
            created.append(_disruption_budget(target, spec, unversioned, selector, parent))
    address = pulumi.Output.from_input("")
    if spec.port:
        created.append(_service(target, spec, unversioned, selector, parent))
        address = pulumi.Output.from_input(target.service_address(spec.name, spec.port))
    created += workload_paths(target, spec, selector, unversioned, public, parent)
    endpoints = [target.service_address(spec.name, spec.port)] if spec.port else []
    return WorkloadHandle(address=address, resources=created, endpoints=endpoints, balanced=True)


def _inline_live_config(spec: WorkloadSpec) -> tuple[WorkloadSpec, str | None]:
    """The proxy's live routes become one more file. Its checksum rolls the edge, and the edge's
    own readiness keeps the previous pods serving until the new ones load the routes. The
    directory it is in is the one the proxy watches: it is mounted as one volume that also holds
    the certificates (_live_volume)."""
    if spec.live_config is None:
        return spec, None
    live = spec.live_config
    return (dataclasses.replace(spec, files={**spec.files, live.path: live.content}, live_config=None),
            posixpath.dirname(live.path))


def _storage(target: "KubernetesRuntime", spec: WorkloadSpec, labels, parent, live_dir: str | None,
             created: list[pulumi.Resource]):
    """The pod's volumes and mounts, the (mount path, recursively) pairs its user must own, and
    the uid it runs as; appends the ConfigMaps and claims it makes to `created`."""
    volumes, mounts, config_map = _files(target, spec, labels, parent, live_dir)
    if config_map:
        created.append(config_map)
    owned: list[tuple[str, bool]] = []
    if spec.volume:
        mounts.append(core.VolumeMountArgs(name=spec.volume.name, mount_path=spec.volume.mount_path))
        owned.append((spec.volume.mount_path, False))
    if spec.shared_volume:
        shared = spec.shared_volume
        created.append(target.claim(shared, labels, parent))
        volume, mount = claim_volume(shared.name, shared.mount_path)
        volumes.append(volume)
        mounts.append(mount)
        owned.append((shared.mount_path, True))
    for secret_name, directory in sorted(spec.secret_mounts.items()):
        if live_dir and within(directory, live_dir):
            continue  # in the watched directory's volume
        volumes.append(core.VolumeArgs(name=secret_name, secret=core.SecretVolumeSourceArgs(secret_name=secret_name)))
        mounts.append(core.VolumeMountArgs(name=secret_name, mount_path=directory, read_only=True))
    scratch(spec.component, volumes, mounts)
    uid = DATABASE_UID if owned else UNPRIVILEGED_UID
    for data in spec.data_volumes:
        # A service's own volume (uploads): one claim for every track and replica, which the
        # database's backup job mounts too; owned by the pod's user like any volume root.
        created.append(target.claim(data, labels, parent))
        volume, mount = claim_volume(data.name, data.mount_path)
        volumes.append(volume)
        mounts.append(mount)
        owned.append((data.mount_path, False))
    return volumes, mounts, owned, uid


def _template(spec: WorkloadSpec, labels, env, volumes, mounts, owned, uid: int) -> core.PodTemplateSpecArgs:
    container = core.ContainerArgs(
        name=spec.service,
        image=spec.image,
        command=list(spec.command) if spec.command else None,
        ports=[core.ContainerPortArgs(container_port=spec.port, name="http"),
               # A health/metrics port of its own (the edge's admin entry point) is declared too:
               # Prometheus' pod discovery yields declared ports only, so its PodMonitor had no target.
               *([core.ContainerPortArgs(container_port=spec.health_check.port, name="admin")]
                 if spec.health_check and spec.health_check.port not in (None, spec.port) else [])]
        if spec.port else None,
        env=env or None,
        resources=resources(spec.resources),
        readiness_probe=readiness_probe(spec),
        liveness_probe=liveness_probe(spec),
        volume_mounts=mounts or None,
        security_context=container_security(),
    )
    pod_annotations: dict[str, pulumi.Input[str]] = {**version_annotations(spec.version)}
    if spec.files:
        # Roll the pods when mounted configuration changes: its digest is part of the template.
        pod_annotations["deploy.platform/config-hash"] = pulumi.Output.all(
            *[spec.files[path] for path in sorted(spec.files)]).apply(digest)
    return core.PodTemplateSpecArgs(
        metadata=meta.ObjectMetaArgs(labels=labels, annotations=pod_annotations),
        spec=core.PodSpecArgs(
            containers=[container], volumes=volumes or None,
            init_containers=[volume_owner(spec.image, uid, owned, mounts)] if owned else None,
            # Listening on 80/443 without root (the edge): a namespaced sysctl, no capability.
            security_context=pod_security(uid, bool(owned), sysctls=[UNPRIVILEGED_PORT_SYSCTL] if spec.external else ()),
            automount_service_account_token=False,
        ),
    )


def _files(target: "KubernetesRuntime", spec: WorkloadSpec, labels, parent, live_dir: str | None = None):
    if not spec.files:
        return [], [], None
    keys = {path: config_key(path) for path in spec.files}
    # Every file the workload is given (what readers of rendered manifests look at).
    config_map = core.ConfigMap(
        f"{spec.name}-files",
        metadata=target.metadata(f"{spec.name}-files", labels),
        data={keys[path]: content for path, content in spec.files.items()},
        opts=target.opts(parent),
    )
    volumes = [core.VolumeArgs(name="files", config_map=core.ConfigMapVolumeSourceArgs(name=f"{spec.name}-files"))]
    # subPath: a file frozen for the pod's life (a kubelet never updates it in place).
    mounts = [core.VolumeMountArgs(name="files", mount_path=path, sub_path=keys[path], read_only=True)
              for path in sorted(spec.files) if not (live_dir and posixpath.dirname(path) == live_dir)]
    if live_dir:
        live = {path: content for path, content in spec.files.items() if posixpath.dirname(path) == live_dir}
        volume, mount = _live_volume(target, spec, live, live_dir, labels, parent)
        volumes.append(volume)
        mounts.append(mount)
    return volumes, mounts, config_map


def _live_volume(target: "KubernetesRuntime", spec: WorkloadSpec, files, directory: str, labels, parent):
    """The directory the edge proxy watches (Traefik's file provider reloads on any event in
    it): its routes and the certificate Secrets mounted under it, as one projected volume.
    The kubelet updates a projected volume by swapping one symlink in its top directory, so a
    renewed certificate is an event Traefik sees, and it reads the new files then (subPath
    mounts and Secret volumes beside it are never seen to change: traefik/traefik#5495).
    The routes come from an immutable ConfigMap named after their content: running pods keep
    the routes they started with (a broken release's routes never reach them); a change is a
    new ConfigMap and rolls the edge like any file change."""
    hashed = digest([f"{path}\0{content}" for path, content in sorted(files.items())])
    routes = core.ConfigMap(
        f"{spec.name}-live", metadata=target.metadata(f"{spec.name}-live-{hashed}", labels), immutable=True,
        data={config_key(path): content for path, content in files.items()}, opts=target.opts(parent))
    sources = [core.VolumeProjectionArgs(config_map=core.ConfigMapProjectionArgs(
        name=routes.metadata.name, items=[core.KeyToPathArgs(key=config_key(path), path=posixpath.relpath(path, directory))
                                          for path in sorted(files)]))]
    for secret_name, mounted in sorted(spec.secret_mounts.items()):
        if within(mounted, directory):
            relative = posixpath.relpath(mounted, directory)
            sources.append(core.VolumeProjectionArgs(secret=core.SecretProjectionArgs(
                name=secret_name, items=[core.KeyToPathArgs(key=key, path=f"{relative}/{key}") for key in TLS_KEYS])))
    return (core.VolumeArgs(name="live", projected=core.ProjectedVolumeSourceArgs(sources=sources)),
            core.VolumeMountArgs(name="live", mount_path=directory, read_only=True))


def _rollout_annotations(target: "KubernetesRuntime", spec: WorkloadSpec, gated: bool = False) -> dict[str, str]:
    # Gated: the rollout gate (kubernetes_gate.py) waits, failing at a bad release's first signs.
    # Otherwise pulumi-kubernetes only logs ProgressDeadlineExceeded and waits out its own timeout
    # (10 min); its timeout annotation makes the update fail soon after Kubernetes gives up.
    wait = {"pulumi.com/skipAwait": "true"} if gated else {
        "pulumi.com/timeoutSeconds": str(target.settings.progress_deadline_seconds + 20)}
    return {**version_annotations(spec.version), **wait}


def _deployment(target: "KubernetesRuntime", spec, labels, selector, template, parent, depends):
    return k8s.apps.v1.Deployment(
        spec.name,
        metadata=target.metadata(spec.name, labels, _rollout_annotations(target, spec, gated(target, spec))),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=spec.replicas,
            selector=meta.LabelSelectorArgs(match_labels=selector),
            progress_deadline_seconds=target.settings.progress_deadline_seconds,
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                # Never below the requested capacity while a release rolls out.
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
            ),
            template=template,
        ),
        opts=target.opts(parent, depends),
    )


def _stateful_set(target: "KubernetesRuntime", spec, labels, claim_labels, selector, template, parent, depends):
    volume = spec.volume
    return k8s.apps.v1.StatefulSet(
        spec.name,
        metadata=target.metadata(spec.name, labels, _rollout_annotations(target, spec)),
        spec=k8s.apps.v1.StatefulSetSpecArgs(
            service_name=spec.name,
            replicas=1,
            selector=meta.LabelSelectorArgs(match_labels=selector),
            template=template,
            volume_claim_templates=[core.PersistentVolumeClaimArgs(
                metadata=meta.ObjectMetaArgs(name=volume.name, labels=claim_labels),
                spec=core.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=target.settings.storage_class,
                    resources=core.VolumeResourceRequirementsArgs(requests={"storage": volume.size}),
                ),
            )],
        ),
        opts=target.opts(parent, depends),
    )


def _disruption_budget(target: "KubernetesRuntime", spec: WorkloadSpec, labels, selector, parent) -> pulumi.Resource:
    # One pod at a time: a node drain never takes the public path down (with >= 2 replicas).
    return k8s.policy.v1.PodDisruptionBudget(
        spec.name, metadata=target.metadata(spec.name, labels),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=selector)),
        opts=target.opts(parent))


def _service(target: "KubernetesRuntime", spec: WorkloadSpec, labels, selector, parent) -> pulumi.Resource:
    service_type = target.settings.edge_service_type
    return core.Service(
        spec.name,
        metadata=target.metadata(spec.name, labels),
        spec=core.ServiceSpecArgs(
            selector=selector,
            ports=_service_ports(spec, service_type),
            cluster_ip="None" if spec.volume else None,
            type=service_type if spec.external else None,
        ),
        opts=target.opts(parent),
    )


def _service_ports(spec: WorkloadSpec, service_type: str) -> list[core.ServicePortArgs]:
    if spec.external:
        # The edge: HTTP (redirects to HTTPS) and HTTPS, on 80 and 443 of its Service, where an
        # ACME server validates HTTP-01 (port 80 of the address the host name resolves to) and
        # the blackbox exporter probes HTTPS. As a NodePort Service the published ports are also
        # its node ports, so the stack's edge.httpPort/httpsPort are where it answers outside.
        published = spec.published_ports if service_type == "NodePort" else {}
        return [core.ServicePortArgs(name=name, port=port, target_port=port, node_port=published.get(port))
                for name, port in (("http", 80), ("https", 443))]
    return [core.ServicePortArgs(name="http", port=spec.port, target_port=spec.port)]
