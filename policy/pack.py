"""The policies of `platform-guardrails`, importable without starting the gRPC server.

Enforcement fails closed: with no policy config (`pulumi preview --policy-pack policy` alone)
every policy is mandatory, DEFAULT_ENFORCEMENT, as in prod; a policy is advisory or disabled
only where policy/config/<stack>.json says so (dev, staging). A config file that leaves a
policy out leaves it mandatory. disallow-latest-tag is mandatory by its own setting as well.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from policy.rules import (
    disallow_latest_tag,
    disallow_plaintext_secrets,
    disallow_privileged_containers,
    require_database_backups,
    require_default_deny_network_policy,
    require_distinct_probes,
    require_dropped_capabilities,
    require_health_checks,
    require_no_privilege_escalation,
    require_non_root_user,
    require_pinned_images,
    require_public_path_redundancy,
    require_read_only_root_filesystem,
    require_resource_limits,
    require_seccomp_profile,
    require_tls,
    require_verified_version,
)

PACK_NAME = "platform-guardrails"
# Mandatory: the safety rules prod depends on (all of them) must not pass by a missing file.
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY

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
    # Hardening (docs/security.md): Kubernetes workloads.
    require_non_root_user.POLICY,
    require_read_only_root_filesystem.POLICY,
    require_seccomp_profile.POLICY,
    require_dropped_capabilities.POLICY,
    require_no_privilege_escalation.POLICY,
    require_distinct_probes.POLICY,
    require_default_deny_network_policy.POLICY,
    require_public_path_redundancy.POLICY,
]
