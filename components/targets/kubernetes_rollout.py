"""The resource that holds `pulumi up` until a Deployment's rollout is complete: a
`command:local:Command` running the rollout gate (kubernetes_gate.py) after the Deployment is
applied, and again whenever the Deployment's spec changes (its generation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components.targets.base import WorkloadSpec
from components.targets.kubernetes_gate import RolloutGate
from components.targets.probing import health_probe

if TYPE_CHECKING:
    from components.targets.kubernetes import KubernetesRuntime

GATE_COMMAND = "python -m components.targets.kubernetes_gate"


def gated(target: "KubernetesRuntime", spec: WorkloadSpec) -> bool:
    """A Deployment with a health check, applied to a cluster (rendered manifests roll out elsewhere)."""
    return spec.health_check is not None and not target.settings.render_to_directory


def rollout_gate(target: "KubernetesRuntime", spec: WorkloadSpec, deployment: k8s.apps.v1.Deployment,
                 selector: Mapping[str, str], parent: pulumi.Resource) -> command.local.Command:
    check = spec.health_check
    gate = RolloutGate(
        kubectl=target.settings.kubectl(), deployment=spec.name, selector=dict(selector), container=spec.service,
        probe=health_probe(spec),
        # Probed every second, as the Docker gate does: the kubelet's own period (the stack's
        # intervalSeconds) decides when a pod takes traffic, the gate only how soon a release fails.
        start_period_seconds=check.start_period_seconds, interval_seconds=1, timeout_seconds=check.timeout_seconds,
        failure_threshold=check.retries, deadline_seconds=target.settings.progress_deadline_seconds)
    return command.local.Command(
        f"{spec.name}-rolled-out", create=GATE_COMMAND, update=GATE_COMMAND, stdin=gate.to_json(),
        triggers=[deployment.metadata.generation],
        logging=command.local.Logging.STDERR,
        opts=ResourceOptions(parent=parent, depends_on=[deployment]))
