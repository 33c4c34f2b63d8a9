"""Running the real promtool and amtool: missing tools fail the test (never skip), failures show the output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# The stacks the tests render for: scraped services (the worker has no port), configured database names,
# and every container (a database runs as postgres-<name>).
# The scraped services and the versions deployed there (ServiceDown's absent() branch names them).
SERVICES = {"edge": "3.1.4", "web": "1.4.2", "api": "1.4.2"}
DATABASES = ["main"]
CONTAINERS = ["edge", "web", "api", "worker", "postgres-main"]

SETUP_HINT = (
    "run the setup script (scripts/setup.sh): it installs the Debian packages 'prometheus' (promtool) and "
    "'prometheus-alertmanager' (amtool)"
)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH; {SETUP_HINT}", pytrace=False)
    return path


def run_tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool(name), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def report(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"`{' '.join(map(str, result.args))}` exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
