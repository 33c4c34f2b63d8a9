"""Stack configuration models: the single source of defaults and validation.

`__main__.py` reads the stack's `platform:*` keys once and hands them to
`PlatformConfig.model_validate`; components only ever receive these models.
Keys are camelCase in stack files (Pulumi's convention) and snake_case here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.alerting import AlertingThresholds, AlertRouting
from components.config_model import Model, Port
from components.config_release import DrillsSpec, PromotionSpec, RolloutSpec, SmokeTestSpec
from components.config_targets import NODE_PORTS, DockerTarget, KubernetesTarget
from components.versioning import REPOSITORY_RE, version_problem

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
QUANTITY_CPU_RE = re.compile(r"^\d+(\.\d+)?m?$")
QUANTITY_MEMORY_RE = re.compile(r"^\d+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
SIZE_RE = re.compile(r"^\d+[kmg]$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CRON_RE = re.compile(r"^(\S+\s+){4}\S+$")



def _check_version(value: str) -> str:
    problem = version_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_repository(value: str) -> str:
    if ":" in value.rsplit("/", 1)[-1] or "@" in value:
        raise ValueError("give the image repository without a tag or digest; the version is a key of its own")
    if not REPOSITORY_RE.match(value):
        raise ValueError("not a valid image repository (lowercase, e.g. registry.local:5000/shop/api)")
    return value


class HealthCheck(Model):
    path: str = Field("/healthz", description="HTTP path that answers 200 when the service is ready.")
    command: list[str] | None = Field(
        None, description="Probe by running this command instead of HTTP (workers without a port).")
    port: Port | None = Field(None, description="Port to probe; defaults to the service port.")
    # 3 s: the runbooks' smoke test budget; slower answers count as failures.
    timeout_seconds: int = Field(3, ge=1, le=60)
    interval_seconds: int = Field(10, ge=1, le=300)
    retries: int = Field(3, ge=1, le=20)
    start_period_seconds: int = Field(10, ge=0, le=600)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


class Resources(Model):
    cpu_request: str = "100m"
    cpu_limit: str = "500m"
    memory_request: str = "64Mi"
    memory_limit: str = "256Mi"

    @field_validator("cpu_request", "cpu_limit")
    @classmethod
    def _cpu(cls, value: str) -> str:
        if not QUANTITY_CPU_RE.match(value) or cpu_millicores(value) <= 0:
            raise ValueError("a positive CPU quantity such as 250m or 1")
        return value

    @field_validator("memory_request", "memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not QUANTITY_MEMORY_RE.match(value) or memory_mebibytes(value) <= 0:
            raise ValueError("a positive memory quantity such as 128Mi or 1Gi")
        return value

    @model_validator(mode="after")
    def _requests_within_limits(self) -> "Resources":
        if cpu_millicores(self.cpu_request) > cpu_millicores(self.cpu_limit):
            raise ValueError(f"cpuRequest {self.cpu_request} is above cpuLimit {self.cpu_limit}")
        if memory_mebibytes(self.memory_request) > memory_mebibytes(self.memory_limit):
            raise ValueError(f"memoryRequest {self.memory_request} is above memoryLimit {self.memory_limit}")
        return self


class LogRotation(Model):
    # Docker's json-file defaults keep logs forever; 10m x 5 bounds a chatty service at 50 MB.
    max_size: str = Field("10m", description="Size at which a log file is rotated (k, m or g).")
    max_files: int = Field(5, ge=1, le=100, description="Rotated files kept.")

    @field_validator("max_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not SIZE_RE.match(value) or int(value[:-1]) <= 0:
            raise ValueError("a positive size such as 10m")
        return value


class Canary(Model):
    version: str = Field(description="Version served on the canary track.")
    weight: int = Field(0, ge=0, le=100, description="Percent of traffic sent to the canary.")

    _version = field_validator("version")(lambda cls, v: _check_version(v))


class ServiceSpec(Model):
    component: Literal["web", "api", "worker"] = Field(description="What kind of service this is.")
    image: str = Field(description="Image repository, without tag.")
    version: str = Field(description="Immutable tag or sha256: digest.")
    replicas: int = Field(1, ge=1, le=50)
    port: Port | None = Field(None, description="Container port; workers have none.")
    public: bool = Field(False, description="Routed by the edge proxy under `edge.hosts`.")
    path_prefix: str = Field("/", description="Edge route prefix for public services.")
    strip_path_prefix: bool = Field(
        False, description="The edge removes pathPrefix before forwarding (the service serves /healthz, not /api/healthz).")
    command: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
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

    _image = field_validator("image")(lambda cls, v: _check_repository(v))
    _version = field_validator("version")(lambda cls, v: _check_version(v))

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
        if self.component != "worker" and self.port is None:
            raise ValueError(f"a {self.component} service needs a port")
        if self.public and self.port is None:
            raise ValueError("a public service needs a port")
        check = self.health_check
        if check is not None and not check.command and self.port is None and check.port is None:
            raise ValueError("an HTTP health check needs a port (healthCheck.port or port), or use healthCheck.command")
        clash = set(self.env) & set(self.secrets)
        if clash:
            raise ValueError(f"{sorted(clash)} set both in env and in secrets")
        return self


class BackupPolicy(Model):
    schedule: str = Field("0 2 * * *", description="Cron schedule of the backup (daily 02:00).")
    retention_days: int = Field(7, ge=1, le=365)
    restore_drill_schedule: str = Field("0 4 1 * *", description="Monthly restore drill.")
    # 26 h: one missed daily run plus two hours of slack before anyone is paged.
    max_age_hours: int = Field(26, ge=1, le=24 * 14)
    before_deploy: bool = Field(True, description="Dump before an update touches a service using this database.")

    @field_validator("schedule", "restore_drill_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not CRON_RE.match(value.strip()):
            raise ValueError("a five-field cron expression such as '0 2 * * *'")
        return value


class DatabaseSpec(Model):
    image: str = Field(description="PostgreSQL image repository.")
    version: str
    port: Port = 5432
    database: str = "app"
    user: str = "app"
    password_secret: str = Field(description="Config key of the password (set with --secret).")
    storage_size: str = "1Gi"
    resources: Resources = Field(default_factory=Resources)
    backup: BackupPolicy = Field(default_factory=BackupPolicy)
    log_rotation: LogRotation = Field(default_factory=LogRotation)

    _image = field_validator("image")(lambda cls, v: _check_repository(v))
    _version = field_validator("version")(lambda cls, v: _check_version(v))

    @field_validator("storage_size")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not QUANTITY_MEMORY_RE.match(value) or memory_mebibytes(value) <= 0:
            raise ValueError("a positive size such as 5Gi")
        return value


class TlsSpec(Model):
    # acme: a public CA (cert-manager on Kubernetes, Traefik's resolver on Docker).
    # self-signed: a CA chain in the cluster, issued by cert-manager (Traefik's local CA on Docker).
    # local-ca: this program's own CA (components/local_ca.py) writes the edge Secret itself, for
    #   clusters without cert-manager's controller (the embedded local cluster).
    mode: Literal["acme", "self-signed", "local-ca"] = "self-signed"
    email: str | None = Field(None, description="ACME account e-mail.")
    acme_server: Literal["staging", "production"] = "staging"
    # cert-manager's default is 2/3 of the lifetime; 30 days leaves time for a human if renewal breaks.
    renew_before_days: int = Field(30, ge=1, le=89)

    @model_validator(mode="after")
    def _acme_needs_email(self) -> "TlsSpec":
        if self.mode == "acme" and not self.email:
            raise ValueError("mode acme needs an email for the ACME account")
        return self


class EdgeSpec(Model):
    image: str
    version: str
    hosts: list[str] = Field(min_length=1)
    http_port: Port = 80
    https_port: Port = 443
    tls: TlsSpec = Field(default_factory=TlsSpec)
    resources: Resources = Field(default_factory=Resources)
    log_rotation: LogRotation = Field(default_factory=LogRotation)

    _image = field_validator("image")(lambda cls, v: _check_repository(v))
    _version = field_validator("version")(lambda cls, v: _check_version(v))


_CAMEL = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


class AlertThresholds(AlertingThresholds):
    """components/alerting's thresholds, spelled camelCase in stack files."""

    model_config = _CAMEL


class AlertingSpec(AlertRouting):
    """Alert routing (components/alerting.AlertRouting) plus thresholds, camelCase in stack files."""

    model_config = _CAMEL

    smtp_password_secret: str | None = Field(None, description="Config key of the SMTP password (secret).")
    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)

    @property
    def webhook_url_secret(self) -> str | None:
        return self.webhook_url_secret_key


class MonitoringSpec(Model):
    # Used on Docker, where the stack runs its own Prometheus and Alertmanager; on Kubernetes the
    # cluster's Prometheus Operator picks up the PrometheusRule and the Alertmanager secret.
    prometheus_image: str = "127.0.0.1:5000/shop/prometheus"
    prometheus_version: str = "2.42.0"
    alertmanager_image: str = "127.0.0.1:5000/shop/alertmanager"
    alertmanager_version: str = "0.25.0"
    # busybox httpd serves each backup's result file (backup_script writes it) as /metrics.
    exporter_image: str = "127.0.0.1:5000/shop/busybox"
    exporter_version: str = "1.35.0"
    scrape_interval_seconds: int = Field(15, ge=5, le=300)


class PlatformConfig(Model):
    target: Literal["docker", "kubernetes"]
    environment: Literal["dev", "staging", "prod"]
    services: dict[str, ServiceSpec] = Field(min_length=1)
    databases: dict[str, DatabaseSpec] = Field(default_factory=dict)
    edge: EdgeSpec
    alerting: AlertingSpec
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    smoke_test: SmokeTestSpec = Field(default_factory=SmokeTestSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    drills: DrillsSpec = Field(default_factory=DrillsSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    kubernetes: KubernetesTarget | None = None
    docker: DockerTarget | None = None

    @field_validator("services", "databases")
    @classmethod
    def _names(cls, value: dict) -> dict:
        for name in value:
            if not NAME_RE.match(name):
                raise ValueError(f"'{name}' must be a lowercase DNS label (a-z, 0-9, '-') of at most 32 characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "PlatformConfig":
        clash = set(self.services) & set(self.databases)
        if clash:
            raise ValueError(f"names used for both a service and a database: {sorted(clash)}")
        for name, service in self.services.items():
            unknown = [db for db in service.databases if db not in self.databases]
            if unknown:
                raise ValueError(f"services.{name}.databases names unknown databases {unknown}")
        for name in self.promotion.overrides:
            if name not in self.services:
                raise ValueError(f"promotion.overrides.{name} is not a service")
        if self.promotion.require_verified and not self.promotion.staging_stack:
            raise ValueError("promotion.requireVerified needs promotion.stagingStack")
        if self.target == "kubernetes" and self.kubernetes and self.kubernetes.render_to_directory \
                and self.edge.tls.mode == "local-ca":
            raise ValueError("edge.tls.mode local-ca puts the edge's private key in a Secret, which "
                             "kubernetes.renderToDirectory would write to disk in plain text: use self-signed or acme")
        if self.target == "kubernetes" and self.kubernetes and self.kubernetes.edge_service_type == "NodePort":
            for key, port in (("edge.httpPort", self.edge.http_port), ("edge.httpsPort", self.edge.https_port)):
                if not NODE_PORTS[0] <= port <= NODE_PORTS[1]:
                    raise ValueError(f"{key} is {port}, but with kubernetes.edgeServiceType NodePort it is the node "
                                     f"port and must lie in {NODE_PORTS[0]}-{NODE_PORTS[1]}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_target_settings(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("target") in ("docker", "kubernetes"):
            if data.get(data["target"]) is None:
                return {**data, data["target"]: {}}
        return data

    def secret_keys(self) -> dict[str, str]:
        """Every secret config key the stack needs, with the path that asks for it."""
        wanted: dict[str, str] = {}
        for name, service in self.services.items():
            for env_name, key in service.secrets.items():
                wanted.setdefault(key, f"services.{name}.secrets.{env_name}")
        for name, database in self.databases.items():
            wanted.setdefault(database.password_secret, f"databases.{name}.passwordSecret")
        alerting = self.alerting
        for key, path in ((alerting.webhook_url_secret_key, "alerting.webhookUrlSecretKey"),
                          (alerting.heartbeat_url_secret_key, "alerting.heartbeatUrlSecretKey"),
                          (alerting.smtp_password_secret, "alerting.smtpPasswordSecret")):
            if key:
                wanted.setdefault(key, path)
        return wanted


def cpu_millicores(value: str) -> float:
    return float(value[:-1]) if value.endswith("m") else float(value) * 1000


_MEMORY_UNITS = {"": 1 / 2**20, "k": 1000 / 2**20, "M": 10**6 / 2**20, "G": 10**9 / 2**20,
                 "T": 10**12 / 2**20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}


def memory_mebibytes(value: str) -> float:
    match = re.match(r"^(\d+)([A-Za-z]*)$", value)
    if not match:
        raise ValueError(value)
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]
