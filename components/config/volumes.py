"""Persistent volumes a service declares (uploads, media), backed up with a database's dumps.

The runbooks this replaces (seed 001, seed 004 FR-009) back up the database, the media files and
the configuration together. Here a service names its volumes under `services.<name>.volumes`;
each is mounted where the service writes it and, unless `backup: false`, archived (tar plus
sha256, and a sha256 of every file in it) by the backup job of one database, on that database's
schedule and retention, and checked by its restore drill. The stack's configuration at each
release is in the stack history; the drill's evidence names the update it belongs to.

    platform:services:
      api:
        databases: [main]
        volumes:
          uploads: {mountPath: /data/uploads, size: 1Gi}
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from components.config.model import Model, Problem

if TYPE_CHECKING:  # platform.py imports this module (through services.py and checks.py)
    from components.config.platform import PlatformConfig

# Volume names become parts of claim, Docker volume and archive names (`<service>-<volume>`).
VOLUME_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$")
_SIZE_RE = re.compile(r"^[1-9]\d*(Ki|Mi|Gi|Ti)$")
# Where a service's volume may not go: the image's own files, and the scratch space each pod gets.
_RESERVED = ("/", "/bin", "/etc", "/lib", "/proc", "/sys", "/dev", "/usr", "/tmp", "/run", "/app", "/var/run")


class ServiceVolume(Model):
    mount_path: str = Field(description="Absolute path where the service reads and writes the volume.")
    # 1Gi: enough for a shop's uploads to start with; the backup volume must hold several archives of it.
    size: str = Field("1Gi", description="Requested size (Ki, Mi, Gi or Ti), e.g. 5Gi.")
    backup: bool = Field(True, description="Archived with the database's backups (false: scratch data).")
    backup_with: str | None = Field(
        None, description="Database whose backup job archives this volume; defaults to the service's first database.")

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        normal = posixpath.normpath(value)
        if not value.startswith("/") or normal != value.rstrip("/") or any(c.isspace() or c in "'\"$`\\:" for c in value):
            raise ValueError(f"expected an absolute, normalized path without spaces or quotes, e.g. /data/uploads; "
                             f"found '{value}'")
        clash = next((reserved for reserved in _RESERVED
                      if normal == reserved or (reserved != "/" and normal.startswith(reserved + "/"))), None)
        if clash:
            raise ValueError(f"'{value}' is {'' if normal == clash else 'under '}{clash}, which the image or the "
                             "platform uses; expected a directory of its own, e.g. /data/uploads")
        return normal

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _SIZE_RE.match(value):
            raise ValueError(f"expected a size in Ki, Mi, Gi or Ti such as 1Gi; found '{value}'")
        return value


def check_volume_names(value: dict[str, ServiceVolume]) -> dict[str, ServiceVolume]:
    """`services.<name>.volumes`: each name a short DNS label, each mount path used once."""
    bad = [name for name in value if not VOLUME_NAME_RE.match(name)]
    if bad:
        raise ValueError(f"{bad} are not volume names: expected a lowercase DNS label (a-z, 0-9, '-', starting with "
                         "a letter) of at most 20 characters, e.g. uploads")
    paths: dict[str, str] = {}
    for name, volume in value.items():
        if volume.mount_path in paths:
            raise ValueError(f"volumes {paths[volume.mount_path]} and {name} both mount at {volume.mount_path}; "
                             "give each its own mountPath")
        paths[volume.mount_path] = name
    return value


@dataclass(frozen=True)
class BackedUpVolume:
    """One declared volume as the backup job and the restore drill see it."""

    service: str
    name: str
    mount_path: str  # where the service mounts it
    size: str

    @property
    def volume_name(self) -> str:
        """The claim / Docker volume both the service and the backup job mount."""
        return f"{self.service}-{self.name}"


def backup_database(service_databases: list[str], volume: ServiceVolume) -> str | None:
    return volume.backup_with or (service_databases[0] if service_databases else None)


def volumes_of(config: "PlatformConfig", service: str) -> list[BackedUpVolume]:
    spec = config.services[service]
    return [BackedUpVolume(service, name, volume.mount_path, volume.size) for name, volume in sorted(spec.volumes.items())]


def volumes_backed_up_with(config: "PlatformConfig", database: str) -> list[BackedUpVolume]:
    """The volumes whose archives `database`'s backup job writes, in a stable order."""
    found = []
    for service, spec in sorted(config.services.items()):
        for name, volume in sorted(spec.volumes.items()):
            if volume.backup and backup_database(spec.databases, volume) == database:
                found.append(BackedUpVolume(service, name, volume.mount_path, volume.size))
    return found


def volume_problems(config: "PlatformConfig") -> list[Problem]:
    """Cross-key problems, each at the key to change (relative to `platform:`)."""
    problems = []
    for service, spec in config.services.items():
        for name, volume in spec.volumes.items():
            key = f"services.{service}.volumes.{name}"
            if not volume.backup:
                continue
            if volume.backup_with is not None and volume.backup_with not in config.databases:
                problems.append(Problem(f"{key}.backupWith", f"'{volume.backup_with}' is not a database; expected one "
                                                             f"of {sorted(config.databases)}"))
            elif backup_database(spec.databases, volume) is None:
                problems.append(Problem(key, "is backed up with a database's backups, but the service uses no "
                                             "database; set backupWith to one of "
                                             f"{sorted(config.databases) or '(none declared)'} or backup: false"))
    return problems
