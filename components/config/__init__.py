"""A stack's configuration: the pydantic models that are the single source of defaults and
validation, their cross-key checks, and the loading of the stack's `platform:*` keys.

`__main__.py` reads the stack's config once (`components.config.loading.load`) and hands the
models to `Platform`; components only ever receive these models. Keys are camelCase in stack
files (Pulumi's convention) and snake_case here.

The models most callers need are re-exported here (`from components.config import
PlatformConfig`); the loader, which brings in the Pulumi SDK, is imported from its own module
(`from components.config.loading import ConfigError, load`). Modules of this package import from
each other, never from this file, so that no import goes round in a circle.
"""

from components.config.model import ConfigProblems, Problem
from components.config.notifications import NotificationsSpec
from components.config.platform import (
    SCHEMA_KEYS,
    AlertingSpec,
    AlertThresholds,
    BackupPolicy,
    Canary,
    DatabaseSpec,
    EdgeSpec,
    HealthCheck,
    LogRotation,
    MonitoringSpec,
    PlatformConfig,
    Resources,
    ServiceSpec,
    TlsSpec,
    cpu_millicores,
    memory_mebibytes,
)
from components.config.preflight import PreflightSpec
from components.config.release import DrillsSpec, PrometheusAnalysis, PromotionSpec, RolloutSpec, SmokeTestSpec
from components.config.targets import DockerTarget, KubernetesTarget
from components.config.migrations import MigrationSpec
from components.config.volumes import BackedUpVolume, ServiceVolume

__all__ = [
    "SCHEMA_KEYS", "AlertThresholds", "AlertingSpec", "BackedUpVolume", "BackupPolicy", "Canary", "ConfigProblems",
    "DatabaseSpec", "DockerTarget", "DrillsSpec", "EdgeSpec", "HealthCheck", "KubernetesTarget", "LogRotation",
    "MigrationSpec", "MonitoringSpec", "NotificationsSpec", "PlatformConfig", "PreflightSpec", "Problem",
    "PrometheusAnalysis", "PromotionSpec", "Resources", "RolloutSpec", "ServiceSpec", "ServiceVolume",
    "SmokeTestSpec", "TlsSpec", "cpu_millicores", "memory_mebibytes",
]
