"""Preflight: what must hold before deployctl changes a stack, checked in order, each one named.

  target      the Docker daemon, the cluster's API server, or the render directory answers
  disk        free disk on the Docker host, on every node, or under the render directory is at
              least preflight.minFreeDiskPercent (20 % by default)
  network     (Docker) the stack's edge network exists, once the stack has been deployed
  registry    every image version the stack runs resolves to a digest in its registry

A failed check stops the operation before anything changes (no config written, no preview),
naming the check and what to do. The host is reached only through the target code
(components/targets/hosts.py: one class per kind of target, chosen by `host_for`).
"""

from __future__ import annotations

from typing import Any

from components.config import PlatformConfig
from components.targets.hosts import Check, Host


class PreflightFailed(Exception):
    def __init__(self, failed: Check, checks: list[Check]) -> None:
        super().__init__(f"preflight check '{failed.name}' failed: {failed.detail}"
                         + (f"; {failed.fix}" if failed.fix else "") + " (nothing was changed)")
        self.failed, self.checks = failed, checks


def run_checks(config: PlatformConfig, host: Host, images: dict[str, dict[str, Any]]) -> list[Check]:
    """Every check, in order; raises PreflightFailed at the first that fails."""
    checks: list[Check] = []

    def add(check: Check) -> None:
        checks.append(check)
        if not check.ok:
            raise PreflightFailed(check, checks)

    add(host.reachable())
    floor = config.preflight.min_free_disk_percent
    try:
        free, where = host.free_disk_percent()
    except (RuntimeError, OSError, KeyError, ValueError, ZeroDivisionError) as error:
        add(Check("disk", False, f"could not measure free disk: {error}", "check the target is healthy"))
    else:
        add(Check("disk", free >= floor, f"{free:.1f}% free on {where} (needs >= {floor:g}%)",
                  None if free >= floor else "free disk space there (old images: `docker image prune`; logs), "
                  "or lower platform:preflight.minFreeDiskPercent"))
    network = host.edge_network()
    if network is not None:
        add(network)
    missing = [entry for entry in images.values() if not entry.get("digest") or entry.get("error")]
    if missing:
        add(Check("registry", False, "; ".join(sorted({entry["error"] or entry["image"] for entry in missing})),
                  "push the image (devenv/images/build.sh here), or fix the version in the stack file"))
    add(Check("registry", True, f"{len(images)} images resolve to digests"))
    return checks
