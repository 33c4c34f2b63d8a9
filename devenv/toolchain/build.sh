#!/usr/bin/env bash
# Builds the Pulumi engine pieces this project needs, with the local Go toolchain, into
# $DEPLOY_CACHE (never into the repo):
#   - from published Go modules (wrapper modules beside this script): the pulumi CLI and the
#     Kubernetes provider;
#   - from upstream release tarballs (upstream.sh, sha256-pinned): the Python language host
#     matching the CLI, the command and docker providers, cert-manager's binaries.
# Providers are installed with `pulumi plugin install resource NAME VERSION --file` (never on
# PATH: a provider on PATH wins over the installed one) and resolved by version.
# Idempotent: a piece is rebuilt only when its inputs change. Why each piece: docs/toolchain.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../../scripts/env.sh"

BIN="$DEPLOY_TOOLCHAIN_BIN"
PLUGINS="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/plugins"
STAMPS="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/stamps"
BUILD="$DEPLOY_CACHE/build"
# The provider versions; requirements.txt pins the Python SDKs to the same ones.
KUBERNETES_PROVIDER_VERSION="4.25.0-alpha.1768448096"
COMMAND_PROVIDER_VERSION="1.2.1"
DOCKER_PROVIDER_VERSION="5.1.0"
mkdir -p "$BIN" "$PLUGINS" "$STAMPS" "$BUILD"
export GOFLAGS=-mod=readonly

log() { printf '[toolchain] %s\n' "$*"; }

require_go() {
  command -v go >/dev/null || { echo "devenv/toolchain/build.sh: Go is required to build the Pulumi toolchain offline (https://go.dev/dl/ or the distribution's golang package)" >&2; exit 1; }
}

# A digest of a wrapper module's sources, so edits there trigger a rebuild.
source_digest() { (cd "$HERE/$1" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

up_to_date() { # name wrapper-dir output-path...
  local name=$1 dir=$2 out; shift 2
  local digest; digest=$(source_digest "$dir")
  for out in "$@"; do [ -x "$out" ] || return 1; done
  [ "$(cat "$STAMPS/$name" 2>/dev/null)" = "$digest" ]
}
mark_built() { source_digest "$2" > "$STAMPS/$1"; }

timed() { local start=$SECONDS; "$@"; log "$1 took $((SECONDS - start))s"; }

# The directory of a dependency in the module cache (downloaded first: `go list -m` does not fetch).
module_dir() { (cd "$1" && go mod download "$2" && go list -m -f '{{.Dir}}' "$2"); }

build_cli() {
  up_to_date pulumi pulumi "$BIN/pulumi" && return 0
  log "building the pulumi CLI $PULUMI_TOOLCHAIN_VERSION (first time: several minutes)"
  (cd "$HERE/pulumi" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_TOOLCHAIN_VERSION" \
    -o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mark_built pulumi pulumi
}

build_kubernetes_provider() {
  local out="$PLUGINS/pulumi-resource-kubernetes"
  up_to_date kubernetes kubernetes "$out" && return 0
  log "building pulumi-resource-kubernetes $KUBERNETES_PROVIDER_VERSION (first time: several minutes)"
  local work="$BUILD/kubernetes" upstream
  rm -rf "$work" && mkdir -p "$work" && cp -R "$HERE/kubernetes/." "$work/"
  upstream=$(module_dir "$work" github.com/pulumi/pulumi-kubernetes/provider/v4)
  # Upstream's `go generate` step, reproduced in the build cache: stamp + minify the committed schema.
  (cd "$work" && go run ./cmd/genschema "$KUBERNETES_PROVIDER_VERSION" \
      "$upstream/cmd/pulumi-resource-kubernetes" cmd/pulumi-resource-kubernetes)
  (cd "$work" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$KUBERNETES_PROVIDER_VERSION" \
    -o "$out" ./cmd/pulumi-resource-kubernetes)
  mark_built kubernetes kubernetes
}

# install_plugin NAME VERSION BINARY: `--file` installs a local binary: no registry, no download.
install_plugin() {
  local name=$1 version=$2 binary=$3 installed="$PULUMI_HOME/plugins/resource-$1-v$2/pulumi-resource-$1"
  [ -x "$installed" ] && cmp -s "$installed" "$binary" && return 0
  pulumi plugin install resource "$name" "$version" --file "$binary" --reinstall >/dev/null
  log "installed plugin resource $name $version"
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
  fi
  # Checks every upstream tarball's sha256 first: a changed byte stops the build before anything is unpacked.
  bash "$HERE/upstream.sh" all
  timed build_kubernetes_provider
  install_plugin kubernetes "$KUBERNETES_PROVIDER_VERSION" "$PLUGINS/pulumi-resource-kubernetes"
  install_plugin command "$COMMAND_PROVIDER_VERSION" "$PLUGINS/command-$COMMAND_PROVIDER_VERSION/pulumi-resource-command"
  install_plugin docker "$DOCKER_PROVIDER_VERSION" "$PLUGINS/docker-$DOCKER_PROVIDER_VERSION/pulumi-resource-docker"
  # The Prometheus Operator the local cluster runs as an add-on (docs/monitoring-kubernetes.md).
  bash "$HERE/prometheus-operator.sh"
  # Prometheus with Kubernetes discovery, which Debian's lacks (docs/toolchain.md).
  bash "$HERE/prometheus.sh"
  log "toolchain ready in $BIN"
}

main "$@"; exit $?  # nothing after this line is read: safe to edit while it runs
