"""What every workload of a stack shares, its services, databases and edge alike: the health
check, the resources it asks for and the rotation of its logs (part of components/config/), and
the CPU and memory quantities both targets read from them."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from components.config.model import Command, Model, Port

QUANTITY_CPU_RE = re.compile(r"^\d+(\.\d+)?m?$")
QUANTITY_MEMORY_RE = re.compile(r"^\d+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
SIZE_RE = re.compile(r"^\d+[kmg]$")


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


def cpu_millicores(value: str) -> float:
    return float(value[:-1]) if value.endswith("m") else float(value) * 1000


_MEMORY_UNITS = {"": 1 / 2**20, "k": 1000 / 2**20, "M": 10**6 / 2**20, "G": 10**9 / 2**20,
                 "T": 10**12 / 2**20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2}


def memory_mebibytes(value: str) -> float:
    match = re.match(r"^(\d+)([A-Za-z]*)$", value)
    if not match:
        raise ValueError(value)
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]
