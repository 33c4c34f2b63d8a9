"""require-verified-version: prod runs only versions that staging verified.

The verified versions are not in the repository: the operator tool (`deployctl promote`)
reads staging's `verifiedVersions` output and writes them into the policy config it
passes with `--policy-pack-config`. Without them the rule fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from ._docs import doc_url
from ._images import image_uses, names_version, parse_image
from ._workloads import (
    APP_COMPONENTS,
    COMPONENT_LABEL,
    NAME_LABEL,
    VERSION_LABEL,
    as_list,
    as_mapping,
    is_workload,
    labels_of,
)

NAME = "require-verified-version"

MISSING_VERIFIED_VERSIONS = (
    "verified versions are missing from this policy's config (verifiedVersions), so no version can be "
    "checked: run the preview and the update through 'deployctl promote staging prod', which passes "
    "staging's verified versions to the policy pack"
)

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "verifiedVersions": {
            "type": "object",
            "description": "Service name -> versions whose smoke tests passed in staging (written by deployctl).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "overrides": {
            "type": "object",
            "description": "Service name -> an audited exception: the one version allowed anyway, and why.",
            "additionalProperties": {
                "type": "object",
                "properties": {"version": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["version", "reason"],
            },
        },
    },
)


def _verified_for(verified: Mapping, service: str) -> list[str]:
    value = verified.get(service)
    if isinstance(value, str):  # tolerate a single version where a list is expected
        return [value]
    return [v for v in as_list(value) if isinstance(v, str)]


def _override_problem(overrides: Mapping, service: str, version: str) -> str | None:
    """None when an override admits this version; otherwise a suffix for the message ("" if no override)."""
    override = as_mapping(overrides.get(service))
    if override.get("version") != version:
        return ""
    reason = override.get("reason")
    return None if isinstance(reason, str) and reason.strip() else "; its override has no reason"


def _problems(resource: PolicyResource, verified: Mapping, overrides: Mapping) -> list[str]:
    labels = labels_of(resource.resource_type, resource.props)
    if labels.get(COMPONENT_LABEL) not in APP_COMPONENTS:
        return []  # infrastructure (database, backup, monitoring, ...) is not promoted through staging
    service, version = labels.get(NAME_LABEL), labels.get(VERSION_LABEL)
    if not isinstance(service, str) or not service:
        return [f"workload '{resource.name}' cannot be verified: it has no {NAME_LABEL} label"]
    if not isinstance(version, str) or not version:
        return [f"service '{service}' cannot be verified: it has no {VERSION_LABEL} label"]

    problems = []
    accepted = _verified_for(verified, service)
    if version not in accepted:
        suffix = _override_problem(overrides, service, version)
        if suffix is not None:
            shown = ", ".join(accepted) or "none"
            problems.append(
                f"service '{service}' version '{version}' was not verified in staging (verified: {shown}){suffix}"
            )

    # The label is only a claim: the image that runs must name the same version.
    uses = image_uses(resource.resource_type, resource.props, include_init=False)
    images: list[Any] = [use.image for use in uses]
    if not images or not all(isinstance(image, str) and image for image in images):
        problems.append(f"service '{service}' cannot be verified: its image is not known")
    elif not any(names_version(parse_image(image), version) for image in images):
        problems.append(f"service '{service}' runs no image with version '{version}' (images: {', '.join(images)})")
    return problems


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    if "verifiedVersions" not in config:
        report_violation(MISSING_VERIFIED_VERSIONS, None)
        return
    verified = as_mapping(config.get("verifiedVersions"))
    overrides = as_mapping(config.get("overrides"))
    for resource in args.resources:
        if not is_workload(resource.resource_type):
            continue
        try:
            problems = _problems(resource, verified, overrides)
        except UnknownValueError as error:
            # The SDK would turn this into an advisory "can't run during preview" note: fail closed instead.
            problems = [f"workload '{resource.name}' cannot be verified: {error.message}"]
        for problem in problems:
            report_violation(problem, resource.urn)


POLICY = StackValidationPolicy(
    name=NAME,
    description=(
        "Checks that every application service runs a version that staging verified, or an override with a reason."
    ),
    validate=validate,
    config_schema=CONFIG_SCHEMA,
    severity=Severity.CRITICAL,
    remediation_steps=(
        "Deploy the version to staging first and let its smoke tests pass, then run "
        "'deployctl promote staging prod'. For an emergency, add an override {version, reason} for the "
        "service to the policy config; a version without a reason is still refused."
    ),
    url=doc_url(NAME),
)
