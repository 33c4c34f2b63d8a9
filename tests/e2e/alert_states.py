"""What a running Prometheus says about its alerts, the same way on both targets."""

from __future__ import annotations

import time
from typing import Callable

# What the alerting test stacks set on both targets, so a fault reaches the webhook in well under a
# minute: scrapes and evaluations every 5 s, ServiceDown/BackupFailed `for: 30s`, group_wait 5 s,
# Watchdog re-sent every 20 s.
SHORT_INTERVALS = {
    "monitoring.scrapeIntervalSeconds": 5,
    "alerting.thresholds.serviceDownFor": "30s",
    "alerting.thresholds.backupFor": "30s",
    "alerting.criticalGroupWait": "5s",
    "alerting.groupWait": "5s",
    "alerting.heartbeatInterval": "20s",
}


def _named(labels: dict[str, str]) -> str:
    """An alert as `Name{label=value, ...}`, its labels sorted."""
    return f"{labels['alertname']}{{{', '.join(f'{k}={v}' for k, v in sorted(labels.items()) if k != 'alertname')}}}"


def alerts_by_state(alerts: list[dict]) -> dict[str, list[str]]:
    """Prometheus' /api/v1/alerts list as `Name{label=value, ...}` by state (firing, pending)."""
    states: dict[str, list[str]] = {"firing": [], "pending": []}
    for alert in alerts:
        labels = alert["labels"]
        states.setdefault(alert["state"], []).append(_named(labels))
    return states


def _not_watchdog(alerts: list[str]) -> list[str]:
    return [a for a in alerts if not a.startswith("Watchdog")]


def only_watchdog_for(read_states: Callable[[], dict[str, list[str]]], seconds: float = 90,
                      settle_seconds: float = 90, explain: Callable[[], str] = lambda: "") -> dict[str, list[str]]:
    """Polls for `seconds` (several evaluations past every short `for:`) and fails at once when any
    alert but Watchdog fires. A pending alert is one evaluation that saw the condition: `for:`
    exists so that one failed scrape does not page anyone, and a healthy stack may show one (a
    postgres_exporter scrape whose ping fails once reports pg_up 0). Each is printed with
    `explain()` so its cause is on record; it must clear within `settle_seconds` after the poll,
    before its `for:` (30 s here) has let it fire. Returns the last states read."""
    deadline = time.monotonic() + seconds
    seen_pending: set[str] = set()

    def read() -> dict[str, list[str]]:
        states = read_states()
        firing = _not_watchdog(states["firing"])
        assert firing == [], f"on the healthy stack: firing {states['firing']}, pending {states['pending']}\n{explain()}"
        for alert in set(_not_watchdog(states["pending"])) - seen_pending:
            seen_pending.add(alert)
            print(f"alerting: pending on the healthy stack (must clear before it fires): {alert}\n{explain()}")
        return states

    states = read()
    while time.monotonic() < deadline:
        time.sleep(5)
        states = read()
    settled = time.monotonic() + settle_seconds
    while _not_watchdog(states["pending"]) and time.monotonic() < settled:
        time.sleep(5)
        states = read()
    assert _not_watchdog(states["pending"]) == [], (
        f"on the healthy stack, still pending {settle_seconds:.0f}s after the poll: {states['pending']}\n{explain()}")
    return states


def fired_over(query: Callable[[str], list[dict]], seconds: float, state: str = "firing") -> list[str]:
    """Every alert but Watchdog that was in `state` at any evaluation of the last `seconds`, from
    Prometheus' own ALERTS series (`query` runs an instant PromQL query, returns its result list):
    what a poll of /api/v1/alerts between its reads cannot see."""
    window = max(int(seconds), 1)
    result = query(f'max_over_time(ALERTS{{alertstate="{state}", alertname!="Watchdog"}}[{window}s])')
    return sorted(_named({k: v for k, v in r["metric"].items() if k != "alertstate"}) for r in result)
