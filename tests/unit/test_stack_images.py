"""components/images.py lists every image a stack runs; the release record and the registry
preflight trust that list. These render each stack under mocks and compare it with every image
the program actually asks the Docker provider or Kubernetes for."""

from __future__ import annotations

from typing import Any

import pytest

from components.config.loading import parse_platform_config
from components.images import stack_images
from components.versioning import image_reference
from support import deploy_stack, on_docker, raw_stack_config, unwrap


def images_in(value: Any) -> set[str]:
    """Every `image` string anywhere in a resource's inputs (containers, pod templates, CRs)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                found.add(item)
            else:
                found |= images_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= images_in(item)
    return found


def rendered_images(mocks) -> set[str]:
    found: set[str] = set()
    for resource in mocks.resources:
        if resource.typ == "docker:index/remoteImage:RemoteImage":
            found.add(unwrap(resource.inputs)["name"])
        found |= images_in(unwrap(resource.inputs))
    return found


def listed_images(stack: str, change=None) -> set[str]:
    raw = raw_stack_config(stack)
    if change:
        change(raw)
    return {image_reference(repository, version) for repository, version in
            stack_images(parse_platform_config(raw, stack)).values()}


@pytest.fixture
def verified_in_staging(staging_verified):
    """prod deploys only what staging verified: verify whatever prod's file names."""
    raw = raw_stack_config("prod")
    staging_verified({**{name: spec["version"] for name, spec in raw["services"].items()},
                      "edge": raw["edge"]["version"]})


def with_canary(raw: dict) -> None:
    raw["services"]["api"]["canary"] = {"version": "1.5.0", "weight": 10}


def docker_with_canary(raw: dict) -> None:
    on_docker(raw)
    with_canary(raw)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_listed_images_are_exactly_the_kubernetes_stacks_images(mocks, verified_in_staging, stack):
    deploy_stack(stack)
    assert rendered_images(mocks) == listed_images(stack)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_listed_images_are_exactly_the_docker_stacks_images(mocks, verified_in_staging, stack):
    deploy_stack(stack, on_docker)
    assert rendered_images(mocks) == listed_images(stack, on_docker)


def test_a_canary_adds_its_image_on_kubernetes(mocks):
    deploy_stack("staging", with_canary)
    assert rendered_images(mocks) == listed_images("staging", with_canary)


def test_a_canary_adds_its_image_on_docker(mocks):
    deploy_stack("staging", docker_with_canary)
    assert rendered_images(mocks) == listed_images("staging", docker_with_canary)
