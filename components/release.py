"""Release channels: a service's stable track and, optionally, its canary track.

Vocabulary follows Argo Rollouts: the stable track serves the verified version,
the canary track serves the candidate, and `weight` is the percentage of edge
traffic the canary receives (setWeight). Weight 0 deploys the canary without
sending it traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pulumi
from pulumi import ResourceOptions

from components.config import ServiceSpec
from components.config.volumes import BackedUpVolume
from components.targets.base import RuntimeTarget, Volume, WorkloadHandle, WorkloadSpec
from components.versioning import image_reference


@dataclass(frozen=True)
class ReleaseChannelArgs:
    service: str
    spec: ServiceSpec
    secret_env: Mapping[str, pulumi.Input[str]]
    database_env: Mapping[str, str]
    target: RuntimeTarget
    database_workloads: tuple[str, ...] = ()  # workloads this service may reach (NetworkPolicy/networks)
    volumes: tuple[BackedUpVolume, ...] = ()  # persistent volumes every track mounts (config/volumes.py)


@dataclass(frozen=True)
class Route:
    """What the edge needs to send a public service's traffic to its tracks."""

    service: str
    path_prefix: str
    strip_path_prefix: bool
    stable_servers: tuple[str, ...]  # URLs
    canary_servers: tuple[str, ...] | None
    canary_weight: int
    health_path: str | None


class ReleaseChannel(pulumi.ComponentResource):
    """A service's tracks. What its workloads wait for (the pre-deploy backups and migrations of
    its databases) comes as `opts.depends_on`, which each track's workload also names itself."""

    def __init__(self, name: str, args: ReleaseChannelArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:release:ReleaseChannel", name, None, opts)
        spec, target, after = args.spec, args.target, _depends_on(opts)
        self.stable = target.workload(self._track(args, spec.version, "stable", spec.replicas, after), parent=self)
        self.canary = None
        if spec.canary is not None:
            # One canary replica is enough to judge a candidate; the weight decides its share.
            self.canary = target.workload(self._track(args, spec.canary.version, "canary", 1, after), parent=self)

        self.stable_version = pulumi.Output.from_input(spec.version)
        self.canary_version = pulumi.Output.from_input(spec.canary.version if spec.canary else None)
        self.canary_weight = pulumi.Output.from_input(spec.canary.weight if spec.canary else 0)
        self.route = _route(args.service, spec, self.stable, self.canary) if spec.public else None
        # What the edge waits for before it routes here (the new slot's readiness on a Docker host).
        self.ready = (*self.stable.ready, *(self.canary.ready if self.canary else ()))
        self.register_outputs({
            "stable_version": self.stable_version,
            "canary_version": self.canary_version,
            "canary_weight": self.canary_weight,
        })

    @staticmethod
    def _track(args: ReleaseChannelArgs, version: str, track: str, replicas: int,
               after: tuple[pulumi.Resource, ...]) -> WorkloadSpec:
        spec = args.spec
        return WorkloadSpec(
            name=args.service if track == "stable" else f"{args.service}-{track}",
            service=args.service,
            component=spec.component,
            image=image_reference(spec.image, version),
            version=version,
            replicas=replicas,
            port=spec.port,
            command=spec.command,
            env={**spec.env, **args.database_env, "APP_VERSION": version, "APP_TRACK": track},
            secret_env=args.secret_env,
            resources=spec.resources,
            health_check=spec.health_check,
            restart_policy=spec.restart_policy,
            log_rotation=spec.log_rotation,
            track=track,
            clients_of=args.database_workloads,
            internal_network=spec.internal_network,
            after=after,
            # One volume for all tracks and replicas: uploads written by any of them stay together.
            data_volumes=tuple(Volume(name=v.volume_name, mount_path=v.mount_path, size=v.size) for v in args.volumes),
        )


def _depends_on(opts: ResourceOptions | None) -> tuple[pulumi.Resource, ...]:
    """The resources in `opts.depends_on`. Named again on the workloads, so each keeps the
    dependencies it had when they came in the args (the state records a resource's own)."""
    depends_on = opts.depends_on if opts else None
    if depends_on is None:
        return ()
    if isinstance(depends_on, pulumi.Resource):
        return (depends_on,)
    return tuple(depends_on)


def _route(service: str, spec: ServiceSpec, stable: WorkloadHandle, canary_track: WorkloadHandle | None) -> Route:
    canary = spec.canary
    return Route(
        service=service,
        path_prefix=spec.path_prefix,
        strip_path_prefix=spec.strip_path_prefix and spec.path_prefix != "/",
        stable_servers=tuple(f"http://{endpoint}" for endpoint in stable.endpoints),
        canary_servers=tuple(f"http://{endpoint}" for endpoint in canary_track.endpoints) if canary_track else None,
        canary_weight=canary.weight if canary else 0,
        # On Kubernetes the edge's one server per track is the Service: a failed check of it (a
        # request landing on a pod that is terminating during a rollout) took the whole service out
        # of the edge for the 5 s check interval, and prod answered 503 right after a promotion.
        # Readiness probes already keep unready pods out of the Service; containers on a Docker host
        # have no such balancer, so the edge checks them itself.
        health_path=spec.health_check.path if spec.health_check and not stable.balanced else None,
    )
