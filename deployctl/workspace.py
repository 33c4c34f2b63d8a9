"""The Pulumi engine as deployctl uses it: one project directory, stacks, config, up, history."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import yaml

from components.predeploy import COVERED_ENV
from deployctl.history import Release, releases_from_history
from deployctl.lease import LeaseStore, process_start


# The CLI commands that only read a stack (`pulumi config --json`, `config get`, `stack export`,
# `stack history`, `stack output`, `stack ls`); any other command may write.
_READS = {("config", "--json"), ("config", "get"), ("stack", "export"), ("stack", "history"),
          ("stack", "output"), ("stack", "ls")}


def is_read(args: tuple[str, ...]) -> bool:
    return tuple(args[:2]) in _READS


class DeployError(Exception):
    """A failure to report to the operator as is (no traceback)."""


def find_project(start: Path | None = None) -> Path:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "Pulumi.yaml").exists():
            return directory
    packaged = Path(__file__).resolve().parents[1]
    if (packaged / "Pulumi.yaml").exists():
        return packaged
    raise DeployError("no Pulumi.yaml here or above; run deployctl inside the project or pass --cwd")


def toolchain_env(project: Path) -> dict[str, str]:
    """The environment scripts/env.sh sets (offline toolchain, file backend, passphrase)."""
    script = project / "scripts" / "env.sh"
    if not script.exists():
        return dict(os.environ)
    output = subprocess.run(["bash", "-c", f'source "{script}" && env -0'], check=True, capture_output=True,
                            env=os.environ).stdout
    return dict(item.split("=", 1) for item in output.decode().split("\0") if "=" in item)


class UpdateNotStarted(DeployError):
    """The engine refused before an update began (its lock, a preview error): nothing changed."""


def process_is(pid: int, command: str) -> bool:
    """Whether PID is alive on this host and runs COMMAND (a reused pid runs something else; a
    killed process its parent has not reaped yet is a zombie, not alive)."""
    try:
        return bool(process_start(pid)) and Path(f"/proc/{pid}/comm").read_text().strip() == command
    except OSError:
        return False


@dataclass
class Engine:
    project: Path
    env: dict[str, str]
    on_output: Callable[[str], None] | None = None
    # What deployctl did on its own (a lease taken over, a dead lock released): always shown.
    on_notice: Callable[[str], None] = field(default=lambda line: None)
    _held_reads: dict[tuple[str, ...], subprocess.CompletedProcess] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, cwd: Path | None = None, on_output: Callable[[str], None] | None = None,
             on_notice: Callable[[str], None] | None = None) -> "Engine":
        project = find_project(cwd)
        engine = cls(project=project, env=toolchain_env(project), on_output=on_output)
        if on_notice:
            engine.on_notice = on_notice
        return engine

    # Where state lives, and what deployctl keeps beside it --------------------------------------

    def backend_directory(self) -> Path | None:
        url = self.env.get("PULUMI_BACKEND_URL", "")
        return Path(url.removeprefix("file://")).expanduser() if url.startswith("file://") else None

    @cached_property
    def leases(self) -> LeaseStore:
        # Beside the file backend's state so every checkout sharing that state shares the leases;
        # with another backend, the project's .state/ (this machine only: Pulumi's own lock then
        # still guards each engine command across machines).
        base = self.backend_directory() or self.project / ".state"
        return LeaseStore(base / ".deployctl" / "leases", notify=self.on_notice)

    def stack_file(self, stack: str) -> Path:
        return self.project / f"Pulumi.{stack}.yaml"

    def project_name(self) -> str:
        return str(yaml.safe_load((self.project / "Pulumi.yaml").read_text())["name"])

    # Leftovers of an interrupted operation ------------------------------------------------------

    def engine_locks(self, stack: str) -> list[tuple[Path, dict[str, Any]]]:
        """The file backend's lock files for STACK (`.pulumi/locks/<org>/<project>/<stack>/*.json`)."""
        backend = self.backend_directory()
        if backend is None:
            return []
        locks_root, project = backend / ".pulumi" / "locks", self.project_name()
        found = []
        for path in sorted(locks_root.glob(f"**/{stack}/*.json")):
            if path.parent.parent.name not in (project, "locks"):
                continue
            try:
                found.append((path, json.loads(path.read_text())))
            except (OSError, ValueError):
                found.append((path, {}))
        return found

    def release_dead_engine_locks(self, stack: str) -> None:
        """Remove engine locks whose pulumi process is gone from this host; refuse a live one."""
        for path, lock in self.engine_locks(stack):
            pid, host = int(lock.get("pid") or 0), lock.get("hostname", "")
            if host == socket.gethostname() and not process_is(pid, "pulumi"):
                path.unlink(missing_ok=True)
                self.on_notice(f"{stack}: released the engine lock of pulumi pid {pid} (started "
                               f"{lock.get('timestamp', '?')}), which is no longer running")
                continue
            where = "this host" if host == socket.gethostname() else host
            raise UpdateNotStarted(
                f"{stack} is locked by a pulumi process outside deployctl: pid {pid} on {where} since "
                f"{lock.get('timestamp', '?')} (lock {path}). Wait for it to end; only if that process is "
                f"certainly gone (another host: check there), run `pulumi cancel --stack {stack} --yes`")

    def clear_pending_operations(self, stack: str) -> None:
        """Drop the operations a killed update left pending, after saying which. The next update
        then re-reads and re-applies each of those resources from the program."""
        exported = json.loads(self.cli("stack", "export", "--stack", stack).stdout or "{}")
        pending = (exported.get("deployment") or {}).get("pending_operations") or []
        if not pending:
            return
        for operation in pending:
            self.on_notice(f"{stack}: an interrupted update left '{operation.get('type')}' pending on "
                           f"{(operation.get('resource') or {}).get('urn')}; clearing it, the next update "
                           "re-applies that resource")
        exported["deployment"]["pending_operations"] = []
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(exported, handle)
        try:
            self.cli("stack", "import", "--file", handle.name, "--stack", stack)
        finally:
            os.unlink(handle.name)

    def recover_interrupted(self, stack: str) -> None:
        self.release_dead_engine_locks(stack)
        self.clear_pending_operations(stack)

    @contextmanager
    def reads_held(self) -> Iterator[None]:
        """While an operation holds its stacks (deployctl/changing.py): each read of history,
        state, outputs or config runs the CLI once, until something writes (a config change, an
        import, an update, the stack file put back). Outside one, every read asks the engine."""
        outer, self._held_reads = self._held_reads, {}
        try:
            yield
        finally:
            self._held_reads = outer

    def forget_reads(self) -> None:
        if self._held_reads is not None:
            self._held_reads.clear()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        held = self._held_reads
        if held is not None and args in held:
            return held[args]
        result = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.project, env=self.env,
                                capture_output=True, text=True)
        if held is not None and not is_read(args):
            held.clear()  # even a failed write may have written part of what it was asked
        elif held is not None and result.returncode == 0:
            held[args] = result
        if check and result.returncode != 0:
            raise DeployError(f"pulumi {' '.join(args)} failed:\n{result.stderr.strip() or result.stdout.strip()}")
        return result

    def releases(self, stack: str) -> list[Release]:
        # Raw JSON keeps `objectValue`, which the Automation API's UpdateSummary drops.
        # Every update: without --page-size the CLI answers the newest 10 only (its default), and a
        # stack past 10 updates looked as if a failed update had never started (0: no limit).
        entries = json.loads(self.cli("stack", "history", "--json", "--page-size", "0", "--stack", stack).stdout
                             or "[]")
        return releases_from_history(entries)

    def outputs(self, stack: str) -> dict[str, Any]:
        return json.loads(self.cli("stack", "output", "--json", "--stack", stack).stdout or "{}")

    def config(self, stack: str) -> dict[str, dict[str, Any]]:
        return json.loads(self.cli("config", "--json", "--stack", stack).stdout or "{}")

    def set_config_json(self, stack: str, entries: dict[str, dict[str, Any]]) -> None:
        self.cli("config", "set-all", "--json", json.dumps(entries), "--stack", stack)

    def remove_config(self, stack: str, keys: list[str]) -> None:
        if keys:
            self.cli("config", "rm-all", *keys, "--stack", stack)

    def set_path(self, stack: str, path: str, value: Any) -> None:
        kind = {bool: ["--type", "bool"], int: ["--type", "int"]}.get(type(value), [])
        text = value if isinstance(value, str) else json.dumps(value)
        self.cli("config", "set", "--path", f"platform:{path}", text, *kind, "--stack", stack)

    def remove_path(self, stack: str, path: str) -> None:
        self.cli("config", "rm", "--path", f"platform:{path}", "--stack", stack)

    def _policy_flags(self, stack: str, policy_config: Path | None) -> list[str]:
        """The pack, and its config: the one given, else policy/config/<stack>.json if present."""
        config = policy_config or self.project / "policy" / "config" / f"{stack}.json"
        return ["--policy-pack", str(self.project / "policy"),
                *(["--policy-pack-config", str(config)] if config.exists() else [])]

    def up(self, stack: str, message: str, policy_config: Path | None = None,
           backups_covered: Sequence[str] = ()) -> None:
        """`backups_covered`: databases whose pre-deploy backup this update may skip (the automatic
        rollback's, components/predeploy.py says when that is safe)."""
        self.forget_reads()  # what the update changes (state, history, outputs) is read anew
        # Never inherited: only the update deployctl names it for may skip a backup.
        env = {key: value for key, value in self.env.items() if key != COVERED_ENV}
        if backups_covered:
            env[COVERED_ENV] = ",".join(backups_covered)
        code, output = self._engine_command(stack, "up", "--yes", "--skip-preview", "--message", message,
                                            *self._policy_flags(stack, policy_config), env=env)
        if code != 0 and LOCKED in output:
            raise UpdateNotStarted(f"{stack} is locked by another pulumi process; the update did not start "
                                   f"({failure_summary(output, tail_lines=3)})")
        if code != 0:
            raise DeployError(failure_summary(output))

    def preview(self, stack: str, policy_config: Path | None = None) -> None:
        code, output = self._engine_command(stack, "preview", *self._policy_flags(stack, policy_config))
        if code != 0:
            raise DeployError(failure_summary(output))

    def _engine_command(self, stack: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """`pulumi up|preview` run straight (the Automation API costs four more CLI runs around
        each: version, select, two outputs and a history read, issue 18), its output streamed
        line by line to on_output as it comes; returns the exit code and the whole output."""
        try:
            process = subprocess.Popen(["pulumi", *args, "--stack", stack, "--non-interactive"], cwd=self.project,
                                       env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except FileNotFoundError:
            raise DeployError("no pulumi CLI on PATH: run scripts/setup.sh (it builds one offline)") from None
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if self.on_output:
                self.on_output(line)
        code, output = process.wait(), "".join(lines)
        if code != 0 and f"no stack named '{stack}' found" in output:
            raise DeployError(f"stack '{stack}' does not exist here; create it with scripts/setup.sh "
                              f"or `pulumi stack init {stack}`")
        return code, output


# What the file backend says when another pulumi process holds the stack's lock.
LOCKED = "the stack is currently locked by"


SECTIONS = ("Diagnostics:", "Policy Violations:", "Outputs:", "Resources:", "Policies:", "Duration:")


def failure_summary(text: str, tail_lines: int = 25) -> str:
    """What went wrong, from a failed command's output: every error in the Diagnostics section and
    every policy violation, once each; the output's last lines when it has neither."""
    found, section = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(SECTIONS):
            section = stripped.split(":")[0]
            continue
        if section == "Diagnostics" and stripped.startswith("error:") and stripped != "error: update failed":
            found.append(stripped)
        elif section == "Policy Violations" and stripped.startswith("["):
            found.append(stripped)
    if found:
        return "\n".join(dict.fromkeys(found))
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-tail_lines:])
