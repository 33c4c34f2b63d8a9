"""Reads a stack's `platform:*` configuration once and turns it into models.

Every problem is reported in one message that names the stack file, the key
path, what was expected and what was found, before any resource exists.

Types: the engine hands top-level values over as text and objects as JSON, so
values inside the stack file's objects keep their YAML types and the models
check them strictly (`replicas: "2"` is refused, not read as 2).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import ValidationError

from components.config.platform import SCHEMA_KEYS, PlatformConfig, secret_key_references
from components.config.model import ConfigProblems

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
    # (A secret named like a schema key stays in, for the model to refuse the name.)
    referenced = set(secret_key_references(raw)) - SCHEMA_KEYS
    model_input = {key: value for key, value in raw.items() if key not in secret_keys | referenced}
    plaintext_secrets = []
    try:
        platform = PlatformConfig.model_validate(model_input)
    except ValidationError as error:
        raise ConfigError(_format(stack, [line for e in error.errors() for line in _describe(e)])) from None
    for key, wanted_by in platform.secret_keys().items():
        if key in raw and key not in secret_keys:
            plaintext_secrets.append(
                f"{PROJECT}:{key} (wanted by {wanted_by}): expected a secret, "
                f"found a plain-text value; run `pulumi config set --secret {PROJECT}:{key} -s {stack}`"
            )
    if plaintext_secrets:
        raise ConfigError(_format(stack, plaintext_secrets))
    return platform


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


def _describe(error: dict) -> list[str]:
    path = [str(part) for part in error["loc"] if not str(part).startswith("function-after")]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigProblems):
        # A problem across keys, reported at the key to change (the value is in its message).
        return [f"{_key([*path, *problem.key.split('.')])}: {problem.message}" for problem in cause.problems]
    key, found = _key(path), error.get("input")
    if error["type"] == "missing":
        return [f"{key}: expected a value, found nothing (the key is required)"]
    if error["type"] == "extra_forbidden":
        return [f"{key}: unknown key (found {_show(found)}); check the spelling against Pulumi.yaml"]
    hint = _type_hint(error["type"], found)
    return [f"{key}: {hint or error['msg'].removeprefix('Value error, ')}; found {_show(found)}"]


def _key(path: list[str]) -> str:
    return f"{PROJECT}:{'.'.join(path)}" if path else f"{PROJECT}:<root>"


# Strict types: say what to write instead of pydantic's "Input should be a valid integer".
_EXPECTED = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false",
             "string_type": "text", "model_type": "an object (a map of keys, see Pulumi.yaml)",
             "dict_type": "an object (a map of names to settings, see Pulumi.yaml)", "list_type": "a list, e.g. [a, b]"}


def _type_hint(error_type: str, found: Any) -> str | None:
    expected = _EXPECTED.get(error_type)
    if expected is None:
        return None
    if isinstance(found, str) and error_type in ("int_type", "float_type", "bool_type") and _reads_as(error_type, found):
        # `replicas: "2"` or `public: "false"`: the value is right, its quotes are not.
        return f"expected {expected}, not text: write it without quotes in the stack file"
    if error_type == "string_type" and isinstance(found, (int, float)):
        return f"expected text, not {'true/false' if isinstance(found, bool) else 'a number'}: quote it in the stack file"
    if isinstance(found, bool) and error_type in ("int_type", "float_type"):
        return f"expected {expected}, not true/false"
    return f"expected {expected}"


# What YAML 1.2 (Pulumi's reader) takes as a number or boolean when written without quotes.
_UNQUOTED_FORMS = {"int_type": re.compile(r"^[-+]?\d+$"), "float_type": re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"),
                   "bool_type": re.compile(r"^(true|false)$", re.IGNORECASE)}


def _reads_as(error_type: str, text: str) -> bool:
    """True when `text` would be the number or boolean expected if written without quotes."""
    return bool(_UNQUOTED_FORMS[error_type].match(text.strip()))


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _format(stack: str, problems: list[str]) -> str:
    lines = [f"{stack_file(stack)}: invalid configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"]
    lines += [f"  - {problem}" for problem in problems]
    return "\n".join(lines)
