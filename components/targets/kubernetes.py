"""Kubernetes target: Deployments/StatefulSets, Services, Secrets, ConfigMaps,
NetworkPolicies, PodDisruptionBudgets and CronJobs in one namespace (pulumi-kubernetes).

Hardened by default (docs/security.md, components/hardening.py): every pod runs as a non-root
user with RuntimeDefault seccomp, a read-only root filesystem (emptyDirs where it writes), no
capabilities and no privilege escalation; readiness and liveness probe different things; the
namespace denies all traffic but the paths opened here (DNS, the world -> edge -> public
services, database clients -> database, Prometheus -> metrics ports); the public path keeps a
PodDisruptionBudget and, in prod, at least two replicas.

`KubernetesRuntime` is the seam (components/targets/base.py): it owns the provider, the namespace
and what several kinds of objects share (options, metadata, claims, Secrets); each kind is built
in a module of its own: workloads (kubernetes_workloads.py), scheduled jobs (kubernetes_cronjobs.py),
pods' common parts (kubernetes_pods.py), network paths (kubernetes_network.py), monitoring
(kubernetes_monitoring.py, kubernetes_exporters.py, kubernetes_probes.py) and certificates
(kubernetes_tls.py).
"""

from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.config import KubernetesTarget
from components.hardening import UNPRIVILEGED_UID, KubernetesHardening
from components.targets import kubernetes_cronjobs, kubernetes_monitoring, kubernetes_workloads
from components.targets.base import (
    JobSpec,
    MonitoringBundle,
    OneOffJob,
    OneOffJobSpec,
    TlsMaterial,
    WorkloadHandle,
    WorkloadSpec,
    database_client_label,
    standard_labels,
)
from components.targets.gate import after
from components.targets.jobs import kubernetes_job_script
from components.targets.kubernetes_network import acme_solvers_from_edge, namespace_policies
from components.targets.kubernetes_pods import without_version
from components.targets.kubernetes_tls import issue_edge_certificate, issue_local_ca_certificate

meta = k8s.meta.v1
core = k8s.core.v1


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, settings: KubernetesTarget, stack: str, parent: pulumi.Resource,
                 gate: pulumi.Output | None = None, hardening: KubernetesHardening | None = None):
        self.settings = settings
        self.hardening = hardening or KubernetesHardening()
        self.acme_solvers = False  # set by edge_tls when the edge forwards ACME challenges
        self.stack = stack
        self.namespace_name = settings.namespace
        self._claims: dict[str, core.PersistentVolumeClaim] = {}
        self.provider = k8s.Provider(
            f"{stack}-kubernetes",
            # Rendering talks to no cluster (the provider refuses both at once).
            kubeconfig=None if settings.render_to_directory else settings.kubeconfig,
            context=None if settings.render_to_directory else settings.context,
            namespace=after(gate, settings.namespace),
            render_yaml_to_directory=settings.render_to_directory,
            opts=ResourceOptions(parent=parent),
        )
        self.namespace = core.Namespace(
            "namespace",
            metadata=meta.ObjectMetaArgs(name=settings.namespace, labels={"app.kubernetes.io/part-of": "platform"}),
            opts=ResourceOptions(parent=parent, provider=self.provider),
        )
        namespace_policies(self, parent)

    # What the objects of every module share.

    def opts(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> ResourceOptions:
        return ResourceOptions(parent=parent, provider=self.provider, depends_on=[self.namespace, *depends_on])

    def metadata(self, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None):
        return meta.ObjectMetaArgs(name=name, namespace=self.namespace_name, labels=labels, annotations=annotations)

    def claim(self, volume, labels, parent) -> core.PersistentVolumeClaim:
        """One claim per volume name: the backup job and its restore drill share the dumps."""
        if volume.name not in self._claims:
            self._claims[volume.name] = core.PersistentVolumeClaim(
                volume.name,
                metadata=self.metadata(volume.name, labels),
                spec=core.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"], storage_class_name=self.settings.storage_class,
                    resources=core.VolumeResourceRequirementsArgs(requests={"storage": volume.size})),
                opts=self.opts(parent),
            )
        return self._claims[volume.name]

    def env(self, name, plain, secret_env, labels, parent) -> tuple[list[core.EnvVarArgs], core.Secret | None]:
        """The container's environment, secret values from the Secret `<name>-secrets` (made here)."""
        env = [core.EnvVarArgs(name=key, value=value) for key, value in sorted(plain.items())]
        if not secret_env:
            return env, None
        env += [
            core.EnvVarArgs(name=key, value_from=core.EnvVarSourceArgs(
                secret_key_ref=core.SecretKeySelectorArgs(name=f"{name}-secrets", key=key)))
            for key in sorted(secret_env)
        ]
        if self.settings.render_to_directory:
            # Rendered manifests go to git: the Secret is left to the cluster's secret manager
            # (External Secrets, Sealed Secrets), never written out in plain text.
            return env, None
        secret = core.Secret(
            f"{name}-secrets",
            metadata=self.metadata(f"{name}-secrets", labels),
            string_data={key: pulumi.Output.secret(value) for key, value in secret_env.items()},
            opts=self.opts(parent),
        )
        return env, secret

    # RuntimeTarget.

    def service_address(self, name: str, port: int) -> str:
        return f"{name}.{self.namespace_name}.svc.cluster.local:{port}"

    def workload(self, spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
        return kubernetes_workloads.workload(self, spec, parent)

    def scheduled_job(self, spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        return kubernetes_cronjobs.scheduled_job(self, spec, parent)

    def monitoring(self, bundle: MonitoringBundle, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        """A PrometheusRule and the Alertmanager config secret, for the cluster's Prometheus Operator."""
        return kubernetes_monitoring.monitoring(self, bundle, parent)

    def exec_command(self, workload: str, script: str, stateful: bool = False) -> list[str] | None:
        if self.settings.render_to_directory:
            return None
        kind = "statefulset" if stateful else "deployment"
        return [*self.settings.kubectl(), "exec", f"{kind}/{workload}", "--", "sh", "-c", script]

    def backup_now_command(self, job_name: str) -> list[str] | None:
        if self.settings.render_to_directory:
            return None
        # A Job from the backup CronJob's own template: the same dump, checksum and pruning.
        return ["sh", "-c", kubernetes_job_script(self.settings.kubectl(), job_name)]

    def one_off_job(self, spec: OneOffJobSpec, parent: pulumi.Resource) -> OneOffJob | None:
        if self.settings.render_to_directory:
            return None  # rendered manifests run nothing now
        # The Job itself is made per run (components/targets/oneoff_jobs.py); its pod reads the
        # secrets from this Secret and carries the client labels of the databases it reaches.
        labels = {**standard_labels(self.stack, spec.name, spec.component, spec.version),
                  **{database_client_label(db): "client" for db in spec.clients_of}}
        _, secret = self.env(spec.name, {}, spec.secret_env, without_version(labels), parent)
        settings = {"target": "kubernetes", "kubectl": self.settings.kubectl(), "namespace": self.namespace_name,
                    "name": spec.name, "component": spec.component, "labels": labels, "env": dict(spec.env),
                    "secret": f"{spec.name}-secrets", "secret_keys": sorted(spec.secret_env), "uid": UNPRIVILEGED_UID,
                    "resources": {"requests": {"cpu": spec.resources.cpu_request, "memory": spec.resources.memory_request},
                                  "limits": {"cpu": spec.resources.cpu_limit, "memory": spec.resources.memory_limit}}}
        return OneOffJob(settings=settings, resources=[self.namespace, *([secret] if secret else [])])

    def edge_tls(self, hosts, tls, parent: pulumi.Resource) -> TlsMaterial:
        """cert-manager issues and renews the edge certificate into a Secret the edge mounts;
        in local-ca mode this program's own CA writes that Secret (no controller needed)."""
        opts = ResourceOptions(parent=parent, provider=self.provider, depends_on=[self.namespace])
        if tls.mode == "local-ca":
            return issue_local_ca_certificate(hosts, tls, self.namespace_name, opts)
        material = issue_edge_certificate(hosts, tls, self.settings, self.stack, opts)
        if material.challenge_routes:
            self.acme_solvers = True
            acme_solvers_from_edge(self, parent)
        return material
