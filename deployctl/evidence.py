"""Evidence files: what a drill or rollback did, when, how long it took, and whether that met the target."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


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
    _clock: float = field(default_factory=time.monotonic, repr=False)

    def finish(self, passed: bool | None = None, **details: Any) -> "Evidence":
        self.finished_at = now_iso()
        self.duration_seconds = round(time.monotonic() - self._clock, 3)
        self.details.update(details)
        if passed is None and self.threshold_seconds is not None:
            passed = self.duration_seconds <= self.threshold_seconds
        self.passed = passed
        return self

    def write(self, project: Path) -> Path:
        directory = project / "evidence" / self.stack
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = directory / f"{self.kind}-{stamp}.json"
        record = {key: value for key, value in asdict(self).items() if not key.startswith("_")}
        path.write_text(json.dumps(record, indent=2) + "\n")
        return path
