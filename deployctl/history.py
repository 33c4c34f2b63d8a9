"""Stack history as releases: numbered, with the service versions each update ran.

The file backend reports version 0 for every update, so releases are numbered here:
oldest = 1, counting `pulumi stack history` entries (newest first) from the end. The number
of an update never changes as new ones are added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

CONFIG_PREFIX = "platform:"


class HistoryError(Exception):
    pass


@dataclass(frozen=True)
class Release:
    number: int
    kind: str
    result: str
    message: str
    start_time: str
    end_time: str | None
    config: dict[str, dict[str, Any]] = field(repr=False)
    # The engine's counts by operation (`same`, `create`, `update`, ...); None when history has none.
    resource_changes: dict[str, int] | None = None
    # The update's environment metadata (`ci.build.id` is deployctl's correlation id, see records.py).
    environment: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.kind == "update" and self.result == "succeeded"

    @property
    def changed_resources(self) -> bool:
        """Whether the update created, updated, replaced or deleted anything. Unknown counts as
        changed: rolling back to what ran before is then the safe answer."""
        if self.resource_changes is None:
            return True
        return any(count for operation, count in self.resource_changes.items() if operation != "same")

    @property
    def is_rollback(self) -> bool:
        return self.message.startswith("rollback to ")

    def _object(self, key: str) -> dict:
        entry = self.config.get(CONFIG_PREFIX + key) or {}
        if isinstance(entry.get("objectValue"), dict):
            return entry["objectValue"]
        try:
            value = json.loads(entry.get("value") or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def versions(self) -> dict[str, str]:
        return versions_of(self._object("services"), self._object("edge"))

    @property
    def correlation_id(self) -> str | None:
        """The id deployctl gave the operation that made this update (None: not made by deployctl)."""
        return self.environment.get("ci.build.id") if self.environment.get("ci.system") == "deployctl" else None

    @property
    def canaries(self) -> dict[str, dict]:
        return {name: spec["canary"] for name, spec in self._object("services").items()
                if isinstance(spec, dict) and isinstance(spec.get("canary"), dict)}

    def plain_config(self) -> dict[str, dict[str, Any]]:
        """This update's non-secret configuration, in `pulumi config set-all --json` form."""
        plain = {}
        for key, entry in self.config.items():
            if entry.get("secret"):
                continue
            item = {"value": entry.get("value"), "secret": False}
            if entry.get("objectValue") is not None:
                item["objectValue"] = entry["objectValue"]
            plain[key] = item
        return plain

    def summary(self) -> dict[str, Any]:
        return {"version": self.number, "kind": self.kind, "result": self.result, "message": self.message,
                "startTime": self.start_time, "endTime": self.end_time, "versions": self.versions,
                "canaries": self.canaries}


def versions_of(services: dict[str, Any], edge: dict[str, Any]) -> dict[str, str]:
    """Service name (and `edge`) -> version, from the `services` and `edge` config objects."""
    versions = {name: spec.get("version", "?") for name, spec in services.items() if isinstance(spec, dict)}
    if isinstance(edge, dict) and edge.get("version"):
        versions["edge"] = edge["version"]
    return versions


def releases_from_history(entries: Sequence[dict]) -> list[Release]:
    """Numbered releases, oldest first, from `pulumi stack history --json` (newest first)."""
    total = len(entries)
    releases = []
    for index, entry in enumerate(entries):
        releases.append(Release(
            number=entry.get("version") or total - index,
            kind=entry.get("kind", "?"),
            result=entry.get("result", "?"),
            message=entry.get("message") or "",
            start_time=entry.get("startTime", ""),
            end_time=entry.get("endTime"),
            config=entry.get("config") or {},
            resource_changes=entry.get("resourceChanges"),
            environment=entry.get("environment") or {},
        ))
    return sorted(releases, key=lambda release: release.number)


def attach_records(releases: Sequence[Release], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each release's summary with the release record of the deployctl operation that made it
    (`record`: who, why, outcome, digests...), oldest first. A record's `updates` name the
    history versions it made; an update with deployctl's correlation id but no record file
    still shows that id."""
    by_update: dict[int, dict[str, Any]] = {}
    for record in records:
        for number in record.get("updates") or []:
            by_update[number] = record
    entries = []
    for release in releases:
        entry = release.summary()
        record = by_update.get(release.number)
        if record is not None:
            entry["record"] = {
                "operation": record.get("operation"), "actor": record.get("actor"), "reason": record.get("reason"),
                "correlationId": record.get("correlation_id"), "outcome": record.get("outcome"),
                "versionsBefore": record.get("versions_before"), "versionsAfter": record.get("versions_after"),
                "digests": {name: image.get("digest") for name, image in (record.get("images") or {}).items()},
                "versionSetSha256": record.get("version_set_sha256"), "durations": record.get("durations"),
                "smoke": (record.get("smoke") or {}).get("result"), "policy": record.get("policy"),
                "analysis": record.get("analysis"), "file": record.get("file"),
            }
        elif release.correlation_id:
            entry["record"] = {"correlationId": release.correlation_id}
        entries.append(entry)
    return entries


def find(releases: Sequence[Release], number: int, stack: str) -> Release:
    for release in releases:
        if release.number == number:
            if not release.succeeded:
                raise HistoryError(f"{stack}: version {number} is a {release.kind} that {release.result}; "
                                   "roll back to a succeeded update (see `deployctl history " + stack + "`)")
            return release
    known = f"1..{releases[-1].number}" if releases else "none"
    raise HistoryError(f"{stack}: there is no version {number} in the stack's history (versions: {known})")


def newest_good(releases: Sequence[Release], stack: str) -> Release:
    """The newest succeeded update: what the stack ran before an update that is about to start."""
    for release in reversed(releases):
        if release.succeeded:
            return release
    raise HistoryError(f"{stack}: no update has succeeded yet; nothing good to roll back to")


def last_good(releases: Sequence[Release], stack: str) -> Release:
    """The newest succeeded update before the newest update."""
    updates = [r for r in releases if r.kind == "update"]
    if len(updates) < 2:
        raise HistoryError(f"{stack}: no earlier update to roll back to")
    for release in reversed(updates[:-1]):
        if release.succeeded:
            return release
    raise HistoryError(f"{stack}: no earlier update succeeded; nothing good to roll back to")
