"""A stack's whole configuration, PlatformConfig: what `platform:*` holds, each part in a model of
its own (services.py, databases.py, edge.py, alerting.py, release.py, targets.py, ...), the checks
across keys in checks.py (part of components/config/).

`__main__.py` reads the stack's `platform:*` keys once (loading.py) and hands them to
`PlatformConfig.model_validate`; components only ever receive these models.
Keys are camelCase in stack files (Pulumi's convention) and snake_case here.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Literal, Mapping

from pydantic import BaseModel, Field, field_validator, model_validator

from components.config.alerting import AlertingSpec, MonitoringSpec
from components.config.checks import cross_key_problems, schema_keys
from components.config.databases import DatabaseSpec
from components.config.edge import EdgeSpec
from components.config.model import Model, Problem, refuse, stack_key
from components.config.notifications import NotificationsSpec
from components.config.preflight import PreflightSpec
from components.config.release import DrillsSpec, PromotionSpec, RolloutSpec, SmokeTestSpec
from components.config.services import ServiceSpec
from components.config.targets import DockerTarget, KubernetesTarget

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")


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
        refuse(cross_key_problems(self))
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_target_settings(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("target") in ("docker", "kubernetes"):
            if data.get(data["target"]) is None:
                return {**data, data["target"]: {}}
        return data

    def edge_base_url(self) -> str:
        """Where `pulumi up`'s smoke test and deployctl reach the edge (smokeTest.baseUrl or the HTTPS port on 127.0.0.1)."""
        return str(self.smoke_test.base_url or f"https://127.0.0.1:{self.edge.https_port}").rstrip("/")

    def edge_host_header(self) -> str:
        """The Host header requests through the edge carry: smokeTest.hostHeader or the first edge host."""
        return self.smoke_test.host_header or self.edge.hosts[0]

    def health_url(self, service: str) -> str:
        """A service's health check through the edge. A service without one is probed at <prefix>/healthz
        (the canary analysis needs some URL; the smoke test checks only services with a health check)."""
        spec = self.services[service]
        path = spec.health_check.path if spec.health_check else "/healthz"
        return self.edge_base_url() + spec.path_prefix.rstrip("/") + path

    def secret_keys(self) -> dict[str, str]:
        """Every secret config key the stack needs, with the path that asks for it."""
        return secret_key_references(self)


# Where a stack's config names a secret config key (model field names; `*`: every entry of a map).
# The one list: the model's secret_keys() and the loader, which must set those keys aside before
# validation (they sit beside the schema's keys), both read it through secret_key_references.
SECRET_KEY_FIELDS = (
    ("services", "*", "secrets", "*"),
    ("databases", "*", "password_secret"),
    ("alerting", "webhook_url_secret_key"),
    ("alerting", "heartbeat_url_secret_key"),
    ("alerting", "smtp_password_secret"),
)


def secret_key_references(config: "PlatformConfig | Mapping[str, Any]") -> dict[str, str]:
    """Each secret config key that SECRET_KEY_FIELDS name, with the first stack-file path naming it
    (`services.api.secrets.SESSION_SIGNING_KEY`). `config` is the model or, before validation, the
    raw config (camelCase keys), where any part may have the wrong shape: the model reports that,
    so whatever is not a map or a key name is passed over here."""
    wanted: dict[str, str] = {}
    for fields in SECRET_KEY_FIELDS:
        for path, key in _named_keys(config, fields, ()):
            wanted.setdefault(key, ".".join(path))
    return wanted


def _named_keys(node: Any, fields: tuple[str, ...], path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if not fields:
        if isinstance(node, str):
            yield path, node
        return
    field, rest = fields[0], fields[1:]
    if field == "*":
        if isinstance(node, Mapping):
            for name, child in node.items():
                yield from _named_keys(child, rest, (*path, str(name)))
        return
    if isinstance(node, BaseModel):
        yield from _named_keys(getattr(node, field), rest, (*path, stack_key(field)))
    elif isinstance(node, Mapping):
        yield from _named_keys(node.get(stack_key(field)), rest, (*path, stack_key(field)))


# The stack file's top-level keys (`platform:<key>`); secret config keys sit beside them.
SCHEMA_KEYS = schema_keys(PlatformConfig)
