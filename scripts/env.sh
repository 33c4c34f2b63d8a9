# shellcheck shell=bash
# Source this file (`source scripts/env.sh`) to use the project's Pulumi toolchain,
# file backend and secrets passphrase in your shell. Every project script sources it.

DEPLOY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY_CACHE="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}"
# The CLI version the toolchain builds; the Python SDK pin in requirements.txt matches it.
PULUMI_TOOLCHAIN_VERSION="v3.259.0"
DEPLOY_TOOLCHAIN_BIN="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/bin"
export DEPLOY_ROOT DEPLOY_CACHE PULUMI_TOOLCHAIN_VERSION DEPLOY_TOOLCHAIN_BIN

# kubectl of the local cluster (devenv/cluster/build.sh) comes last: an operator's own wins.
DEPLOY_CLUSTER_BIN="$DEPLOY_CACHE/cluster/bin"
export DEPLOY_CLUSTER_BIN
case ":$PATH:" in
  *":$DEPLOY_TOOLCHAIN_BIN:"*) ;;
  *) export PATH="$DEPLOY_ROOT/.venv/bin:$DEPLOY_TOOLCHAIN_BIN:$PATH:$DEPLOY_CLUSTER_BIN" ;;
esac

# Compiled modules are kept outside the repo, so every Python process of a deploy (the program,
# the policy pack, the gates and smoke test, deployctl) reuses them instead of compiling ours again
# each run (issue 18), which a caller's PYTHONDONTWRITEBYTECODE would otherwise make them do.
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-$DEPLOY_CACHE/pycache}"
unset PYTHONDONTWRITEBYTECODE

# Offline by construction: never download a plugin, never phone home.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DISABLE_REGISTRY_RESOLVE=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
export PULUMI_HOME="${PULUMI_HOME:-$DEPLOY_CACHE/pulumi-home}"
# State lives in the project (git-ignored) unless you point PULUMI_BACKEND_URL elsewhere.
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$DEPLOY_ROOT/.state}"
# One passphrase for all stacks (prod reads staging's outputs through a StackReference),
# generated once per machine by scripts/setup.sh, outside the repo.
if [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE_FILE="${DEPLOY_PASSPHRASE_FILE:-$HOME/.config/deployplatform/passphrase}"
fi
