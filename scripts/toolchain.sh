#!/usr/bin/env bash
# Builds the Pulumi engine pieces this project needs from their published Go
# modules, with the local Go toolchain, into $DEPLOY_CACHE (never into the repo).
# Idempotent: a binary is rebuilt only when its wrapper module under toolchain/ changes.
# Why each piece and version: docs/toolchain.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

BIN="$DEPLOY_TOOLCHAIN_BIN"
# Providers are kept off PATH and installed into the plugin cache, so `pulumi plugin ls`
# lists them and the engine resolves them by version like any downloaded plugin.
PLUGINS="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/plugins"
STAMPS="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/stamps"
BUILD="$DEPLOY_CACHE/build"
KUBERNETES_PROVIDER_VERSION="4.25.0-alpha.1768448096"
LEGACY_PYTHON_HOST_SDK="v3.79.0"
mkdir -p "$BIN" "$PLUGINS" "$STAMPS" "$BUILD"
export GOFLAGS=-mod=readonly

log() { printf '[toolchain] %s\n' "$*"; }

require_go() {
  command -v go >/dev/null || { echo "scripts/toolchain.sh: Go is required to build the Pulumi toolchain offline (https://go.dev/dl/ or the distribution's golang package)" >&2; exit 1; }
}

# stamp KEY DIR: a digest of the wrapper sources, so edits there trigger a rebuild.
source_digest() { (cd "$DEPLOY_ROOT/$1" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

up_to_date() { # name wrapper-dir output-path...
  local name=$1 dir=$2; shift 2
  local digest; digest=$(source_digest "$dir")
  for out in "$@"; do [ -x "$out" ] || return 1; done
  [ "$(cat "$STAMPS/$name" 2>/dev/null)" = "$digest" ]
}
mark_built() { source_digest "$2" > "$STAMPS/$1"; }

timed() { local start=$SECONDS; "$@"; log "$1 took $((SECONDS - start))s"; }

# The directory of a dependency in the module cache (downloaded first: `go list -m` does not fetch).
module_dir() { (cd "$1" && go mod download "$2" && go list -m -f '{{.Dir}}' "$2"); }

build_cli() {
  up_to_date pulumi toolchain/pulumi "$BIN/pulumi" && return 0
  log "building the pulumi CLI $PULUMI_TOOLCHAIN_VERSION (first time: several minutes)"
  (cd "$DEPLOY_ROOT/toolchain/pulumi" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_TOOLCHAIN_VERSION" \
    -o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mark_built pulumi toolchain/pulumi
}

build_python_host() {
  if ! up_to_date python-host-upstream toolchain/language-python "$BIN/pulumi-language-python-upstream"; then
    log "building the upstream Python language host (sdk/v3 $LEGACY_PYTHON_HOST_SDK)"
    (cd "$DEPLOY_ROOT/toolchain/language-python" && go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LEGACY_PYTHON_HOST_SDK" \
      -o "$BIN/pulumi-language-python-upstream" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python)
    mark_built python-host-upstream toolchain/language-python
  fi
  if ! up_to_date python-host toolchain/python-host "$BIN/pulumi-language-python"; then
    log "building the Python language host front (policy packs through RunPlugin)"
    (cd "$DEPLOY_ROOT/toolchain/python-host" && go build -trimpath -ldflags "-s -w" -o "$BIN/pulumi-language-python" .)
    mark_built python-host toolchain/python-host
  fi
  # The scripts the host and the engine expect beside it, from the SDK module matching the CLI.
  local sdk legacy
  sdk=$(module_dir "$DEPLOY_ROOT/toolchain/python-host" "github.com/pulumi/pulumi/sdk/v3")/python
  legacy=$(module_dir "$DEPLOY_ROOT/toolchain/language-python" "github.com/pulumi/pulumi/sdk/v3")/python
  install -m 0755 "$sdk/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
  install -m 0755 "$sdk/dist/pulumi-resource-pulumi-python" "$BIN/pulumi-resource-pulumi-python"
  install -m 0755 "$legacy/dist/pulumi-analyzer-policy-python" "$BIN/pulumi-analyzer-policy-python"
}

build_kubernetes_provider() {
  local out="$PLUGINS/pulumi-resource-kubernetes"
  up_to_date kubernetes toolchain/kubernetes "$out" && return 0
  log "building pulumi-resource-kubernetes $KUBERNETES_PROVIDER_VERSION (first time: several minutes)"
  local work="$BUILD/kubernetes" upstream
  rm -rf "$work" && mkdir -p "$work" && cp -R "$DEPLOY_ROOT/toolchain/kubernetes/." "$work/"
  upstream=$(module_dir "$work" github.com/pulumi/pulumi-kubernetes/provider/v4)
  # Upstream's `go generate` step, reproduced in the build cache: stamp + minify the committed schema.
  (cd "$work" && go run ./cmd/genschema "$KUBERNETES_PROVIDER_VERSION" \
      "$upstream/cmd/pulumi-resource-kubernetes" cmd/pulumi-resource-kubernetes)
  (cd "$work" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" \
    -o "$out" ./cmd/pulumi-resource-kubernetes)
  mark_built kubernetes toolchain/kubernetes
}

install_plugins() {
  # `--file` installs a local binary: no registry, no download.
  local pulumi_cli; pulumi_cli=$(command -v pulumi)
  if ! "$pulumi_cli" plugin ls 2>/dev/null | grep -q "kubernetes.*$KUBERNETES_PROVIDER_VERSION"; then
    "$pulumi_cli" plugin install resource kubernetes "$KUBERNETES_PROVIDER_VERSION" \
      --file "$PLUGINS/pulumi-resource-kubernetes" --reinstall >/dev/null
  fi
}

other_pulumi() { # a pulumi CLI installed the official way, outside our toolchain
  type -ap pulumi | grep -v "^$BIN/" | head -n1 || true
}

main() {
  require_go
  local system_cli; system_cli=$(other_pulumi)
  if [ -n "$system_cli" ] && [ "${DEPLOY_BUILD_PULUMI:-}" != "1" ]; then
    log "using the pulumi CLI at $system_cli (set DEPLOY_BUILD_PULUMI=1 to build ours instead)"
  else
    timed build_cli
    timed build_python_host
  fi
  timed build_kubernetes_provider
  install_plugins
  log "toolchain ready in $BIN"
}

main "$@"
