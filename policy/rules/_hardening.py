"""Shared reading for the hardening rules (docs/security.md): a container's effective security
context (the container's own settings win over the pod's), its probes, and the one root
container the program allows (the volume-owner init container: drops ALL, adds only CHOWN)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from ._workloads import (
    Container,
    as_list,
    as_mapping,
    is_kubernetes_workload,
    kubernetes_containers,
    kubernetes_labels,
    pod_template,
    service_name,
    subject,
)

# What a root init container may add after dropping ALL: changing a volume's owner, nothing else.
ROOT_INIT_CAPABILITIES = frozenset({"CHOWN"})


def pod_security(resource_type: str, props: Mapping) -> Mapping:
    return as_mapping(as_mapping(pod_template(resource_type, props).get("spec")).get("securityContext"))


def container_security(container: Container) -> Mapping:
    return as_mapping(container.spec.get("securityContext"))


def effective(container: Container, pod: Mapping, key: str) -> Any:
    """A setting both levels can hold (runAsUser, runAsNonRoot, seccompProfile...): the container's wins."""
    own = container_security(container)
    return own.get(key) if own.get(key) is not None else pod.get(key)


def capabilities(container: Container) -> tuple[set[str], set[str]]:
    caps = as_mapping(container_security(container).get("capabilities"))
    names = lambda key: {c.upper() for c in as_list(caps.get(key)) if isinstance(c, str)}  # noqa: E731
    return names("drop"), names("add")


def is_contained_root_init(container: Container) -> bool:
    """The volume-owner step: an init container that drops ALL, adds at most CHOWN, cannot
    escalate and cannot write its own root filesystem."""
    drop, add = capabilities(container)
    own = container_security(container)
    return (container.init and "ALL" in drop and add <= ROOT_INIT_CAPABILITIES
            and own.get("allowPrivilegeEscalation") is False and own.get("readOnlyRootFilesystem") is True)


def kubernetes_workload(resource_type: str, name: str, props: Mapping) -> tuple[str, list[Container], Mapping] | None:
    """(service, containers incl. init, pod security context) of a Kubernetes workload, else None
    (Docker containers: the Docker target's hardening is checked elsewhere, docs/security.md)."""
    if not is_kubernetes_workload(resource_type):
        return None
    labels = kubernetes_labels(resource_type, props)
    return service_name(labels, name), kubernetes_containers(resource_type, props), pod_security(resource_type, props)


def each_container(args: ResourceValidationArgs) -> Iterator[tuple[str, Container, Mapping]]:
    """(who, container, pod security context) for every container of a Kubernetes workload, init
    containers included; nothing for any other resource. `who` is how a violation names it."""
    workload = kubernetes_workload(args.resource_type, args.name, args.props)
    if workload is None:
        return
    service, containers, pod = workload
    for container in containers:
        yield subject(service, container.where), container, pod
