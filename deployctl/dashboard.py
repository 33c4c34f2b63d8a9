"""`deployctl dashboard`: one static HTML page of the stacks, rendered with Jinja2 (autoescaped).

Per stack: the versions it runs against what its promotion source (or itself, for staging)
verified, canary weights, the release timeline from history joined to the release records
(failures and rollbacks marked, who and why), the newest drill evidence with its signature
checked, and the alerts firing in an Alertmanager when one is given (`--alertmanager-url`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from deployctl import signing
from deployctl.evidence import threshold_failures
from deployctl.history import attach_records
from deployctl.records import store_for
from deployctl.workspace import DeployError

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class StackView:
    name: str
    running: dict[str, str] = field(default_factory=dict)
    verified_by: str | None = None
    verified: dict[str, str] = field(default_factory=dict)
    canaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    drills: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] | None = None
    error: str | None = None

    def matches(self, service: str) -> bool | None:
        if service not in self.verified:
            return None
        return self.verified[service] == self.running.get(service)


def newest_drills(project: Path, stack: str) -> list[dict[str, Any]]:
    """The newest evidence file of each drill kind, its signature and targets checked."""
    found = []
    for kind in ("drill-rollback", "drill-restore"):
        files = sorted((project / "evidence" / stack).glob(f"{kind}-*.json"))
        if not files:
            continue
        path = files[-1]
        try:
            record = signing.verify_text(path.read_text(), signing.trusted_public_key())
            signature, missed = "valid", threshold_failures(record)
        except (signing.SignatureError, OSError, ValueError) as error:
            record, signature, missed = json.loads(path.read_text() or "{}"), f"invalid: {error}", []
        found.append({"kind": kind, "file": path.name, "finished": record.get("finished_at"),
                      "passed": record.get("passed") and not missed, "duration": record.get("duration_seconds"),
                      "threshold": record.get("threshold_seconds"), "signature": signature, "missed": missed})
    return found


def firing_alerts(alertmanager_url: str, stack: str) -> list[dict[str, Any]]:
    """Active alerts labelled with this stack, from Alertmanager's v2 API.
    Ref: https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml (GET /alerts)"""
    url = f"{alertmanager_url.rstrip('/')}/api/v2/alerts?active=true&silenced=false&inhibited=false"
    with urllib.request.urlopen(url, timeout=10) as response:
        alerts = json.loads(response.read())
    return [{"name": a["labels"].get("alertname"), "severity": a["labels"].get("severity"),
             "summary": (a.get("annotations") or {}).get("summary"), "since": a.get("startsAt")}
            for a in alerts if a.get("labels", {}).get("stack", stack) == stack]


def stack_view(engine: Any, stack: str, alertmanager_url: str | None) -> StackView:
    from deployctl.stack_settings import platform_config

    view = StackView(stack)
    try:
        outputs = engine.outputs(stack)
        view.running = outputs.get("versions") or {}
        view.canaries = outputs.get("canaries") or {}
        source = (platform_config(engine, stack).get("promotion") or {}).get("stagingStack")
        if source:
            view.verified_by = source
            view.verified = engine.outputs(source.rsplit("/", 1)[-1]).get("verifiedVersions") or {}
        else:
            view.verified_by, view.verified = stack, outputs.get("verifiedVersions") or {}
        releases = engine.releases(stack)
        view.timeline = list(reversed(attach_records(releases, store_for(engine).records(stack))))
    except DeployError as error:
        view.error = str(error)
    view.drills = newest_drills(engine.project, stack)
    if alertmanager_url:
        try:
            view.alerts = firing_alerts(alertmanager_url, stack)
        except (urllib.error.URLError, OSError, ValueError) as error:
            view.error = f"Alertmanager {alertmanager_url}: {error}"
    return view


def render(views: list[StackView]) -> str:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                              trim_blocks=True, lstrip_blocks=True)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return environment.get_template("dashboard.html").render(stacks=views, generated=generated)


def write(engine: Any, stacks: list[str], output: Path, alertmanager_url: str | None = None) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render([stack_view(engine, stack, alertmanager_url) for stack in stacks]))
    return output
