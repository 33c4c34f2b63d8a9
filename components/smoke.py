"""Smoke tests after every change of versions, as part of `pulumi up`.

The runbook step "curl the health endpoints through the proxy; if one fails, stop" becomes a
resource that runs after the workloads: it checks every public service through the edge (HTTP
200 within the timeout, the version it reports) and that every database accepts an
authenticated connection over the network (a command the target runs inside the database's
workload), with bounded retries, and fails the update if any check fails. Its outputs are what
staging exports: `verified` (this update's versions, as
`verifiedVersions`) and `verified_history` (every version that ever passed, newest last, as
`verifiedHistory`), so prod can also roll back to an older version staging once verified.

pulumi-command would be the natural tool, but its provider cannot be built on this machine
(docs/toolchain.md); a Pulumi dynamic provider needs no extra binary and runs in the engine.
"""

from __future__ import annotations

import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pulumi
import pulumi.dynamic as dynamic
from pulumi import ResourceOptions


@dataclass(frozen=True)
class HttpCheck:
    service: str
    url: str
    version: str


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


class SmokeTest(pulumi.ComponentResource):
    def __init__(self, name: str, args: SmokeTestArgs, depends_on: Sequence[pulumi.Resource],
                 opts: ResourceOptions | None = None):
        super().__init__("platform:smoke:SmokeTest", name, None, opts)
        run = _SmokeRun(f"{name}-run", {
            "checks": [{"service": c.service, "url": c.url, "version": c.version} for c in args.checks],
            "commands": [{"name": c.name, "command": list(c.command)} for c in args.commands],
            # Any version change re-runs the checks (inputs differ -> update).
            "versions": dict(args.versions),
            "hostHeader": args.host_header,
            "verifyTls": args.verify_tls,
            "attempts": args.attempts,
            "delaySeconds": args.delay_seconds,
            "timeoutSeconds": args.timeout_seconds,
            "checkVersion": args.check_version,
            "verified": None,
            "verified_history": None,
            "report": None,
        }, opts=ResourceOptions(parent=self, depends_on=list(depends_on)))
        self.verified = run.verified
        self.verified_history = run.verified_history
        self.report = run.report
        self.register_outputs({"verified": self.verified, "verified_history": self.verified_history,
                               "report": self.report})


class _SmokeRun(dynamic.Resource):
    verified: pulumi.Output[dict]
    verified_history: pulumi.Output[dict]
    report: pulumi.Output[list]

    def __init__(self, name: str, props: dict[str, Any], opts: ResourceOptions | None = None):
        super().__init__(_SmokeProvider(), name, props, opts)


class _SmokeProvider(dynamic.ResourceProvider):
    def create(self, props):
        return dynamic.CreateResult(id_=f"smoke-{int(time.time())}", outs=_run_checks(props))

    def diff(self, _id, olds, news):
        keys = ("checks", "commands", "versions", "hostHeader", "verifyTls", "checkVersion")
        changed = [key for key in keys if olds.get(key) != news.get(key)]
        return dynamic.DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id, olds, news):
        return dynamic.UpdateResult(outs=_run_checks(news, olds.get("verified_history")))


HISTORY_LIMIT = 20  # versions remembered per service


def _run_checks(props: dict, history: dict | None = None) -> dict:
    """Every check must pass within `attempts` tries; otherwise raise (the update fails)."""
    report, failures = [], []
    for check in props["checks"]:
        outcome = _check_with_retries(check, props)
        report.append(outcome)
        if not outcome["ok"]:
            failures.append(f"{check['service']} {check['url']}: {outcome['error']} "
                            f"(after {outcome['attempts']} attempts)")
    for check in props.get("commands") or []:
        outcome = _command_with_retries(check, props)
        report.append(outcome)
        if not outcome["ok"]:
            failures.append(f"{check['name']}: {outcome['error']} (after {outcome['attempts']} attempts)")
    if failures:
        raise Exception("smoke test failed: " + "; ".join(failures))
    verified = dict(props["versions"])
    merged = {service: list(versions) for service, versions in (history or {}).items()}
    for service, version in verified.items():
        kept = [v for v in merged.get(service, []) if v != version] + [version]
        merged[service] = kept[-HISTORY_LIMIT:]
    return {**props, "verified": verified, "verified_history": merged, "report": report}


def _check_with_retries(check: dict, props: dict) -> dict:
    subject = {"service": check["service"], "url": check["url"]}
    return {**subject, **_with_retries(lambda: _http_problem(check, props), props)}


def _command_with_retries(check: dict, props: dict) -> dict:
    return {"check": check["name"], **_with_retries(lambda: _command_problem(check), props)}


def _with_retries(problem_of_one_try: Callable[[], str | None], props: dict) -> dict:
    """Up to `attempts` tries, `delaySeconds` apart; the outcome of the first that has no problem."""
    error = ""
    for attempt in range(1, int(props["attempts"]) + 1):
        started = time.monotonic()
        error = problem_of_one_try()
        if error is None:
            return {"ok": True, "attempts": attempt, "seconds": round(time.monotonic() - started, 3)}
        if attempt < int(props["attempts"]):
            time.sleep(float(props["delaySeconds"]))
    return {"ok": False, "attempts": int(props["attempts"]), "error": error}


def _http_problem(check: dict, props: dict) -> str | None:
    try:
        status, body, headers = _get(check["url"], props)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    reported = headers.get("X-App-Version") or body.strip()
    if status != 200:
        return f"HTTP {status}"
    if props["checkVersion"] and check["version"] not in reported:
        return f"serves version {reported[:40]!r}, expected {check['version']!r}"
    return None


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
