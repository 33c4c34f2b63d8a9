"""Fixtures for the policy-pack tests: known-good engine-shaped resources and policy runners.

Every resource fixture returns a fresh dict with camelCase keys as the engine sends
them, so a test mutates exactly one field. See policy_helpers.py for the engine path.
Labels and version annotations come from the program's own helpers (standard_labels,
components/versioning.py), so a fixture carries exactly what the program writes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from policy_helpers import (
    PG_IMAGE,
    Resource,
    docker_labels,
    engine_props,
    kubernetes_labels,
    urn,
    version_annotations,
)
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def _collect(policy, args) -> list[str]:
    messages: list[str] = []

    def report_violation(message: str, _urn: str | None = None) -> None:
        messages.append(message)

    policy.validate(args, report_violation)
    return messages


@pytest.fixture
def check() -> Callable[..., list[str]]:
    """check(policy, type, name, raw_props, config=None, props=None) -> messages of a resource policy.

    `props` bypasses the engine path, for props built by hand (e.g. with Secret markers).
    """

    def run(policy, resource_type: str, name: str, raw: dict | None, config: dict | None = None, props=None):
        props = props if props is not None else engine_props(raw)
        args = ResourceValidationArgs(resource_type, props, urn(resource_type, name), name, _options(), None, config)
        return _collect(policy, args)

    return run


@pytest.fixture
def check_stack() -> Callable[..., list[str]]:
    """check_stack(policy, [(type, name, raw_props), ...], config=None) -> messages of a stack policy."""

    def run(policy, resources: list[Resource], config: dict | None = None):
        policy_resources = [
            PolicyResource(t, engine_props(raw), urn(t, n), n, _options(), None, None, [], {})
            for t, n, raw in resources
        ]
        return _collect(policy, StackValidationArgs(policy_resources, config))

    return run


def _labels(name: str, component: str, version: str, **extra: str) -> dict[str, str]:
    return {**kubernetes_labels(name, component, version), **extra}


def _resources(cpu: str, memory: str) -> dict:
    return {"limits": {"cpu": cpu, "memory": memory}, "requests": {"cpu": cpu, "memory": memory}}


def _http_probe(path: str, port: int) -> dict:
    return {"httpGet": {"path": path, "port": port}, "timeoutSeconds": 3, "periodSeconds": 10, "failureThreshold": 3}


def _restricted() -> dict:
    """A hardened container securityContext, fresh for each container so a test mutates only one."""
    return {"allowPrivilegeEscalation": False, "privileged": False, "runAsNonRoot": True,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
# The pod level of a hardened pod (components/targets/kubernetes_pods.py writes the same).
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.fixture
def docker_api() -> dict:
    """docker:index/container:Container `api`, as components would build it."""
    return {
        "name": "platform-staging-api",
        "image": "ghcr.io/acme/api:1.4.2",
        "labels": docker_labels("api", "api", "1.4.2"),
        "envs": ["LOG_LEVEL=info", "PORT=8080", "DB_PASSWORD_FILE=/run/secrets/db_password"],
        "memory": 512,
        "cpus": "0.5",
        "healthcheck": {
            "tests": ["CMD", "curl", "-f", "http://localhost:8080/health"],
            "interval": "10s",
            "timeout": "3s",
            "retries": 3,
        },
        "privileged": False,
        "restart": "unless-stopped",
        "networksAdvanced": [{"name": "platform-staging", "aliases": ["api"]}],
        "ports": [{"internal": 8080}],
        "wait": True,
        "waitTimeout": 60,
    }


@pytest.fixture
def docker_edge() -> dict:
    """docker:index/container:Container `edge` (the TLS-terminating proxy)."""
    return {
        "name": "platform-staging-edge",
        "image": "docker.io/library/caddy:2.8.4",
        "labels": docker_labels("edge", "edge", "2.8.4", **{"deploy.platform/tls": "enabled"}),
        "memory": 256,
        "cpus": "0.25",
        "healthcheck": {"tests": ["CMD", "wget", "-qO-", "http://localhost:2019/config/"], "interval": "10s"},
        "ports": [{"internal": 443, "external": 443}],
        "restart": "unless-stopped",
    }


@pytest.fixture
def remote_image() -> dict:
    return {"name": "ghcr.io/acme/api:1.4.2", "keepLocally": True}


@pytest.fixture
def deployment() -> dict:
    """kubernetes:apps/v1:Deployment `web` with an init container."""
    labels = _labels("web", "web", "1.4.2")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "platform", "labels": labels, "annotations": version_annotations("1.4.2")},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": version_annotations("1.4.2")},
                "spec": {
                    "securityContext": dict(POD_SECURITY),
                    "initContainers": [
                        {
                            "name": "migrate",
                            "image": "ghcr.io/acme/web:1.4.2",
                            "command": ["/app/migrate"],
                            "resources": _resources("100m", "128Mi"),
                            "securityContext": _restricted(),
                        }
                    ],
                    "containers": [
                        {
                            "name": "web",
                            "image": "ghcr.io/acme/web:1.4.2",
                            "ports": [{"containerPort": 8080}],
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "password"}}},
                            ],
                            "resources": _resources("500m", "256Mi"),
                            "readinessProbe": _http_probe("/ready", 8080),
                            "livenessProbe": _http_probe("/health", 8080),
                            "securityContext": _restricted(),
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
def statefulset() -> dict:
    """kubernetes:apps/v1:StatefulSet `postgres-main` (a database)."""
    labels = _labels("postgres-main", "database", "16.4")
    probe = {"exec": {"command": ["pg_isready", "-U", "app"]}, "timeoutSeconds": 3}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "postgres-main", "namespace": "platform", "labels": labels,
                     "annotations": version_annotations("16.4")},
        "spec": {
            "serviceName": "postgres-main",
            "selector": {"matchLabels": {"app.kubernetes.io/name": "postgres-main"}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": version_annotations("16.4")},
                "spec": {
                    "securityContext": {**POD_SECURITY, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999},
                    "containers": [
                        {
                            "name": "postgres",
                            "image": PG_IMAGE,
                            "env": [
                                {"name": "POSTGRES_USER", "value": "app"},
                                {
                                    "name": "POSTGRES_PASSWORD",
                                    "valueFrom": {"secretKeyRef": {"name": "postgres-main", "key": "password"}},
                                },
                            ],
                            "resources": _resources("1", "1Gi"),
                            "readinessProbe": probe,
                            "livenessProbe": probe,
                            "securityContext": _restricted(),
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture
def cronjob() -> dict:
    """kubernetes:batch/v1:CronJob `postgres-main-backup` (component backup)."""
    labels = _labels("postgres-main-backup", "backup", "16.4", **{"deploy.platform/database": "postgres-main"})
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "postgres-main-backup", "namespace": "platform", "labels": labels,
                     "annotations": version_annotations("16.4")},
        "spec": {
            "schedule": "0 3 * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "metadata": {"labels": dict(labels), "annotations": version_annotations("16.4")},
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": {**POD_SECURITY, "runAsUser": 999, "runAsGroup": 999},
                            "containers": [
                                {
                                    "name": "backup",
                                    "image": PG_IMAGE,
                                    "command": ["/bin/sh", "-c", "pg_dump -Fc > /backup/$(date +%F).dump"],
                                    "env": [
                                        {
                                            "name": "PGPASSWORD",
                                            "valueFrom": {"secretKeyRef": {"name": "postgres-main", "key": "password"}},
                                        }
                                    ],
                                    "resources": _resources("250m", "256Mi"),
                                    "securityContext": _restricted(),
                                }
                            ],
                        },
                    }
                }
            },
        },
    }


@pytest.fixture
def configmap() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "api-config", "namespace": "platform", "labels": _labels("api", "api", "1.4.2")},
        "data": {"LOG_LEVEL": "info", "DATABASE_HOST": "postgres-main", "DATABASE_URL": "postgres://postgres-main:5432/app"},
    }


@pytest.fixture
def ingress() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "platform", "labels": _labels("web", "web", "1.4.2")},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["app.example.com", "*.api.example.com"], "secretName": "platform-tls"}],
            "rules": [
                {"host": "app.example.com", "http": {"paths": [_backend("/", "web")]}},
                {"host": "v1.api.example.com", "http": {"paths": [_backend("/", "api")]}},
            ],
        },
    }


def _backend(path: str, service: str) -> dict:
    return {"path": path, "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}


@pytest.fixture
def certificate() -> dict:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "platform-tls", "namespace": "platform"},
        "spec": {
            "secretName": "platform-tls",
            "dnsNames": ["app.example.com", "*.api.example.com"],
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
        },
    }


@pytest.fixture
def default_deny() -> dict:
    """kubernetes:networking.k8s.io/v1:NetworkPolicy `default-deny` of the fixtures' namespace."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": "platform"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


@pytest.fixture
def good_stack(docker_api, docker_edge, deployment, statefulset, cronjob, configmap, ingress, certificate,
               default_deny) -> list[Resource]:
    """A whole known-good stack; it shares the fixture dicts, so mutating one fixture changes the stack."""
    return [
        ("docker:index/container:Container", "api", docker_api),
        ("docker:index/container:Container", "edge", docker_edge),
        ("kubernetes:apps/v1:Deployment", "web", deployment),
        ("kubernetes:apps/v1:StatefulSet", "postgres-main", statefulset),
        ("kubernetes:batch/v1:CronJob", "postgres-main-backup", cronjob),
        ("kubernetes:core/v1:ConfigMap", "api-config", configmap),
        ("kubernetes:networking.k8s.io/v1:Ingress", "web", ingress),
        ("kubernetes:cert-manager.io/v1:Certificate", "platform-tls", certificate),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "default-deny", default_deny),
    ]
