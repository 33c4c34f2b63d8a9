"""The Docker target's named volumes: each made once and shared by name (a backup job mounts the
volume its database writes, every track and replica of a service its uploads), and handed once to
the user the service's image runs as.
"""

from __future__ import annotations

import shlex
from typing import Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker
from pulumi import ResourceOptions

from components.targets.base import Volume


class NamedVolumes:
    def __init__(self, stack: str, provider: docker.Provider, docker_cli: list[str]):
        self.stack = stack
        self.provider = provider
        self.docker_cli = docker_cli
        self._volumes: dict[str, docker.Volume] = {}
        self._owners: dict[str, command.local.Command] = {}

    def _mount(self, volume: Volume | None, service: str, parent: pulumi.Resource):
        """Named volumes are shared by name: a backup job mounts the one its database writes."""
        if volume is None:
            return None
        if volume.name not in self._volumes:
            self._volumes[volume.name] = docker.Volume(
                f"volume-{volume.name}", name=f"{self.stack}-{volume.name}",
                labels=[docker.VolumeLabelArgs(label="app.kubernetes.io/name", value=service),
                        docker.VolumeLabelArgs(label="deploy.platform/stack", value=self.stack)],
                opts=ResourceOptions(parent=parent, provider=self.provider))
        return [docker.ContainerVolumeArgs(volume_name=self._volumes[volume.name].name,
                                           container_path=volume.mount_path)]

    def mounts(self, own: Volume | None, data: Sequence[Volume], service: str, parent: pulumi.Resource):
        """A container's mounts: its own volume (or the one it shares) and the service's declared ones."""
        mounts = [*(self._mount(own, service, parent) or []),
                  *(mount for volume in data for mount in self._mount(volume, service, parent))]
        return mounts or None

    def owners(self, data: Sequence[Volume], reference: str, image: docker.RemoteImage,
               parent: pulumi.Resource) -> list[pulumi.Resource]:
        """A new named volume's root belongs to root; a service's image runs as its own user (nobody),
        which could then not write its uploads. Once per volume, hand the root to the image's user."""
        owners = []
        for volume in data:
            if volume.name not in self._owners:
                cli, name = shlex.join(self.docker_cli), self._volumes[volume.name].name
                script = (f"user=$({cli} image inspect -f '{{{{.Config.User}}}}' {shlex.quote(reference)}) && "
                          f'{{ [ -z "$user" ] || {cli} run --rm --user 0 --network none -v "$VOLUME:/v" '
                          f'--entrypoint chown {shlex.quote(reference)} "$user" /v; }}')
                self._owners[volume.name] = command.local.Command(
                    f"volume-{volume.name}-owner", create=script, environment={"VOLUME": name},
                    opts=ResourceOptions(parent=parent, depends_on=[image, self._volumes[volume.name]]))
            owners.append(self._owners[volume.name])
        return owners
