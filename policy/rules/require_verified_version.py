"""require-verified-version: prod runs only versions that staging verified.

The verified versions are not in the repository: the operator tool (`deployctl promote`)
reads staging's `verifiedVersions` output and writes them into the policy config it
passes with `--policy-pack-config`. Without them the rule fails closed: a stack that
promotes from staging, is prod, or does not say which environment it is, is refused.
Only a stack whose `environment` output is dev or staging (and that promotes from
nowhere) has nothing to check without a verified list.

The version compared is the full one (VERSION_ANNOTATION; a Docker label of that name):
the version label shortens a digest to fit Kubernetes' 63 characters.
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

from components.versioning import version_label_value

from ._docs import doc_url
from ._images import image_uses, names_version, parse_image
from ._workloads import (
    APP_COMPONENTS,
    COMPONENT_LABEL,
    NAME_LABEL,
    VERSION_ANNOTATION,
    VERSION_LABEL,
    annotations_of,
    as_list,
    as_mapping,
    is_workload,
    labels_of,
)

NAME = "require-verified-version"

# What the program registers (components/promotion.py, __main__.py): the gate component of a
# stack that promotes from staging, and the root stack, whose `environment` output is
# dev, staging or prod.
PROMOTION_GATE = "platform:release:PromotionGate"
ROOT_STACK = "pulumi:pulumi:Stack"
ENVIRONMENT_OUTPUT = "environment"
# Environments that take no versions from another stack: without a verified list there is nothing to check.
UNPROMOTED_ENVIRONMENTS = frozenset({"dev", "staging"})

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


def _is_app(resource: PolicyResource) -> bool:
    """Infrastructure (database, backup, monitoring, ...) is not promoted through staging."""
    if not is_workload(resource.resource_type):
        return False
    try:
        return labels_of(resource.resource_type, resource.props).get(COMPONENT_LABEL) in APP_COMPONENTS
    except UnknownValueError:
        return True  # unknown during preview: it may be an application, so it is checked (fails closed)


def _full_version(resource: PolicyResource, service: str, label: str) -> tuple[str | None, list[str]]:
    """The version the workload runs, from VERSION_ANNOTATION (Docker: the label of that name),
    which must agree with the version label; the label alone when the annotation is absent."""
    field = "label" if resource.resource_type.startswith("docker:") else "annotation"
    full = annotations_of(resource.resource_type, resource.props).get(VERSION_ANNOTATION)
    if full is None:
        return label, []
    if not isinstance(full, str) or not full:
        return None, [f"service '{service}' cannot be verified: its {VERSION_ANNOTATION} {field} is empty"]
    if version_label_value(full) != label:
        return full, [f"service '{service}' version label '{label}' does not match its "
                      f"{VERSION_ANNOTATION} {field} '{full}'"]
    return full, []


def _problems(resource: PolicyResource, verified: Mapping, overrides: Mapping) -> list[str]:
    labels = labels_of(resource.resource_type, resource.props)
    service, label = labels.get(NAME_LABEL), labels.get(VERSION_LABEL)
    if not isinstance(service, str) or not service:
        return [f"workload '{resource.name}' cannot be verified: it has no {NAME_LABEL} label"]
    if not isinstance(label, str) or not label:
        return [f"service '{service}' cannot be verified: it has no {VERSION_LABEL} label"]
    version, problems = _full_version(resource, service, label)
    if version is None:
        return problems

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


def _environment(resources: list[PolicyResource]) -> Any:
    for resource in resources:
        if resource.resource_type == ROOT_STACK:
            return resource.props.get(ENVIRONMENT_OUTPUT)
    return None


def needs_verified_versions(resources: list[PolicyResource]) -> str | None:
    """Why this stack may run only verified versions, or None when it provably takes none from
    another stack. Used only when the config has no verified list, to decide whether to refuse."""
    if not any(_is_app(resource) for resource in resources):
        return None  # nothing this rule would check
    for resource in resources:
        if resource.resource_type == PROMOTION_GATE:
            source = resource.props.get("source")
            return f"this stack promotes from {source if isinstance(source, str) and source else 'staging'}"
    environment = _environment(resources)
    if environment in UNPROMOTED_ENVIRONMENTS:
        return None
    if isinstance(environment, str) and environment:
        return f"this stack is {environment}"
    return f"this stack does not say which environment it is (no '{ENVIRONMENT_OUTPUT}' stack output)"


def _check_without_verified_list(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    try:
        reason = needs_verified_versions(args.resources)
    except UnknownValueError as error:
        reason = f"this stack cannot be identified during preview ({error.message})"
    if reason is not None:
        report_violation(f"{reason}: {MISSING_VERIFIED_VERSIONS}", None)


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    if "verifiedVersions" not in config:
        _check_without_verified_list(args, report_violation)
        return
    verified = as_mapping(config.get("verifiedVersions"))
    overrides = as_mapping(config.get("overrides"))
    for resource in args.resources:
        if not _is_app(resource):
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
