"""Evidence files: what a drill, rollback or release did, when, how long it took, whether that
met the target, who ran it and why; signed (deployctl/signing.py) so `deployctl verify` can tell
a file that is exactly what deployctl wrote from one changed afterwards."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from deployctl import signing


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Evidence:
    kind: str
    stack: str
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    duration_seconds: float | None = None
    passed: bool | None = None
    threshold_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Who ran it, why, and the id that links it to its release record and notifications.
    actor: str | None = None
    reason: str | None = None
    correlation_id: str | None = None
    _clock: float = field(default_factory=time.monotonic, repr=False)
    _path: Path | None = field(default=None, repr=False)

    @property
    def path(self) -> Path | None:
        """Where write() put it (None: not written yet)."""
        return self._path

    def finish(self, passed: bool | None = None, **details: Any) -> "Evidence":
        self.finished_at = now_iso()
        self.duration_seconds = round(time.monotonic() - self._clock, 3)
        self.details.update(details)
        if passed is None and self.threshold_seconds is not None:
            passed = self.duration_seconds <= self.threshold_seconds
        self.passed = passed
        return self

    def record(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if not key.startswith("_")}

    def write(self, project: Path) -> Path:
        """Write evidence/<stack>/<kind>-<time>.json, signed with this machine's evidence key."""
        directory = project / "evidence" / self.stack
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = directory / f"{self.kind}-{stamp}.json"
        suffix = 1
        while path.exists():  # two evidence files of one kind within a second
            suffix += 1
            path = directory / f"{self.kind}-{stamp}-{suffix}.json"
        path.write_text(signing.render(signing.sign(self.record())))
        self._path = path
        return path


def threshold_failures(record: dict[str, Any]) -> list[str]:
    """Every target the evidence says was missed, each naming the measured value and its limit."""
    failures = []
    duration, threshold = record.get("duration_seconds"), record.get("threshold_seconds")
    if isinstance(duration, (int, float)) and isinstance(threshold, (int, float)) and duration > threshold:
        failures.append(f"took {duration:.1f}s, target <= {threshold:g}s")
    details = record.get("details") or {}
    for name, database in (details.get("databases") or {}).items():
        for measured, limit, what in (("rto_seconds", "rto_threshold_seconds", "RTO"),
                                      ("rpo_seconds", "rpo_threshold_seconds", "RPO")):
            value, bound = database.get(measured), database.get(limit)
            if isinstance(value, (int, float)) and isinstance(bound, (int, float)) and value > bound:
                failures.append(f"{name}: {what} {value:.0f}s, target <= {bound:g}s")
        if database.get("error"):
            failures.append(f"{name}: {database['error']}")
    analysis = record.get("analysis") or details.get("analysis") or {}
    if analysis.get("success_rate") is not None and analysis.get("min_success_rate") is not None \
            and analysis["success_rate"] < analysis["min_success_rate"]:
        failures.append(f"analysis success rate {analysis['success_rate']:.1%}, target >= "
                        f"{analysis['min_success_rate']:.0%}")
    if analysis.get("timeout_rate") is not None and analysis.get("max_timeout_rate") is not None \
            and analysis["timeout_rate"] > analysis["max_timeout_rate"]:
        failures.append(f"analysis timeout rate {analysis['timeout_rate']:.1%}, target <= "
                        f"{analysis['max_timeout_rate']:.0%}")
    outcome = record.get("outcome", details.get("outcome"))
    if outcome is not None and outcome != "succeeded":
        failures.append(f"outcome {outcome}")
    if record.get("passed") is False and not failures:
        failures.append("the evidence records passed: false")
    return failures
