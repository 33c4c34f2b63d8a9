#!/usr/bin/env bash
# The test command: brings the machine up to date (scripts/setup.sh --no-up, idempotent)
# and runs every test: config/unit tests with mocks, policy and alerting tests, and the
# end-to-end tests on the real Pulumi engine. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DEPLOY_ROOT"
bash scripts/setup.sh --no-up
# DEPLOY_TEST_CPU_HOG=N: run the tests beside N busy-looping processes (scripts/cpu-hog.sh),
# stopped when the tests end however they end; how the suite is checked on a saturated machine.
if [[ -n "${DEPLOY_TEST_CPU_HOG:-}" ]]; then
  bash scripts/cpu-hog.sh start "$DEPLOY_TEST_CPU_HOG"
  trap 'bash scripts/cpu-hog.sh stop' EXIT
fi
# Two workers (pytest-xdist): the local cluster's end-to-end modules in one lane, the Docker
# engine's in the other, everything else wherever a worker is free (tests/e2e/conftest.py).
# `-n 0` after it runs everything in this one process, one test after another. The 25 slowest
# tests are listed at the end: where a run on a busy machine spends its time; -P adds what
# passing tests printed (fault-to-delivery seconds, firing lists, phase timings).
python -m pytest -raP --durations=25 -n "${DEPLOY_TEST_WORKERS:-2}" --dist loadgroup "$@"
