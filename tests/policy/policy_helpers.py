"""Helpers shared by the policy tests (imported by conftest.py and the test modules).

Props go through the same steps as in pulumi-policy 1.21.0's Analyze/AnalyzeStack:
a protobuf Struct (numbers become floats), `deserialize_properties` without
`proxy_secrets` (secret envelopes are unwrapped to their plain value), then
`unknown_checking_proxy` (Mapping/Sequence proxies that raise on unknown values).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `policy` and `components` live at the project root

from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY, deserialize_properties  # noqa: E402
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy  # noqa: E402

from components.targets.base import standard_labels  # noqa: E402
from components.versioning import version_annotations  # noqa: E402 (conftest annotates fixtures with it)

STACK = "staging"
DIGEST = "sha256:" + "a" * 64
PG_IMAGE = f"docker.io/library/postgres:16.4@{DIGEST}"
# What deployctl would pass for the good stack: api 1.4.2, web 1.4.2 (and the previous 1.4.1), edge 2.8.4.
VERIFIED = {"verifiedVersions": {"api": ["1.4.2"], "web": ["1.4.2", "1.4.1"], "edge": ["2.8.4"]}}
# A string input whose value is unknown during preview.
UNKNOWN = UNKNOWN_STRING_VALUE

Resource = tuple[str, str, dict]  # (type token, resource name, raw engine props)


def secret_envelope(value: Any) -> dict:
    """A secret as the engine marshals it for analyzers (MarshalOptions KeepSecrets: true)."""
    return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": value}


def engine_props(raw: dict) -> Any:
    """Props exactly as a validate function receives them from the engine."""
    wire = json_format.MessageToDict(json_format.ParseDict(raw, struct_pb2.Struct()))
    return unknown_checking_proxy(deserialize_properties(wire))


def urn(resource_type: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::platform::{resource_type}::{name}"


def kubernetes_labels(service: str, component: str, version: str, track: str = "stable") -> dict[str, str]:
    """The labels the program puts on a workload and its pod template (components/targets/base.py)."""
    return standard_labels(STACK, service, component, version, track)


def docker_labels(service: str, component: str, version: str, **extra: str) -> list[dict[str, str]]:
    """A Docker container's labels as the program sets them (components/targets/docker_workloads.py): the
    standard labels, the full version under its annotation key, then extra labels; engine-shaped."""
    labels = {**standard_labels(STACK, service, component, version), **version_annotations(version), **extra}
    return [{"label": key, "value": value} for key, value in sorted(labels.items())]


# The analyzer as `pulumi preview --policy-pack policy [--policy-pack-config f]` runs it: the SDK's
# gRPC servicer (pulumi-policy 1.21.0; policy/__main__.py's PolicyPack serves the same one),
# configured the way the engine does it (pkg/resource/analyzer/config.go ReconcilePolicyPackConfig:
# each policy's default level from GetAnalyzerInfo, then "all", then the file's entries), then
# Analyze for each resource and AnalyzeStack.
def _level_value(level: str) -> int:
    from pulumi.runtime import proto

    return proto.EnforcementLevel.Value(level.upper())


def default_levels() -> dict[str, str]:
    """Policy name -> the level GetAnalyzerInfo reports: what the engine uses when no config sets one."""
    from google.protobuf import empty_pb2
    from pulumi.runtime import proto

    info = _servicer().GetAnalyzerInfo(empty_pb2.Empty(), None)
    return {policy.name: proto.EnforcementLevel.Name(policy.enforcementLevel).lower() for policy in info.policies}


def _servicer():
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from policy.pack import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES

    return _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", POLICIES, DEFAULT_ENFORCEMENT)


def configured_analyzer(file_config: dict | None = None):
    from pulumi.runtime import proto

    servicer = _servicer()
    levels = {name: _level_value(level) for name, level in default_levels().items()}
    properties: dict[str, dict] = {}
    file_config = dict(file_config or {})
    if isinstance(file_config.get("all"), str):
        levels = dict.fromkeys(levels, _level_value(file_config.pop("all")))
    for name, entry in file_config.items():
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        if "enforcementLevel" in entry:
            levels[name] = _level_value(entry.pop("enforcementLevel"))
        properties[name] = entry
    request = proto.ConfigureAnalyzerRequest()
    for name, level in levels.items():
        request.policyConfig[name].enforcementLevel = level
        if properties.get(name):
            request.policyConfig[name].properties.update(properties[name])
    servicer.Configure(request, None)
    return servicer


def analyze(servicer, resources: list[Resource]) -> list[tuple[str, str, str]]:
    """(policy, enforcement level, message) of every diagnostic Analyze (per resource) and AnalyzeStack report."""
    from pulumi.runtime import proto

    diagnostics = []
    stack = proto.AnalyzeStackRequest()
    for resource_type, name, raw in resources:
        request = proto.AnalyzeRequest(type=resource_type, urn=urn(resource_type, name), name=name)
        json_format.ParseDict(raw, request.properties)
        diagnostics += servicer.Analyze(request, None).diagnostics
        stack.resources.add().CopyFrom(proto.AnalyzerResource(
            type=resource_type, urn=request.urn, name=name, properties=request.properties))
    diagnostics += servicer.AnalyzeStack(stack, None).diagnostics
    # A message is "<description>\n<what report_violation said>".
    return [(d.policyName, proto.EnforcementLevel.Name(d.enforcementLevel).lower(), d.message.split("\n", 1)[-1])
            for d in diagnostics]
