#!/usr/bin/env bash
# The test command: brings the machine up to date (scripts/setup.sh --no-up, idempotent)
# and runs every test: config/unit tests with mocks, policy and alerting tests, and the
# end-to-end tests on the real Pulumi engine. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DEPLOY_ROOT"
bash scripts/setup.sh --no-up
# Two workers (pytest-xdist): the local cluster's end-to-end modules in one lane, the Docker
# engine's in the other, everything else wherever a worker is free (tests/e2e/conftest.py).
# `-n 0` after it runs everything in this one process, one test after another.
python -m pytest -ra -n "${DEPLOY_TEST_WORKERS:-2}" --dist loadgroup "$@"
