"""Entry point run by `python -m pulumi.policy <engine> <packDir>`: assemble the pack, nothing else.

The PolicyPack constructor starts the gRPC server and never returns, so tests import
`policy.pack` instead of this file.
"""

import sys
from pathlib import Path

# runpy puts packDir (policy/) on sys.path; the project root holds `policy` and `components`
# (components/versioning.py is the one definition of a pinned version).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack  # noqa: E402

from policy.pack import DEFAULT_ENFORCEMENT, PACK_NAME, POLICIES  # noqa: E402

PolicyPack(PACK_NAME, policies=POLICIES, enforcement_level=DEFAULT_ENFORCEMENT)
