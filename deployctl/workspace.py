"""The Pulumi engine as deployctl uses it: one project directory, stacks, config, up, history."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pulumi import automation as auto

from deployctl.history import Release, releases_from_history


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


@dataclass
class Engine:
    project: Path
    env: dict[str, str]
    on_output: Callable[[str], None] | None = None

    @classmethod
    def open(cls, cwd: Path | None = None, on_output: Callable[[str], None] | None = None) -> "Engine":
        project = find_project(cwd)
        return cls(project=project, env=toolchain_env(project), on_output=on_output)

    def _command(self) -> auto.PulumiCommand:
        cli = shutil.which("pulumi", path=self.env.get("PATH"))
        if cli is None:
            raise DeployError("no pulumi CLI on PATH: run scripts/setup.sh (it builds one offline)")
        # PulumiCommand wants the installation root, the directory above bin/pulumi.
        return auto.PulumiCommand(root=str(Path(cli).resolve().parent.parent), skip_version_check=True)

    def stack(self, name: str) -> auto.Stack:
        try:
            options = auto.LocalWorkspaceOptions(work_dir=str(self.project), env_vars=self.env,
                                                 pulumi_command=self._command())
            return auto.select_stack(stack_name=name, work_dir=str(self.project), opts=options)
        except auto.errors.StackNotFoundError:
            raise DeployError(f"stack '{name}' does not exist here; create it with scripts/setup.sh "
                              f"or `pulumi stack init {name}`") from None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.project, env=self.env,
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            raise DeployError(f"pulumi {' '.join(args)} failed:\n{result.stderr.strip() or result.stdout.strip()}")
        return result

    def releases(self, stack: str) -> list[Release]:
        # Raw JSON keeps `objectValue`, which the Automation API's UpdateSummary drops.
        entries = json.loads(self.cli("stack", "history", "--json", "--stack", stack).stdout or "[]")
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

    def policy_args(self, stack: str, policy_config: Path | None) -> dict[str, list[str]]:
        packs = [str(self.project / "policy")]
        config = policy_config or self.project / "policy" / "config" / f"{stack}.json"
        return {"policy_packs": packs, "policy_pack_configs": [str(config)] if config.exists() else []}

    def up(self, stack: str, message: str, policy_config: Path | None = None) -> auto.UpResult:
        try:
            return self.stack(stack).up(message=message, on_output=self.on_output,
                                        **self.policy_args(stack, policy_config))
        except auto.errors.CommandError as error:
            raise DeployError(failure_summary(str(error))) from None

    def preview(self, stack: str, policy_config: Path | None = None) -> auto.PreviewResult:
        try:
            return self.stack(stack).preview(on_output=self.on_output, **self.policy_args(stack, policy_config))
        except auto.errors.CommandError as error:
            raise DeployError(failure_summary(str(error))) from None


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
