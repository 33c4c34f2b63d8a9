"""Smoke tests after every change of versions, as part of `pulumi up`.

The runbook step "curl the health endpoints through the proxy; if one fails, stop" becomes a
`command:local:Command` (pulumi-command) that runs after the workloads: `python -m
components.smoke` checks every public service through the edge (HTTP 200 within the timeout,
the version it reports) and that every database accepts an authenticated connection over the
network (a command the target runs inside the database's workload), with bounded retries, and
exits non-zero, failing the update, if any check fails. The checks travel as the command's
stdin, so any change of them or of a version re-runs it. It prints what staging exports:
`verified` (this update's versions, as `verifiedVersions`) and `verified_history` (every version
that ever passed, newest last, as `verifiedHistory`), so prod can also roll back to an older
version staging once verified; the previous run's output reaches it as PULUMI_COMMAND_STDOUT
(pulumi-command's add_previous_output_in_env), which is where the history is carried forward.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pulumi
import pulumi_command as command
from pulumi import ResourceOptions

from components.registry import version_label
from components.versioning import DIGEST_RE


@dataclass(frozen=True)
class HttpCheck:
    service: str
    url: str
    version: str
    image: str = ""  # the repository: a digest-pinned version is looked up there (components/registry.py)


@dataclass(frozen=True)
class CommandCheck:
    name: str  # e.g. "database main"
    command: Sequence[str]  # exits 0 when the check passes


@dataclass(frozen=True)
class SmokeTestArgs:
    checks: Sequence[HttpCheck]
    commands: Sequence[CommandCheck]
    versions: Mapping[str, str]  # every service version this update runs: verified when all checks pass
    host_header: str | None
    verify_tls: bool
    attempts: int
    delay_seconds: float
    timeout_seconds: float
    check_version: bool
    settle_seconds: float


def smoke_props(args: SmokeTestArgs) -> dict[str, Any]:
    """The checks as the smoke command reads them from stdin."""
    return {
        "checks": [{"service": c.service, "url": c.url, "version": c.version, "image": c.image} for c in args.checks],
        "commands": [{"name": c.name, "command": list(c.command)} for c in args.commands],
        "versions": dict(args.versions),
        "hostHeader": args.host_header,
        "verifyTls": args.verify_tls,
        "attempts": args.attempts,
        "delaySeconds": args.delay_seconds,
        "timeoutSeconds": args.timeout_seconds,
        "checkVersion": args.check_version,
        "settleSeconds": args.settle_seconds,
    }


# `python` is the project's environment: scripts/env.sh puts .venv/bin first on the PATH the
# engine, and so the command provider, inherit; the provider runs in the project directory.
SMOKE_COMMAND = "python -m components.smoke"


class SmokeTest(pulumi.ComponentResource):
    def __init__(self, name: str, args: SmokeTestArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:smoke:SmokeTest", name, None, opts)
        run = command.local.Command(
            f"{name}-run", create=SMOKE_COMMAND, update=SMOKE_COMMAND,
            stdin=json.dumps(smoke_props(args), sort_keys=True),
            add_previous_output_in_env=True,
            logging=command.local.Logging.STDERR,
            opts=ResourceOptions(parent=self))
        result = run.stdout.apply(lambda text: json.loads(text) if text else {})
        self.verified = result.apply(lambda outs: outs.get("verified"))
        self.verified_history = result.apply(lambda outs: outs.get("verified_history"))
        self.report = result.apply(lambda outs: outs.get("report"))
        self.register_outputs({"verified": self.verified, "verified_history": self.verified_history,
                               "report": self.report})


def main() -> int:
    """Run the checks on stdin; print the verified versions as JSON, or exit 1 naming each failure."""
    props = json.load(sys.stdin)
    try:
        previous = json.loads(os.environ.get("PULUMI_COMMAND_STDOUT") or "{}")
    except json.JSONDecodeError:
        previous = {}
    try:
        outs = _run_checks(props, previous.get("verified_history"))
    except SmokeTestFailed as failure:
        print(failure, file=sys.stderr)
        return 1
    print(json.dumps({key: outs[key] for key in ("verified", "verified_history", "report")}, sort_keys=True))
    return 0


class SmokeTestFailed(Exception):
    pass


HISTORY_LIMIT = 20  # versions remembered per service


def _run_checks(props: dict, history: dict | None = None) -> dict:
    """Every check must pass within `attempts` tries; otherwise raise (the update fails)."""
    report, failures, started = [], [], time.monotonic()
    for check in props["checks"]:
        outcome = _check_with_retries(check, props, started)
        report.append(outcome)
        if not outcome["ok"]:
            failures.append(f"{check['service']} {check['url']}: {outcome['error']} "
                            f"(after {outcome['attempts']} attempts)")
    for check in props.get("commands") or []:
        outcome = _command_with_retries(check, props, started)
        report.append(outcome)
        if not outcome["ok"]:
            failures.append(f"{check['name']}: {outcome['error']} (after {outcome['attempts']} attempts)")
    if failures:
        raise SmokeTestFailed("smoke test failed: " + "; ".join(failures))
    verified = dict(props["versions"])
    merged = {service: list(versions) for service, versions in (history or {}).items()}
    for service, version in verified.items():
        kept = [v for v in merged.get(service, []) if v != version] + [version]
        merged[service] = kept[-HISTORY_LIMIT:]
    return {**props, "verified": verified, "verified_history": merged, "report": report}


def _check_with_retries(check: dict, props: dict, started: float) -> dict:
    subject = {"service": check["service"], "url": check["url"]}
    return {**subject, **_with_retries(lambda: _http_problem(check, props), props, started, not_routed_yet)}


def _command_with_retries(check: dict, props: dict, started: float) -> dict:
    return {"check": check["name"], **_with_retries(lambda: _command_problem(check), props, started)}


# What the edge answers while a route is not there yet: right after an update, the proxy or the
# node's service rules (kube-proxy) may not name the new pods for some seconds (seen: 15 s of
# instant 502s on a loaded machine after a first create, with every pod Ready).
NOT_ROUTED = re.compile(r"^HTTP 50[234]$|refused|reset by peer|Remote end closed", re.IGNORECASE)


def not_routed_yet(problem: str) -> bool:
    return bool(NOT_ROUTED.search(problem))


def _with_retries(problem_of_one_try: Callable[[], str | None], props: dict, started: float,
                  transient: Callable[[str], bool] = lambda _: False) -> dict:
    """Up to `attempts` tries, `delaySeconds` apart; the outcome of the first that has no problem.
    Within `settleSeconds` of the smoke test's start, an answer that only says the route is not
    there yet costs no attempt: any other problem (a wrong version, a 500) fails as soon as ever."""
    error, attempt, tries = "", 0, 0
    settle_until = started + float(props.get("settleSeconds", 0))
    while attempt < int(props["attempts"]):
        tried = time.monotonic()
        error = problem_of_one_try()
        tries += 1
        if error is None:
            return {"ok": True, "attempts": tries, "seconds": round(time.monotonic() - tried, 3)}
        settling = transient(error) and time.monotonic() < settle_until
        if not settling:
            attempt += 1
        if attempt < int(props["attempts"]):
            time.sleep(max(float(props["delaySeconds"]), 0.5 if settling else 0))
    return {"ok": False, "attempts": tries, "error": error}


def _http_problem(check: dict, props: dict) -> str | None:
    try:
        status, body, headers = _get(check["url"], props)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    reported = headers.get("X-App-Version") or body.strip()
    if status != 200:
        return f"HTTP {status}"
    if props["checkVersion"]:
        try:
            expected = expected_version(check)
        except LookupError as missing:
            return str(missing)
        if expected not in reported:
            pinned = f" (the version label of {check['version']})" if expected != check["version"] else ""
            return f"serves version {reported[:40]!r}, expected {expected!r}{pinned}"
    return None


def expected_version(check: dict) -> str:
    """What the service should report: its version, or for a sha256: digest the version label of
    the image at that digest (a service reports its release name, never a digest)."""
    version = check["version"]
    if not DIGEST_RE.match(version):
        return version
    if not check.get("image"):
        raise LookupError(f"{check['service']}: a digest-pinned version needs the image repository to be checked")
    key = (check["image"], version)
    if key not in _LABELS:
        _LABELS[key] = version_label(check["image"], version)
    return _LABELS[key]


_LABELS: dict[tuple[str, str], str] = {}  # one registry lookup per image and digest per run


# A command check goes through kubectl/docker exec: allow it more than one HTTP request.
COMMAND_TIMEOUT_SECONDS = 20


def _command_problem(check: dict) -> str | None:
    try:
        proc = subprocess.run(list(check["command"]), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)[-300:]
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}")[-300:]


def _get(url: str, props: dict) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Host": props["hostHeader"]} if props.get("hostHeader") else {})
    context = None
    if url.startswith("https://") and not props["verifyTls"]:
        # dev and staging edges present a self-signed certificate; prod verifies.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=float(props["timeoutSeconds"]), context=context) as response:
            return response.status, response.read(4096).decode(errors="replace"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, "", dict(exc.headers or {})


if __name__ == "__main__":
    sys.exit(main())
