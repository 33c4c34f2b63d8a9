"""Stack configuration models: the single source of defaults and validation.

`__main__.py` reads the stack's `platform:*` keys once and hands them to
`PlatformConfig.model_validate`; components only ever receive these models.
Keys are camelCase in stack files (Pulumi's convention) and snake_case here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from components.alerting import AlertingThresholds, AlertRouting
from components.alerting.models import duration_seconds
from components.config.model import (
    CliFractions,
    Command,
    ConfigKey,
    CronSchedule,
    EmailAddress,
    HostName,
    ImageRepository,
    Model,
    NonEmpty,
    Port,
    Problem,
    UrlPath,
    Version,
    cron_runs,
    is_host_or_ip,
    refuse,
    stack_key,
)
from components.config.migrations import MigrationSpec, migration_problems
from components.config.release import DrillsSpec, PromotionSpec, RolloutSpec, SmokeTestSpec
from components.config.targets import NODE_PORTS, DockerTarget, KubernetesTarget
from components.config.volumes import ServiceVolume, check_volume_names, volume_problems
from components.config.tls import AcmeDirectoryUrl
from components.config.notifications import NotificationsSpec
from components.config.preflight import PreflightSpec

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
QUANTITY_CPU_RE = re.compile(r"^\d+(\.\d+)?m?$")
QUANTITY_MEMORY_RE = re.compile(r"^\d+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
SIZE_RE = re.compile(r"^\d+[kmg]$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# PostgreSQL cuts longer names to 63 bytes without a word (NAMEDATALEN - 1).
# Ref: https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS
PG_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


class HealthCheck(Model):
    path: str = Field("/healthz", description="HTTP path that answers 200 when the service is ready.")
    command: Command | None = Field(
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
        if not value.startswith("/") or any(c.isspace() for c in value):
            raise ValueError("must start with '/' and hold no spaces, e.g. /healthz")
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
        None, description="Database migration run with the new image before the rollout (config_migrations.py).")
    volumes: dict[str, ServiceVolume] = Field(
        default_factory=dict, description="Persistent volumes (uploads, media), backed up with a database (config_volumes.py).")

    _volume_names = field_validator("volumes")(check_volume_names)

    @field_validator("databases")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"names {twice} more than once; list each database once")
        return value

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


class BackupPolicy(Model):
    schedule: CronSchedule = Field("0 2 * * *", description="Cron schedule of the backup (daily 02:00).")
    retention_days: int = Field(7, ge=1, le=365, description="Backups older than this are deleted (never the newest good one).")
    # None: age alone decides. Seed 001 kept the last 10; with a daily schedule 7 days is 7 backups.
    retention_count: int | None = Field(None, ge=1, le=1000, description="Keep at most this many backups (newest first).")
    restore_drill_schedule: CronSchedule = Field("0 4 1 * *", description="Monthly restore drill.")
    # 26 h: one missed daily run plus two hours of slack before anyone is paged.
    max_age_hours: int = Field(26, ge=1, le=24 * 14)
    before_deploy: bool = Field(True, description="Dump before an update touches a service using this database.")

    @model_validator(mode="after")
    def _fresh_between_runs(self) -> "BackupPolicy":
        # A newest backup older than maxAgeHours pages someone (BackupStale) and fails the restore
        # drill's RPO; if the schedule itself leaves longer gaps, that happens between two good runs.
        # 64 runs span every gap of a schedule that repeats weekly, monthly or yearly (weekends, short months).
        runs = cron_runs(self.schedule, 64)
        gap_hours = max((later - earlier).total_seconds() for earlier, later in zip(runs, runs[1:])) / 3600
        if self.max_age_hours < gap_hours:
            refuse([Problem("maxAgeHours", f"is {self.max_age_hours}, but schedule '{self.schedule}' leaves up to "
                                           f"{gap_hours:g} hours between backups, so every backup would be stale "
                                           f"before the next; expected at least {gap_hours:g} (the default 26 "
                                           "suits a daily schedule)")])
        return self


class DatabaseSpec(Model):
    image: ImageRepository = Field(description="PostgreSQL image repository.")
    version: Version
    port: Port = 5432
    database: str = "app"
    user: str = "app"
    password_secret: ConfigKey = Field(description="Config key of the password (set with --secret).")
    storage_size: str = "1Gi"
    resources: Resources = Field(default_factory=Resources)
    backup: BackupPolicy = Field(default_factory=BackupPolicy)
    log_rotation: LogRotation = Field(default_factory=LogRotation)

    @field_validator("database", "user")
    @classmethod
    def _postgres_name(cls, value: str) -> str:
        if not PG_NAME_RE.match(value):
            raise ValueError("expected a PostgreSQL name: a letter or '_', then letters, digits, '_' or '-', "
                             "at most 63 characters, e.g. app")
        return value

    @field_validator("user")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        # Ref: https://www.postgresql.org/docs/current/predefined-roles.html (CREATE ROLE refuses pg_*)
        if value.lower().startswith("pg_"):
            raise ValueError("role names starting with pg_ are reserved by PostgreSQL; expected e.g. app")
        return value

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
    email: EmailAddress | None = Field(None, description="ACME account e-mail.")
    # Let's Encrypt's staging or production directory, or another ACME directory's https URL (the
    # development machine's Pebble, devenv/acme/pebble.sh; docs/tls.md).
    acme_server: Literal["staging", "production"] | AcmeDirectoryUrl = "staging"
    # PEM file of the CA that signed a private ACME directory's own TLS certificate (Pebble's).
    acme_ca_bundle_file: str | None = None
    # cert-manager's default is 2/3 of the lifetime; 30 days leaves time for a human if renewal breaks.
    renew_before_days: int = Field(30, ge=1, le=89)
    # The lifetime cert-manager asks for (ACME: the order's notAfter). Shorter than renewBeforeDays,
    # renewal comes at 2/3 of it: a short-lived certificate exercises renewal and the expiry alert.
    duration_hours: int = Field(2160, ge=1, le=2160)

    @model_validator(mode="after")
    def _acme_needs_email(self) -> "TlsSpec":
        if self.mode == "acme" and not self.email:
            refuse([Problem("email", "mode acme needs an e-mail address for the ACME account "
                                     "(e.g. platform-team@example.com), found nothing")])
        return self


class EdgeSpec(Model):
    image: ImageRepository
    version: Version
    hosts: list[HostName] = Field(min_length=1)
    http_port: Port = 80
    https_port: Port = 443
    tls: TlsSpec = Field(default_factory=TlsSpec)
    resources: Resources = Field(default_factory=Resources)
    log_rotation: LogRotation = Field(default_factory=LogRotation)

    @field_validator("hosts")
    @classmethod
    def _each_once(cls, value: list[str]) -> list[str]:
        twice = sorted({host for host in value if value.count(host) > 1})
        if twice:
            raise ValueError(f"names {twice} more than once; list each host once")
        return value

    @model_validator(mode="after")
    def _two_ports(self) -> "EdgeSpec":
        if self.http_port == self.https_port:
            refuse([Problem("httpPort", f"is {self.http_port}, the same as edge.httpsPort; the edge listens for "
                                        "HTTP (to redirect it) and HTTPS on two different ports, e.g. 80 and 443")])
        return self


_CAMEL = ConfigDict(extra="forbid", alias_generator=stack_key, populate_by_name=True, frozen=True, strict=True)


class AlertThresholds(AlertingThresholds, CliFractions):
    """components/alerting's thresholds, spelled camelCase in stack files."""

    model_config = _CAMEL

    @field_validator("runbook_base_url")
    @classmethod
    def _url_or_path(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else None
        if any(c.isspace() for c in value) or scheme not in (None, "http", "https"):
            raise ValueError("expected the runbook's URL (https://...) or a path such as docs/runbooks/alerts.md, "
                             "without spaces")
        return value


class AlertingSpec(AlertRouting):
    """Alert routing (components/alerting.AlertRouting) plus thresholds, camelCase in stack files."""

    model_config = _CAMEL

    # Stricter than AlertRouting's own checks: email-validator, RFC 1123 host names, real ports.
    email_to: list[EmailAddress] = Field(min_length=1, description="Addresses that receive warning and critical alerts.")
    email_from: EmailAddress = Field(description="Sender address of alert emails.")
    smtp_username: NonEmpty | None = Field(None, description="SMTP login; defaults to emailFrom when a password is given.")
    smtp_password_secret: ConfigKey | None = Field(None, description="Config key of the SMTP password (secret).")
    thresholds: AlertThresholds = Field(default_factory=AlertThresholds)

    @field_validator("smarthost")
    @classmethod
    def _relay(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not is_host_or_ip(host.lower()):
            raise ValueError("expected host:port with an RFC 1123 host name or an IP address, e.g. smtp.example.com:587")
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError("expected host:port with a port 1-65535, e.g. smtp.example.com:587")
        return value

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _not_zero(cls, value: str) -> str:
        # Alertmanager refuses to load a zero group_interval or repeat_interval.
        if duration_seconds(value) == 0:
            raise ValueError("Alertmanager refuses a zero interval; expected a duration such as 1m or 4h")
        return value

    @property
    def webhook_url_secret(self) -> str | None:
        return self.webhook_url_secret_key


class MonitoringSpec(Model):
    # Used on Docker, where the stack runs its own Prometheus and Alertmanager; on Kubernetes the
    # cluster's Prometheus Operator picks up the PrometheusRule and the Alertmanager secret.
    prometheus_image: ImageRepository = "127.0.0.1:5000/shop/prometheus"
    prometheus_version: Version = "2.55.1"  # built from its Go module: Debian's has no Kubernetes discovery
    alertmanager_image: ImageRepository = "127.0.0.1:5000/shop/alertmanager"
    alertmanager_version: Version = "0.25.0"
    # busybox httpd serves each backup's result file (backup_script writes it) as /metrics.
    exporter_image: ImageRepository = "127.0.0.1:5000/shop/busybox"
    exporter_version: Version = "1.35.0"
    # The exporters the rules need on Docker (devenv/images/images.d/exporters.sh builds them from Debian).
    node_exporter_image: ImageRepository = "127.0.0.1:5000/shop/node-exporter"
    node_exporter_version: Version = "1.5.0"
    postgres_exporter_image: ImageRepository = "127.0.0.1:5000/shop/postgres-exporter"
    postgres_exporter_version: Version = "0.11.1"
    blackbox_exporter_image: ImageRepository = "127.0.0.1:5000/shop/blackbox-exporter"
    blackbox_exporter_version: Version = "0.23.0"
    # Also the rule evaluation interval: an alert's delay is about one interval plus its `for:`.
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
    notifications: NotificationsSpec = Field(default_factory=NotificationsSpec)
    preflight: PreflightSpec = Field(default_factory=PreflightSpec)
    kubernetes: KubernetesTarget | None = None
    docker: DockerTarget | None = None

    @field_validator("services", "databases")
    @classmethod
    def _names(cls, value: dict) -> dict:
        # Names become parts of Kubernetes object names and DNS names (services.<name>, <name>-canary).
        refuse([Problem(name, f"'{name}' is not a name: expected a lowercase DNS label (a-z, 0-9, '-', starting "
                              "with a letter) of at most 32 characters, e.g. api")
                for name in value if not NAME_RE.match(name)])
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "PlatformConfig":
        refuse(_name_problems(self) + _edge_problems(self) + _promotion_problems(self) + _secret_key_problems(self)
               + migration_problems(self) + volume_problems(self))
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


# Keys that cross-reference each other; each problem is reported at the key to change.
def _name_problems(config: PlatformConfig) -> list[Problem]:
    problems = [Problem(f"services.{name}", f"'{name}' names both a service and a database; rename one")
                for name in sorted(set(config.services) & set(config.databases))]
    for name, service in config.services.items():
        unknown = [db for db in service.databases if db not in config.databases]
        if unknown:
            problems.append(Problem(f"services.{name}.databases", f"names unknown databases {unknown}; "
                                    f"expected names from databases: {sorted(config.databases)}"))
    routed: dict[str, str] = {}
    for name, service in config.services.items():
        if service.public:
            prefix = service.path_prefix.rstrip("/") or "/"
            if prefix in routed:
                problems.append(Problem(f"services.{name}.pathPrefix",
                                        f"'{service.path_prefix}' is also services.{routed[prefix]}.pathPrefix; "
                                        "the edge would route both services' traffic on one prefix: give each its own"))
            routed.setdefault(prefix, name)
    return problems


def _edge_problems(config: PlatformConfig) -> list[Problem]:
    problems = []
    kubernetes = config.kubernetes if config.target == "kubernetes" else None
    if kubernetes and kubernetes.render_to_directory and config.edge.tls.mode == "local-ca":
        problems.append(Problem("kubernetes.renderToDirectory",
                                "edge.tls.mode local-ca puts the edge's private key in a Secret, which "
                                "kubernetes.renderToDirectory would write to disk in plain text: use self-signed or acme"))
    if kubernetes and kubernetes.edge_service_type == "NodePort":
        for key, port in (("edge.httpPort", config.edge.http_port), ("edge.httpsPort", config.edge.https_port)):
            if not NODE_PORTS[0] <= port <= NODE_PORTS[1]:
                problems.append(Problem(key, f"is {port}, but with kubernetes.edgeServiceType NodePort it is the node "
                                             f"port and must lie in {NODE_PORTS[0]}-{NODE_PORTS[1]}"))
    host = config.smoke_test.host_header
    if host is not None and host not in config.edge.hosts:
        problems.append(Problem("smokeTest.hostHeader", f"'{host}' is not one of edge.hosts {config.edge.hosts}, "
                                                        "so the edge would route no smoke test request"))
    return problems


def _promotion_problems(config: PlatformConfig) -> list[Problem]:
    problems = [Problem(f"promotion.overrides.{name}", f"'{name}' is not a service; expected one of "
                                                       f"{sorted(config.services)}")
                for name in config.promotion.overrides if name not in config.services]
    if config.promotion.require_verified and not config.promotion.staging_stack:
        problems.append(Problem("promotion.requireVerified", "needs promotion.stagingStack, the stack whose "
                                                             "verified versions this one may run"))
    return problems


def _secret_key_problems(config: PlatformConfig) -> list[Problem]:
    # A secret named like a schema key would take that key's place in the stack file.
    return [Problem(path, f"'{key}' is a key of the schema (platform:{key}); name the secret something else, "
                          "e.g. mainDbPassword")
            for key, path in config.secret_keys().items() if key in SCHEMA_KEYS]


# The stack file's top-level keys (`platform:<key>`); secret config keys sit beside them.
SCHEMA_KEYS = frozenset(field.alias or name for name, field in PlatformConfig.model_fields.items())


def cpu_millicores(value: str) -> float:
    return float(value[:-1]) if value.endswith("m") else float(value) * 1000


_MEMORY_UNITS = {"": 1 / 2**20, "k": 1000 / 2**20, "M": 10**6 / 2**20, "G": 10**9 / 2**20,
                 "T": 10**12 / 2**20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}


def memory_mebibytes(value: str) -> float:
    match = re.match(r"^(\d+)([A-Za-z]*)$", value)
    if not match:
        raise ValueError(value)
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]
