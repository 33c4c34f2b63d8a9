"""`deployctl history --chart`: the release timeline as a picture (PNG or self-contained HTML)."""

from __future__ import annotations

import base64
import io
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from deployctl.history import Release  # noqa: E402


def _time(release: Release) -> datetime:
    return datetime.fromisoformat(release.start_time.replace("Z", "+00:00"))


def draw(releases: Sequence[Release], stack: str, path: Path, records: Sequence[dict[str, Any]] = ()) -> Path:
    """The timeline; with release records, each update deployctl made is labelled with its actor."""
    actors = {number: record.get("actor") for record in records for number in record.get("updates") or []}
    updates = [r for r in releases if r.kind == "update"]
    services = sorted({service for r in updates for service in r.versions})
    figure, axis = plt.subplots(figsize=(11, 1.2 + 0.7 * max(len(services), 1)))
    for row, service in enumerate(services):
        previous = None
        for release in updates:
            version = release.versions.get(service)
            when = _time(release)
            if not release.succeeded:
                axis.scatter([when], [row], marker="x", color="#c0392b", s=80, zorder=3)
                continue
            color = "#8e44ad" if release.is_rollback else "#2e86c1"
            axis.scatter([when], [row], color=color, s=40, zorder=2)
            if version != previous:
                axis.annotate(version, (when, row), textcoords="offset points", xytext=(0, 8), ha="center",
                              fontsize=8)
            previous = version
    for release in updates:
        if release.is_rollback:
            axis.axvline(_time(release), color="#8e44ad", alpha=0.3, linestyle="--")
        if actors.get(release.number):
            axis.annotate(actors[release.number], (_time(release), -0.5), textcoords="offset points",
                          xytext=(0, -2), ha="center", fontsize=7, color="#555555")
    axis.set_yticks(range(len(services)), services)
    axis.set_ylim(-0.7, len(services) - 0.3)
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
    axis.set_title(f"{stack}: releases (blue: update, purple: rollback, red x: failed update)")
    figure.autofmt_xdate()
    figure.tight_layout()
    if path.suffix.lower() == ".html":
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        encoded = base64.b64encode(buffer.getvalue()).decode()
        path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{stack} releases</title>"
                        f"</head><body><img alt='{stack} release timeline' src='data:image/png;base64,{encoded}'>"
                        "</body></html>\n")
    else:
        figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
