"""require-verified-version: prod runs only what staging verified (stack policy, fails closed)."""

from __future__ import annotations

import copy

from policy_helpers import DIGEST, UNKNOWN, VERIFIED

from policy.rules import require_verified_version
from policy.rules.require_verified_version import MISSING_VERIFIED_VERSIONS

POLICY = require_verified_version.POLICY


def _docker_label(container: dict, label: str, value) -> None:
    for entry in container["labels"]:
        if entry["label"] == label:
            entry["value"] = value
            return
    raise KeyError(label)


def _web_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _release_api(docker_api: dict, version: str) -> None:
    """What the program does for a new api version: image and version label move together."""
    docker_api["image"] = f"ghcr.io/acme/api:{version}"
    _docker_label(docker_api, "app.kubernetes.io/version", version)


def _config(**changes) -> dict:
    config = copy.deepcopy(VERIFIED)
    config.update(changes)
    return config


def test_require_verified_version_passes_known_good_stack(check_stack, good_stack):
    assert check_stack(POLICY, good_stack, VERIFIED) == []


def test_require_verified_version_fails_once_without_verified_versions(check_stack, good_stack):
    assert check_stack(POLICY, good_stack, None) == [MISSING_VERIFIED_VERSIONS]
    assert "deployctl promote" in MISSING_VERIFIED_VERSIONS


def test_require_verified_version_fails_when_config_has_only_overrides(check_stack, good_stack):
    config = {"overrides": {"api": {"version": "1.4.2", "reason": "hotfix"}}}
    assert check_stack(POLICY, good_stack, config) == [MISSING_VERIFIED_VERSIONS]


def test_require_verified_version_rejects_unverified_docker_service(check_stack, good_stack, docker_api):
    _release_api(docker_api, "1.5.0")
    assert check_stack(POLICY, good_stack, VERIFIED) == [
        "service 'api' version '1.5.0' was not verified in staging (verified: 1.4.2)"
    ]


def test_require_verified_version_rejects_unverified_kubernetes_service(check_stack, good_stack, deployment):
    _web_labels(deployment)["app.kubernetes.io/version"] = "1.5.0"
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:1.5.0"
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


def test_require_verified_version_accepts_verified_digest(check_stack, good_stack, docker_api):
    docker_api["image"] = f"ghcr.io/acme/api@{DIGEST}"
    _docker_label(docker_api, "app.kubernetes.io/version", DIGEST)
    config = _config(verifiedVersions={**VERIFIED["verifiedVersions"], "api": [DIGEST]})
    assert check_stack(POLICY, good_stack, config) == []


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
