"""What every alert rule family shares: PromQL literals, the promtool fixtures' timing and the rule
with its runbook link (service_rules.py, database_rules.py, host_rules.py use them; rules.py groups them).

Every family also keeps its rules' fixtures beside them: promtool tests (promtool.py) check that each
rule fires on its `firing` series and stays quiet on its `healthy` ones.
"""

from __future__ import annotations

import math
import re

from .models import AlertingThresholds, AlertRule, duration_seconds, runbook_url

# The version the fixtures' targets run (any version string: the rules never match on it).
FIXTURE_VERSION = "1.4.2"

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")


def any_of(names: list[str]) -> str:
    """A PromQL regex alternation; names are checked so none can smuggle in regex syntax."""
    for name in names:
        if not _NAME_RE.match(name):
            raise ValueError(f"service and database names must be lowercase DNS-style labels, got {name!r}")
    return "|".join(names)


def num(value: float) -> str:
    """A number as PromQL and promtool read it, without float noise for whole numbers."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def pct(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def above(ratio: float) -> float:
    """A ratio clearly over the threshold: midway to 100 %."""
    return (ratio + 1) / 2


def minutes(duration: str) -> int:
    return math.ceil(duration_seconds(duration) / 60)


def past(duration: str, slack_minutes: int = 3) -> str:
    """A promtool eval_time safely past a `for:` duration (fixtures sample once a minute)."""
    return f"{minutes(duration) + slack_minutes}m"


def span(duration: str, value: str) -> str:
    """A constant series lasting beyond `past(duration)`."""
    return f"{value}x{minutes(duration) + 10}"


def rule(t: AlertingThresholds, **fields) -> AlertRule:
    return AlertRule(runbook=runbook_url(t.runbook_base_url, fields["name"]), **fields)
