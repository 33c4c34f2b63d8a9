"""disallow-latest-tag and require-pinned-images."""

from __future__ import annotations

import pytest
from policy_helpers import DIGEST

from policy.rules import disallow_latest_tag, require_pinned_images

LATEST = disallow_latest_tag.POLICY
PINNED = require_pinned_images.POLICY
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
CRONJOB = "kubernetes:batch/v1:CronJob"

GOOD = [
    ("docker_api", CONTAINER, "api"),
    ("docker_edge", CONTAINER, "edge"),
    ("remote_image", REMOTE_IMAGE, "api-image"),
    ("deployment", DEPLOYMENT, "web"),
    ("statefulset", STATEFULSET, "postgres-main"),
    ("cronjob", CRONJOB, "postgres-main-backup"),
]


def _pod_spec(cronjob: dict) -> dict:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("policy", [LATEST, PINNED], ids=lambda p: p.name)
@pytest.mark.parametrize("fixture,resource_type,name", GOOD)
def test_image_policies_pass_known_good_fixtures(request, check, policy, fixture, resource_type, name):
    assert check(policy, resource_type, name, request.getfixturevalue(fixture)) == []


def test_image_policies_ignore_resources_without_images(check, configmap):
    assert check(LATEST, "kubernetes:core/v1:ConfigMap", "api-config", configmap) == []
    assert check(PINNED, "kubernetes:core/v1:ConfigMap", "api-config", configmap) == []


# --- disallow-latest-tag -------------------------------------------------------------------------


def test_disallow_latest_tag_rejects_latest_docker_container(check, docker_api):
    docker_api["image"] = "ghcr.io/acme/api:latest"
    assert check(LATEST, CONTAINER, "api", docker_api) == [
        "service 'api' uses image 'ghcr.io/acme/api:latest' with the moving tag 'latest'"
    ]


def test_disallow_latest_tag_rejects_untagged_docker_container(check, docker_api):
    docker_api["image"] = "ghcr.io/acme/api"
    assert check(LATEST, CONTAINER, "api", docker_api) == [
        "service 'api' uses image 'ghcr.io/acme/api' without a tag or digest, which pulls 'latest'"
    ]


def test_disallow_latest_tag_rejects_untagged_image_from_registry_with_port(check, docker_api):
    docker_api["image"] = "registry.local:5000/acme/api"
    assert check(LATEST, CONTAINER, "api", docker_api) == [
        "service 'api' uses image 'registry.local:5000/acme/api' without a tag or digest, which pulls 'latest'"
    ]


def test_disallow_latest_tag_rejects_latest_remote_image_named_after_resource(check, remote_image):
    remote_image["name"] = "nginx:latest"
    assert check(LATEST, REMOTE_IMAGE, "proxy-image", remote_image) == [
        "service 'proxy-image' uses image 'nginx:latest' with the moving tag 'latest'"
    ]


def test_disallow_latest_tag_rejects_latest_kubernetes_container(check, deployment):
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:latest"
    assert check(LATEST, DEPLOYMENT, "web", deployment) == [
        "service 'web' container 'web' uses image 'ghcr.io/acme/web:latest' with the moving tag 'latest'"
    ]


def test_disallow_latest_tag_rejects_untagged_kubernetes_init_container(check, deployment):
    deployment["spec"]["template"]["spec"]["initContainers"][0]["image"] = "ghcr.io/acme/web"
    assert check(LATEST, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' uses image 'ghcr.io/acme/web' without a tag or digest, which pulls 'latest'"
    ]


def test_disallow_latest_tag_rejects_latest_statefulset_container(check, statefulset):
    statefulset["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:latest"
    assert check(LATEST, STATEFULSET, "postgres-main", statefulset) == [
        "service 'postgres-main' container 'postgres' uses image 'postgres:latest' with the moving tag 'latest'"
    ]


def test_disallow_latest_tag_rejects_untagged_cronjob_container(check, cronjob):
    _pod_spec(cronjob)["containers"][0]["image"] = "postgres"
    assert check(LATEST, CRONJOB, "postgres-main-backup", cronjob) == [
        "service 'postgres-main-backup' container 'backup' uses image 'postgres' without a tag or digest, which pulls 'latest'"
    ]


def test_disallow_latest_tag_rejects_latest_job_container(check, cronjob):
    _pod_spec(cronjob)["containers"][0]["image"] = "busybox:latest"
    job = {"metadata": {"name": "migrate"}, "spec": {"template": {"spec": _pod_spec(cronjob)}}}
    assert check(LATEST, "kubernetes:batch/v1:Job", "migrate", job) == [
        "service 'migrate' container 'backup' uses image 'busybox:latest' with the moving tag 'latest'"
    ]


def test_disallow_latest_tag_rejects_untagged_pod_container(check, cronjob):
    _pod_spec(cronjob)["containers"][0]["image"] = "busybox"
    pod = {"metadata": {"name": "debug", "labels": {"app.kubernetes.io/name": "toolbox"}}, "spec": _pod_spec(cronjob)}
    assert check(LATEST, "kubernetes:core/v1:Pod", "debug", pod) == [
        "service 'toolbox' container 'backup' uses image 'busybox' without a tag or digest, which pulls 'latest'"
    ]


def test_disallow_latest_tag_rejects_latest_daemonset_container(check, deployment):
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/web:latest"
    assert check(LATEST, "kubernetes:apps/v1:DaemonSet", "web", deployment) == [
        "service 'web' container 'web' uses image 'ghcr.io/acme/web:latest' with the moving tag 'latest'"
    ]


def test_disallow_latest_tag_accepts_digest_without_tag(check, docker_api):
    docker_api["image"] = f"ghcr.io/acme/api@{DIGEST}"
    assert check(LATEST, CONTAINER, "api", docker_api) == []


# --- require-pinned-images -----------------------------------------------------------------------


def test_require_pinned_images_rejects_moving_tag(check, docker_api):
    docker_api["image"] = "ghcr.io/acme/api:stable"
    assert check(PINNED, CONTAINER, "api", docker_api) == [
        "service 'api' uses image 'ghcr.io/acme/api:stable', which is not pinned "
        "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)"
    ]


def test_require_pinned_images_rejects_minor_version_tag(check, statefulset):
    statefulset["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:16.4"
    assert check(PINNED, STATEFULSET, "postgres-main", statefulset) == [
        "service 'postgres-main' container 'postgres' uses image 'postgres:16.4', which is not pinned "
        "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)"
    ]


def test_require_pinned_images_rejects_malformed_digest(check, docker_api):
    docker_api["image"] = "ghcr.io/acme/api@sha256:abc"
    assert check(PINNED, CONTAINER, "api", docker_api) == [
        "service 'api' uses image 'ghcr.io/acme/api@sha256:abc', which is not pinned "
        "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)"
    ]


def test_require_pinned_images_rejects_unpinned_init_container(check, deployment):
    deployment["spec"]["template"]["spec"]["initContainers"][0]["image"] = "ghcr.io/acme/web:main"
    assert check(PINNED, DEPLOYMENT, "web", deployment) == [
        "service 'web' init container 'migrate' uses image 'ghcr.io/acme/web:main', which is not pinned "
        "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)"
    ]


def test_require_pinned_images_rejects_untagged_remote_image(check, remote_image):
    remote_image["name"] = "ghcr.io/acme/api"
    assert check(PINNED, REMOTE_IMAGE, "api-image", remote_image) == [
        "service 'api-image' uses image 'ghcr.io/acme/api', which is not pinned "
        "(use an immutable tag such as 1.4.2 or sha-19b9b98, or a sha256 digest)"
    ]


@pytest.mark.parametrize("image", ["ghcr.io/acme/api:sha-19b9b98", "ghcr.io/acme/api:v2.0.0-rc.1", DIGEST])
def test_require_pinned_images_accepts_commit_tags_prereleases_and_bare_image_ids(check, docker_api, image):
    docker_api["image"] = image
    assert check(PINNED, CONTAINER, "api", docker_api) == []
