"""The policies of `platform-guardrails`, importable without starting the gRPC server.

Enforcement: disallow-latest-tag is mandatory by its own setting; every other policy
takes DEFAULT_ENFORCEMENT (advisory) unless policy/config/<stack>.json raises it.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from policy.rules import (
    disallow_latest_tag,
    disallow_plaintext_secrets,
    disallow_privileged_containers,
    require_database_backups,
    require_health_checks,
    require_pinned_images,
    require_resource_limits,
    require_tls,
    require_verified_version,
)

PACK_NAME = "platform-guardrails"
DEFAULT_ENFORCEMENT = EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    disallow_latest_tag.POLICY,
    require_pinned_images.POLICY,
    require_verified_version.POLICY,
    require_tls.POLICY,
    require_database_backups.POLICY,
    require_resource_limits.POLICY,
    require_health_checks.POLICY,
    disallow_privileged_containers.POLICY,
    disallow_plaintext_secrets.POLICY,
]
