"""Test support: a recording Pulumi mocks class and helpers to run program code under it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pulumi
import yaml
from pulumi.runtime import rpc

ROOT = Path(__file__).resolve().parents[1]

PROJECT = "platform"


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]

    def get(self, path: str, default: Any = None) -> Any:
        """Dotted lookup into the (secret-unwrapped) inputs: `spec.template.spec.containers`."""
        value: Any = unwrap(self.inputs)
        for part in path.split("."):
            if isinstance(value, list):
                value = value[int(part)]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return default
        return value


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource registration; returns inputs as state (camelCase engine names)."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(Registered(args.typ, args.name, args.inputs))
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = f"sha256:{'0' * 64}"
        if args.typ == "pulumi:pulumi:StackReference":
            return args.resource_id, {"outputs": STACK_REFERENCE_OUTPUTS.get(args.inputs.get("name"), {})}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    # Query helpers used by the tests.
    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> Registered:
        matches = [r for r in self.of_type(typ) if r.name == name]
        assert matches, f"no {typ} named {name}; have {[r.name for r in self.of_type(typ)]}"
        return matches[0]


STACK_REFERENCE_OUTPUTS: dict[str, dict[str, Any]] = {}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap(value: Any) -> Any:
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def install_mocks(stack: str = "dev") -> RecordingMocks:
    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording, project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config({}, secret_keys=[])
    return recording


def run_program(body: Callable[[], Any]) -> Any:
    """Run `body` inside the Pulumi runtime and wait until every registration has landed."""
    result: dict[str, Any] = {}

    @pulumi.runtime.test
    def _run():
        result["value"] = body()

    _run()
    return result.get("value")


def set_stack_config(config: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
    """Install config (and secret values) for the program, as `pulumi up` would."""
    values = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    secret_keys = []
    for key, value in (secrets or {}).items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    pulumi.runtime.set_all_config(values, secret_keys=secret_keys)


def raw_stack_config(stack: str) -> dict[str, Any]:
    """Stack file config without the project prefix, values decoded (input to parse_platform_config)."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    prefix = f"{PROJECT}:"
    raw = {key[len(prefix):]: value for key, value in (document.get("config") or {}).items()
           if key.startswith(prefix) and not (isinstance(value, dict) and "secure" in value)}
    tls = (raw.get("edge") or {}).get("tls") or {}
    if "acmeCaBundleFile" in tls:
        # dev and staging name the CA file of this machine's Pebble, which only scripts/setup.sh
        # writes; unit tests run with nothing but the Python environment (README), and what they
        # check is the rendering, so they read a placeholder PEM instead.
        tls["acmeCaBundleFile"] = str(UNIT_ACME_CA_BUNDLE)
    return raw


UNIT_ACME_CA_BUNDLE = ROOT / "tests" / "unit" / "fixtures" / "acme-directory-ca.pem"


def with_local_ca(raw: dict) -> None:
    """A `change` for deploy_stack: the edge certificate from this program's own CA (`local-ca`)."""
    raw["edge"]["tls"] = {"mode": "local-ca"}


DEV_SECRETS = {"mainDbPassword": "dev-db-password-123", "sessionSigningKey": "dev-signing-key-456"}


def deploy_stack(stack: str, change: Callable[[dict], None] | None = None,
                 secrets: dict[str, str] | None = None) -> Any:
    """Run the whole program (config load + Platform) for `stack` under the installed mocks.

    `change` edits the stack file's config (keys without the `platform:` prefix) first."""
    from components.platform import Platform, PlatformArgs
    from components.config.loading import load

    raw = copy.deepcopy(raw_stack_config(stack))
    if change:
        change(raw)
    set_stack_config({f"{PROJECT}:{key}": value for key, value in raw.items()}, secrets or DEV_SECRETS)

    def body():
        loaded = load(stack)
        return Platform("platform", PlatformArgs(config=loaded.platform, stack=stack, secrets=loaded.secrets))

    return run_program(body)


def on_docker(raw: dict) -> None:
    """A `change` for deploy_stack: the same stack on the Docker target."""
    raw["target"] = "docker"
    raw.pop("kubernetes", None)


class ManualClock:
    """A monotonic clock that moves only when slept on: the release gates' tests, second by second."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
