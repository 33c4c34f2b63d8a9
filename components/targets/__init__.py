"""Where workloads run. `runtime_for` is the only place that chooses a target."""

from __future__ import annotations

import pulumi

from components.config import PlatformConfig
from components.targets.base import RuntimeTarget


def runtime_for(config: PlatformConfig, stack: str, parent: pulumi.Resource,
                gate: pulumi.Output | None = None) -> RuntimeTarget:
    """The target for `config`. With a gate, the target's provider waits for it: nothing is
    created, changed or deleted before the gate resolves, and nothing at all if it fails."""
    if config.target == "kubernetes":
        from components.hardening import hardening_for
        from components.targets.kubernetes import KubernetesRuntime

        return KubernetesRuntime(config.kubernetes, stack, parent, gate, hardening_for(config))
    from components.targets.docker import DockerRuntime

    return DockerRuntime(config.docker, stack, parent, gate)


def target_images(config: PlatformConfig) -> dict[str, tuple[str, str]]:
    """Images the target adds to every stack's own (components/images.py), by role: the exporters
    the alert rules read. The Docker target runs the node, postgres and blackbox exporters beside
    the stack's Prometheus; Kubernetes the blackbox exporter (components/targets/kubernetes_probes.py)
    and, per database, the postgres exporter (a change that adds one adds it here too:
    tests/unit/test_stack_images.py compares this list with what the program renders)."""
    from components.monitoring import probe_targets

    settings = config.monitoring
    if config.target == "kubernetes":
        images = {}
        if config.databases:
            images["postgres-exporter"] = (settings.postgres_exporter_image, settings.postgres_exporter_version)
        if probe_targets(config):
            images["blackbox-exporter"] = (settings.blackbox_exporter_image, settings.blackbox_exporter_version)
        return images
    images = {"node-exporter": (settings.node_exporter_image, settings.node_exporter_version)}
    if config.databases:
        images["postgres-exporter"] = (settings.postgres_exporter_image, settings.postgres_exporter_version)
    if probe_targets(config):
        images["blackbox-exporter"] = (settings.blackbox_exporter_image, settings.blackbox_exporter_version)
    return images
