"""The services a stack runs: `platform:services` (part of components/config/).

A new kind of service is a new `component` value in ServiceSpec plus its defaults.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.config.migrations import MigrationSpec
from components.config.model import (
    Command,
    ConfigKey,
    ImageRepository,
    Model,
    Port,
    Problem,
    UrlPath,
    Version,
    listed_once,
    refuse,
)
from components.config.volumes import ServiceVolume, check_volume_names
from components.config.workload import HealthCheck, LogRotation, Resources

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Canary(Model):
    version: Version = Field(description="Version served on the canary track.")
    weight: int = Field(0, ge=0, le=100, description="Percent of traffic sent to the canary.")


class ServiceSpec(Model):
    component: Literal["web", "api", "worker"] = Field(description="What kind of service this is.")
    image: ImageRepository = Field(description="Image repository, without tag.")
    version: Version = Field(description="Immutable tag or sha256: digest.")
    replicas: int = Field(1, ge=1, le=50)
    port: Port | None = Field(None, description="Container port; workers have none.")
    public: bool = Field(False, description="Routed by the edge proxy under `edge.hosts`.")
    path_prefix: UrlPath = Field("/", description="Edge route prefix for public services.")
    strip_path_prefix: bool = Field(
        False, description="The edge removes pathPrefix before forwarding (the service serves /healthz, not /api/healthz).")
    command: Command | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, ConfigKey] = Field(
        default_factory=dict, description="ENV_NAME -> config key holding the secret value."
    )
    databases: list[str] = Field(default_factory=list, description="Databases this service talks to.")
    resources: Resources = Field(default_factory=Resources)
    health_check: HealthCheck | None = Field(
        None, description="HTTP readiness/liveness check; web and api services get the default one."
    )
    restart_policy: Literal["always", "unless-stopped", "on-failure"] = "unless-stopped"
    log_rotation: LogRotation = Field(default_factory=LogRotation)
    canary: Canary | None = None
    migration: MigrationSpec | None = Field(
        None, description="Database migration run with the new image before the rollout (migrations.py).")
    volumes: dict[str, ServiceVolume] = Field(
        default_factory=dict, description="Persistent volumes (uploads, media), backed up with a database (volumes.py).")

    _volume_names = field_validator("volumes")(check_volume_names)

    @property
    def internal_network(self) -> bool:
        """Whether it runs beside the databases, with or without one of its own: the api and worker
        tiers do; the web tier reaches only the edge and the api (WorkloadSpec.internal_network)."""
        return self.component in ("api", "worker")

    @field_validator("databases")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        return listed_once(value, "database")

    @field_validator("env", "secrets")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"'{name}' is not a valid environment variable name")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_health_check(cls, data: object) -> object:
        # Anything serving HTTP gets probed unless the stack says otherwise; workers have no port.
        if isinstance(data, dict) and data.get("component") in ("web", "api"):
            if "healthCheck" not in data and "health_check" not in data:
                return {**data, "healthCheck": {}}
        return data

    @model_validator(mode="after")
    def _shape(self) -> "ServiceSpec":
        problems = []
        if self.component != "worker" and self.port is None:
            problems.append(Problem("port", f"{'an' if self.component == 'api' else 'a'} {self.component} service "
                                            "needs a port, found nothing"))
        elif self.public and self.port is None:
            problems.append(Problem("port", "a public service needs a port, found nothing"))
        check = self.health_check
        if check is not None and not check.command and self.port is None and check.port is None:
            problems.append(Problem("healthCheck", "an HTTP health check needs a port (healthCheck.port or port), "
                                                   "or use healthCheck.command"))
        clash = set(self.env) & set(self.secrets)
        if clash:
            problems.append(Problem("env", f"{sorted(clash)} set both in env and in secrets; keep them in secrets"))
        refuse(problems)
        return self
