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

