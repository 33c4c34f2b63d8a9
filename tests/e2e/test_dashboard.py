"""`deployctl dashboard` in a real headless browser (Debian's chromium): the page shows each stack's
versions against the verified ones, the release timeline with the failure and the rollback
marked, and who did what. The screenshot is kept in .state/reports/dashboard.png."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from engine import ROOT

pytestmark = pytest.mark.e2e

SECRETS = {"mainDbPassword": "e2e-db-password-7f3a", "sessionSigningKey": "e2e-signing-key-91bc"}
SCREENSHOT = ROOT / ".state" / "reports" / "dashboard.png"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)"
    return found


def browse(page, *args: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--window-size=1280,1400", *args, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


class Cells(HTMLParser):
    """The rendered DOM's text per element of interest: rows by class, cells in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[tuple[str, list[str]]]] = {}
        self.stack = None
        self.row: tuple[str, list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section" and "data-stack" in attrs:
            self.stack = attrs["data-stack"]
            self.sections[self.stack] = []
        elif tag == "tr" and self.stack:
            self.row = (attrs.get("class") or "", [])
            self.sections[self.stack].append(self.row)
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None and self.row is not None:
            self.row[1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_dashboard_shows_versions_releases_and_rollbacks_in_headless_chromium(staging, tmp_path):
    staging.env["DEPLOYCTL_SIGNING_DIR"] = str(tmp_path / "keys")
    staging.pulumi("up", "--yes", "-s", "staging", "--message", "api 1.4.2")
    staging.set_config("staging", "services.api.version", "1.5.0")
    staging.deployctl("deploy", "staging", "--actor", "alice", "--reason", "ship 1.5.0")
    staging.set_config("staging", "services.api.version", "1.7.0-broken")
    staging.deployctl("deploy", "staging", "--actor", "bob", "--reason", "try 1.7.0", check=False)
    staging.init_stack("prod", SECRETS)
    staging.render_only("prod")
    staging.deployctl("promote", "staging", "prod", "--actor", "carol")
    page = tmp_path / "dashboard.html"

    staging.deployctl("dashboard", "staging", "prod", "--output", str(page))

    dom = Cells()
    dom.feed(browse(page, "--dump-dom").stdout)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browse(page, f"--screenshot={SCREENSHOT}")
    assert SCREENSHOT.stat().st_size > 20000, "the screenshot is (nearly) empty"
    print(f"screenshot: {SCREENSHOT}")
    assert set(dom.sections) == {"staging", "prod"}
    prod_api = next(cells for _, cells in dom.sections["prod"] if cells[:1] == ["api"])
    assert prod_api[1:4] == ["1.5.0", "1.5.0", "verified"]
    releases = [(kind, cells) for kind, cells in dom.sections["staging"] if kind.startswith("release")]
    assert [kind for kind, _ in releases[:4]] == ["release rollback", "release failed", "release succeeded",
                                                 "release succeeded"]
    rollback, failed, deployed = releases[0][1], releases[1][1], releases[2][1]
    assert failed[4:7] == ["bob", "try 1.7.0", "rolled-back"] and rollback[4] == "bob"
    assert deployed[4:7] == ["alice", "ship 1.5.0", "succeeded"]
