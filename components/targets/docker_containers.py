"""What every container of the Docker target is given, whatever runs in it: its environment and
secret files, labels, CPU limit as the engine spells it, and its health check. Pure functions:
they create no resource.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.config import cpu_millicores
from components.targets.base import WorkloadSpec
from components.targets.probing import PROBE, health_probe  # noqa: F401 (PROBE: the exporters' checks)

# Docker's convention for secrets (as Swarm secrets and the postgres image use it): the value is a
# file under /run/secrets and the environment only names the file (`<NAME>_FILE`).
SECRETS_DIR = "/run/secrets"


def envs(plain, secret_env) -> list[str]:
    entries = {**plain, **{f"{name}_FILE": f"{SECRETS_DIR}/{name}" for name in secret_env}}
    return [f"{key}={value}" for key, value in sorted(entries.items())]


def uploads(files, secret_env) -> list[docker.ContainerUploadArgs]:
    found = [docker.ContainerUploadArgs(file=path, content=content) for path, content in sorted(files.items())]
    found += [docker.ContainerUploadArgs(file=f"{SECRETS_DIR}/{name}", content=pulumi.Output.secret(value))
              for name, value in sorted(secret_env.items())]
    return found


def labels(values: dict[str, str]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=key, value=value) for key, value in sorted(values.items())]


def network_labels(stack: str) -> list[docker.NetworkLabelArgs]:
    return [docker.NetworkLabelArgs(label="deploy.platform/stack", value=stack),
            docker.NetworkLabelArgs(label="app.kubernetes.io/part-of", value="platform")]


def healthcheck(spec: WorkloadSpec) -> docker.ContainerHealthcheckArgs | None:
    check = spec.health_check
    if check is None:
        return None
    return docker.ContainerHealthcheckArgs(
        tests=["CMD", *health_probe(spec)],
        interval=f"{check.interval_seconds}s",
        timeout=f"{check.timeout_seconds}s",
        retries=check.retries,
        start_period=f"{check.start_period_seconds}s",
    )


def cpus(limit: str) -> str:
    """CPUs as the provider reads them back from the engine ("1.0", "0.5"): any other spelling of
    the same number is a diff on every `pulumi up`, which replaces the container in place."""
    value = cpu_millicores(limit) / 1000
    return f"{value:.1f}" if value == int(value) else f"{value:g}"


def resource_safe(reference: str) -> str:
    return reference.replace("/", "-").replace(":", "-").replace("@", "-")
