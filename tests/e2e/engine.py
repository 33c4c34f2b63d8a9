"""Drive the real Pulumi CLI against a throw-away copy of the project and its own file backend."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from stack_config_filter import clean  # noqa: E402  (the same filter git applies)
PROJECT_FILES = ["Pulumi.yaml", "__main__.py", "components", "policy", "Pulumi.dev.yaml",
                 "Pulumi.staging.yaml", "Pulumi.prod.yaml", "requirements.txt"]


def toolchain_env() -> dict[str, str]:
    """The environment scripts/env.sh sets up (PATH to the built CLI, offline settings)."""
    output = subprocess.run(["bash", "-c", f"source {ROOT}/scripts/env.sh && env -0"],
                            check=True, capture_output=True).stdout
    env = dict(item.split("=", 1) for item in output.decode().split("\0") if "=" in item)
    missing = [tool for tool in ("pulumi", "pulumi-language-python")
               if shutil.which(tool, path=env["PATH"]) is None]
    if missing:
        raise AssertionError(
            f"the offline Pulumi toolchain is missing ({', '.join(missing)} not on PATH): run scripts/setup.sh")
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A copy of the project with a private backend, so tests never touch the developer's stacks."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "project"
        self.dir.mkdir(parents=True)
        for name in PROJECT_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.dir / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                # Stack files: committed content only (no machine-local salt or secrets).
                text = source.read_text()
                if name.startswith("Pulumi.") and name != "Pulumi.yaml":
                    text = "".join(clean(text.splitlines(keepends=True)))
                (self.dir / name).write_text(text)
        (self.dir / ".venv").symlink_to(ROOT / ".venv")
        backend = workdir / "state"
        backend.mkdir()
        self.env = toolchain_env()
        self.env.update({
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": "e2e-test-passphrase",
        })
        self.env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)

    def pulumi(self, *args: str, check: bool = True, timeout: int = 600) -> Result:
        proc = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and result.code != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {result.code}:\n{result.output[-4000:]}")
        return result

    def deployctl(self, *args: str, check: bool = True, timeout: int = 900) -> Result:
        proc = subprocess.run([sys.executable, "-m", "deployctl", *args, "--cwd", str(self.dir)], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and result.code != 0:
            raise AssertionError(f"deployctl {' '.join(args)} exited {result.code}:\n{result.output[-4000:]}")
        return result

    def init_stack(self, stack: str, secrets: dict[str, str]) -> None:
        self.pulumi("stack", "init", stack)
        for key, value in secrets.items():
            self.pulumi("config", "set", "--secret", f"platform:{key}", value, "-s", stack)

    def set_config(self, stack: str, key: str, value: object) -> None:
        kind = {bool: ["--type", "bool"], int: ["--type", "int"]}.get(type(value), [])
        text = value if isinstance(value, str) else json.dumps(value)
        self.pulumi("config", "set", "--path", f"platform:{key}", text, *kind, "-s", stack)

    def render_only(self, stack: str, smoke_base_url: str | None = None) -> None:
        """Write the stack's manifests to rendered/<stack> instead of applying them. The key of
        the program's local CA would land in those files, so the edge certificate comes from
        cert-manager resources instead; smoke tests run only against a given stand-in edge."""
        self.set_config(stack, "kubernetes.renderToDirectory", f"rendered/{stack}")
        self.set_config(stack, "edge.tls.mode", "self-signed")
        if smoke_base_url:
            self.set_config(stack, "smokeTest.baseUrl", smoke_base_url)
            self.set_config(stack, "smokeTest.delaySeconds", 0.2)
        else:
            self.set_config(stack, "smokeTest.enabled", False)

    def restore_live(self, stack: str, database: str, backup_set: str) -> dict:
        """A restore of `backup_set` over the live database and volumes, the one `deployctl rollback
        --restore-data` runs (deployctl.drills.restore_backup, with the project's engine): its report."""
        code = ("import json\nfrom pathlib import Path\nfrom deployctl import drills, stack_settings\n"
                "from deployctl.workspace import Engine\n"
                f"eng = Engine.open(cwd=Path({str(self.dir)!r}))\n"
                f"config = stack_settings.platform_model(eng, {stack!r})\n"
                f"print(json.dumps(drills.restore_backup(config, {stack!r}, {database!r}, {backup_set!r}, "
                f"releases=eng.releases({stack!r}))))")
        restored = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, capture_output=True,
                                  text=True, timeout=600)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        return json.loads(restored.stdout.strip().splitlines()[-1])

    def history(self, stack: str) -> list[dict]:
        # Every update (the CLI answers its newest 10 without --page-size; 0: no limit).
        return json.loads(self.pulumi("stack", "history", "--json", "--page-size", "0", "-s", stack).stdout)

    def outputs(self, stack: str) -> dict:
        return json.loads(self.pulumi("stack", "output", "--json", "-s", stack).stdout)

    def predeploy_backup_said(self, stack: str) -> dict[str, str]:
        """Each pre-deploy backup command's last output in state (components/predeploy.py), by name."""
        exported = json.loads(self.pulumi("stack", "export", "-s", stack).stdout)
        return {resource["urn"].rsplit("::", 1)[-1]: (resource.get("outputs") or {}).get("stdout", "")
                for resource in exported["deployment"].get("resources") or []
                if resource["urn"].endswith("-predeploy-backup-run")}

    def resource_count(self, stack: str) -> int:
        exported = json.loads(self.pulumi("stack", "export", "-s", stack).stdout)
        return len(exported["deployment"].get("resources") or [])
