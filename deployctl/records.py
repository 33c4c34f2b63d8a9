"""Release records: one per deployctl operation that changes a stack (or drills it).

A record says who (actor), why (reason), which operation, the correlation id that links it to
its notifications and evidence, the versions before and after, every image the stack runs with
the digest the registry resolved for it and the sha256 of that whole set, the preflight, policy,
smoke-test and analysis results, how long each phase took, the Pulumi updates it made, and the
outcome. It is kept three ways:
  - a JSON file beside the state (`<file backend>/.deployctl/records/<stack>/`, else the
    project's `.state/`), which a rollback never rewrites;
  - the update's own environment metadata in Pulumi's history: Pulumi records the generic CI
    variables for every update (PULUMI_CI_SYSTEM, PULUMI_CI_BUILD_ID, PULUMI_CI_BUILD_TYPE,
    PULUMI_CI_BUILD_URL become `ci.system`, `ci.build.id`, `ci.build.type`, `ci.build.url`), so
    each update names its correlation id, operation and record file;
  - the update message, which deployctl already writes (`rollback to 3`, `promote a -> b: ...`).
Ref: https://github.com/pulumi/pulumi/blob/master/sdk/go/common/util/ciutil/vars.go (DetectVars: PULUMI_CI_*)
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from components import registry

SCHEMA = 1
CI_SYSTEM = "deployctl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_actor() -> str:
    """The OS user running deployctl (what `--actor` defaults to)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def this_process() -> dict[str, Any]:
    from deployctl.lease import process_start

    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}


@dataclass
class Audit:
    """What the operator says about an operation, and what deployctl does around it."""

    actor: str = field(default_factory=default_actor)
    reason: str | None = None
    correlation_id: str = field(default_factory=new_correlation_id)
    store: "RecordStore | None" = None  # None: the record is built but kept nowhere (library use)
    notify: bool = True
    preflight: bool = True


@dataclass
class ReleaseRecord:
    operation: str
    stack: str
    actor: str
    reason: str | None
    correlation_id: str
    schema: int = SCHEMA
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    duration_seconds: float | None = None
    # running, then succeeded | failed | rolled-back (failed, then automatically rolled back) | refused;
    # interrupted: its process ended while it ran (set by the next operation on the stack)
    outcome: str = "running"
    error: str | None = None
    versions_before: dict[str, str] = field(default_factory=dict)
    versions_attempted: dict[str, str] = field(default_factory=dict)
    versions_after: dict[str, str] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    version_set_sha256: str | None = None
    preflight: list[dict[str, Any]] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)
    smoke: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    durations: dict[str, float] = field(default_factory=dict)
    updates: list[int] = field(default_factory=list)  # the Pulumi history versions this operation made
    rolled_back_to: int | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    evidence: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # The process that runs the operation: a record still "running" whose process is gone was
    # interrupted (deployctl/recording.py close_interrupted says so in it).
    process: dict[str, Any] = field(default_factory=this_process)
    _clock: float = field(default_factory=time.monotonic, repr=False)
    path: Path | None = field(default=None, repr=False)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one phase (preflight, preview, update, rollback, ...); repeated phases add up."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.durations[name] = round(self.durations.get(name, 0.0) + time.monotonic() - started, 3)

    def finish(self, outcome: str, error: str | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.finished_at = now_iso()
        self.duration_seconds = round(time.monotonic() - self._clock, 3)

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_") and key != "path"}

    def environment(self) -> dict[str, str]:
        """Variables Pulumi stores in the update's environment metadata (see the module docstring)."""
        env = {"PULUMI_CI_SYSTEM": CI_SYSTEM, "PULUMI_CI_BUILD_ID": self.correlation_id,
               "PULUMI_CI_BUILD_TYPE": self.operation}
        if self.path is not None:
            env["PULUMI_CI_BUILD_URL"] = self.path.as_uri()
        return env


class RecordStore:
    """Record files, one per operation, under `directory/<stack>/`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, record: ReleaseRecord) -> Path:
        stamp = record.started_at.replace("-", "").replace(":", "").replace("+0000", "Z")
        return self.directory / record.stack / f"{stamp}-{record.operation}-{record.id}.json"

    def records(self, stack: str) -> list[dict[str, Any]]:
        """The stack's records, oldest first."""
        found = []
        for path in sorted((self.directory / stack).glob("*.json")):
            try:
                found.append({**json.loads(path.read_text()), "file": str(path)})
            except (OSError, ValueError):
                continue
        return sorted(found, key=lambda r: (r.get("started_at", ""), r.get("file", "")))

    def records_with_id(self, correlation_id: str) -> list[dict[str, Any]]:
        """Every stack's records of one correlation id, oldest first."""
        found = [r for stack in sorted(p.name for p in self.directory.glob("*") if p.is_dir())
                 for r in self.records(stack) if r.get("correlation_id") == correlation_id]
        return sorted(found, key=lambda r: (r.get("started_at", ""), r.get("file", "")))


def store_for(engine: Any) -> RecordStore:
    """Beside the state when the backend is a directory (every checkout sharing the state shares
    the records, as with leases); else the project's `.state/`."""
    backend = engine.backend_directory() if hasattr(engine, "backend_directory") else None
    base = backend or Path(engine.project) / ".state"
    return RecordStore(base / ".deployctl" / "records")


# Images and their digests ------------------------------------------------------------------

def resolve_images(images: dict[str, tuple[str, str]], timeout: float = 10) -> dict[str, dict[str, Any]]:
    resolved: dict[tuple[str, str], registry.Resolved] = {}
    out = {}
    for name, (repository, version) in images.items():
        if (repository, version) not in resolved:  # one registry request per distinct image
            resolved[(repository, version)] = registry.resolve(repository, version, timeout)
        out[name] = resolved[(repository, version)].as_dict()
    return out


def version_set_sha256(images: dict[str, dict[str, Any]]) -> str | None:
    """sha256 of the canonical JSON of {name: repository@digest}: one value names the exact set
    of artifacts a release ran. None while any digest is unknown."""
    if not images or any(not entry.get("digest") for entry in images.values()):
        return None
    pinned = {name: f"{entry['image']}@{entry['digest']}" for name, entry in sorted(images.items())}
    return hashlib.sha256(json.dumps(pinned, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
