"""A stack's configuration: the pydantic models that are the single source of defaults and
validation, their cross-key checks, and the loading of the stack's `platform:*` keys.

`__main__.py` reads the stack's config once (`components.config.loading.load`) and hands the
models to `Platform`; components only ever receive these models. Keys are camelCase in stack
files (Pulumi's convention) and snake_case here.

The models most callers need are re-exported here (`from components.config import
PlatformConfig`); the loader, which brings in the Pulumi SDK, is imported from its own module
(`from components.config.loading import ConfigError, load`). Modules of this package import from
each other, never from this file, so that no import goes round in a circle.

    platform.py       PlatformConfig, the whole of `platform:*`, and SCHEMA_KEYS
    model.py          the base model and the value types (versions, names, hosts, cron schedules, ...)
    workload.py       what every workload shares: health check, resources, log rotation
    services.py       `services` (ServiceSpec), with migrations.py and volumes.py
    databases.py      `databases` and their backups
    edge.py, tls.py   `edge` and its certificates (and the ACME directories)
    alerting.py       `alerting` and `monitoring`
    release.py        `smokeTest`, `promotion`, `rollout`, `drills`
    notifications.py  `notifications`;  preflight.py  `preflight`
    targets.py        `kubernetes` and `docker`, where a stack runs
    checks.py         the checks across keys (a target's own: components/targets/config_checks.py)
    loading.py        the stack's config into these models, every problem by stack file and key
    secret_keys.py    `python -m components.config.secret_keys Pulumi.<stack>.yaml` (scripts/setup.sh)
"""

from components.config.alerting import AlertingSpec, AlertThresholds, MonitoringSpec
from components.config.databases import BackupPolicy, DatabaseSpec
from components.config.edge import EdgeSpec
from components.config.migrations import MigrationSpec
from components.config.model import ConfigProblems, Problem
from components.config.notifications import NotificationsSpec
from components.config.platform import SCHEMA_KEYS, PlatformConfig
from components.config.preflight import PreflightSpec
from components.config.release import DrillsSpec, PrometheusAnalysis, PromotionSpec, RolloutSpec, SmokeTestSpec
from components.config.services import Canary, ServiceSpec
from components.config.targets import DockerTarget, KubernetesTarget
from components.config.tls import TlsSpec
from components.config.volumes import BackedUpVolume, ServiceVolume
from components.config.workload import HealthCheck, LogRotation, Resources, cpu_millicores, memory_mebibytes

__all__ = [
    "SCHEMA_KEYS", "AlertThresholds", "AlertingSpec", "BackedUpVolume", "BackupPolicy", "Canary", "ConfigProblems",
    "DatabaseSpec", "DockerTarget", "DrillsSpec", "EdgeSpec", "HealthCheck", "KubernetesTarget", "LogRotation",
    "MigrationSpec", "MonitoringSpec", "NotificationsSpec", "PlatformConfig", "PreflightSpec", "Problem",
    "PrometheusAnalysis", "PromotionSpec", "Resources", "RolloutSpec", "ServiceSpec", "ServiceVolume",
    "SmokeTestSpec", "TlsSpec", "cpu_millicores", "memory_mebibytes",
]
