"""Where workloads run. `runtime_for` is the only place that chooses a target."""

from __future__ import annotations

import pulumi

from components.config import PlatformConfig
from components.targets.base import RuntimeTarget


def runtime_for(config: PlatformConfig, stack: str, parent: pulumi.Resource) -> RuntimeTarget:
    if config.target == "kubernetes":
        from components.targets.kubernetes import KubernetesRuntime

        return KubernetesRuntime(config.kubernetes, stack, parent)
    from components.targets.docker import DockerRuntime

    return DockerRuntime(config.docker, stack, parent)
