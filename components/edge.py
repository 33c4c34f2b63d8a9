"""The edge proxy (Traefik): HTTPS only, HTTP redirected, weighted canary routing.

The same two Traefik files are rendered for both targets and mounted into the
proxy, so canary weights behave identically on Docker and Kubernetes: each
public service gets a `weighted` Traefik service over its stable and canary
tracks. Ref: https://doc.traefik.io/traefik/routing/services/#weighted-round-robin-service
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Sequence

import pulumi
import yaml
from pulumi import ResourceOptions

from components.config import EdgeSpec, HealthCheck, TlsSpec
from components.config.tls import EDGE_ACME_CA_PATH, EDGE_ACME_STORAGE, acme_ca_bundle, acme_directory
from components.release import Route
from components.targets.base import LiveConfig, RuntimeTarget, TlsMaterial, WorkloadSpec
from components.versioning import image_reference

STATIC_PATH = "/etc/traefik/traefik.yml"
DYNAMIC_PATH = "/etc/traefik/dynamic/routes.yml"  # in a directory of its own: a Docker host replaces it with mv
ADMIN_PORT = 8082  # ping + Prometheus metrics, never published
API_PORT = 8083  # Traefik's read-only API, never published
SERVICES_STATUS_URL = f"http://127.0.0.1:{API_PORT}/api/http/services"


@dataclass(frozen=True)
class EdgeProxyArgs:
    spec: EdgeSpec
    routes: Sequence[Route]
    target: RuntimeTarget
    certificate: TlsMaterial | None = None  # issued by the target; None: Traefik handles TLS itself
    # The routed workloads' readiness: only the routes switch after it, so it is no depends_on of
    # the edge (which would hold the edge itself back until every new release slot is ready).
    ready: Sequence[pulumi.Resource] = ()


class EdgeProxy(pulumi.ComponentResource):
    def __init__(self, name: str, args: EdgeProxyArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:edge:EdgeProxy", name, None, opts)
        spec = args.spec
        self.static_config = render_static_config(spec.tls, spec.https_port, args.certificate)
        self.dynamic_config = render_dynamic_config(spec.hosts, args.routes, spec.tls, args.certificate)
        files, env = {STATIC_PATH: self.static_config, **(args.certificate.files if args.certificate else {})}, {}
        bundle = acme_ca_bundle(spec.tls.acme_ca_bundle_file) if _traefik_resolves(spec.tls, args.certificate) else None
        if bundle:
            # Traefik's ACME client (lego) trusts a private directory's CA through this variable.
            files[EDGE_ACME_CA_PATH] = bundle
            env["LEGO_CA_CERTIFICATES"] = EDGE_ACME_CA_PATH
        handle = args.target.workload(WorkloadSpec(
            name="edge",
            service="edge",
            component="edge",
            image=image_reference(spec.image, spec.version),
            version=spec.version,
            port=443,
            # Host ports on Docker; on Kubernetes the external Service does this job.
            published_ports={80: spec.http_port, 443: spec.https_port},
            command=["traefik", f"--configFile={STATIC_PATH}"],
            env=env,
            files=files,
            live_config=LiveConfig(path=DYNAMIC_PATH, content=self.dynamic_config, status_url=SERVICES_STATUS_URL,
                                   servers=route_servers(args.routes), after=tuple(args.ready)),
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
        self.register_outputs({"address": self.address, "urls": self.urls})


def render_static_config(tls: TlsSpec, https_port: int, certificate: TlsMaterial | None = None) -> str:
    # Every routing change (a canary weight) rolls the edge. A stopping edge keeps accepting for
    # 5 s, while Kubernetes takes its address out of the Service, then finishes what it has:
    # without this, requests reaching the old pod in that window timed out during canary steps.
    lifecycle = {"lifeCycle": {"requestAcceptGraceTimeout": "5s", "graceTimeOut": "10s"}}
    # The redirect is a router of its own, by default above every other (MaxInt32-1): with HTTP-01
    # solvers behind the edge it goes below their challenge routes (Traefik's own resolver answers
    # its challenges ahead of any router anyway).
    redirect_priority = {"priority": 1} if certificate is not None and certificate.challenge_routes else {}
    config: dict = {
        "entryPoints": {
            "web": {"address": ":80", "transport": lifecycle, "http": {"redirections": {"entryPoint": {
                # The port clients reach HTTPS on (published, node or load-balancer port), not the
                # container's 443: naming the entry point would redirect to a port nothing serves.
                "to": f":{https_port}", "scheme": "https", "permanent": True, **redirect_priority}}}},
            "websecure": {"address": ":443", "transport": lifecycle},
            "admin": {"address": f":{ADMIN_PORT}"},
            # Traefik's read-only API (api.insecure serves it on this entry point): never published;
            # a Docker host's route switch reads it to know when new routes are live.
            "traefik": {"address": f":{API_PORT}"},
        },
        "api": {"insecure": True, "dashboard": False},
        # A directory, not a file: Traefik watches it from the start even while it is still empty
        # (a Docker edge starts before its routes are written into it).
        "providers": {"file": {"directory": posixpath.dirname(DYNAMIC_PATH), "watch": True}},
        "ping": {"entryPoint": "admin"},
        "metrics": {"prometheus": {"entryPoint": "admin"}},
        "accessLog": {},
        "log": {"level": "INFO"},
    }
    if _traefik_resolves(tls, certificate):
        config["certificatesResolvers"] = {"acme": {"acme": {
            "email": tls.email, "caServer": acme_directory(tls.acme_server),
            # On a volume of its own (the target's job): account and certificates outlive the
            # container, so a re-created edge serves what it had instead of ordering again.
            "storage": EDGE_ACME_STORAGE, "httpChallenge": {"entryPoint": "web"},
            # Traefik asks for no lifetime; this tells it the one the CA gives, which sets when it
            # renews and how often it checks (e.g. 20 minutes before expiry, every minute, under a
            # day). Ref: https://doc.traefik.io/traefik/https/acme/#certificatesduration
            "certificatesDuration": tls.duration_hours}}}
    return yaml.safe_dump(config, sort_keys=True)


def _traefik_resolves(tls: TlsSpec, certificate: TlsMaterial | None) -> bool:
    """Traefik's own ACME resolver gets the certificate (ACME where the target issues none: Docker)."""
    return tls.mode == "acme" and certificate is None


def render_dynamic_config(hosts: Sequence[str], routes: Sequence[Route], tls: TlsSpec,
                          certificate: TlsMaterial | None = None) -> str:
    host_rule = " || ".join(f"Host(`{host}`)" for host in hosts)
    # A mounted certificate (cert-manager) wins; otherwise Traefik's ACME resolver or its default cert.
    router_tls = {"certResolver": "acme"} if _traefik_resolves(tls, certificate) else {}
    routers, services, middlewares = {}, {}, {}
    for route in routes:
        rule = f"({host_rule}) && PathPrefix(`{route.path_prefix}`)"
        routers[route.service] = {"rule": rule, "entryPoints": ["websecure"], "service": route.service,
                                  "tls": router_tls}
        if route.strip_path_prefix:
            middlewares[f"{route.service}-strip-prefix"] = {"stripPrefix": {"prefixes": [route.path_prefix]}}
            routers[route.service]["middlewares"] = [f"{route.service}-strip-prefix"]
        services[f"{route.service}-stable"] = _load_balancer(route.stable_servers, route.health_path)
        tracks = [{"name": f"{route.service}-stable", "weight": 100 - route.canary_weight}]
        if route.canary_servers is not None:
            services[f"{route.service}-canary"] = _load_balancer(route.canary_servers, route.health_path)
            tracks.append({"name": f"{route.service}-canary", "weight": route.canary_weight})
        services[route.service] = {"weighted": {"services": tracks}}
    for host, solver in sorted((certificate.challenge_routes if certificate else {}).items()):
        # Plain HTTP, where the ACME server fetches http://<host>/.well-known/acme-challenge/<token>.
        name = f"acme-http01-{host.replace('.', '-')}"
        routers[name] = {"rule": f"Host(`{host}`) && PathPrefix(`/.well-known/acme-challenge/`)",
                         "entryPoints": ["web"], "service": name}
        services[name] = {"loadBalancer": {"servers": [{"url": solver}]}}
    document: dict = {"http": {"routers": routers, "services": services}}
    if middlewares:
        document["http"]["middlewares"] = middlewares
    if certificate is not None:
        document["tls"] = {"certificates": [{"certFile": cert, "keyFile": key}
                                            for cert, key in certificate.certificates]}
    return yaml.safe_dump(document, sort_keys=True)


def route_servers(routes: Sequence[Route]) -> dict[str, list[str] | dict[str, int]]:
    """What the proxy must report once it serves these routes: each track's server URLs and
    each service's track weights (a canary step changes only the weights)."""
    servers: dict[str, list[str] | dict[str, int]] = {}
    for route in routes:
        servers[f"{route.service}-stable"] = list(route.stable_servers)
        weights = {f"{route.service}-stable": 100 - route.canary_weight}
        if route.canary_servers is not None:
            servers[f"{route.service}-canary"] = list(route.canary_servers)
            weights[f"{route.service}-canary"] = route.canary_weight
        servers[route.service] = weights
    return servers


def _load_balancer(urls: Sequence[str], health_path: str | None) -> dict:
    balancer: dict = {"servers": [{"url": url} for url in urls]}
    if health_path:
        balancer["healthCheck"] = {"path": health_path, "interval": "5s", "timeout": "3s"}
    return {"loadBalancer": balancer}
