"""Kubernetes target: Deployments/StatefulSets, Services, Secrets, ConfigMaps,
NetworkPolicies, PodDisruptionBudgets and CronJobs in one namespace (pulumi-kubernetes).

Hardened by default (docs/security.md, components/hardening.py): every pod runs as a non-root
user with RuntimeDefault seccomp, a read-only root filesystem (emptyDirs where it writes), no
capabilities and no privilege escalation; readiness and liveness probe different things; the
namespace denies all traffic but the paths opened here (DNS, the world -> edge -> public
services, database clients -> database, Prometheus -> metrics ports); the public path keeps a
PodDisruptionBudget and, in prod, at least two replicas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.config import KubernetesTarget, Resources
from components.hardening import (
    DATABASE_UID,
    SCRATCH_SIZE,
    UNPRIVILEGED_PORT_SYSCTL,
    UNPRIVILEGED_UID,
    WRITABLE_PATHS,
    KubernetesHardening,
)
from components.targets.gate import after
from components.targets.jobs import kubernetes_job_script
from components.targets.kubernetes_monitoring import stack_pipeline
from components.monitoring import BLACKBOX, blackbox_workload
from components.targets.kubernetes_probes import (
    edge_probe_address,
    probe_monitor_spec,
    probe_scrape_target,
)
from components.targets.kubernetes_tls import (
    SOLVER_PORT,
    TLS_KEYS,
    issue_edge_certificate,
    issue_local_ca_certificate,
)
from components.versioning import VERSION_LABEL, version_annotations
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

meta = k8s.meta.v1
core = k8s.core.v1
net = k8s.networking.v1

NAME_LABEL = "app.kubernetes.io/name"
TRACK_LABEL = "deploy.platform/track"
# cert-manager labels every HTTP-01 solver pod it starts with this.
ACME_SOLVER_SELECTOR = {"acme.cert-manager.io/http01-solver": "true"}
LABELS_ACME = {"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/component": "tls"}
# Marks the public path (the edge and the services it routes to): PodDisruptionBudgets, replicas.
EXPOSURE_LABEL = "deploy.platform/exposure"


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, settings: KubernetesTarget, stack: str, parent: pulumi.Resource,
                 gate: pulumi.Output | None = None, hardening: KubernetesHardening | None = None):
        self.settings = settings
        self.hardening = hardening or KubernetesHardening()
        self._acme_solvers = False  # set by edge_tls when the edge forwards ACME challenges
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
        self._namespace_policies(parent)

    def _namespace_policies(self, parent: pulumi.Resource) -> None:
        """Default deny, both directions, for every pod of the namespace; then DNS for all.
        Each path a workload needs is opened next to that workload."""
        labels = {"app.kubernetes.io/part-of": "platform", "deploy.platform/stack": self.stack}
        net.NetworkPolicy("default-deny", metadata=self._metadata("default-deny", labels), spec=net.NetworkPolicySpecArgs(
            pod_selector=meta.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]), opts=self._opts(parent))
        dns = net.NetworkPolicyPeerArgs(
            namespace_selector=meta.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": "kube-system"}),
            pod_selector=meta.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}))
        net.NetworkPolicy("allow-dns", metadata=self._metadata("allow-dns", labels), spec=net.NetworkPolicySpecArgs(
            pod_selector=meta.LabelSelectorArgs(), policy_types=["Egress"],
            egress=[net.NetworkPolicyEgressRuleArgs(to=[dns], ports=[
                net.NetworkPolicyPortArgs(port=53, protocol="UDP"), net.NetworkPolicyPortArgs(port=53, protocol="TCP")])]),
            opts=self._opts(parent))

    def _opts(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> ResourceOptions:
        return ResourceOptions(parent=parent, provider=self.provider, depends_on=[self.namespace, *depends_on])

    def _metadata(self, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None):
        return meta.ObjectMetaArgs(name=name, namespace=self.namespace_name, labels=labels, annotations=annotations)

    def service_address(self, name: str, port: int) -> str:
        return f"{name}.{self.namespace_name}.svc.cluster.local:{port}"

    def workload(self, spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
        live_dir = None
        if spec.live_config is not None:
            # Its checksum rolls the edge, and the edge's own readiness keeps the previous pods
            # serving until the new ones load the routes. The directory it is in is the one the
            # proxy watches: it is mounted as one volume that also holds the certificates (_live_volume).
            live = spec.live_config
            live_dir = posixpath.dirname(live.path)
            spec = dataclasses.replace(spec, files={**spec.files, live.path: live.content}, live_config=None)
        labels = {**standard_labels(self.stack, spec.service, spec.component, spec.version, spec.track),
                  **spec.extra_labels, **{database_client_label(db): "client" for db in spec.clients_of}}
        selector = {NAME_LABEL: spec.service, TRACK_LABEL: spec.track}
        unversioned = _without_version(labels)
        public = spec.external or spec.service in self.hardening.public_services
        created: list[pulumi.Resource] = []
        env, secret = self._env(spec.name, spec.env, spec.secret_env, unversioned, parent)
        if secret:
            created.append(secret)
        volumes, mounts, config_map = self._files(spec, unversioned, parent, live_dir)
        if config_map:
            created.append(config_map)
        owned: list[tuple[str, bool]] = []  # (mount path, recursively) the pod's user must own
        if spec.volume:
            mounts.append(core.VolumeMountArgs(name=spec.volume.name, mount_path=spec.volume.mount_path))
            owned.append((spec.volume.mount_path, False))
        if spec.shared_volume:
            shared = spec.shared_volume
            created.append(self._claim(shared, unversioned, parent))
            volumes.append(core.VolumeArgs(name=shared.name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=shared.name)))
            mounts.append(core.VolumeMountArgs(name=shared.name, mount_path=shared.mount_path))
            owned.append((shared.mount_path, True))
        for secret_name, directory in sorted(spec.secret_mounts.items()):
            if live_dir and _within(directory, live_dir):
                continue  # in the watched directory's volume
            volumes.append(core.VolumeArgs(name=secret_name, secret=core.SecretVolumeSourceArgs(secret_name=secret_name)))
            mounts.append(core.VolumeMountArgs(name=secret_name, mount_path=directory, read_only=True))
        _scratch(spec.component, volumes, mounts)
        uid = DATABASE_UID if owned else UNPRIVILEGED_UID
        for data in spec.data_volumes:
            # A service's own volume (uploads): one claim for every track and replica, which the
            # database's backup job mounts too; owned by the pod's user like any volume root.
            created.append(self._claim(data, unversioned, parent))
            volumes.append(core.VolumeArgs(name=data.name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=data.name)))
            mounts.append(core.VolumeMountArgs(name=data.name, mount_path=data.mount_path))
            owned.append((data.mount_path, False))
        container = core.ContainerArgs(
            name=spec.service,
            image=spec.image,
            command=list(spec.command) if spec.command else None,
            ports=[core.ContainerPortArgs(container_port=spec.port, name="http"),
                   # A health/metrics port of its own (the edge's admin entry point) is declared too:
                   # Prometheus' pod discovery yields declared ports only, so its PodMonitor had no target.
                   *([core.ContainerPortArgs(container_port=spec.health_check.port, name="admin")]
                     if spec.health_check and spec.health_check.port not in (None, spec.port) else [])]
            if spec.port else None,
            env=env or None,
            resources=_resources(spec.resources),
            readiness_probe=_readiness_probe(spec),
            liveness_probe=_liveness_probe(spec),
            volume_mounts=mounts or None,
            security_context=_container_security(),
        )
        pod_annotations: dict[str, pulumi.Input[str]] = {**version_annotations(spec.version)}
        if spec.files:
            # Roll the pods when mounted configuration changes: its digest is part of the template.
            pod_annotations["deploy.platform/config-hash"] = pulumi.Output.all(
                *[spec.files[path] for path in sorted(spec.files)]).apply(_digest)
        template = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=labels, annotations=pod_annotations),
            spec=core.PodSpecArgs(
                containers=[container], volumes=volumes or None,
                init_containers=[_volume_owner(spec.image, uid, owned, mounts)] if owned else None,
                # Listening on 80/443 without root (the edge): a namespaced sysctl, no capability.
                security_context=_pod_security(uid, bool(owned), sysctls=[UNPRIVILEGED_PORT_SYSCTL] if spec.external else ()),
                automount_service_account_token=False,
            ),
        )
        depends = list(created)
        if spec.volume:
            created.append(self._stateful_set(spec, labels, unversioned, selector, template, parent,
                                              [*depends, *spec.after]))
        else:
            replicas = spec.replicas
            if public and spec.track == "stable":
                replicas = max(replicas, self.hardening.min_public_replicas)
            object_labels = {**labels, EXPOSURE_LABEL: "public"} if public else labels
            created.append(self._deployment(dataclasses.replace(spec, replicas=replicas), object_labels, selector,
                                            template, parent, [*depends, *spec.after]))
            if public:
                created.append(self._disruption_budget(spec, unversioned, selector, parent))
        address = pulumi.Output.from_input("")
        if spec.port:
            created.append(core.Service(
                spec.name,
                metadata=self._metadata(spec.name, unversioned),
                spec=core.ServiceSpecArgs(
                    selector=selector,
                    ports=_service_ports(spec, self.settings.edge_service_type),
                    cluster_ip="None" if spec.volume else None,
                    type=self.settings.edge_service_type if spec.external else None,
                ),
                opts=self._opts(parent),
            ))
            address = pulumi.Output.from_input(self.service_address(spec.name, spec.port))
        created += self._network_paths(spec, selector, unversioned, public, parent)
        endpoints = [self.service_address(spec.name, spec.port)] if spec.port else []
        return WorkloadHandle(address=address, resources=created, endpoints=endpoints)

    def _policy(self, name: str, labels, parent, pod_selector: dict[str, str], *,
                ingress=None, egress=None) -> net.NetworkPolicy:
        types = (["Ingress"] if ingress is not None else []) + (["Egress"] if egress is not None else [])
        return net.NetworkPolicy(name, metadata=self._metadata(name, labels), spec=net.NetworkPolicySpecArgs(
            pod_selector=meta.LabelSelectorArgs(match_labels=pod_selector), policy_types=types,
            ingress=ingress, egress=egress), opts=self._opts(parent))

    def _network_paths(self, spec: WorkloadSpec, selector, labels, public: bool, parent) -> list[pulumi.Resource]:
        """The paths this workload needs through the namespace's default deny."""
        created: list[pulumi.Resource] = []
        edge = net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels={NAME_LABEL: "edge"}))
        if spec.external:
            # Anyone may reach the edge's HTTP and HTTPS ports (Service ports land on these).
            created.append(self._policy(f"{spec.name}-from-anywhere", labels, parent, selector, ingress=[
                net.NetworkPolicyIngressRuleArgs(ports=[net.NetworkPolicyPortArgs(port=port, protocol="TCP")
                                                        for port in (80, 443)])]))
            # ...and the edge reaches the services it routes to, on their ports only.
            upstreams = [({NAME_LABEL: name}, port) for name, port in sorted(self.hardening.public_ports.items())]
            if self._acme_solvers:
                upstreams.append((ACME_SOLVER_SELECTOR, SOLVER_PORT))
            created.append(self._policy(f"{spec.name}-to-services", labels, parent, selector, egress=[
                net.NetworkPolicyEgressRuleArgs(
                    to=[net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels=match))],
                    ports=[net.NetworkPolicyPortArgs(port=port, protocol="TCP")])
                for match, port in upstreams]))
        elif public and spec.port:
            created.append(self._policy(f"{spec.name}-from-edge", labels, parent, selector, ingress=[
                net.NetworkPolicyIngressRuleArgs(from_=[edge], ports=[net.NetworkPolicyPortArgs(port=spec.port, protocol="TCP")])]))
        if spec.internal_only:
            created += self._internal_only_policies(spec, selector, labels, parent)
        return created

    def _disruption_budget(self, spec: WorkloadSpec, labels, selector, parent) -> pulumi.Resource:
        # One pod at a time: a node drain never takes the public path down (with >= 2 replicas).
        return k8s.policy.v1.PodDisruptionBudget(
            spec.name, metadata=self._metadata(spec.name, labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=meta.LabelSelectorArgs(match_labels=selector)),
            opts=self._opts(parent))

    def _env(self, name, plain, secret_env, labels, parent):
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
            metadata=self._metadata(f"{name}-secrets", labels),
            string_data={key: pulumi.Output.secret(value) for key, value in secret_env.items()},
            opts=self._opts(parent),
        )
        return env, secret

    def _files(self, spec: WorkloadSpec, labels, parent, live_dir: str | None = None):
        if not spec.files:
            return [], [], None
        keys = {path: _config_key(path) for path in spec.files}
        # Every file the workload is given (what readers of rendered manifests look at).
        config_map = core.ConfigMap(
            f"{spec.name}-files",
            metadata=self._metadata(f"{spec.name}-files", labels),
            data={keys[path]: content for path, content in spec.files.items()},
            opts=self._opts(parent),
        )
        volumes = [core.VolumeArgs(name="files", config_map=core.ConfigMapVolumeSourceArgs(name=f"{spec.name}-files"))]
        # subPath: a file frozen for the pod's life (a kubelet never updates it in place).
        mounts = [core.VolumeMountArgs(name="files", mount_path=path, sub_path=keys[path], read_only=True)
                  for path in sorted(spec.files) if not (live_dir and posixpath.dirname(path) == live_dir)]
        if live_dir:
            live = {path: content for path, content in spec.files.items() if posixpath.dirname(path) == live_dir}
            volume, mount = self._live_volume(spec, live, live_dir, labels, parent)
            volumes.append(volume)
            mounts.append(mount)
        return volumes, mounts, config_map

    def _live_volume(self, spec: WorkloadSpec, files, directory: str, labels, parent):
        """The directory the edge proxy watches (Traefik's file provider reloads on any event in
        it): its routes and the certificate Secrets mounted under it, as one projected volume.
        The kubelet updates a projected volume by swapping one symlink in its top directory, so a
        renewed certificate is an event Traefik sees, and it reads the new files then (subPath
        mounts and Secret volumes beside it are never seen to change: traefik/traefik#5495).
        The routes come from an immutable ConfigMap named after their content: running pods keep
        the routes they started with (a broken release's routes never reach them); a change is a
        new ConfigMap and rolls the edge like any file change."""
        digest = _digest([f"{path}\0{content}" for path, content in sorted(files.items())])
        routes = core.ConfigMap(
            f"{spec.name}-live", metadata=self._metadata(f"{spec.name}-live-{digest}", labels), immutable=True,
            data={_config_key(path): content for path, content in files.items()}, opts=self._opts(parent))
        sources = [core.VolumeProjectionArgs(config_map=core.ConfigMapProjectionArgs(
            name=routes.metadata.name, items=[core.KeyToPathArgs(key=_config_key(path), path=posixpath.relpath(path, directory))
                                              for path in sorted(files)]))]
        for secret_name, mounted in sorted(spec.secret_mounts.items()):
            if _within(mounted, directory):
                relative = posixpath.relpath(mounted, directory)
                sources.append(core.VolumeProjectionArgs(secret=core.SecretProjectionArgs(
                    name=secret_name, items=[core.KeyToPathArgs(key=key, path=f"{relative}/{key}") for key in TLS_KEYS])))
        return (core.VolumeArgs(name="live", projected=core.ProjectedVolumeSourceArgs(sources=sources)),
                core.VolumeMountArgs(name="live", mount_path=directory, read_only=True))

    def _rollout_annotations(self, spec: WorkloadSpec) -> dict[str, str]:
        # pulumi-kubernetes only logs ProgressDeadlineExceeded and waits out its own timeout
        # (10 min); its timeout annotation makes the update fail soon after Kubernetes gives up.
        return {**version_annotations(spec.version),
                "pulumi.com/timeoutSeconds": str(self.settings.progress_deadline_seconds + 20)}

    def _deployment(self, spec, labels, selector, template, parent, depends):
        return k8s.apps.v1.Deployment(
            spec.name,
            metadata=self._metadata(spec.name, labels, self._rollout_annotations(spec)),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=spec.replicas,
                selector=meta.LabelSelectorArgs(match_labels=selector),
                progress_deadline_seconds=self.settings.progress_deadline_seconds,
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    # Never below the requested capacity while a release rolls out.
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=template,
            ),
            opts=self._opts(parent, depends),
        )

    def _stateful_set(self, spec, labels, claim_labels, selector, template, parent, depends):
        volume = spec.volume
        return k8s.apps.v1.StatefulSet(
            spec.name,
            metadata=self._metadata(spec.name, labels, self._rollout_annotations(spec)),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=spec.name,
                replicas=1,
                selector=meta.LabelSelectorArgs(match_labels=selector),
                template=template,
                volume_claim_templates=[core.PersistentVolumeClaimArgs(
                    metadata=meta.ObjectMetaArgs(name=volume.name, labels=claim_labels),
                    spec=core.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        storage_class_name=self.settings.storage_class,
                        resources=core.VolumeResourceRequirementsArgs(requests={"storage": volume.size}),
                    ),
                )],
            ),
            opts=self._opts(parent, depends),
        )

    def monitoring(self, bundle: MonitoringBundle, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        """A PrometheusRule and the Alertmanager config secret, for the cluster's Prometheus Operator."""
        labels = {"app.kubernetes.io/part-of": "platform", "app.kubernetes.io/component": "monitoring",
                  "deploy.platform/stack": self.stack}
        created: list[pulumi.Resource] = [k8s.apiextensions.CustomResource(
            "alert-rules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            metadata={"name": "platform-alerts", "namespace": self.namespace_name, "labels": labels},
            spec=dict(bundle.rule_file), opts=self._opts(parent))]
        for target in bundle.scrape_targets:
            if target.labels.get("track") == "canary":
                continue  # canary pods carry the service's app.kubernetes.io/name: its PodMonitor scrapes them
            # One PodMonitor per job: the rules select by `job`, so it is set explicitly; `service` and
            # `version` come from the pod's own labels, so an alert names what ran in the pod that fired.
            created.append(k8s.apiextensions.CustomResource(
                f"scrape-{target.job}", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
                metadata={"name": f"platform-{target.job}", "namespace": self.namespace_name, "labels": labels},
                spec={"selector": {"matchLabels": {"app.kubernetes.io/name": target.workload}},
                      "podMetricsEndpoints": [{"targetPort": target.port, "path": "/metrics", "relabelings": [
                          {"targetLabel": "job", "replacement": target.job},
                          {"targetLabel": "service", "replacement": target.labels.get("service", target.job)},
                          {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_version"],
                           "targetLabel": "version"} if target.version_from_pod else
                          {"targetLabel": "version", "replacement": target.labels.get("version", "")},
                          {"sourceLabels": ["__meta_kubernetes_pod_label_deploy_platform_track"],
                           "targetLabel": "track"},
                      ]}]},
                opts=self._opts(parent)))
            created.append(self._scrape_policy(target, labels, parent))
        # postgres_exporter per database, as on Docker (components/targets/kubernetes_exporters.py).
        from components.targets.kubernetes_exporters import database_exporters
        created += database_exporters(self, bundle, labels, parent)
        if not self.settings.render_to_directory:
            # alertmanager-<name> with alertmanager.yaml is the Prometheus Operator's convention.
            created.append(core.Secret(
                "alertmanager-config", metadata=self._metadata("alertmanager-platform", labels),
                string_data={"alertmanager.yaml": bundle.alertmanager_config}, opts=self._opts(parent)))
        # The stack's own Prometheus and Alertmanager, run by the cluster's Prometheus Operator
        # (components/targets/kubernetes_monitoring.py, docs/monitoring-kubernetes.md).
        created += stack_pipeline(self.namespace_name, self.stack, labels, bundle.settings, self._opts(parent))
        created += self._probes(bundle, labels, parent)
        return created

    def _probes(self, bundle: MonitoringBundle, labels, parent) -> list[pulumi.Resource]:
        """The blackbox exporter probing every public endpoint through the edge Service
        (components/targets/kubernetes_probes.py), its PodMonitor and network paths."""
        if not bundle.probes:
            return []
        handle = self.workload(blackbox_workload(bundle), parent)
        selector = {NAME_LABEL: BLACKBOX}
        monitor = k8s.apiextensions.CustomResource(
            "scrape-blackbox", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
            metadata={"name": "platform-blackbox", "namespace": self.namespace_name, "labels": labels},
            spec=probe_monitor_spec(bundle.probes, edge_probe_address(self.service_address)), opts=self._opts(parent))
        edge = net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels={NAME_LABEL: "edge"}))
        to_edge = self._policy(f"{BLACKBOX}-to-edge", labels, parent, selector, egress=[net.NetworkPolicyEgressRuleArgs(
            to=[edge], ports=[net.NetworkPolicyPortArgs(port=443, protocol="TCP")])])
        scraped = self._scrape_policy(probe_scrape_target(), labels, parent)
        return [*handle.resources, monitor, to_edge, scraped]

    def _scrape_policy(self, target, labels, parent) -> pulumi.Resource:
        """Prometheus, in its own namespace or this one, reaches a workload's metrics port."""
        prometheus = [
            net.NetworkPolicyPeerArgs(namespace_selector=meta.LabelSelectorArgs(
                match_labels={"kubernetes.io/metadata.name": self.hardening.monitoring_namespace})),
            net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels={NAME_LABEL: "prometheus"})),
        ]
        return self._policy(f"scrape-{target.job}", labels, parent, {NAME_LABEL: target.workload}, ingress=[
            net.NetworkPolicyIngressRuleArgs(from_=prometheus, ports=[net.NetworkPolicyPortArgs(port=target.port, protocol="TCP")])])

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
        _, secret = self._env(spec.name, {}, spec.secret_env, _without_version(labels), parent)
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
            # cert-manager's HTTP-01 solver pods (created at challenge time, in this namespace) answer
            # the challenges the edge forwards to them, and nothing else.
            self._acme_solvers = True
            self._policy("acme-solvers-from-edge", LABELS_ACME, parent, ACME_SOLVER_SELECTOR, ingress=[
                net.NetworkPolicyIngressRuleArgs(from_=[net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(
                    match_labels={NAME_LABEL: "edge"}))], ports=[net.NetworkPolicyPortArgs(port=SOLVER_PORT, protocol="TCP")])])
        return material

    def _claim(self, volume, labels, parent) -> core.PersistentVolumeClaim:
        """One claim per volume name: the backup job and its restore drill share the dumps."""
        if volume.name not in self._claims:
            self._claims[volume.name] = core.PersistentVolumeClaim(
                volume.name,
                metadata=self._metadata(volume.name, labels),
                spec=core.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"], storage_class_name=self.settings.storage_class,
                    resources=core.VolumeResourceRequirementsArgs(requests={"storage": volume.size})),
                opts=self._opts(parent),
            )
        return self._claims[volume.name]

    def _internal_only_policies(self, spec, selector, labels, parent) -> list[pulumi.Resource]:
        """A database: reachable on its port by its declared clients (and itself: the connection
        check runs psql inside it through the Service), and they may reach it."""
        clients = {database_client_label(spec.service): "client"}
        port = [net.NetworkPolicyPortArgs(port=spec.port, protocol="TCP")]
        own = net.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(match_labels=selector))
        return [
            self._policy(f"{spec.name}-internal-only", labels, parent, selector, ingress=[
                net.NetworkPolicyIngressRuleArgs(from_=[net.NetworkPolicyPeerArgs(
                    pod_selector=meta.LabelSelectorArgs(match_labels=clients))], ports=port),
                net.NetworkPolicyIngressRuleArgs(from_=[own], ports=port)]),
            self._policy(f"{spec.name}-clients-egress", labels, parent, clients,
                         egress=[net.NetworkPolicyEgressRuleArgs(to=[own], ports=port)]),
            self._policy(f"{spec.name}-self-egress", labels, parent, selector,
                         egress=[net.NetworkPolicyEgressRuleArgs(to=[own], ports=port)]),
        ]

    def scheduled_job(self, spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        # A job's pods have an identity of their own (app.kubernetes.io/name: the job), so the
        # database's Service and NetworkPolicy, which select its name, never include them; which
        # database a job serves is its deploy.platform/database label.
        labels = {**standard_labels(self.stack, spec.name, spec.component, spec.version),
                  **spec.extra_labels, **{database_client_label(db): "client" for db in spec.clients_of}}
        unversioned = _without_version(labels)
        env, secret = self._env(spec.name, spec.env, spec.secret_env, unversioned, parent)
        volumes, mounts = [], []
        if spec.volume:
            volumes = [core.VolumeArgs(name=spec.volume.name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=spec.volume.name))]
            mounts = [core.VolumeMountArgs(name=spec.volume.name, mount_path=spec.volume.mount_path)]
        for data in spec.data_volumes:  # services' volumes it archives: read, never re-owned
            volumes.append(core.VolumeArgs(name=data.name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=data.name)))
            mounts.append(core.VolumeMountArgs(name=data.name, mount_path=data.mount_path))
        _scratch(spec.component, volumes, mounts)
        owned = [(spec.volume.mount_path, True)] if spec.volume else []
        uid = DATABASE_UID if owned else UNPRIVILEGED_UID
        created: list[pulumi.Resource] = [secret] if secret else []
        if spec.volume:
            created.append(self._claim(spec.volume, unversioned, parent))
        created += [self._claim(data, unversioned, parent) for data in spec.data_volumes]
        created.append(k8s.batch.v1.CronJob(
            spec.name,
            metadata=self._metadata(spec.name, labels, version_annotations(spec.version)),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=spec.schedule,
                # Forbid, not Replace: a dump overlapping the previous one is a signal worth seeing.
                concurrency_policy="Forbid",
                # Failures are kept longer than successes: they are what someone will debug.
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,
                starting_deadline_seconds=3600,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(spec=k8s.batch.v1.JobSpecArgs(
                    backoff_limit=2,
                    template=core.PodTemplateSpecArgs(
                        metadata=meta.ObjectMetaArgs(labels=labels, annotations=version_annotations(spec.version)),
                        spec=core.PodSpecArgs(
                            restart_policy="OnFailure",
                            volumes=volumes or None,
                            init_containers=[_volume_owner(spec.image, uid, owned, mounts)] if owned else None,
                            containers=[core.ContainerArgs(
                                name=spec.component, image=spec.image, command=list(spec.command),
                                env=env or None, resources=_resources(spec.resources),
                                volume_mounts=mounts or None,
                                security_context=_container_security(),
                            )],
                            # The services' volumes it archives belong to their pods' user and group
                            # (0750 roots): the job reads them as a member of that group.
                            security_context=_pod_security(
                                uid, bool(owned), supplemental_groups=[UNPRIVILEGED_UID] if spec.data_volumes else ()),
                            automount_service_account_token=False,
                        ),
                    ),
                )),
            ),
            opts=self._opts(parent, created),
        ))
        return created


def _service_ports(spec: WorkloadSpec, service_type: str) -> list[core.ServicePortArgs]:
    if spec.external:
        # The edge: HTTP (redirects to HTTPS) and HTTPS, on 80 and 443 of its Service, where an
        # ACME server validates HTTP-01 (port 80 of the address the host name resolves to) and
        # the blackbox exporter probes HTTPS. As a NodePort Service the published ports are also
        # its node ports, so the stack's edge.httpPort/httpsPort are where it answers outside.
        published = spec.published_ports if service_type == "NodePort" else {}
        return [core.ServicePortArgs(name=name, port=port, target_port=port, node_port=published.get(port))
                for name, port in (("http", 80), ("https", 443))]
    return [core.ServicePortArgs(name="http", port=spec.port, target_port=spec.port)]


def _without_version(labels: dict[str, str]) -> dict[str, str]:
    """Labels for objects that outlive a release, which a release then leaves untouched. (An
    updated Service makes Pulumi wait until no selected pod is unready, so a broken release held
    the update for 10 minutes; volume claim templates are immutable.)"""
    return {key: value for key, value in labels.items() if key != VERSION_LABEL}


def _resources(resources: Resources) -> core.ResourceRequirementsArgs:
    return core.ResourceRequirementsArgs(
        requests={"cpu": resources.cpu_request, "memory": resources.memory_request},
        limits={"cpu": resources.cpu_limit, "memory": resources.memory_limit},
    )


def _readiness_probe(spec: WorkloadSpec) -> core.ProbeArgs | None:
    """Is it ready for traffic: the service's own health check, from the start."""
    check = spec.health_check
    if check is None:
        return None
    action = {"exec_": core.ExecActionArgs(command=list(check.command))} if check.command else {
        "http_get": core.HTTPGetActionArgs(path=check.path, port=check.port or spec.port)}
    return core.ProbeArgs(**action, timeout_seconds=check.timeout_seconds, period_seconds=check.interval_seconds,
                          failure_threshold=check.retries, initial_delay_seconds=0)


def _liveness_probe(spec: WorkloadSpec) -> core.ProbeArgs | None:
    """Is the process still there: it accepts connections on the port it serves. Not the health
    check: an unhealthy dependency makes a pod unready, and must not get it restarted in a loop.
    A workload with no port has only its health command (docs/security.md: accepted)."""
    check = spec.health_check
    if check is None:
        return None
    port = (check.port or spec.port) if not check.command else spec.port
    action = {"tcp_socket": core.TCPSocketActionArgs(port=port)} if port else {
        "exec_": core.ExecActionArgs(command=list(check.command))}
    # Liveness waits out the start period; readiness starts at once so traffic comes early.
    return core.ProbeArgs(**action, timeout_seconds=check.timeout_seconds, period_seconds=check.interval_seconds,
                          failure_threshold=check.retries, initial_delay_seconds=check.start_period_seconds)


def _container_security() -> core.SecurityContextArgs:
    return core.SecurityContextArgs(
        allow_privilege_escalation=False, privileged=False, read_only_root_filesystem=True, run_as_non_root=True,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]))


def _pod_security(uid: int, claims: bool, sysctls: Sequence[tuple[str, str]] = (),
                  supplemental_groups: Sequence[int] = ()) -> core.PodSecurityContextArgs:
    return core.PodSecurityContextArgs(
        run_as_non_root=True, run_as_user=uid, run_as_group=uid, supplemental_groups=list(supplemental_groups) or None,
        # Volumes that support it are handed to the pod's group by the kubelet; hostPath volumes
        # (the local cluster's) do not, hence _volume_owner.
        fs_group=uid if claims else None, fs_group_change_policy="OnRootMismatch" if claims else None,
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
        sysctls=[core.SysctlArgs(name=name, value=value) for name, value in sysctls] or None)


def _volume_owner(image: str, uid: int, owned: Sequence[tuple[str, bool]],
                  mounts: Sequence[core.VolumeMountArgs]) -> core.ContainerArgs:
    """The one step that needs root: a new volume's root directory can belong to root (0750 on
    the hostPath provisioner), so the pod's user could not write to it. Runs as root with CHOWN
    as its only capability (no DAC override: it changes owners, it cannot read others' files),
    and does nothing when the owner is already right."""
    owner = f"{uid}:{uid}"
    steps = []
    for path, recursive in owned:
        if recursive:
            # Shared volumes (the dumps) may hold files an earlier, root-run job wrote.
            steps.append(f'find "{path}" -xdev \\( ! -user {uid} -o ! -group {uid} \\) -exec chown {owner} {{}} \\; || true')
        else:
            steps.append(f'[ "$(stat -c %u:%g "{path}")" = "{owner}" ] || chown {owner} "{path}"')
        steps.append(f'[ "$(stat -c %u:%g "{path}")" = "{owner}" ] || {{ echo "{path} is not owned by {owner}" >&2; exit 1; }}')
    volume_names = {path for path, _ in owned}
    return core.ContainerArgs(
        name="volume-owner", image=image, command=["sh", "-c", "\n".join(["set -e", *steps])],
        volume_mounts=[mount for mount in mounts if mount.mount_path in volume_names],
        resources=_resources(VOLUME_OWNER_RESOURCES),
        security_context=core.SecurityContextArgs(
            run_as_user=0, run_as_group=0, run_as_non_root=False, allow_privilege_escalation=False, privileged=False,
            read_only_root_filesystem=True, capabilities=core.CapabilitiesArgs(drop=["ALL"], add=["CHOWN"])))


VOLUME_OWNER_RESOURCES = Resources(cpu_request="10m", cpu_limit="100m", memory_request="16Mi", memory_limit="32Mi")


def _scratch(component: str, volumes: list, mounts: list) -> None:
    """emptyDirs where the image writes on its read-only root: /tmp, and its own paths."""
    for index, path in enumerate(("/tmp", *WRITABLE_PATHS.get(component, ()))):
        name = "tmp" if index == 0 else f"scratch-{index}"
        volumes.append(core.VolumeArgs(name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=SCRATCH_SIZE)))
        mounts.append(core.VolumeMountArgs(name=name, mount_path=path))


def _within(path: str, directory: str) -> bool:
    return posixpath.commonpath([path, directory]) == directory


def _config_key(path: str) -> str:
    return posixpath.basename(path).replace("_", "-") or "file"


def _digest(contents: list[str]) -> str:
    return hashlib.sha256("\0".join(contents).encode()).hexdigest()[:16]
