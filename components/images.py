"""Every image a stack runs, by role: the one list the release record, the registry preflight and
the tests read (tests/unit/test_stack_images.py renders each stack under mocks and checks that
the program asks for exactly these images, so a new container cannot be left out of a record).

Role names are stable: a service's name, `<service>-canary`, `edge`, `database-<name>`,
`backup-exporter`, the stack's own `prometheus` and `alertmanager` (both targets), then what the
target adds (components/targets/__init__.py target_images: the exporters the rules read)."""

from __future__ import annotations

from typing import Any


def stack_images(config: Any) -> dict[str, tuple[str, str]]:
    """name -> (repository, version) for the validated PlatformConfig (components/config/platform.py)."""
    from components.targets import target_images

    images: dict[str, tuple[str, str]] = {}
    for name, service in sorted(config.services.items()):
        images[name] = (service.image, service.version)
        if service.canary is not None:
            images[f"{name}-canary"] = (service.image, service.canary.version)
    images["edge"] = (config.edge.image, config.edge.version)
    for name, database in sorted(config.databases.items()):
        images[f"database-{name}"] = (database.image, database.version)
    monitoring = config.monitoring
    if config.databases:  # each database's backup-metrics exporter (components/backups.py)
        images["backup-exporter"] = (monitoring.exporter_image, monitoring.exporter_version)
    # Each stack runs its own Prometheus and Alertmanager: containers on Docker, Prometheus
    # Operator objects on Kubernetes (components/targets/kubernetes_monitoring.py).
    images["prometheus"] = (monitoring.prometheus_image, monitoring.prometheus_version)
    images["alertmanager"] = (monitoring.alertmanager_image, monitoring.alertmanager_version)
    images.update(target_images(config))  # what the target itself adds (Docker: the exporters)
    return images
