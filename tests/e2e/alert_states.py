"""What a running Prometheus says about its alerts, the same way on both targets."""

from __future__ import annotations

import time
from typing import Callable


def alerts_by_state(alerts: list[dict]) -> dict[str, list[str]]:
    """Prometheus' /api/v1/alerts list as `Name{label=value, ...}` by state (firing, pending)."""
    states: dict[str, list[str]] = {"firing": [], "pending": []}
    for alert in alerts:
        labels = alert["labels"]
        states.setdefault(alert["state"], []).append(
            f"{labels['alertname']}{{{', '.join(f'{k}={v}' for k, v in sorted(labels.items()) if k != 'alertname')}}}")
    return states


def only_watchdog_for(read_states: Callable[[], dict[str, list[str]]], seconds: float = 90) -> dict[str, list[str]]:
    """Polls for `seconds` (several evaluations past every short `for:`); fails at once when any
    alert but Watchdog fires or is pending. Returns the last states read."""
    deadline = time.monotonic() + seconds
    states = read_states()
    while time.monotonic() < deadline:
        states = read_states()
        others = [a for a in states["firing"] + states["pending"] if not a.startswith("Watchdog")]
        assert others == [], f"on the healthy stack: firing {states['firing']}, pending {states['pending']}"
        time.sleep(5)
    return states
