"""A stack's configuration as deployctl's operations read and write it: the `platform:*` values
(validated by the program's own models), a release's configuration re-applied, and the policy
config a promoted stack is previewed with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from components.config import PlatformConfig
from components.config.loading import ConfigError, parse_platform_config
from components.promotion import verified_lists
from deployctl.history import Release
from deployctl.workspace import DeployError, Engine


def release_values(release: Release) -> dict[str, Any]:
    """A release's non-secret `platform:*` config as the models take it."""
    return {key.removeprefix("platform:"): entry.get("objectValue", entry.get("value"))
            for key, entry in release.plain_config().items() if key.startswith("platform:")}


# deployctl's own settings: who is told and what is checked before a change are today's, whatever
# release a rollback re-applies (rolling back must not silence the notification of the rollback).
OPERATOR_KEYS = ("platform:notifications", "platform:preflight")


def apply_release_config(engine: Engine, stack: str, release: Release) -> None:
    """Make the stack's non-secret config exactly that release's (secrets stay as they are, and so
    do deployctl's own settings, OPERATOR_KEYS)."""
    current = engine.config(stack)
    # History records project-level defaults (Pulumi.yaml `default: {}`) as values, and so does
    # `pulumi config`; writing those into the stack file would only add noise, so an empty object
    # the stack file does not set today stays unset.
    in_file = keys_in_stack_file(engine, stack)
    wanted = {key: item for key, item in release.plain_config().items()
              if key not in OPERATOR_KEYS and (key in in_file or item.get("objectValue") not in ({}, []))}
    stale = [key for key, entry in current.items()
             if not entry.get("secret") and key not in wanted and key not in OPERATOR_KEYS]
    engine.remove_config(stack, stale)
    engine.set_config_json(stack, wanted)


def keys_in_stack_file(engine: Engine, stack: str) -> set[str]:
    """The config keys Pulumi.<stack>.yaml sets itself (not the project's defaults)."""
    path = engine.stack_file(stack)
    if not path.exists():
        return set()
    return set((yaml.safe_load(path.read_text()) or {}).get("config") or {})


def rollback_threshold(engine: Engine, stack: str) -> float:
    return float(platform_model(engine, stack).drills.rollback_seconds)


def platform_model(engine: Engine, stack: str) -> PlatformConfig:
    """The stack's config validated by the program's own models (errors name file and key)."""
    try:
        return parse_platform_config(platform_config(engine, stack), stack)
    except ConfigError as error:
        raise DeployError(str(error)) from None


def platform_config(engine: Engine, stack: str) -> dict[str, Any]:
    """The stack's non-secret `platform:*` config, keys without the prefix, objects decoded."""
    values = {}
    for key, entry in engine.config(stack).items():
        if key.startswith("platform:") and not entry.get("secret"):
            values[key.removeprefix("platform:")] = entry.get("objectValue", entry.get("value"))
    return values


def policy_config_for(engine: Engine, stack: str) -> Path | None:
    """For a stack promoted from another (promotion.stagingStack), its policy config with every
    version the source ever verified; otherwise None (the committed policy/config/<stack>.json)."""
    source = (platform_config(engine, stack).get("promotion") or {}).get("stagingStack")
    if not source:
        return None
    outputs = engine.outputs(source)
    return verified_policy_config(engine, stack, verified_lists(outputs.get("verifiedHistory"),
                                                                outputs.get("verifiedVersions")))


def verified_policy_config(engine: Engine, target: str, verified: dict[str, list[str]]) -> Path:
    """The target's policy config plus what the source verified, for require-verified-version."""
    base_path = engine.project / "policy" / "config" / f"{target}.json"
    config = json.loads(base_path.read_text()) if base_path.exists() else {}
    gate = config.get("require-verified-version")
    level = gate.get("enforcementLevel", "mandatory") if isinstance(gate, dict) else (gate or "mandatory")
    config["require-verified-version"] = {
        "enforcementLevel": level,
        "verifiedVersions": {service: list(versions) for service, versions in verified.items()},
    }
    path = engine.project / ".state" / "policy" / f"{target}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def source_verified(engine: Engine, source: str) -> dict[str, str]:
    verified = engine.outputs(source).get("verifiedVersions") or {}
    if not verified:
        raise DeployError(f"{source} exports no verifiedVersions: deploy it (its smoke test must pass) first")
    return verified


def overrides_of(engine: Engine, stack: str) -> dict[str, Any]:
    return (platform_config(engine, stack).get("promotion") or {}).get("overrides") or {}
