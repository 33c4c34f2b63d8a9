"""The edge proxy (Traefik): HTTPS only, HTTP redirected, weighted canary routing.

The same two Traefik files are rendered for both targets and mounted into the
proxy, so canary weights behave identically on Docker and Kubernetes: each
public service gets a `weighted` Traefik service over its stable and canary
tracks. Ref: https://doc.traefik.io/traefik/routing/services/#weighted-round-robin-service
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import yaml
from pulumi import ResourceOptions

from components.config import EdgeSpec, HealthCheck, TlsSpec
from components.tls_settings import ACME_SERVERS
from components.release import Route
from components.targets.base import RuntimeTarget, TlsMaterial, WorkloadSpec
from components.versioning import image_reference

STATIC_PATH = "/etc/traefik/traefik.yml"
DYNAMIC_PATH = "/etc/traefik/dynamic.yml"
ADMIN_PORT = 8082  # ping + Prometheus metrics, never published


@dataclass(frozen=True)
class EdgeProxyArgs:
    spec: EdgeSpec
    routes: Sequence[Route]
    certificate: TlsMaterial | None = None  # issued by the target; None: Traefik handles TLS itself


class EdgeProxy(pulumi.ComponentResource):
    def __init__(self, name: str, args: EdgeProxyArgs, target: RuntimeTarget,
                 opts: ResourceOptions | None = None):
        super().__init__("platform:edge:EdgeProxy", name, None, opts)
        spec = args.spec
        self.static_config = render_static_config(spec.tls, args.certificate)
        self.dynamic_config = render_dynamic_config(spec.hosts, args.routes, spec.tls, args.certificate)
        handle = target.workload(WorkloadSpec(
            name="edge",
            service="edge",
            component="edge",
            image=image_reference(spec.image, spec.version),
            version=spec.version,
            port=443,
            # Host ports on Docker; on Kubernetes the external Service does this job.
            published_ports={80: spec.http_port, 443: spec.https_port},
            command=["traefik", f"--configFile={STATIC_PATH}"],
            files={STATIC_PATH: self.static_config, DYNAMIC_PATH: self.dynamic_config,
                   **(args.certificate.files if args.certificate else {})},
            resources=spec.resources,
            health_check=HealthCheck(path="/ping", port=ADMIN_PORT),
            log_rotation=spec.log_rotation,
            extra_labels={"deploy.platform/tls": "enabled"},
            secret_mounts=args.certificate.secret_mounts if args.certificate else {},
            after=tuple(args.certificate.resources) if args.certificate else (),
            external=True,
        ), parent=self)
        self.address = handle.address
        self.urls = [f"https://{host}:{spec.https_port}/" for host in spec.hosts]
        self.register_outputs({"urls": self.urls})


def render_static_config(tls: TlsSpec, certificate: TlsMaterial | None = None) -> str:
    # Every routing change (a canary weight) rolls the edge. A stopping edge keeps accepting for
    # 5 s, while Kubernetes takes its address out of the Service, then finishes what it has:
    # without this, requests reaching the old pod in that window timed out during canary steps.
    lifecycle = {"lifeCycle": {"requestAcceptGraceTimeout": "5s", "graceTimeOut": "10s"}}
    config: dict = {
        "entryPoints": {
            "web": {"address": ":80", "transport": lifecycle, "http": {"redirections": {"entryPoint": {
                "to": "websecure", "scheme": "https", "permanent": True}}}},
            "websecure": {"address": ":443", "transport": lifecycle},
            "admin": {"address": f":{ADMIN_PORT}"},
        },
        "providers": {"file": {"filename": DYNAMIC_PATH, "watch": True}},
        "ping": {"entryPoint": "admin"},
        "metrics": {"prometheus": {"entryPoint": "admin"}},
        "accessLog": {},
        "log": {"level": "INFO"},
    }
    if tls.mode == "acme" and certificate is None:
        config["certificatesResolvers"] = {"acme": {"acme": {
            "email": tls.email, "caServer": ACME_SERVERS[tls.acme_server],
            "storage": "/etc/traefik/acme.json", "httpChallenge": {"entryPoint": "web"}}}}
    return yaml.safe_dump(config, sort_keys=True)


def render_dynamic_config(hosts: Sequence[str], routes: Sequence[Route], tls: TlsSpec,
                          certificate: TlsMaterial | None = None) -> str:
    host_rule = " || ".join(f"Host(`{host}`)" for host in hosts)
    # A mounted certificate (cert-manager) wins; otherwise Traefik's ACME resolver or its default cert.
    router_tls = {"certResolver": "acme"} if tls.mode == "acme" and certificate is None else {}
    routers, services, middlewares = {}, {}, {}
    for route in routes:
        rule = f"({host_rule}) && PathPrefix(`{route.path_prefix}`)"
        routers[route.service] = {"rule": rule, "entryPoints": ["websecure"], "service": route.service,
                                  "tls": router_tls}
        if route.strip_path_prefix:
            middlewares[f"{route.service}-strip-prefix"] = {"stripPrefix": {"prefixes": [route.path_prefix]}}
            routers[route.service]["middlewares"] = [f"{route.service}-strip-prefix"]
        services[f"{route.service}-stable"] = _load_balancer(route.stable_url, route.health_path)
        tracks = [{"name": f"{route.service}-stable", "weight": 100 - route.canary_weight}]
        if route.canary_url is not None:
            services[f"{route.service}-canary"] = _load_balancer(route.canary_url, route.health_path)
            tracks.append({"name": f"{route.service}-canary", "weight": route.canary_weight})
        services[route.service] = {"weighted": {"services": tracks}}
    document: dict = {"http": {"routers": routers, "services": services}}
    if middlewares:
        document["http"]["middlewares"] = middlewares
    if certificate is not None:
        document["tls"] = {"certificates": [{"certFile": cert, "keyFile": key}
                                            for cert, key in certificate.certificates]}
    return yaml.safe_dump(document, sort_keys=True)


def _load_balancer(url: str, health_path: str | None) -> dict:
    balancer: dict = {"servers": [{"url": url}]}
    if health_path:
        balancer["healthCheck"] = {"path": health_path, "interval": "5s", "timeout": "3s"}
    return {"loadBalancer": balancer}
