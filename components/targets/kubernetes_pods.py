"""What every pod of the Kubernetes target is made of, whatever runs it (a Deployment, a
StatefulSet, a CronJob): container resources, probes, the hardened security contexts
(docs/security.md, components/hardening.py), the one root step that hands a volume to the pod's
user, and the emptyDirs an image writes to on its read-only root. Pure functions: they create no
resource.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Sequence

import pulumi_kubernetes as k8s

from components.config import Resources
from components.hardening import SCRATCH_SIZE, WRITABLE_PATHS
from components.targets.base import WorkloadSpec
from components.versioning import VERSION_LABEL

core = k8s.core.v1

VOLUME_OWNER_RESOURCES = Resources(cpu_request="10m", cpu_limit="100m", memory_request="16Mi", memory_limit="32Mi")


def without_version(labels: dict[str, str]) -> dict[str, str]:
    """Labels for objects that outlive a release, which a release then leaves untouched. (An
    updated Service makes Pulumi wait until no selected pod is unready, so a broken release held
    the update for 10 minutes; volume claim templates are immutable.)"""
    return {key: value for key, value in labels.items() if key != VERSION_LABEL}


def resources(requirements: Resources) -> core.ResourceRequirementsArgs:
    return core.ResourceRequirementsArgs(
        requests={"cpu": requirements.cpu_request, "memory": requirements.memory_request},
        limits={"cpu": requirements.cpu_limit, "memory": requirements.memory_limit},
    )


def readiness_probe(spec: WorkloadSpec) -> core.ProbeArgs | None:
    """Is it ready for traffic: the service's own health check, from the start."""
    check = spec.health_check
    if check is None:
        return None
    action = {"exec_": core.ExecActionArgs(command=list(check.command))} if check.command else {
        "http_get": core.HTTPGetActionArgs(path=check.path, port=check.port or spec.port)}
    return core.ProbeArgs(**action, timeout_seconds=check.timeout_seconds, period_seconds=check.interval_seconds,
                          failure_threshold=check.retries, initial_delay_seconds=0)


def liveness_probe(spec: WorkloadSpec) -> core.ProbeArgs | None:
    """Is the process still there: it accepts connections on the port it serves. Not the health
    check: an unhealthy dependency makes a pod unready, and must not get it restarted in a loop.
    A workload with no port has only its health command (docs/security.md: accepted)."""
    check = spec.health_check
    if check is None:
        return None
    port = (check.port or spec.port) if not check.command else spec.port
    action = {"tcp_socket": core.TCPSocketActionArgs(port=port)} if port else {
        "exec_": core.ExecActionArgs(command=list(check.command))}
    # Liveness waits out the start period; readiness starts at once so traffic comes early.
    return core.ProbeArgs(**action, timeout_seconds=check.timeout_seconds, period_seconds=check.interval_seconds,
                          failure_threshold=check.retries, initial_delay_seconds=check.start_period_seconds)


def container_security() -> core.SecurityContextArgs:
    return core.SecurityContextArgs(
        allow_privilege_escalation=False, privileged=False, read_only_root_filesystem=True, run_as_non_root=True,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]))


def pod_security(uid: int, claims: bool, sysctls: Sequence[tuple[str, str]] = (),
                 supplemental_groups: Sequence[int] = (), gid: int | None = None) -> core.PodSecurityContextArgs:
    gid = uid if gid is None else gid
    return core.PodSecurityContextArgs(
        run_as_non_root=True, run_as_user=uid, run_as_group=gid, supplemental_groups=list(supplemental_groups) or None,
        # Volumes that support it are handed to the pod's group by the kubelet; hostPath volumes
        # (the local cluster's) do not, hence volume_owner.
        fs_group=gid if claims else None, fs_group_change_policy="OnRootMismatch" if claims else None,
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
        sysctls=[core.SysctlArgs(name=name, value=value) for name, value in sysctls] or None)


def volume_owner(image: str, uid: int, owned: Sequence[tuple[str, bool]],
                 mounts: Sequence[core.VolumeMountArgs]) -> core.ContainerArgs:
    """The one step that needs root: a new volume's root directory can belong to root (0750 on
    the hostPath provisioner), so the pod's user could not write to it. Runs as root with CHOWN
    as its only capability (no DAC override: it changes owners, it cannot read others' files),
    and does nothing when the owner is already right."""
    owner = f"{uid}:{uid}"
    steps = []
    for path, recursive in owned:
        if recursive:
            # Shared volumes (the dumps) may hold files an earlier, root-run job wrote.
            steps.append(f'find "{path}" -xdev \\( ! -user {uid} -o ! -group {uid} \\) -exec chown {owner} {{}} \\; || true')
        else:
            steps.append(f'[ "$(stat -c %u:%g "{path}")" = "{owner}" ] || chown {owner} "{path}"')
        steps.append(f'[ "$(stat -c %u:%g "{path}")" = "{owner}" ] || {{ echo "{path} is not owned by {owner}" >&2; exit 1; }}')
    volume_names = {path for path, _ in owned}
    return core.ContainerArgs(
        name="volume-owner", image=image, command=["sh", "-c", "\n".join(["set -e", *steps])],
        volume_mounts=[mount for mount in mounts if mount.mount_path in volume_names],
        resources=resources(VOLUME_OWNER_RESOURCES),
        security_context=core.SecurityContextArgs(
            run_as_user=0, run_as_group=0, run_as_non_root=False, allow_privilege_escalation=False, privileged=False,
            read_only_root_filesystem=True, capabilities=core.CapabilitiesArgs(drop=["ALL"], add=["CHOWN"])))


def scratch(component: str, volumes: list, mounts: list) -> None:
    """emptyDirs where the image writes on its read-only root: /tmp, and its own paths."""
    for index, path in enumerate(("/tmp", *WRITABLE_PATHS.get(component, ()))):
        name = "tmp" if index == 0 else f"scratch-{index}"
        volumes.append(core.VolumeArgs(name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=SCRATCH_SIZE)))
        mounts.append(core.VolumeMountArgs(name=name, mount_path=path))


def claim_volume(name: str, mount_path: str) -> tuple[core.VolumeArgs, core.VolumeMountArgs]:
    """A pod's volume from the PersistentVolumeClaim `name`, and its mount at `mount_path`."""
    return (core.VolumeArgs(name=name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=name)),
            core.VolumeMountArgs(name=name, mount_path=mount_path))


def within(path: str, directory: str) -> bool:
    return posixpath.commonpath([path, directory]) == directory


def config_key(path: str) -> str:
    return posixpath.basename(path).replace("_", "-") or "file"


def digest(contents: list[str]) -> str:
    return hashlib.sha256("\0".join(contents).encode()).hexdigest()[:16]
