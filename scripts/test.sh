#!/usr/bin/env bash
# The test command: brings the machine up to date (scripts/setup.sh --no-up, idempotent)
# and runs every test: config/unit tests with mocks, policy and alerting tests, and the
# end-to-end tests on the real Pulumi engine. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DEPLOY_ROOT"
bash scripts/setup.sh --no-up
python -m pytest -ra "$@"
