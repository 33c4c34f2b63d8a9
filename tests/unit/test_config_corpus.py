"""A corpus of broken stack files: each is one mutation of a committed stack file, and each is refused.

Every case takes Pulumi.dev.yaml, Pulumi.staging.yaml or Pulumi.prod.yaml, changes one key, and
runs the result through the program's own entry point (`components.config.loading.load`, what
`__main__.py` calls) with the config handed over as the engine hands it: top-level values as
strings, objects as JSON that keeps the stack file's YAML types. Each must be refused with a
message that names the stack file and the key. Together the cases mutate every key of the
schema (the models in components/config/, documented in Pulumi.yaml).

`pytest -s tests/unit/test_config_corpus.py` prints `refused N of N broken configs`.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from components.config import PlatformConfig
from components.config.loading import ConfigError, LoadedConfig, load
from support import DEV_SECRETS, PROJECT, ROOT, raw_stack_config, set_stack_config

STACKS = ("dev", "staging", "prod")
# dev and staging expose the edge on node ports; prod has a load balancer in front of it.
NODE_PORT_STACKS = ("dev", "staging")
DELETE = object()


@dataclass(frozen=True)
class Case:
    path: str  # the dotted key mutated, camelCase as in the stack file
    value: Any  # the new value, or DELETE
    why: str
    key: str | None = None  # the key the message must name, when it is not `path` (a map key, a whole object)
    stacks: tuple[str, ...] = STACKS

    def apply(self, raw: dict) -> None:
        *parents, leaf = self.path.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        if self.value is DELETE:
            del node[leaf]
        else:
            node[leaf] = copy.deepcopy(self.value)

    @property
    def expected_key(self) -> str:
        return f"{PROJECT}:{self.key or self.path}"


def case(path: str, value: Any, why: str, **kwargs: Any) -> Case:
    return Case(path, value, why, **kwargs)


def renamed(mapping: str, old: str, new: str, why: str) -> Case:
    """A map entry under a new name (a service or database named what a name cannot be)."""

    class Rename(Case):
        def apply(self, raw: dict) -> None:
            raw[mapping][new] = raw[mapping].pop(old)

    return Rename(f"{mapping}.{new}", None, why, key=mapping)


S = "services.api"
W = "services.worker"
D = "databases.main"

CORPUS: list[Case] = [
    # --- top level -------------------------------------------------------------------------
    case("target", "nomad", "not a target"),
    case("target", "Kubernetes", "targets are lowercase"),
    case("target", "", "empty target"),
    case("target", DELETE, "target is required"),
    case("environment", "qa", "not an environment"),
    case("environment", "production", "the environment is prod"),
    case("environment", DELETE, "environment is required"),
    case("serivces", {}, "misspelled top-level key"),
    case("services", {}, "a stack runs at least one service"),
    case("services", "web,api", "services is a map"),
    case("databases", ["main"], "databases is a map"),
    case("edge", DELETE, "the edge is required"),
    case("edge", "traefik", "edge is an object"),
    case("alerting", DELETE, "alerting is required"),
    case("alerting", [], "alerting is an object"),
    case("monitoring", "prometheus", "monitoring is an object"),
    case("smokeTest", True, "smokeTest is an object"),
    case("promotion", "staging", "promotion is an object"),
    case("kubernetes", "shop-dev", "kubernetes is an object"),
    case("rollout", [10, 50, 100], "rollout is an object (its steps are rollout.steps)"),
    case("drills", 180, "drills is an object"),
    case("docker", "unix:///var/run/docker.sock", "docker is an object"),
    # --- services.<name> ------------------------------------------------------------------
    renamed("services", "api", "API", "service names are lowercase DNS labels"),
    renamed("services", "api", "api-" + "x" * 40, "service names are at most 32 characters"),
    renamed("services", "api", "-api", "service names start with a letter"),
    case(f"{S}.component", "cache", "not a component"),
    case(f"{S}.component", DELETE, "component is required"),
    case(f"{S}.image", "127.0.0.1:5000/shop/api:1.4.2", "the tag belongs in version"),
    case(f"{S}.image", "127.0.0.1:5000/shop/api@sha256:" + "a" * 64, "the digest belongs in version"),
    case(f"{S}.image", "Registry/Shop/API", "repositories are lowercase"),
    case(f"{S}.image", "", "empty repository"),
    case(f"{S}.version", "latest", "a moving tag"),
    case(f"{S}.version", "", "empty version"),
    case(f"{S}.version", "sha-", "only the prefix of a commit build"),
    case(f"{S}.version", "sha-xyz1234", "sha- takes hex digits"),
    case(f"{S}.version", "1.4.", "a truncated version"),
    case(f"{S}.version", "sha256:abc", "a truncated digest"),
    case(f"{S}.version", "1.0 beta", "tags hold no spaces"),
    case(f"{S}.version", 1.4, "an unquoted 1.4 is a YAML number, not a version"),
    case(f"{S}.replicas", 0, "at least one replica"),
    case(f"{S}.replicas", -2, "negative replicas"),
    case(f"{S}.replicas", 51, "more replicas than allowed"),
    case(f"{S}.replicas", "2", "a number given as a string"),
    case(f"{S}.replicas", 2.5, "half a replica"),
    case(f"{S}.replicas", True, "a boolean is not a count"),
    case(f"{S}.port", 0, "port 0"),
    case(f"{S}.port", 70000, "port above 65535"),
    case(f"{S}.port", "8080", "a port given as a string"),
    case(f"{S}.port", DELETE, "an api needs a port", key=S),
    case(f"{S}.public", "yes", "a boolean given as a word"),
    case(f"{S}.public", 1, "a boolean given as a number"),
    case(f"{S}.pathPrefix", "api", "a relative path prefix"),
    case(f"{S}.pathPrefix", "", "an empty path prefix"),
    case(f"{S}.pathPrefix", "/api v2", "a path prefix with a space"),
    case(f"{S}.pathPrefix", "/api?debug=1", "a query string is not a path"),
    case(f"{S}.pathPrefix", "/", "two public services on the same prefix"),
    case(f"{S}.stripPathPrefix", "true", "a boolean given as a string"),
    case(f"{W}.command", [], "an empty command"),
    case(f"{W}.command", "/app/worker --queue default", "command is a list of arguments"),
    case(f"{W}.command", ["", "--queue"], "an empty program name"),
    case(f"{S}.env", {"API-URL": "x"}, "not an environment variable name"),
    case(f"{S}.env", {"WORKERS": 4}, "environment values are strings"),
    case(f"{S}.env", {"SESSION_SIGNING_KEY": "x"}, "set both in env and in secrets", key=S),
    case(f"{S}.secrets", {"SESSION-KEY": "sessionSigningKey"}, "not an environment variable name"),
    case(f"{S}.secrets", {"SESSION_SIGNING_KEY": ""}, "an empty config key"),
    case(f"{S}.secrets", {"SESSION_SIGNING_KEY": "session signing key"}, "not a config key"),
    case(f"{S}.secrets", {"SESSION_SIGNING_KEY": "edge"}, "a secret key that shadows a schema key"),
    case(f"{S}.databases", ["orders"], "an unknown database"),
    case(f"{S}.databases", "main", "databases is a list"),
    case(f"{S}.databases", ["main", "main"], "a database named twice"),
    case(f"{S}.resources.cpuRequest", "-1", "negative CPU"),
    case(f"{S}.resources.cpuRequest", "0", "zero CPU"),
    case(f"{S}.resources.cpuRequest", "2", "request above the limit", key=f"{S}.resources"),
    case(f"{S}.resources.cpuLimit", "lots", "not a CPU quantity"),
    case(f"{S}.resources.cpuLimit", 1, "a quantity is a string"),
    case(f"{S}.resources.memoryRequest", "2Gi", "request above the limit", key=f"{S}.resources"),
    case(f"{S}.resources.memoryRequest", "128MB", "MB is not a Kubernetes unit"),
    case(f"{S}.resources.memoryLimit", "lots", "not a memory quantity"),
    case(f"{S}.resources.memoryLimit", "0Mi", "zero memory"),
    case(f"{S}.resources.cpu", "1", "unknown resources key"),
    case(f"{S}.resources", "1 CPU, 512Mi", "resources is an object"),
    case(f"{S}.healthCheck", True, "healthCheck is an object"),
    case(f"{S}.healthCheck.path", "healthz", "a relative probe path"),
    case(f"{S}.healthCheck.path", "/health check", "a probe path with a space"),
    case(f"{S}.healthCheck.path", "", "an empty probe path"),
    case(f"{W}.healthCheck.command", [], "an empty probe command"),
    case(f"{W}.healthCheck.command", "/app/worker --check", "command is a list of arguments"),
    case(f"{S}.healthCheck.port", 0, "probe port 0"),
    case(f"{S}.healthCheck.port", "8080", "a port given as a string"),
    case(f"{S}.healthCheck.timeoutSeconds", 0, "a zero timeout"),
    case(f"{S}.healthCheck.timeoutSeconds", "3", "a number given as a string"),
    case(f"{S}.healthCheck.intervalSeconds", 0, "a zero interval"),
    case(f"{S}.healthCheck.intervalSeconds", 301, "an interval above five minutes"),
    case(f"{S}.healthCheck.retries", 0, "no retries"),
    case(f"{S}.healthCheck.startPeriodSeconds", -1, "a negative start period"),
    case(f"{S}.healthCheck.startPeriodSeconds", 601, "a start period above ten minutes"),
    case(f"{S}.restartPolicy", "sometimes", "not a restart policy"),
    case(f"{S}.restartPolicy", "Always", "restart policies are lowercase"),
    case(f"{S}.logRotation", "10m", "logRotation is an object"),
    case(f"{S}.logRotation.maxSize", "ten", "not a size"),
    case(f"{S}.logRotation.maxSize", "10MB", "sizes are k, m or g"),
    case(f"{S}.logRotation.maxSize", "0m", "a zero size"),
    case(f"{S}.logRotation.maxFiles", 0, "no rotated files"),
    case(f"{S}.logRotation.maxFiles", "5", "a number given as a string"),
    case(f"{S}.canary", {"version": "latest", "weight": 10}, "a moving canary tag", key=f"{S}.canary.version"),
    case(f"{S}.canary", {"version": "sha-", "weight": 10}, "only a prefix", key=f"{S}.canary.version"),
    case(f"{S}.canary", {"weight": 10}, "a canary needs a version", key=f"{S}.canary.version"),
    case(f"{S}.canary", {"version": "1.5.0", "weight": 150}, "above 100%", key=f"{S}.canary.weight"),
    case(f"{S}.canary", {"version": "1.5.0", "weight": -1}, "negative weight", key=f"{S}.canary.weight"),
    case(f"{S}.canary", {"version": "1.5.0", "weight": "10"}, "a number given as a string",
         key=f"{S}.canary.weight"),
    # migrations (components/config/migrations.py)
    case(f"{S}.migration", {"command": ["/app/migrate", "up"], "down": ["/app/migrate", "down"]},
         "a migration needs a name", key=f"{S}.migration.name"),
    case(f"{S}.migration", {"name": "add sku", "command": ["/app/migrate", "up"], "irreversible": True},
         "names hold no spaces", key=f"{S}.migration.name"),
    case(f"{S}.migration", {"name": "0002-add-sku", "command": [], "irreversible": True},
         "an empty command", key=f"{S}.migration.command"),
    case(f"{S}.migration", {"name": "0002-add-sku", "command": ["/app/migrate", "up"]},
         "neither down nor irreversible: a rollback would not know", key=f"{S}.migration.down"),
    case(f"{S}.migration", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "down": ["/app/migrate", "down"],
                            "irreversible": True}, "both down and irreversible", key=f"{S}.migration.irreversible"),
    case(f"{S}.migration", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "irreversible": True,
                            "database": "orders"}, "not one of the service's databases", key=f"{S}.migration.database"),
    case(f"{S}.migration", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "irreversible": True,
                            "timeoutSeconds": 1}, "too short to migrate anything", key=f"{S}.migration.timeoutSeconds"),
    case(f"{S}.migration", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "irreversible": True,
                            "restored": 5}, "an id is text", key=f"{S}.migration.restored"),
    case(f"{S}.migration", "migrate", "an object, not a command line", key=f"{S}.migration"),
    case(f"{W}.migration", {"name": "0002-add-sku", "command": ["/app/migrate", "up"], "irreversible": True,
                            "database": "orders"}, "not a database of the worker", key=f"{W}.migration.database"),
    # --- databases.<name> -----------------------------------------------------------------
    renamed("databases", "main", "Main", "database names are lowercase DNS labels"),
    case(f"{D}.image", "127.0.0.1:5000/shop/postgres:15", "the tag belongs in version"),
    case(f"{D}.version", "latest", "a moving tag"),
    case(f"{D}.version", "sha-", "only the prefix of a commit build"),
    case(f"{D}.version", 15, "an unquoted number, not a version"),
    case(f"{D}.port", 0, "port 0"),
    case(f"{D}.port", "5432", "a port given as a string"),
    case(f"{D}.database", "", "an empty database name"),
    case(f"{D}.database", "a" * 64, "PostgreSQL truncates names to 63 bytes"),
    case(f"{D}.database", "shop db", "a database name with a space"),
    case(f"{D}.user", "", "an empty user"),
    case(f"{D}.user", "pg_app", "the pg_ prefix is reserved for PostgreSQL's own roles"),
    case(f"{D}.user", "app user", "a user name with a space"),
    case(f"{D}.passwordSecret", DELETE, "a password secret is required"),
    case(f"{D}.passwordSecret", "", "an empty config key"),
    case(f"{D}.passwordSecret", "main db password", "not a config key"),
    case(f"{D}.passwordSecret", "services", "a secret key that shadows a schema key"),
    case(f"{D}.storageSize", "lots", "not a size"),
    case(f"{D}.storageSize", "0Gi", "a zero size"),
    case(f"{D}.storageSize", 20, "a quantity is a string"),
    case(f"{D}.resources", ["100m", "256Mi"], "resources is an object"),
    case(f"{D}.resources.cpuRequest", "100 m", "a quantity holds no space"),
    case(f"{D}.resources.cpuLimit", "50m", "the limit below the default request", key=f"{D}.resources"),
    case(f"{D}.resources.memoryRequest", "64mb", "not a memory quantity"),
    case(f"{D}.resources.memoryLimit", "1", "below the default request", key=f"{D}.resources"),
    case(f"{D}.logRotation", 5, "logRotation is an object"),
    case(f"{D}.logRotation.maxSize", "-1m", "a negative size"),
    case(f"{D}.logRotation.maxFiles", 101, "more than 100 files"),
    case(f"{D}.backup", "daily", "backup is an object"),
    case(f"{D}.backup.schedule", "daily", "not a cron expression"),
    case(f"{D}.backup.schedule", "", "an empty schedule"),
    case(f"{D}.backup.schedule", "61 * * * *", "minute out of range"),
    case(f"{D}.backup.schedule", "0 25 * * *", "hour out of range"),
    case(f"{D}.backup.schedule", "0 2 32 * *", "day of month out of range"),
    case(f"{D}.backup.schedule", "0 2 * 13 *", "month out of range"),
    case(f"{D}.backup.schedule", "0 2 * * 8", "day of week out of range"),
    case(f"{D}.backup.schedule", "*/0 * * * *", "a zero step"),
    case(f"{D}.backup.schedule", "30-10 * * * *", "a reversed range"),
    case(f"{D}.backup.schedule", "0 2 30 2 *", "February 30th never comes"),
    case(f"{D}.backup.schedule", "0 0 2 * * *", "six fields (seconds) is not Kubernetes cron"),
    case(f"{D}.backup.schedule", "@daily", "crond on Docker takes five fields, not macros"),
    case(f"{D}.backup.schedule", "0 2 L * *", "L is not Kubernetes cron"),
    case(f"{D}.backup.schedule", "0 2 * * 1#2", "# is not Kubernetes cron"),
    case(f"{D}.backup.retentionDays", 0, "no retention"),
    case(f"{D}.backup.retentionDays", "7", "a number given as a string"),
    case(f"{D}.backup.retentionDays", 366, "more than a year"),
    case(f"{D}.backup.retentionCount", 0, "keeping no backup at all"),
    case(f"{D}.backup.retentionCount", "7", "a number given as a string"),
    case(f"{S}.volumes", {"Uploads": {"mountPath": "/data/uploads"}}, "not a volume name"),
    case(f"{S}.volumes", ["uploads"], "a list, not a map of volumes"),
    case(f"{S}.volumes", {"uploads": {"mountPath": "data/uploads"}}, "a relative path",
         key=f"{S}.volumes.uploads.mountPath"),
    case(f"{S}.volumes", {"uploads": {"mountPath": "/tmp/uploads"}}, "inside the pod's scratch space",
         key=f"{S}.volumes.uploads.mountPath"),
    case(f"{S}.volumes", {"uploads": {"mountPath": "/data/uploads", "size": "1GB"}}, "not a Kubernetes quantity",
         key=f"{S}.volumes.uploads.size"),
    case(f"{S}.volumes", {"uploads": {"mountPath": "/data/uploads", "backup": "yes"}}, "a boolean given as text",
         key=f"{S}.volumes.uploads.backup"),
    case(f"{S}.volumes", {"uploads": {"mountPath": "/data/uploads", "backupWith": "orders"}}, "no such database",
         key=f"{S}.volumes.uploads.backupWith"),
    case(f"{W}.volumes", {"cache": {"mountPath": "/data/cache"}, "media": {"mountPath": "/data/cache"}},
         "two volumes at one path"),
    case(f"{D}.backup.restoreDrillSchedule", "monthly", "not a cron expression"),
    case(f"{D}.backup.restoreDrillSchedule", "0 4 31 4 *", "April 31st never comes"),
    case(f"{D}.backup.restoreDrillSchedule", "0 4 1 * * 2025", "seven fields"),
    case(f"{D}.backup.maxAgeHours", 0, "zero hours"),
    case(f"{D}.backup.maxAgeHours", "26", "a number given as a string"),
    case(f"{D}.backup.maxAgeHours", 12, "a daily backup is always older than 12 hours", key=f"{D}.backup"),
    case(f"{D}.backup.beforeDeploy", "yes", "a boolean given as a word"),
    case(f"{D}.backup.beforeDeploy", 1, "a boolean given as a number"),
    # --- edge -------------------------------------------------------------------------------
    case("edge.image", "127.0.0.1:5000/shop/traefik:3.1.4", "the tag belongs in version"),
    case("edge.image", DELETE, "the edge image is required"),
    case("edge.version", "latest", "a moving tag"),
    case("edge.version", "sha-", "only the prefix of a commit build"),
    case("edge.version", DELETE, "the edge version is required"),
    case("edge.hosts", [], "no host"),
    case("edge.hosts", "shop.example.com", "hosts is a list"),
    case("edge.hosts", ["shop_example.com"], "'_' is not allowed in a host name"),
    case("edge.hosts", ["https://shop.example.com"], "a URL, not a host name"),
    case("edge.hosts", ["shop.example.com:443"], "a port is not part of a host name"),
    case("edge.hosts", ["-shop.example.com"], "a label starts with a letter or digit"),
    case("edge.hosts", ["shop..example.com"], "an empty label"),
    case("edge.hosts", ["x" * 64 + ".example.com"], "a label of more than 63 characters"),
    case("edge.hosts", ["Shop.Example.com"], "Kubernetes host names are lowercase"),
    case("edge.hosts", ["192.0.2.10"], "an IP address, not a host name"),
    case("edge.hosts", [""], "an empty host name"),
    case("edge.hosts", ["shop.example.com", "shop.example.com"], "a host named twice"),
    case("edge.hosts", ["*.example.com"], "a wildcard is not a host the edge can route"),
    case("edge.httpPort", 0, "port 0"),
    case("edge.httpPort", "80", "a port given as a string"),
    case("edge.httpPort", 30443, "the same port as HTTPS", stacks=("dev",)),
    case("edge.httpPort", 31443, "the same port as HTTPS", stacks=("staging",)),
    case("edge.httpPort", 443, "the same port as HTTPS", stacks=("prod",)),
    case("edge.httpsPort", 70000, "port above 65535"),
    case("edge.httpsPort", 8443, "outside the node port range", stacks=NODE_PORT_STACKS),
    case("edge.httpsPort", "443", "a port given as a string"),
    case("edge.tls.mode", "letsencrypt", "not a TLS mode"),
    case("edge.tls", {"mode": "acme"}, "acme needs an e-mail"),
    case("edge.tls", {"mode": "acme", "email": "platform-team"}, "not an e-mail address",
         key="edge.tls.email"),
    case("edge.tls", {"mode": "acme", "email": "ops@shop"}, "an e-mail domain has a dot",
         key="edge.tls.email"),
    case("edge.tls", {"mode": "acme", "email": "ops@shop.localhost"}, "a reserved e-mail domain",
         key="edge.tls.email"),
    case("edge.tls.email", "platform team@shop.example", "an e-mail address with a space"),
    case("edge.tls.acmeServer", "prod", "not an ACME server"),
    case("edge.tls.acmeServer", "http://10.250.0.1:14000/dir", "an ACME directory over plain HTTP"),
    case("edge.tls.acmeCaBundleFile", 14000, "a CA bundle file given as a number"),
    case("edge.tls.durationHours", 0, "a certificate that never lives"),
    case("edge.tls.durationHours", 8760, "longer than the 90 days ACME CAs issue for"),
    case("edge.tls.renewBeforeDays", 0, "no renewal margin"),
    case("edge.tls.renewBeforeDays", 90, "longer than a Let's Encrypt certificate lives"),
    case("edge.tls.renewBeforeDays", "30", "a number given as a string"),
    case("edge.resources", "small", "resources is an object"),
    case("edge.resources.cpuRequest", "1.5.0", "not a CPU quantity"),
    case("edge.resources.cpuLimit", "fast", "not a CPU quantity"),
    case("edge.resources.memoryRequest", "-64Mi", "negative memory"),
    case("edge.resources.memoryLimit", "32Mi", "the limit below the default request", key="edge.resources"),
    case("edge.logRotation", [], "logRotation is an object"),
    case("edge.logRotation.maxSize", "big", "not a size"),
    case("edge.logRotation.maxFiles", -1, "a negative count"),
    case("edge.tlsMode", "acme", "unknown edge key"),
    # --- alerting ---------------------------------------------------------------------------
    case("alerting.emailTo", [], "nobody to alert"),
    case("alerting.emailTo", "oncall@shop.example", "emailTo is a list"),
    case("alerting.emailTo", ["oncall"], "not an e-mail address"),
    case("alerting.emailTo", ["oncall@shop"], "an e-mail domain has a dot"),
    case("alerting.emailTo", ["oncall@shop.example", "oncall@shop.invalid"], "a reserved e-mail domain"),
    case("alerting.emailFrom", "alerts", "not an e-mail address"),
    case("alerting.emailFrom", "alerts@-shop.example", "a domain label starts with a letter or digit"),
    case("alerting.emailFrom", DELETE, "a sender is required"),
    case("alerting.smarthost", "smtp.shop.example", "no port"),
    case("alerting.smarthost", "smtp.shop.example:99999", "port above 65535"),
    case("alerting.smarthost", "smtp.shop.example:0", "port 0"),
    case("alerting.smarthost", "-smtp-.shop.example:587", "not a host name"),
    case("alerting.smarthost", ":587", "no host"),
    case("alerting.smtpUsername", "", "an empty user name"),
    case("alerting.smtpUsername", 42, "a user name is a string"),
    case("alerting.smtpPasswordSecret", "hunter2 hunter2", "a password pasted where the key belongs"),
    case("alerting.smtpPasswordSecret", "", "an empty config key"),
    case("alerting.smtpRequireTls", "yes", "a boolean given as a word"),
    case("alerting.webhookUrlSecretKey", "https://hooks.shop.example/T000", "a URL where the key name belongs"),
    case("alerting.heartbeatUrlSecretKey", "https://hb.shop.example/ping", "a URL where the key name belongs"),
    case("alerting.criticalGroupWait", "10", "a duration needs a unit"),
    case("alerting.criticalGroupWait", "5m", "critical alerts would wait more than 5 minutes", key="alerting"),
    case("alerting.groupWait", "thirty seconds", "not a duration"),
    case("alerting.groupInterval", "1 minute", "not a duration"),
    case("alerting.groupInterval", "0s", "Alertmanager refuses a zero group interval"),
    case("alerting.repeatInterval", "forever", "not a duration"),
    case("alerting.repeatInterval", "0h", "Alertmanager refuses a zero repeat interval"),
    case("alerting.thresholds", [0.05], "thresholds is an object"),
    case("alerting.thresholds.errorRate", 0, "an error rate of 0 always fires"),
    case("alerting.thresholds.errorRate", 1.5, "a share above 1"),
    case("alerting.thresholds.errorRate", "5%", "a share is a number, not a percentage"),
    case("alerting.thresholds.p95LatencySeconds", 0, "zero latency"),
    case("alerting.thresholds.p95LatencySeconds", "500ms", "seconds are a number, not a duration"),
    case("alerting.thresholds.certWarningDays", 0, "zero days"),
    case("alerting.thresholds.certWarningDays", 5, "warning after critical", key="alerting.thresholds"),
    case("alerting.thresholds.certCriticalDays", 0, "zero days"),
    case("alerting.thresholds.certCriticalDays", "7", "a number given as a string"),
    case("alerting.thresholds.backupMaxAgeHours", 0, "zero hours"),
    case("alerting.thresholds.backupMaxAgeHours", "26", "a number given as a string"),
    case("alerting.thresholds.diskUsageRatio", 1.2, "a share above 1"),
    case("alerting.thresholds.dbConnectionsRatio", 0, "a share of 0 always fires"),
    case("alerting.thresholds.restarts15m", 7, "CrashLoopBackOff never restarts 7 times in 15 minutes"),
    case("alerting.thresholds.restarts15m", "3", "a number given as a string"),
    case("alerting.thresholds.serviceDownFor", "2 minutes", "not a Prometheus duration"),
    case("alerting.thresholds.backupFor", "", "an empty duration"),
    case("alerting.thresholds.certificateFor", "a quarter hour", "not a Prometheus duration"),
    case("alerting.thresholds.runbookBaseUrl", "", "an empty runbook URL"),
    case("alerting.thresholds.runbookBaseUrl", "docs/runbooks/alerts.md#top", "the anchor is the alert's"),
    case("alerting.thresholds.runbookBaseUrl", "see the wiki", "not a URL or path"),
    case("alerting.webhookSeverities", ["info"], "info alerts go to dashboards, not the webhook"),
    case("alerting.webhookSeverities", [], "a webhook for no severity"),
    case("alerting.heartbeatInterval", "often", "not a duration"),
    case("alerting.emailCc", ["x@shop.example"], "unknown alerting key"),
    # --- monitoring -------------------------------------------------------------------------
    case("monitoring.prometheusImage", "prom/prometheus:v2.42.0", "the tag belongs in version"),
    case("monitoring.prometheusVersion", "latest", "a moving tag"),
    case("monitoring.alertmanagerImage", "Prom/Alertmanager", "repositories are lowercase"),
    case("monitoring.alertmanagerVersion", "sha-", "only the prefix of a commit build"),
    case("monitoring.exporterImage", "", "an empty repository"),
    case("monitoring.exporterVersion", "master", "a moving tag"),
    case("monitoring.nodeExporterImage", "prom/node-exporter:v1.5.0", "the tag belongs in version"),
    case("monitoring.nodeExporterVersion", "latest", "a moving tag"),
    case("monitoring.postgresExporterImage", "Postgres-Exporter", "repositories are lowercase"),
    case("monitoring.postgresExporterVersion", "sha-", "only the prefix of a commit build"),
    case("monitoring.blackboxExporterImage", "", "an empty repository"),
    case("monitoring.blackboxExporterVersion", "main", "a moving tag"),
    case("monitoring.scrapeIntervalSeconds", 0, "scrape without pause"),
    case("monitoring.scrapeIntervalSeconds", "15", "a number given as a string"),
    case("monitoring.prometheusHostPort", 0, "port 0"),
    case("monitoring.prometheusHostPort", "9090", "a port given as a string"),
    # --- smokeTest --------------------------------------------------------------------------
    case("smokeTest.enabled", "false", "a boolean given as a string"),
    case("smokeTest.baseUrl", "127.0.0.1:30443", "a URL needs a scheme"),
    case("smokeTest.baseUrl", "ftp://127.0.0.1", "the edge speaks HTTP(S)"),
    case("smokeTest.baseUrl", "", "an empty URL"),
    case("smokeTest.hostHeader", "shop dev", "not a host name"),
    case("smokeTest.hostHeader", "unrouted.example.com", "a host the edge does not route"),
    case("smokeTest.verifyTls", "no", "a boolean given as a word"),
    case("smokeTest.attempts", 2, "fewer than three attempts"),
    case("smokeTest.attempts", "8", "a number given as a string"),
    case("smokeTest.delaySeconds", -1, "a negative delay"),
    case("smokeTest.delaySeconds", "2", "a number given as a string"),
    case("smokeTest.timeoutSeconds", 0, "a zero timeout"),
    case("smokeTest.checkVersion", "true", "a boolean given as a string"),
    case("smokeTest.settleSeconds", -5, "a negative settle window"),
    case("smokeTest.settleSeconds", "60", "a number given as a string"),
    # --- promotion --------------------------------------------------------------------------
    case("promotion.stagingStack", "", "an empty stack name"),
    case("promotion.stagingStack", "organization/platform/staging/extra", "too many parts"),
    case("promotion.stagingStack", "shop staging", "a stack name with a space"),
    case("promotion.requireVerified", "true", "a boolean given as a string"),
    case("promotion.requireVerified", True, "requireVerified without a stack to verify against", key="promotion",
         stacks=("dev", "staging")),
    case("promotion.overrides", {"cart": {"version": "1.0.0", "reason": "hotfix approved by on-call"}},
         "an override for a service that does not exist"),
    case("promotion.overrides", {"api": {"version": "1.0.0", "reason": "x"}}, "a reason too short to audit",
         key="promotion.overrides.api.reason"),
    case("promotion.overrides", {"api": {"version": "latest", "reason": "hotfix approved by on-call"}},
         "a moving tag", key="promotion.overrides.api.version"),
    case("promotion.overrides", {"api": {"reason": "hotfix approved by on-call"}}, "an override needs a version",
         key="promotion.overrides.api.version"),
    case("promotion.overrides", ["api"], "overrides is a map"),
    # --- kubernetes -------------------------------------------------------------------------
    case("kubernetes.namespace", "Shop_Dev", "not a DNS label"),
    case("kubernetes.namespace", "", "an empty namespace"),
    case("kubernetes.namespace", "shop-" + "x" * 60, "more than 63 characters"),
    case("kubernetes.namespace", "-shop", "a label starts with a letter or digit"),
    case("kubernetes.namespace", "shop.dev", "namespaces hold no dots"),
    case("kubernetes.namespace", 5, "a namespace is a string"),
    case("kubernetes.kubeconfig", "", "an empty path"),
    case("kubernetes.context", "", "an empty context"),
    case("kubernetes.renderToDirectory", "", "an empty directory"),
    case("edge.tls.acmeCaBundleFile", "/nonexistent/pebble-ca.pem", "a CA bundle file that is not on this machine",
         stacks=NODE_PORT_STACKS),
    case("kubernetes.storageClass", "Fast SSD", "not a Kubernetes object name"),
    case("kubernetes.storageClass", "", "an empty storage class"),
    case("kubernetes.edgeServiceType", "nodeport", "service types are PascalCase"),
    case("kubernetes.edgeServiceType", "Ingress", "not a service type"),
    case("kubernetes.ingressClass", "", "an empty ingress class"),
    case("kubernetes.ingressClass", "Traefik Class", "not a Kubernetes object name"),
    case("kubernetes.progressDeadlineSeconds", 5, "shorter than a pod can start"),
    case("kubernetes.progressDeadlineSeconds", "180", "a number given as a string"),
    case("kubernetes.progressDeadlineSeconds", 3601, "more than an hour"),
    # --- rollout ----------------------------------------------------------------------------
    case("rollout.steps", [], "no steps"),
    case("rollout.steps", [50, 10, 100], "steps that go down"),
    case("rollout.steps", [0, 100], "a step of 0%"),
    case("rollout.steps", [10, 150], "a step above 100%"),
    case("rollout.steps", "10,50,100", "steps is a list"),
    case("rollout.steps", ["10", "50", "100"], "numbers given as strings"),
    case("rollout.successRate", 1.5, "a share above 1"),
    case("rollout.successRate", "1", "a whole number given as a string"),
    case("rollout.timeoutRate", -0.1, "a negative share"),
    case("rollout.requests", 0, "no requests to analyse"),
    case("rollout.requests", "50", "a number given as a string"),
    case("rollout.timeoutSeconds", 0, "a zero timeout"),
    case("rollout.prometheus", {"window": "2m"}, "Prometheus analysis without the URL to ask"),
    case("rollout.prometheus", {"url": "http://127.0.0.1:9090", "colour": "red"}, "an unknown key"),
    case("rollout.prometheus.url", "127.0.0.1:9090", "a URL needs a scheme"),
    case("rollout.prometheus.window", "2 minutes", "not a range such as 2m"),
    case("rollout.prometheus.timeoutBucket", "+Inf", "every request is below +Inf"),
    case("rollout.prometheus.requestsQuery", "", "an empty query"),
    case("rollout.prometheus.successQuery", "", "an empty query"),
    case("rollout.prometheus.timeoutQuery", "", "an empty query"),
    case("rollout.prometheus.minRequests", 0, "no evidence needed"),
    case("rollout.prometheus.queryTimeoutSeconds", 0, "a zero timeout"),
    # --- drills -----------------------------------------------------------------------------
    case("drills.rollbackSeconds", 0, "a zero target"),
    case("drills.rollbackSeconds", "180", "a number given as a string"),
    case("drills.restoreSeconds", -1, "a negative target"),
    case("drills.restoreSeconds", 3600.5, "seconds are whole"),
    # --- docker -----------------------------------------------------------------------------
    case("docker.host", "localhost:2375", "an address needs unix:// or ssh://"),
    case("docker.host", "http://docker.shop.example", "not a Docker daemon address"),
    case("docker.host", "", "an empty address"),
    case("docker.bindAddress", "localhost", "Docker binds to an IP address"),
    case("docker.bindAddress", "999.0.0.1", "not an IP address"),
    case("docker.bindAddress", "", "an empty address"),
    case("docker.readinessTimeoutSeconds", 4, "less time than a container needs to start"),
    case("docker.readinessTimeoutSeconds", "30", "a number given as a string"),
    case("docker.internalSubnet", "172.30.130.1/24", "host bits set"),
    case("docker.internalSubnet", "not-a-network", "not a network"),
    case("docker.internalSubnet", "172.30.130.0/30", "too small for a stack"),
    # --- notifications and preflight (deployctl) -------------------------------------------
    case("notifications", "https://hooks.example.com", "notifications is an object of channels"),
    case("notifications.timeoutSeconds", 0, "a zero timeout"),
    case("notifications.pagerduty", {"urlSecret": "pdUrl"}, "not a channel deployctl knows"),
    case("notifications.webhook", "https://hooks.example.com/x", "a channel is an object"),
    case("notifications.webhook.urlSecret", "https://hooks.example.com/x", "a URL where a secret key name belongs"),
    case("notifications.webhook.events", ["deployed"], "not an event"),
    case("notifications.slack", {"urlSecret": "slackUrl", "events": []}, "a channel told about nothing"),
    case("notifications.slack.urlSecret", "", "an empty key name"),
    case("notifications.slack.events", ["success", "success"], "an event twice"),
    case("notifications.dingtalk", {"urlSecret": "ding url", "signSecret": "SECabc def"}, "names with spaces"),
    case("notifications.dingtalk.signSecret", "SEC 123", "a key name with a space"),
    case("notifications.dingtalk.events", "failure", "events is a list"),
    case("notifications.email", {"to": [], "emailFrom": "deploy@example.com", "smtpHost": "smtp.example.com",
                                 "smtpPort": 0, "starttls": "yes", "username": "", "passwordSecret": "smtp pw",
                                 "events": ["nope"]}, "every field of the e-mail channel wrong"),
    case("notifications.email.to", ["not-an-address"], "not an e-mail address"),
    case("notifications.email.emailFrom", "deploy@", "not an e-mail address"),
    case("notifications.email.smtpHost", "smtp.example.com:587", "a port in the host"),
    case("preflight", 20, "preflight is an object"),
    case("preflight.minFreeDiskPercent", 120, "more than all of the disk"),
    case("preflight.minFreeDiskPercent", "20", "a number given as a string"),
    case("preflight.registryTimeoutSeconds", 0, "a zero timeout"),
]


def broken_configs() -> list[tuple[str, Case]]:
    return [(stack, c) for c in CORPUS for stack in c.stacks]


def run_load(stack: str, raw: dict[str, Any]) -> LoadedConfig:
    """Hand `raw` to the program as `pulumi up` would (top-level values as strings, objects as JSON)."""
    set_stack_config({f"{PROJECT}:{key}": value for key, value in raw.items()}, DEV_SECRETS)
    return load(stack)


def refusal(stack: str, broken: Case) -> str | None:
    """None when `broken` is refused naming the stack file and the key, else what went wrong."""
    raw = copy.deepcopy(raw_stack_config(stack))
    broken.apply(raw)
    try:
        run_load(stack, raw)
    except ConfigError as error:
        message = str(error)
        if not message.startswith(f"Pulumi.{stack}.yaml: invalid configuration"):
            return f"message does not name Pulumi.{stack}.yaml: {message}"
        if not re.search(rf"{re.escape(broken.expected_key)}(?![\w-])", message):
            return f"message does not name {broken.expected_key}: {message}"
        return None
    except Exception as error:  # noqa: BLE001 - a crash is a refusal without a message: report it
        return f"crashed instead of refusing: {type(error).__name__}: {error}"
    return "accepted"


def test_refuses_every_broken_config_in_the_corpus_naming_file_and_key(mocks):
    corpus = broken_configs()
    problems = []
    for stack, broken in corpus:
        problem = refusal(stack, broken)
        if problem:
            problems.append(f"{stack}: {broken.path}={broken.value!r} ({broken.why}): {problem}")
    print(f"\nrefused {len(corpus) - len(problems)} of {len(corpus)} broken configs")
    assert not problems, "\n".join(problems)


def test_corpus_holds_at_least_150_broken_configs():
    assert len(broken_configs()) >= 150


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_file_still_loads(mocks, stack):
    loaded = run_load(stack, raw_stack_config(stack))
    assert loaded.platform.environment == stack


def schema_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key path of the stack file schema, `*` standing for a map's names."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        keys.add(key)
        for nested, path in _models_in(info.annotation, key):
            keys |= schema_keys(nested, f"{path}.")
    return keys


def _models_in(annotation: Any, key: str) -> list[tuple[type[BaseModel], str]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, key)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict:
        return _models_in(args[1], f"{key}.*")
    if origin in (typing.Union, types.UnionType):
        return [found for arg in args for found in _models_in(arg, key)]
    return []


def generalised(path: str) -> str:
    parts = path.split(".")
    for index, part in enumerate(parts[:-1]):
        if part in ("services", "databases", "overrides", "volumes") and (index == 0 or part in ("overrides", "volumes")):
            parts[index + 1] = "*"
    return ".".join(parts)


def test_corpus_mutates_every_key_of_the_schema():
    mutated = {generalised(c.path) for c in CORPUS}
    # a whole-object mutation (edge.tls = {...}) also counts for the keys it sets
    for c in CORPUS:
        if isinstance(c.value, dict):
            mutated |= {generalised(f"{c.path}.{k}") for k in c.value}
            for name, entry in c.value.items():
                if isinstance(entry, dict):
                    mutated |= {generalised(f"{c.path}.{name}.{k}") for k in entry}
    missing = sorted(schema_keys(PlatformConfig) - mutated)
    assert not missing, f"keys no broken config mutates: {missing}"


def test_schema_keys_are_the_ones_pulumi_yaml_documents():
    documented = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    top_level = {key.removeprefix(f"{PROJECT}:") for key in documented}
    assert top_level == {k for k in schema_keys(PlatformConfig) if "." not in k}
