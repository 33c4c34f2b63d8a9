"""Promotion: a stack (prod) runs only versions another stack (staging) verified.

The gate reads staging's `verifiedHistory` (every version its smoke test ever passed; plain
`verifiedVersions` from older staging states) through a StackReference and checks every
version this stack would run (stable and canary): rolling prod back to an older version
staging verified stays possible. An unverified version is an error unless
`promotion.overrides.<service>` names that exact version with a reason; overrides are
exported, so they show in the outputs and in `pulumi stack history`. The target's provider
waits on the gate, so no workload is touched before the check has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pulumi
from pulumi import ResourceOptions

from components.config import PlatformConfig


class UnverifiedVersionError(pulumi.RunError):
    """Reported as a plain error message, without a Python traceback."""


@dataclass(frozen=True)
class PromotionGateArgs:
    config: PlatformConfig
    stack: str


class PromotionGate(pulumi.ComponentResource):
    def __init__(self, name: str, args: PromotionGateArgs, opts: ResourceOptions | None = None):
        super().__init__("platform:release:PromotionGate", name, None, opts)
        promotion = args.config.promotion
        self.source = promotion.staging_stack
        reference = pulumi.StackReference(f"{name}-source", stack_name=promotion.staging_stack,
                                          opts=ResourceOptions(parent=self))
        wanted = requested_versions(args.config)
        self.verified_in_source = pulumi.Output.all(
            reference.get_output("verifiedHistory"), reference.get_output("verifiedVersions")
        ).apply(lambda outputs: verified_lists(*outputs))
        self.approved = self.verified_in_source.apply(
            lambda verified: check_versions(wanted, verified, args.config, args.stack,
                                            enforce=promotion.require_verified))
        self.overrides = {service: {"version": o.version, "reason": o.reason}
                          for service, o in promotion.overrides.items()}
        self.register_outputs({"source": self.source, "approved": self.approved, "overrides": self.overrides})


def requested_versions(config: PlatformConfig) -> dict[str, list[str]]:
    wanted = {service: [spec.version] + ([spec.canary.version] if spec.canary else [])
              for service, spec in config.services.items()}
    wanted["edge"] = [config.edge.version]
    return wanted


def verified_lists(history: Mapping | None, current: Mapping | None) -> dict[str, list[str]]:
    """Every version the source verified, per service: its verifiedHistory plus the current
    verifiedVersions (older states export only those). The program's gate and deployctl's policy
    config for a promoted stack both read it from here."""
    lists = {service: list(versions) for service, versions in (history or {}).items()}
    for service, version in (current or {}).items():
        if version not in lists.setdefault(service, []):
            lists[service].append(version)
    return lists


def check_versions(wanted: Mapping[str, list[str]], verified: Mapping[str, list[str]],
                   config: PlatformConfig, stack: str, enforce: bool = True) -> bool:
    """True when every wanted version is verified or overridden; otherwise an error when
    enforcing (requireVerified), a warning when not."""
    problems = []
    for service, versions in sorted(wanted.items()):
        for version in versions:
            if version in verified.get(service, []):
                continue
            override = config.promotion.overrides.get(service)
            if override and override.version == version:
                pulumi.log.warn(f"promotion override: {service} {version} runs unverified: {override.reason}")
                continue
            problems.append(f"service '{service}' version '{version}' was not verified in "
                            f"{config.promotion.staging_stack} (verified: {', '.join(verified.get(service, [])) or 'none'})")
    if problems and not enforce:
        for problem in problems:
            pulumi.log.warn(f"{problem} (promotion.requireVerified is off)")
        return False
    if problems:
        raise UnverifiedVersionError(
            f"Pulumi.{stack}.yaml: refusing to deploy unverified versions: " + "; ".join(problems)
            + ". Promote with `deployctl promote staging " + stack + "`, or add promotion.overrides."
            "<service> {version, reason}.")
    return True
