"""Shared fixtures for the alerting tests: the default rule set, built the way a stack builds it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Until a root pytest config sets `pythonpath = ["."]`, make `components` importable from the repository root.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from components.alerting.models import AlertRule, RuleGroup  # noqa: E402
from components.alerting.rules import AlertingThresholds, build_rule_groups  # noqa: E402

from .tooling import CONTAINERS, DATABASES, SERVICES  # noqa: E402


@pytest.fixture
def groups() -> list[RuleGroup]:
    return build_rule_groups(AlertingThresholds(), SERVICES, DATABASES, CONTAINERS)


@pytest.fixture
def rules(groups: list[RuleGroup]) -> list[AlertRule]:
    return [rule for group in groups for rule in group.rules]
