"""Fixtures for every test directory; helpers live in tests/support.py."""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
for path in (TESTS.parent, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from support import RecordingMocks, install_mocks  # noqa: E402


@pytest.fixture
def mocks() -> RecordingMocks:
    """Fresh recording mocks (stack `dev`) for one test."""
    return install_mocks("dev")
