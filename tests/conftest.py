"""Fixtures for every test directory; helpers live in tests/support.py."""

import logging
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
for path in (TESTS.parent, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from support import STACK_REFERENCE_OUTPUTS, RecordingMocks, install_mocks  # noqa: E402


@pytest.fixture
def mocks() -> RecordingMocks:
    """Fresh recording mocks (stack `dev`) for one test."""
    return install_mocks("dev")


@pytest.fixture
def staging_verified():
    """Set what the staging stack exports as verifiedVersions (read through the StackReference)."""

    def set_verified(versions: dict[str, str]) -> None:
        STACK_REFERENCE_OUTPUTS["organization/platform/staging"] = {"verifiedVersions": versions}

    yield set_verified
    STACK_REFERENCE_OUTPUTS.clear()


# A refused promotion fails every output that waits on the gate; asyncio then reports each
# orphaned failure when it is garbage-collected. The failure itself is asserted by the tests.
logging.getLogger("asyncio").addFilter(lambda record: "exception was never retrieved" not in record.getMessage())
