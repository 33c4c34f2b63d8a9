"""Read workloads, containers and labels out of engine-shaped props.

Props reach a policy as the engine sends them: camelCase keys, numbers as floats
(protobuf Struct), and wrapped in pulumi_policy's unknown-checking proxies, which are
`Mapping`/`Sequence` but not `dict`/`list`. Reading an unknown value (during preview)
raises `pulumi_policy.proxy.UnknownValueError`; rules let it propagate unless they
must fail closed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The version label (shortened for digests) and the full-version annotation: the program sets
# both from components/versioning.py, so the pack reads exactly what the program writes.
from components.versioning import VERSION_ANNOTATION, VERSION_LABEL  # noqa: F401 (re-exported)

# Label names: the contract in docs/conventions.md.
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
DATABASE_LABEL = "deploy.platform/database"
TLS_LABEL = "deploy.platform/tls"

# Application services: what staging verifies and prod must match.
APP_COMPONENTS = frozenset({"web", "api", "worker", "edge"})
# Run-to-completion components: no long-running process to probe.
# Jobs, not services: on a Docker host the backup and restore-drill jobs are crond containers.
ONE_SHOT_COMPONENTS = frozenset({"backup", "restore-drill", "smoke-test"})

DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
K8S_DEPLOYMENT = "kubernetes:apps/v1:Deployment"
K8S_STATEFULSET = "kubernetes:apps/v1:StatefulSet"
K8S_CRONJOB = "kubernetes:batch/v1:CronJob"
K8S_POD = "kubernetes:core/v1:Pod"
K8S_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
K8S_INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
CERT_MANAGER_CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"

# Where each Kubernetes kind keeps its pod template ({metadata, spec}); () = the object is the pod.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    K8S_DEPLOYMENT: ("spec", "template"),
    K8S_STATEFULSET: ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    K8S_CRONJOB: ("spec", "jobTemplate", "spec", "template"),
    K8S_POD: (),
}


def as_mapping(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> Sequence:
    return value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else ()


def dig(value: Any, *path: str) -> Any:
    """value[path[0]][path[1]]..., or None when a step is missing or not a mapping."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def is_kubernetes_workload(resource_type: str) -> bool:
    return resource_type in POD_TEMPLATE_PATHS


def is_workload(resource_type: str) -> bool:
    return resource_type == DOCKER_CONTAINER or is_kubernetes_workload(resource_type)


def pod_template(resource_type: str, props: Mapping) -> Mapping:
    return as_mapping(dig(props, *POD_TEMPLATE_PATHS[resource_type]))


def docker_labels(props: Mapping) -> dict[str, Any]:
    """Docker labels arrive as [{"label": k, "value": v}, ...]."""
    labels: dict[str, Any] = {}
    for entry in as_list(props.get("labels")):
        entry = as_mapping(entry)
        if isinstance(entry.get("label"), str):
            labels[entry["label"]] = entry.get("value")
    return labels


def kubernetes_labels(resource_type: str, props: Mapping) -> dict[str, Any]:
    """Object labels overlaid with pod-template labels (what actually runs wins)."""
    labels = dict(as_mapping(dig(props, "metadata", "labels")))
    if is_kubernetes_workload(resource_type):
        labels.update(as_mapping(dig(pod_template(resource_type, props), "metadata", "labels")))
    return labels


def labels_of(resource_type: str, props: Mapping) -> dict[str, Any]:
    if resource_type.startswith("docker:"):
        return docker_labels(props)
    if resource_type.startswith("kubernetes:"):
        return kubernetes_labels(resource_type, props)
    return {}


def annotations_of(resource_type: str, props: Mapping) -> dict[str, Any]:
    """Kubernetes: object annotations overlaid with pod-template annotations (what runs wins).
    Docker has no annotations: its labels hold what Kubernetes keeps in annotations."""
    if resource_type.startswith("docker:"):
        return docker_labels(props)
    if not resource_type.startswith("kubernetes:"):
        return {}
    annotations = dict(as_mapping(dig(props, "metadata", "annotations")))
    if is_kubernetes_workload(resource_type):
        annotations.update(as_mapping(dig(pod_template(resource_type, props), "metadata", "annotations")))
    return annotations


def service_name(labels: Mapping, resource_name: str) -> str:
    name = labels.get(NAME_LABEL)
    return name if isinstance(name, str) and name else resource_name


def component_of(labels: Mapping) -> Any:
    return labels.get(COMPONENT_LABEL)


@dataclass(frozen=True)
class Container:
    """One Kubernetes container spec; `where` reads "container 'app'" / "init container 'migrate'"."""

    name: str
    init: bool
    spec: Mapping

    @property
    def where(self) -> str:
        return f"{'init container' if self.init else 'container'} '{self.name}'"


def kubernetes_containers(resource_type: str, props: Mapping, *, include_init: bool = True) -> list[Container]:
    spec = as_mapping(pod_template(resource_type, props).get("spec"))
    fields = [("containers", False)] + ([("initContainers", True)] if include_init else [])
    result = []
    for field, init in fields:
        for index, container in enumerate(as_list(spec.get(field))):
            container = as_mapping(container)
            name = container.get("name")
            result.append(Container(name if isinstance(name, str) else f"#{index}", init, container))
    return result


def subject(service: str, where: str = "") -> str:
    """The start of every message: "service 'api'" or "service 'api' container 'app'"."""
    return f"service '{service}'" + (f" {where}" if where else "")
