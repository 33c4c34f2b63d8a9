"""Entry point: read and validate the stack's config once, build the Platform, export.

Where to add things: a new kind of service is a new `component` value in
components/config/services.py (ServiceSpec) plus its defaults; a new piece of
infrastructure is a ComponentResource in components/ that Platform creates.
"""

import pulumi

from components.platform import Platform, PlatformArgs
from components.config.loading import ConfigError, load

stack = pulumi.get_stack()
try:
    loaded = load(stack)
except ConfigError as error:
    # A config mistake is the operator's to fix: say what is wrong, no traceback, nothing registered.
    raise pulumi.RunError(str(error)) from None

platform = Platform("platform", PlatformArgs(config=loaded.platform, stack=stack, secrets=loaded.secrets))

pulumi.export("target", platform.target)
pulumi.export("environment", loaded.platform.environment)
pulumi.export("versions", platform.versions)
pulumi.export("canaries", platform.canaries)
pulumi.export("endpoints", platform.endpoints)
pulumi.export("verifiedVersions", platform.verified_versions)
pulumi.export("verifiedHistory", platform.verified_history)
if platform.gate is not None:
    pulumi.export("promotion", {"source": platform.gate.source, "overrides": platform.gate.overrides})
