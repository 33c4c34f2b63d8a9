"""The edge proxy a stack's public services are reached through: `platform:edge` (part of
components/config/; its certificates: tls.py)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from components.config.model import HostName, ImageRepository, Model, Port, Problem, Version, listed_once, refuse
from components.config.tls import TlsSpec
from components.config.workload import LogRotation, Resources


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
        return listed_once(value, "host")

    @model_validator(mode="after")
    def _two_ports(self) -> "EdgeSpec":
        if self.http_port == self.https_port:
            refuse([Problem("httpPort", f"is {self.http_port}, the same as edge.httpsPort; the edge listens for "
                                        "HTTP (to redirect it) and HTTPS on two different ports, e.g. 80 and 443")])
        return self
