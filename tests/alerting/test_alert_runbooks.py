"""docs/runbooks/alerts.md: one actionable section per alert, reachable from its runbook_url."""

from __future__ import annotations

import re

from .tooling import REPO_ROOT

RUNBOOK = REPO_ROOT / "docs" / "runbooks" / "alerts.md"


def github_anchor(heading: str) -> str:
    """GitHub's heading slug: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> dict[str, str]:
    parts = re.split(r"^## (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {github_anchor(title): body for title, body in zip(parts[1::2], parts[2::2])}


def test_every_runbook_url_anchor_is_a_heading(rules):
    assert [r.name for r in rules if r.runbook.split("#")[1] not in sections()] == []


def test_every_alert_section_belongs_to_an_alert(rules):
    assert sorted(set(sections()) - {r.name.lower() for r in rules}) == []


def test_every_section_explains_meaning_impact_checks_and_fix():
    parts = ("**What it means:**", "**Impact:**", "**Check first:**", "**How to fix:**")
    assert {a: [p for p in parts if p not in body] for a, body in sections().items() if not all(p in body for p in parts)} == {}


def test_every_section_has_docker_and_kubernetes_commands():
    assert [a for a, body in sections().items() if "docker " not in body or "kubectl -n <ns>" not in body] == []


def test_runbook_links_to_the_other_runbooks():
    text = RUNBOOK.read_text()
    assert [f for f in ("certificates.md", "backup-restore.md", "rollback.md") if f"]({f})" not in text] == []
