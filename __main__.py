"""Entry point: read and validate the stack's config once, build the Platform, export.

Where to add things: a new kind of service is a new `component` value in
components/config/services.py (ServiceSpec) plus its defaults; a new piece of
infrastructure is a ComponentResource in components/ that Platform creates.
"""

import os
import signal
import sys

import pulumi

from components.platform import Platform, PlatformArgs
from components.config.loading import ConfigError, load


def _exit_at_once(signum, frame):
    """The language host interrupts the program when an update fails or is cancelled, then waits
    up to 5 s (pulumi-language-python's cmd.WaitDelay) before it kills it: the SDK's threads wait
    on the engine's answers, so a graceful exit only waited those 5 s out, and printed a
    KeyboardInterrupt traceback into the failed update's diagnostics. The program keeps no
    state (the engine does), so it ends here (issue 18: every failed release paid 5 s)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(1)


signal.signal(signal.SIGINT, _exit_at_once)

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
