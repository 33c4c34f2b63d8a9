"""Find and parse the container images a resource runs.

What a version and a pinned version are is decided only in components/versioning.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import ResourceValidationArgs

from components.versioning import DIGEST_RE, ImageReference, is_pinned, parse_image_reference

from ._workloads import (
    DOCKER_CONTAINER,
    DOCKER_REMOTE_IMAGE,
    is_kubernetes_workload,
    kubernetes_containers,
    labels_of,
    service_name,
    subject,
)

IMAGE_RESOURCE_TYPES = frozenset({DOCKER_CONTAINER, DOCKER_REMOTE_IMAGE})


@dataclass(frozen=True)
class ImageUse:
    """An image a resource runs; `where` names the Kubernetes container ("" for Docker)."""

    where: str
    image: Any


def image_uses(resource_type: str, props: Mapping, *, include_init: bool = True) -> list[ImageUse]:
    if resource_type == DOCKER_CONTAINER:
        return [ImageUse("", props.get("image"))]
    if resource_type == DOCKER_REMOTE_IMAGE:
        return [ImageUse("", props.get("name"))]
    if is_kubernetes_workload(resource_type):
        return [
            ImageUse(c.where, c.spec.get("image"))
            for c in kubernetes_containers(resource_type, props, include_init=include_init)
        ]
    return []


def parse_image(reference: str) -> ImageReference:
    """parse_image_reference, plus bare image IDs (`sha256:<hex>`, e.g. RemoteImage.image_id)."""
    if DIGEST_RE.match(reference):
        return ImageReference(repository="", tag=None, digest=reference)
    return parse_image_reference(reference)


def is_pinned_image(ref: ImageReference) -> bool:
    return bool((ref.digest and is_pinned(ref.digest)) or (ref.tag and is_pinned(ref.tag)))


def names_version(ref: ImageReference, version: str) -> bool:
    return version in (ref.tag, ref.digest)


def each_image(args: ResourceValidationArgs) -> Iterator[tuple[str, str]]:
    """(who, image reference) for every image a Docker image/container or a Kubernetes workload
    names, init containers included; an image not known yet (an output) is skipped."""
    if args.resource_type not in IMAGE_RESOURCE_TYPES and not is_kubernetes_workload(args.resource_type):
        return
    service = service_name(labels_of(args.resource_type, args.props), args.name)
    for use in image_uses(args.resource_type, args.props):
        if isinstance(use.image, str) and use.image:
            yield subject(service, use.where), use.image
