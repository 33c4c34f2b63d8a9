"""disallow-plaintext-secrets: credentials never sit in plain text in a container's environment or a ConfigMap.

What a policy can see of secretness (pulumi-policy 1.21.0, pulumi_policy/policy.py):
Analyze and AnalyzeStack call `deserialize_properties(...)` without `proxy_secrets`, so a
secret input arrives *unwrapped*, as the plain value, with no marker. Only Remediate
wraps secrets in `pulumi_policy.Secret`. The rule accepts `Secret`-wrapped values (a whole
list, an item, or a single value) so it stays right if the SDK starts passing markers, but
today a Docker `envs` entry built from a secret Output looks like plain text here. Ways
that pass: Kubernetes `valueFrom.secretKeyRef`, or a `<NAME>_FILE` variable pointing at a
mounted secret file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, ReportViolation, Secret, Severity

from ._docs import doc_url
from ._workloads import (
    DOCKER_CONTAINER,
    K8S_CONFIGMAP,
    as_list,
    as_mapping,
    is_kubernetes_workload,
    is_workload,
    kubernetes_containers,
    labels_of,
    service_name,
    subject,
)

NAME = "disallow-plaintext-secrets"

CREDENTIAL_NAME_RE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL")
# A URL with a password in it (postgres://app:s3cret@db/app), whatever the variable is called (DSN, DATABASE_URL).
URL_CREDENTIALS_RE = re.compile(r"://[^/\s:@]*:[^/\s@]+@")
# NAME_FILE holds the path of a mounted secret (the convention of the official images), not the secret.
FILE_REFERENCE_SUFFIX = "_FILE"


def _normalize(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def is_plaintext_credential(name: object, value: object) -> bool:
    if isinstance(value, Secret) or not isinstance(name, str) or not isinstance(value, str) or not value:
        return False
    normalized = _normalize(name)
    if normalized.endswith(FILE_REFERENCE_SUFFIX):
        return False
    return bool(CREDENTIAL_NAME_RE.search(normalized) or URL_CREDENTIALS_RE.search(value))


def _docker_env_names(props: Mapping) -> list[str]:
    envs = props.get("envs")
    if isinstance(envs, Secret):
        return []
    names = []
    for entry in as_list(envs):
        if isinstance(entry, str):
            name, _, value = entry.partition("=")
            if is_plaintext_credential(name, value):
                names.append(name)
    return names


def _kubernetes_env_names(env: object) -> list[str]:
    if isinstance(env, Secret):
        return []
    names = []
    for var in as_list(env):
        var = as_mapping(var)  # a Secret-wrapped item is not a mapping: skipped
        if is_plaintext_credential(var.get("name"), var.get("value")):
            names.append(var["name"])
    return names


def _configmap_keys(props: Mapping) -> list[str]:
    data = props.get("data")
    if isinstance(data, Secret):
        return []
    data = as_mapping(data)
    return [key for key in data if is_plaintext_credential(key, data[key])]


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != K8S_CONFIGMAP and not is_workload(args.resource_type):
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    if args.resource_type == DOCKER_CONTAINER:
        for name in _docker_env_names(args.props):
            report_violation(f"{subject(service)} sets '{name}' in plain text in envs", None)
    elif args.resource_type == K8S_CONFIGMAP:
        for key in _configmap_keys(args.props):
            report_violation(f"{subject(service, 'ConfigMap')} holds '{key}' in plain text", None)
    elif is_kubernetes_workload(args.resource_type):
        for container in kubernetes_containers(args.resource_type, args.props):
            for name in _kubernetes_env_names(container.spec.get("env")):
                report_violation(f"{subject(service, container.where)} sets env '{name}' in plain text", None)


POLICY = ResourceValidationPolicy(
    name=NAME,
    description="Checks that credentials are never set in plain text in container environments or ConfigMaps.",
    validate=validate,
    severity=Severity.CRITICAL,
    remediation_steps=(
        "Keep the value in stack config as a secret (pulumi config set --secret platform:<key>). On Kubernetes, "
        "put it in a Secret and reference it with env[].valueFrom.secretKeyRef; move ConfigMap credentials into "
        "a Secret. On Docker, mount the secret as a file and pass its path as <NAME>_FILE."
    ),
    url=doc_url(NAME),
)
