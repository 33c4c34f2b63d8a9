"""require-verified-version: prod runs only what staging verified (stack policy, fails closed)."""

from __future__ import annotations

import copy

from policy_helpers import DIGEST, UNKNOWN, VERIFIED

from components.versioning import VERSION_ANNOTATION, VERSION_LABEL, image_reference, version_label_value
from policy.rules import require_verified_version
from policy.rules.require_verified_version import MISSING_VERIFIED_VERSIONS

POLICY = require_verified_version.POLICY
OTHER_DIGEST = "sha256:" + "b" * 64
# What the program registers besides workloads (__main__.py's exports, components/promotion.py).
PROD_ROOT = ("pulumi:pulumi:Stack", "platform-prod", {"environment": "prod", "target": "kubernetes"})
DEV_ROOT = ("pulumi:pulumi:Stack", "platform-dev", {"environment": "dev", "target": "kubernetes"})
STAGING_ROOT = ("pulumi:pulumi:Stack", "platform-staging", {"environment": "staging", "target": "kubernetes"})
GATE = ("platform:release:PromotionGate", "platform-promotion",
        {"source": "organization/platform/staging", "approved": True, "overrides": {}})


def _docker_label(container: dict, label: str, value) -> None:
    for entry in container["labels"]:
        if entry["label"] == label:
            entry["value"] = value
            return
    raise KeyError(label)


def _web_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _web_annotations(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["annotations"]


def _release_api(docker_api: dict, version: str) -> None:
    """What the program does for a new api version: image, version label and full version move together."""
    docker_api["image"] = image_reference("ghcr.io/acme/api", version)
    _docker_label(docker_api, VERSION_LABEL, version_label_value(version))
    _docker_label(docker_api, VERSION_ANNOTATION, version)


def _release_web(deployment: dict, version: str) -> None:
    """The same on Kubernetes: object and pod template labels and annotations, and the image."""
    for metadata in (deployment["metadata"], deployment["spec"]["template"]["metadata"]):
        metadata["labels"][VERSION_LABEL] = version_label_value(version)
        metadata["annotations"][VERSION_ANNOTATION] = version
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image_reference("ghcr.io/acme/web", version)


def _config(**changes) -> dict:
    config = copy.deepcopy(VERIFIED)
    config.update(changes)
    return config


def test_require_verified_version_passes_known_good_stack(check_stack, good_stack):
    assert check_stack(POLICY, good_stack, VERIFIED) == []


def test_require_verified_version_fails_once_for_prod_without_verified_versions(check_stack, good_stack):
    assert check_stack(POLICY, [*good_stack, PROD_ROOT], None) == [f"this stack is prod: {MISSING_VERIFIED_VERSIONS}"]
    assert "deployctl promote" in MISSING_VERIFIED_VERSIONS


def test_require_verified_version_fails_for_stack_promoting_from_staging_without_verified_versions(
        check_stack, good_stack):
    # Declaring promotion decides, whatever the environment says.
    assert check_stack(POLICY, [*good_stack, STAGING_ROOT, GATE], None) == [
        f"this stack promotes from organization/platform/staging: {MISSING_VERIFIED_VERSIONS}"
    ]


def test_require_verified_version_fails_for_stack_of_unknown_environment_without_verified_versions(
        check_stack, good_stack):
    assert check_stack(POLICY, good_stack, None) == [
        f"this stack does not say which environment it is (no 'environment' stack output): {MISSING_VERIFIED_VERSIONS}"
    ]


def test_require_verified_version_fails_when_environment_unknown_in_preview(check_stack, good_stack):
    root = ("pulumi:pulumi:Stack", "platform-prod", {"environment": UNKNOWN})
    assert check_stack(POLICY, [*good_stack, root], None) == [
        "this stack cannot be identified during preview (string value at .environment can't be known during "
        f"preview): {MISSING_VERIFIED_VERSIONS}"
    ]


def test_require_verified_version_fails_when_config_has_only_overrides(check_stack, good_stack):
    config = {"overrides": {"api": {"version": "1.4.2", "reason": "hotfix"}}}
    assert check_stack(POLICY, [*good_stack, PROD_ROOT], config) == [f"this stack is prod: {MISSING_VERIFIED_VERSIONS}"]


def test_require_verified_version_passes_dev_stack_without_verified_versions(check_stack, good_stack):
    # dev takes no versions from another stack: without a verified list there is nothing to check.
    assert check_stack(POLICY, [*good_stack, DEV_ROOT], None) == []


def test_require_verified_version_passes_staging_stack_without_verified_versions(check_stack, good_stack):
    assert check_stack(POLICY, [*good_stack, STAGING_ROOT], None) == []


def test_require_verified_version_passes_stack_without_application_workloads(check_stack, statefulset, cronjob):
    infrastructure = [("kubernetes:apps/v1:StatefulSet", "postgres-main", statefulset),
                      ("kubernetes:batch/v1:CronJob", "postgres-main-backup", cronjob)]
    assert check_stack(POLICY, infrastructure, None) == []


def test_require_verified_version_rejects_unverified_docker_service(check_stack, good_stack, docker_api):
    _release_api(docker_api, "1.5.0")
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "service 'api' version '1.5.0' was not verified in staging (verified: 1.4.2)"
    ]


def test_require_verified_version_rejects_unverified_kubernetes_service(check_stack, good_stack, deployment):
    _release_web(deployment, "1.5.0")
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "service 'web' version '1.5.0' was not verified in staging (verified: 1.4.2, 1.4.1)"
    ]


def test_require_verified_version_rejects_service_staging_never_verified(check_stack, good_stack):
    config = _config(verifiedVersions={"api": ["1.4.2"], "web": ["1.4.2"]})
    assert check_stack(POLICY, good_stack, config) == [
        "service 'edge' version '2.8.4' was not verified in staging (verified: none)"
    ]


def test_require_verified_version_accepts_override_with_reason(check_stack, good_stack, docker_api):
    _release_api(docker_api, "1.5.0")
    config = _config(overrides={"api": {"version": "1.5.0", "reason": "INC-123: staging down, hotfix approved"}})
    assert check_stack(POLICY, good_stack, config) == []


def test_require_verified_version_rejects_override_without_reason(check_stack, good_stack, docker_api):
    _release_api(docker_api, "1.5.0")
    config = _config(overrides={"api": {"version": "1.5.0", "reason": "  "}})
    assert check_stack(POLICY, good_stack, config) == [
        "service 'api' version '1.5.0' was not verified in staging (verified: 1.4.2); its override has no reason"
    ]


def test_require_verified_version_rejects_override_for_another_version(check_stack, good_stack, docker_api):
    _release_api(docker_api, "1.5.1")
    config = _config(overrides={"api": {"version": "1.5.0", "reason": "hotfix"}})
    assert check_stack(POLICY, good_stack, config) == [
        "service 'api' version '1.5.1' was not verified in staging (verified: 1.4.2)"
    ]


def test_require_verified_version_rejects_image_that_does_not_match_version_label(check_stack, good_stack, docker_api):
    docker_api["image"] = "ghcr.io/acme/api:1.5.0"
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "service 'api' runs no image with version '1.4.2' (images: ghcr.io/acme/api:1.5.0)"
    ]


def test_require_verified_version_rejects_bare_image_id_that_names_no_version(check_stack, good_stack, docker_api):
    docker_api["image"] = DIGEST
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        f"service 'api' runs no image with version '1.4.2' (images: {DIGEST})"
    ]


def test_require_verified_version_accepts_verified_digest_on_docker(check_stack, good_stack, docker_api):
    _release_api(docker_api, DIGEST)
    config = _config(verifiedVersions={**VERIFIED["verifiedVersions"], "api": [DIGEST]})
    assert check_stack(POLICY, good_stack, config) == []


def test_require_verified_version_accepts_verified_digest_on_kubernetes(check_stack, good_stack, deployment):
    # The label holds sha256-<12 hex>; the full digest comes from the annotation.
    _release_web(deployment, DIGEST)
    assert _web_labels(deployment)[VERSION_LABEL] == "sha256-" + "a" * 12
    config = _config(verifiedVersions={**VERIFIED["verifiedVersions"], "web": [DIGEST]})
    assert check_stack(POLICY, good_stack, config) == []


def test_require_verified_version_rejects_unverified_digest(check_stack, good_stack, deployment):
    _release_web(deployment, OTHER_DIGEST)
    config = _config(verifiedVersions={**VERIFIED["verifiedVersions"], "web": [DIGEST]})
    assert check_stack(POLICY, good_stack, config) == [
        f"service 'web' version '{OTHER_DIGEST}' was not verified in staging (verified: {DIGEST})"
    ]


def test_require_verified_version_rejects_digest_sharing_the_verified_label(check_stack, good_stack, deployment):
    # Same first 12 hex digits, so the same label: only the annotation tells them apart.
    lookalike = DIGEST[:-1] + "b"
    _release_web(deployment, lookalike)
    assert version_label_value(lookalike) == version_label_value(DIGEST)
    config = _config(verifiedVersions={**VERIFIED["verifiedVersions"], "web": [DIGEST]})
    assert check_stack(POLICY, good_stack, config) == [
        f"service 'web' version '{lookalike}' was not verified in staging (verified: {DIGEST})"
    ]


def test_require_verified_version_rejects_version_label_that_disagrees_with_annotation(
        check_stack, good_stack, deployment):
    _web_labels(deployment)[VERSION_LABEL] = "1.4.1"
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        f"service 'web' version label '1.4.1' does not match its {VERSION_ANNOTATION} annotation '1.4.2'"
    ]


def test_require_verified_version_rejects_empty_version_annotation(check_stack, good_stack, docker_api):
    _docker_label(docker_api, VERSION_ANNOTATION, "")
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        f"service 'api' cannot be verified: its {VERSION_ANNOTATION} label is empty"
    ]


def test_require_verified_version_rejects_shortened_digest_label_without_annotation(
        check_stack, good_stack, deployment):
    _release_web(deployment, DIGEST)
    for metadata in (deployment["metadata"], deployment["spec"]["template"]["metadata"]):
        del metadata["annotations"][VERSION_ANNOTATION]
    config = _config(verifiedVersions={**VERIFIED["verifiedVersions"], "web": [DIGEST]})
    short = version_label_value(DIGEST)
    assert check_stack(POLICY, good_stack, config) == [
        f"service 'web' version '{short}' was not verified in staging (verified: {DIGEST})",
        f"service 'web' runs no image with version '{short}' (images: ghcr.io/acme/web@{DIGEST})",
    ]


def test_require_verified_version_fails_when_version_annotation_unknown_in_preview(
        check_stack, good_stack, deployment):
    _web_annotations(deployment)[VERSION_ANNOTATION] = UNKNOWN
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "workload 'web' cannot be verified: string value at "
        ".spec.template.metadata.annotations.deploy.platform/version can't be known during preview"
    ]


def test_require_verified_version_fails_when_version_label_unknown_in_preview(check_stack, good_stack, deployment):
    _web_labels(deployment)["app.kubernetes.io/version"] = UNKNOWN
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "workload 'web' cannot be verified: string value at "
        ".spec.template.metadata.labels.app.kubernetes.io/version can't be known during preview"
    ]


def test_require_verified_version_fails_when_image_unknown_in_preview(check_stack, good_stack, docker_api):
    docker_api["image"] = UNKNOWN
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "workload 'api' cannot be verified: string value at .image can't be known during preview"
    ]


def test_require_verified_version_fails_when_image_missing(check_stack, good_stack, docker_api):
    del docker_api["image"]
    assert check_stack(POLICY, good_stack, VERIFIED) == ["service 'api' cannot be verified: its image is not known"]


def test_require_verified_version_fails_when_version_label_missing(check_stack, good_stack, docker_api):
    docker_api["labels"] = [e for e in docker_api["labels"] if e["label"] != "app.kubernetes.io/version"]
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "service 'api' cannot be verified: it has no app.kubernetes.io/version label"
    ]


def test_require_verified_version_fails_when_name_label_missing(check_stack, good_stack, deployment):
    del _web_labels(deployment)["app.kubernetes.io/name"]
    del deployment["metadata"]["labels"]["app.kubernetes.io/name"]
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "workload 'web' cannot be verified: it has no app.kubernetes.io/name label"
    ]


def test_require_verified_version_exempts_infrastructure_components(check_stack, good_stack, statefulset):
    # postgres-main (database) and its backup CronJob run versions staging never lists.
    statefulset["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = "17.0"
    assert check_stack(POLICY, good_stack, VERIFIED) == []
