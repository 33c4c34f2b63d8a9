"""Reads a stack's `platform:*` configuration once and turns it into models.

Every problem is reported in one message that names the stack file, the key
path, what was expected and what was found, before any resource exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config import PlatformConfig

PROJECT = "platform"


class ConfigError(Exception):
    """Invalid stack configuration; the message is meant for the operator as is."""


@dataclass(frozen=True)
class LoadedConfig:
    platform: PlatformConfig
    secrets: Mapping[str, pulumi.Output[str]]


def stack_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def raw_project_config(project: str = PROJECT) -> tuple[dict[str, Any], set[str]]:
    """The stack's config for `project` (key without prefix -> value) and which keys are secret."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{project}:"
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for full_key, value in merged.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if runtime_config.is_config_secret(full_key) or full_key in runtime_config.get_config_secret_keys_env():
            secret.add(key)
            continue
        values[key] = _decode(value)
    return values, secret


def _decode(value: Any) -> Any:
    # Pulumi hands structured values to programs as JSON text.
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_platform_config(
    raw: Mapping[str, Any], stack: str, secret_keys: set[str] = frozenset()
) -> PlatformConfig:
    """Validate raw config (keys without the project prefix) or raise ConfigError."""
    # Keys that hold secret values sit beside the model's keys; they are never model input.
    referenced = _referenced_secret_names(raw)
    model_input = {key: value for key, value in raw.items() if key not in secret_keys | referenced}
    plaintext_secrets = []
    try:
        platform = PlatformConfig.model_validate(model_input)
    except ValidationError as error:
        raise ConfigError(_format(stack, [_describe(e) for e in error.errors()])) from None
    for key, wanted_by in platform.secret_keys().items():
        if key in raw and key not in secret_keys:
            plaintext_secrets.append(
                f"{PROJECT}:{key} (wanted by {wanted_by}): expected a secret, "
                f"found a plain-text value; run `pulumi config set --secret {PROJECT}:{key} -s {stack}`"
            )
    if plaintext_secrets:
        raise ConfigError(_format(stack, plaintext_secrets))
    return platform


def _referenced_secret_names(model_input: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for service in (model_input.get("services") or {}).values():
        if isinstance(service, dict):
            names.update(v for v in (service.get("secrets") or {}).values() if isinstance(v, str))
    for database in (model_input.get("databases") or {}).values():
        if isinstance(database, dict) and isinstance(database.get("passwordSecret"), str):
            names.add(database["passwordSecret"])
    alerting = model_input.get("alerting") or {}
    if isinstance(alerting, dict):
        for field in ("webhookUrlSecretKey", "heartbeatUrlSecretKey", "smtpPasswordSecret"):
            if isinstance(alerting.get(field), str):
                names.add(alerting[field])
    return names


def resolve_secrets(platform: PlatformConfig, stack: str, project: str = PROJECT) -> dict[str, pulumi.Output[str]]:
    """Secret Outputs for every key the stack references, or ConfigError naming the unset ones."""
    config = pulumi.Config(project)
    found: dict[str, pulumi.Output[str]] = {}
    missing = []
    for key, wanted_by in sorted(platform.secret_keys().items()):
        value = config.get_secret(key)
        if value is None:
            missing.append(
                f"{project}:{key} (wanted by {wanted_by}): expected a secret value, found nothing; "
                f"run `pulumi config set --secret {project}:{key} -s {stack}`"
            )
        else:
            found[key] = value
    if missing:
        raise ConfigError(_format(stack, missing))
    return found


def load(stack: str, project: str = PROJECT) -> LoadedConfig:
    raw, secret_keys = raw_project_config(project)
    platform = parse_platform_config(raw, stack, secret_keys)
    return LoadedConfig(platform=platform, secrets=resolve_secrets(platform, stack, project))


def _describe(error: dict) -> str:
    path = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-after"))
    key = f"{PROJECT}:{path}" if path else f"{PROJECT}:<root>"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: expected a value, found nothing (the key is required)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (found {_show(error.get('input'))}); check the spelling against Pulumi.yaml"
    return f"{key}: {message}; found {_show(error.get('input'))}"


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _format(stack: str, problems: list[str]) -> str:
    lines = [f"{stack_file(stack)}: invalid configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"]
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines)
