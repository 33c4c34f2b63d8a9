"""Backup before deploy: when an update changes a service that talks to a database, that
database is dumped first, and the update stops if the dump fails.

A dynamic resource (pulumi-command cannot be built here, docs/toolchain.md) whose inputs are
the versions of the database's client services: it runs only when one of them changes, and
the services' workloads wait for it.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi.dynamic as dynamic
from pulumi import ResourceOptions


@dataclass(frozen=True)
class PreDeployBackupArgs:
    database: str
    command: Sequence[str]
    client_versions: Mapping[str, str]  # service -> version: a change triggers the backup


class PreDeployBackup(pulumi.ComponentResource):
    def __init__(self, name: str, args: PreDeployBackupArgs, depends_on: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        super().__init__("platform:backup:PreDeployBackup", name, None, opts)
        self.run = _BackupRun(f"{name}-run", {
            "database": args.database,
            "command": list(args.command),
            "clientVersions": dict(args.client_versions),
            "last_run": None,
        }, opts=ResourceOptions(parent=self, depends_on=list(depends_on)))
        self.last_run = self.run.last_run
        self.register_outputs({"last_run": self.last_run})


class _BackupRun(dynamic.Resource):
    last_run: pulumi.Output[dict]

    def __init__(self, name: str, props: dict, opts: ResourceOptions | None = None):
        super().__init__(_BackupProvider(), name, props, opts)


class _BackupProvider(dynamic.ResourceProvider):
    def create(self, props):
        # A first deploy has nothing to lose yet; the scheduled backups start from here.
        return dynamic.CreateResult(id_=f"predeploy-{props['database']}", outs={**props, "last_run": None})

    def diff(self, _id, olds, news):
        changed = olds.get("clientVersions") != news.get("clientVersions") or olds.get("command") != news.get("command")
        return dynamic.DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id, _olds, news):
        return dynamic.UpdateResult(outs={**news, "last_run": _run_backup(news)})


def _run_backup(props: dict) -> dict:
    started = time.monotonic()
    result = subprocess.run(list(props["command"]), capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise Exception(f"backup of database '{props['database']}' before deploy failed (exit "
                        f"{result.returncode}); the update stops here: {result.stderr.strip()[-800:]}")
    return {"seconds": round(time.monotonic() - started, 3), "output": result.stdout.strip()[-400:]}
