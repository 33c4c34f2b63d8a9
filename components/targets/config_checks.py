"""What a target needs of the rest of a stack's configuration: the checks across keys that depend on
where the stack runs. PlatformConfig's validation runs them with its other checks, in their order
(components/config/checks.py), so each problem still reads as one of the stack file's.
"""

from __future__ import annotations

from typing import Callable

from components.config.model import Problem
from components.config.platform import PlatformConfig

NODE_PORTS = (30000, 32767)  # the API server's default --service-node-port-range


def target_problems(config: PlatformConfig) -> list[Problem]:
    """The problems of `config` that its target finds, each at the key to change (relative to `platform:`)."""
    check = _CHECKS.get(config.target)
    return check(config) if check else []


def _kubernetes_problems(config: PlatformConfig) -> list[Problem]:
    problems = []
    kubernetes = config.kubernetes
    if kubernetes and kubernetes.render_to_directory and config.edge.tls.mode == "local-ca":
        problems.append(Problem("kubernetes.renderToDirectory",
                                "edge.tls.mode local-ca puts the edge's private key in a Secret, which "
                                "kubernetes.renderToDirectory would write to disk in plain text: use self-signed or acme"))
    if kubernetes and kubernetes.edge_service_type == "NodePort":
        for key, port in (("edge.httpPort", config.edge.http_port), ("edge.httpsPort", config.edge.https_port)):
            if not NODE_PORTS[0] <= port <= NODE_PORTS[1]:
                problems.append(Problem(key, f"is {port}, but with kubernetes.edgeServiceType NodePort it is the node "
                                             f"port and must lie in {NODE_PORTS[0]}-{NODE_PORTS[1]}"))
    return problems


def _docker_problems(config: PlatformConfig) -> list[Problem]:
    port = config.monitoring.prometheus_host_port
    if port is not None and port in (config.edge.http_port, config.edge.https_port):
        return [Problem("monitoring.prometheusHostPort", f"is {port}, a port the edge publishes on this host; "
                                                         "pick one nothing else publishes, e.g. 9090")]
    return []


_CHECKS: dict[str, Callable[[PlatformConfig], list[Problem]]] = {"kubernetes": _kubernetes_problems,
                                                                 "docker": _docker_problems}
