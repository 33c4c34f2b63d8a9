"""Kubernetes target: Deployments/StatefulSets, Services, Secrets, ConfigMaps,
NetworkPolicies and CronJobs in one namespace (pulumi-kubernetes)."""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.config import KubernetesTarget, Resources
from components.targets.gate import after
from components.targets.kubernetes_tls import issue_edge_certificate, issue_local_ca_certificate
from components.versioning import VERSION_LABEL, version_annotations
from components.targets.base import (
    JobSpec,
    MonitoringBundle,
    TlsMaterial,
    WorkloadHandle,
    WorkloadSpec,
    database_client_label,
    standard_labels,
)

meta = k8s.meta.v1
core = k8s.core.v1


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, settings: KubernetesTarget, stack: str, parent: pulumi.Resource,
                 gate: pulumi.Output | None = None):
        self.settings = settings
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

    def _opts(self, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()) -> ResourceOptions:
        return ResourceOptions(parent=parent, provider=self.provider, depends_on=[self.namespace, *depends_on])

    def _metadata(self, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None):
        return meta.ObjectMetaArgs(name=name, namespace=self.namespace_name, labels=labels, annotations=annotations)

    def service_address(self, name: str, port: int) -> str:
        return f"{name}.{self.namespace_name}.svc.cluster.local:{port}"

    def workload(self, spec: WorkloadSpec, parent: pulumi.Resource) -> WorkloadHandle:
        if spec.live_config is not None:
            # A mounted file like any other: its checksum rolls the edge, and the edge's own
            # readiness keeps the previous pods serving until the new ones load the routes.
            live = spec.live_config
            spec = dataclasses.replace(spec, files={**spec.files, live.path: live.content}, live_config=None)
        labels = {**standard_labels(self.stack, spec.service, spec.component, spec.version, spec.track),
                  **spec.extra_labels, **{database_client_label(db): "client" for db in spec.clients_of}}
        selector = {"app.kubernetes.io/name": spec.service, "deploy.platform/track": spec.track}
        unversioned = _without_version(labels)
        created: list[pulumi.Resource] = []
        env, secret = self._env(spec.name, spec.env, spec.secret_env, unversioned, parent)
        if secret:
            created.append(secret)
        volumes, mounts, config_map = self._files(spec, unversioned, parent)
        if config_map:
            created.append(config_map)
        if spec.volume:
            mounts.append(core.VolumeMountArgs(name=spec.volume.name, mount_path=spec.volume.mount_path))
        if spec.shared_volume:
            shared = spec.shared_volume
            created.append(self._claim(shared, unversioned, parent))
            volumes.append(core.VolumeArgs(name=shared.name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=shared.name)))
            mounts.append(core.VolumeMountArgs(name=shared.name, mount_path=shared.mount_path))
        for secret_name, directory in sorted(spec.secret_mounts.items()):
            volumes.append(core.VolumeArgs(name=secret_name, secret=core.SecretVolumeSourceArgs(secret_name=secret_name)))
            mounts.append(core.VolumeMountArgs(name=secret_name, mount_path=directory, read_only=True))
        container = core.ContainerArgs(
            name=spec.service,
            image=spec.image,
            command=list(spec.command) if spec.command else None,
            ports=[core.ContainerPortArgs(container_port=spec.port, name="http")] if spec.port else None,
            env=env or None,
            resources=_resources(spec.resources),
            readiness_probe=_probe(spec, initial=True),
            liveness_probe=_probe(spec, initial=False),
            volume_mounts=mounts or None,
            security_context=core.SecurityContextArgs(allow_privilege_escalation=False, privileged=False),
        )
        pod_annotations: dict[str, pulumi.Input[str]] = {**version_annotations(spec.version)}
        if spec.files:
            # Roll the pods when mounted configuration changes: its digest is part of the template.
            pod_annotations["deploy.platform/config-hash"] = pulumi.Output.all(
                *[spec.files[path] for path in sorted(spec.files)]).apply(_digest)
        template = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=labels, annotations=pod_annotations),
            spec=core.PodSpecArgs(containers=[container], volumes=volumes or None),
        )
        depends = list(created)
        if spec.volume:
            created.append(self._stateful_set(spec, labels, unversioned, selector, template, parent,
                                              [*depends, *spec.after]))
        else:
            created.append(self._deployment(spec, labels, selector, template, parent, [*depends, *spec.after]))
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
        if spec.internal_only:
            created.append(self._internal_only_policy(spec, selector, unversioned, parent))
        endpoints = [self.service_address(spec.name, spec.port)] if spec.port else []
        return WorkloadHandle(address=address, resources=created, endpoints=endpoints)

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

    def _files(self, spec: WorkloadSpec, labels, parent):
        if not spec.files:
            return [], [], None
        keys = {path: _config_key(path) for path in spec.files}
        config_map = core.ConfigMap(
            f"{spec.name}-files",
            metadata=self._metadata(f"{spec.name}-files", labels),
            data={keys[path]: content for path, content in spec.files.items()},
            opts=self._opts(parent),
        )
        volumes = [core.VolumeArgs(name="files", config_map=core.ConfigMapVolumeSourceArgs(name=f"{spec.name}-files"))]
        mounts = [core.VolumeMountArgs(name="files", mount_path=path, sub_path=keys[path], read_only=True)
                  for path in sorted(spec.files)]
        return volumes, mounts, config_map

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
                           "targetLabel": "version"},
                          {"sourceLabels": ["__meta_kubernetes_pod_label_deploy_platform_track"],
                           "targetLabel": "track"},
                      ]}]},
                opts=self._opts(parent)))
        if not self.settings.render_to_directory:
            # alertmanager-<name> with alertmanager.yaml is the Prometheus Operator's convention.
            created.append(core.Secret(
                "alertmanager-config", metadata=self._metadata("alertmanager-platform", labels),
                string_data={"alertmanager.yaml": bundle.alertmanager_config}, opts=self._opts(parent)))
        return created

    def exec_command(self, workload: str, script: str, stateful: bool = False) -> list[str] | None:
        if self.settings.render_to_directory:
            return None
        kind = "statefulset" if stateful else "deployment"
        return [*self.settings.kubectl(), "exec", f"{kind}/{workload}", "--", "sh", "-c", script]

    def backup_now_command(self, job_name: str) -> list[str] | None:
        if self.settings.render_to_directory:
            return None
        kubectl = self.settings.kubectl()
        run = f"{job_name}-predeploy-$(date +%s)"
        # A Job from the backup CronJob's own template: the same dump, checksum and pruning.
        script = (f'job="{run}"; {" ".join(kubectl)} create job "$job" --from=cronjob/{job_name} && '
                  f'{" ".join(kubectl)} wait --for=condition=complete --timeout=900s "job/$job"')
        return ["sh", "-c", script]

    def edge_tls(self, hosts, tls, parent: pulumi.Resource) -> TlsMaterial:
        """cert-manager issues and renews the edge certificate into a Secret the edge mounts;
        in local-ca mode this program's own CA writes that Secret (no controller needed)."""
        opts = ResourceOptions(parent=parent, provider=self.provider, depends_on=[self.namespace])
        if tls.mode == "local-ca":
            return issue_local_ca_certificate(hosts, tls, self.namespace_name, opts)
        return issue_edge_certificate(hosts, tls, self.settings, self.stack, opts)

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

    def _internal_only_policy(self, spec, selector, labels, parent):
        return k8s.networking.v1.NetworkPolicy(
            f"{spec.name}-internal-only",
            metadata=self._metadata(f"{spec.name}-internal-only", labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=meta.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=meta.LabelSelectorArgs(
                        match_labels={database_client_label(spec.service): "client"}))],
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=spec.port, protocol="TCP")],
                )],
            ),
            opts=self._opts(parent),
        )

    def scheduled_job(self, spec: JobSpec, parent: pulumi.Resource) -> Sequence[pulumi.Resource]:
        labels = {**standard_labels(self.stack, spec.service, spec.component, spec.version),
                  **spec.extra_labels, **{database_client_label(db): "client" for db in spec.clients_of}}
        unversioned = _without_version(labels)
        env, secret = self._env(spec.name, spec.env, spec.secret_env, unversioned, parent)
        volumes, mounts = [], []
        if spec.volume:
            volumes = [core.VolumeArgs(name=spec.volume.name, persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
                claim_name=spec.volume.name))]
            mounts = [core.VolumeMountArgs(name=spec.volume.name, mount_path=spec.volume.mount_path)]
        created: list[pulumi.Resource] = [secret] if secret else []
        if spec.volume:
            created.append(self._claim(spec.volume, unversioned, parent))
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
                            containers=[core.ContainerArgs(
                                name=spec.component, image=spec.image, command=list(spec.command),
                                env=env or None, resources=_resources(spec.resources),
                                volume_mounts=mounts or None,
                                security_context=core.SecurityContextArgs(allow_privilege_escalation=False),
                            )],
                        ),
                    ),
                )),
            ),
            opts=self._opts(parent, created),
        ))
        return created


def _service_ports(spec: WorkloadSpec, service_type: str) -> list[core.ServicePortArgs]:
    if spec.external:
        # The edge: HTTP (redirects to HTTPS) and HTTPS. As a NodePort Service the published
        # ports are the node ports, so the stack's edge.httpPort/httpsPort are where it answers.
        published = spec.published_ports if service_type == "NodePort" else {}
        return [core.ServicePortArgs(name=name, port=published.get(port, port), target_port=port,
                                     node_port=published.get(port))
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


def _probe(spec: WorkloadSpec, initial: bool) -> core.ProbeArgs | None:
    check = spec.health_check
    if check is None:
        return None
    action = {"exec_": core.ExecActionArgs(command=list(check.command))} if check.command else {
        "http_get": core.HTTPGetActionArgs(path=check.path, port=check.port or spec.port)}
    return core.ProbeArgs(
        **action,
        timeout_seconds=check.timeout_seconds,
        period_seconds=check.interval_seconds,
        failure_threshold=check.retries,
        # Liveness waits out the start period; readiness starts at once so traffic comes early.
        initial_delay_seconds=0 if initial else check.start_period_seconds,
    )


def _config_key(path: str) -> str:
    return posixpath.basename(path).replace("_", "-") or "file"


def _digest(contents: list[str]) -> str:
    return hashlib.sha256("\0".join(contents).encode()).hexdigest()[:16]
