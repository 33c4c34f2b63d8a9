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
