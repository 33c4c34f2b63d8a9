"""CrossGuard policy pack `platform-guardrails` (see docs/policies.md).

The pack runs as `python -m pulumi.policy <engine> policy/`; `__main__.py` only
assembles the `PolicyPack`. The policies themselves live in `policy.pack`, which
tests import without starting the gRPC server.
"""
