"""What deployctl checks before it changes a stack: `platform:preflight` (part of components/config/)."""

from __future__ import annotations

from pydantic import Field

from components.config.model import Model


class PreflightSpec(Model):
    # 20 %: the runbooks' floor; below it image pulls, logs and database WAL compete for the rest.
    min_free_disk_percent: float = Field(
        20, ge=0, le=100, description="Free disk on the Docker host or the node (or the render directory) needed to deploy.")
    # A registry that does not answer within this is a failed check, not a hung deploy.
    registry_timeout_seconds: float = Field(10, gt=0, le=120)
