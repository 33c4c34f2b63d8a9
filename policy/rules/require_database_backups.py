"""require-database-backups: every database in the stack has a backup schedule in the same stack."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from ._docs import doc_url
from ._workloads import (
    COMPONENT_LABEL,
    DATABASE_LABEL,
    DOCKER_CONTAINER,
    K8S_CRONJOB,
    component_of,
    is_workload,
    labels_of,
    service_name,
)

NAME = "require-database-backups"
BACKUP_TYPES = frozenset({K8S_CRONJOB, DOCKER_CONTAINER})


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    databases = []  # (name, urn)
    backed_up: set[str] = set()
    for resource in args.resources:
        if not is_workload(resource.resource_type):
            continue
        labels = labels_of(resource.resource_type, resource.props)
        component = component_of(labels)
        if component == "database":
            databases.append((service_name(labels, resource.name), resource.urn))
        elif component == "backup" and resource.resource_type in BACKUP_TYPES:
            target = labels.get(DATABASE_LABEL)
            if isinstance(target, str):
                backed_up.add(target)
    for database, urn in databases:
        if database not in backed_up:
            report_violation(
                f"database '{database}' has no backup schedule (a CronJob or Docker container labelled "
                f"{COMPONENT_LABEL}=backup and {DATABASE_LABEL}={database})",
                urn,
            )


POLICY = StackValidationPolicy(
    name=NAME,
    description="Checks that every database workload has a backup schedule in the same stack.",
    validate=validate,
    severity=Severity.HIGH,
    remediation_steps=(
        "Add a backup schedule for the database (the program's backup component: a Kubernetes CronJob or a "
        f"Docker container) labelled {COMPONENT_LABEL}=backup and {DATABASE_LABEL}=<database name>."
    ),
    url=doc_url(NAME),
)
