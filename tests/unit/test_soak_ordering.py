"""A module that judges a soaked stack runs last in its lane, and the lane's first test deploys
the stack (tests/e2e/soak.py, called by tests/e2e/conftest.py's collection hook)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from support import ROOT

sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from soak import soaking_modules_last  # noqa: E402


@dataclass
class Marker:
    args: tuple


@dataclass
class Item:
    name: str
    lane: str
    soak: str | None = None
    fixturenames: list[str] = field(default_factory=lambda: ["tmp_path"])

    def get_closest_marker(self, name: str) -> Marker | None:
        return Marker((self.soak,)) if name == "soak" and self.soak else None


def names(items: list[Item]) -> list[str]:
    return [item.name for item in items]


def reordered(items: list[Item]) -> list[Item]:
    soaking_modules_last(items, lambda item: item.lane)
    return items


def test_a_soaking_modules_tests_move_to_the_end_and_the_others_keep_their_order():
    items = reordered([Item("acme", "cluster"), Item("alerting-1", "cluster", "soak_fixture"),
                       Item("alerting-2", "cluster", "soak_fixture"), Item("backups", "cluster"), Item("unit", "")])
    assert names(items) == ["acme", "backups", "unit", "alerting-1", "alerting-2"]


def test_the_lanes_first_test_asks_for_the_soak_fixture_before_its_own():
    items = reordered([Item("docker-first", "docker"), Item("acme", "cluster"),
                       Item("alerting", "cluster", "cluster_soak")])
    acme = next(item for item in items if item.name == "acme")
    assert acme.fixturenames == ["cluster_soak", "tmp_path"]


def test_the_other_lanes_tests_do_not_ask_for_it():
    items = reordered([Item("docker-first", "docker"), Item("acme", "cluster"),
                       Item("alerting", "cluster", "cluster_soak")])
    assert next(item for item in items if item.name == "docker-first").fixturenames == ["tmp_path"]


def test_a_soaking_module_alone_in_its_lane_asks_for_its_fixture_once():
    items = reordered([Item("alerting-1", "docker", "docker_soak", ["docker_soak", "tmp_path"]),
                       Item("alerting-2", "docker", "docker_soak", ["docker_soak"])])
    assert items[0].fixturenames == ["docker_soak", "tmp_path"]
