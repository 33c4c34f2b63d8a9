#!/usr/bin/env bash
# Builds the plugins the Go module proxy here does not serve from upstream release tarballs
# (git archives of the release tags; where they come from: docs/toolchain.md):
#   pulumi-resource-command 1.2.1, pulumi-resource-docker 5.1.0 (pulumi-docker's patches applied to
#   its terraform upstream, schema embedded), the Python language host v3.259.0 matching the CLI,
#   and cert-manager v1.19.1's controller, acmesolver, webhook and cainjector.
# Tarballs are read from $DEPLOY_UPSTREAM_DIR (default: ../shared/upstream beside the checkout) and
# each must match the sha256 pinned in upstream.sha256 beside this script, or nothing is built
# from it. A piece is rebuilt only when its tarballs or this script change.
# Usage: upstream.sh [verify|command|docker|python-host|cert-manager|all]   (default: all)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../../scripts/env.sh"

UPSTREAM="${DEPLOY_UPSTREAM_DIR:-$(cd "$DEPLOY_ROOT/.." && pwd)/shared/upstream}"
PINS="$HERE/upstream.sha256"
COMMAND_VERSION=1.2.1
DOCKER_VERSION=5.1.0
TERRAFORM_DOCKER_VERSION=4.5.0
PYTHON_HOST_VERSION=${PULUMI_TOOLCHAIN_VERSION#v}
CERT_MANAGER_VERSION=1.19.1
STAMPS="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/stamps"
PLUGINS="$DEPLOY_CACHE/toolchain/$PULUMI_TOOLCHAIN_VERSION/plugins"
BUILD="$DEPLOY_CACHE/build/upstream"
CERT_MANAGER_BIN="$DEPLOY_CACHE/cert-manager/v$CERT_MANAGER_VERSION/bin"
mkdir -p "$STAMPS" "$PLUGINS" "$BUILD" "$DEPLOY_TOOLCHAIN_BIN"
export GOFLAGS=-mod=readonly CGO_ENABLED=0

log() { printf '[upstream] %s\n' "$*"; }
die() { printf 'devenv/toolchain/upstream.sh: %s\n' "$*" >&2; exit 1; }

pinned() { awk -v f="$1" '$2 == f {print $1}' "$PINS"; }

# verify TARBALL: the file exists and its sha256 is the pinned one; otherwise stop before unpacking.
verify() {
  local name=$1 path="$UPSTREAM/$1" want got
  want=$(pinned "$name")
  [ -n "$want" ] || die "$name has no pinned sha256 in $PINS"
  [ -f "$path" ] || die "$path is missing (set DEPLOY_UPSTREAM_DIR to the directory holding the upstream tarballs)"
  got=$(sha256sum "$path" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "refusing $path: its sha256 is $got, the project pins $want (in $PINS); nothing was built from it"
}

# The inputs of a piece: its tarballs' pinned sums and this script.
inputs_digest() { { for t in "$@"; do pinned "$t"; done; sha256sum "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16; }
up_to_date() { # name "tarballs" outputs...
  local name=$1 tarballs=$2 out; shift 2
  for out in "$@"; do [ -x "$out" ] || return 1; done
  # shellcheck disable=SC2086
  [ "$(cat "$STAMPS/$name" 2>/dev/null)" = "$(inputs_digest $tarballs)" ]
}
mark_built() { inputs_digest $2 > "$STAMPS/$1"; }

# unpack TARBALL DIR: a fresh tree, the tarball's top directory stripped.
unpack() { rm -rf "$2" && mkdir -p "$2" && tar -xzf "$UPSTREAM/$1" -C "$2" --strip-components=1; }

timed() { local start=$SECONDS; "$@"; log "$1 took $((SECONDS - start))s"; }

build_command() {
  local tarball="pulumi-command-$COMMAND_VERSION.tar.gz" out="$PLUGINS/command-$COMMAND_VERSION/pulumi-resource-command"
  up_to_date command "$tarball" "$out" && return 0
  verify "$tarball"
  log "building pulumi-resource-command $COMMAND_VERSION"
  local work="$BUILD/command"
  unpack "$tarball" "$work"
  # Without the -X the plugin reports the version its go.mod default carries (0.7.1).
  (cd "$work/provider" && go build -trimpath \
     -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION" \
     -o "$out" ./cmd/pulumi-resource-command)
  mark_built command "$tarball"
}

build_docker() {
  local tarball="pulumi-docker-$DOCKER_VERSION.tar.gz" tf="terraform-provider-docker-$TERRAFORM_DOCKER_VERSION.tar.gz"
  local out="$PLUGINS/docker-$DOCKER_VERSION/pulumi-resource-docker"
  up_to_date docker "$tarball $tf" "$out" && return 0
  verify "$tarball"; verify "$tf"
  log "building pulumi-resource-docker $DOCKER_VERSION (terraform-provider-docker $TERRAFORM_DOCKER_VERSION, patched)"
  local work="$BUILD/docker" patch
  unpack "$tarball" "$work"
  # pulumi-docker's `upstream` submodule, with its patches applied as scripts/upstream.sh init does.
  unpack "$tf" "$work/upstream"
  for patch in "$work"/patches/*.patch; do
    (cd "$work/upstream" && git apply --whitespace=nowarn "$patch") || die "patch $(basename "$patch") does not apply"
  done
  # Upstream's `make provider`: generate schema-embed.json, then build without compose support.
  # No `go mod download`: it would fetch modules only the schema generator's siblings need, which
  # the proxy refuses; `go build` fetches exactly what the provider imports.
  (cd "$work/provider" && VERSION=$DOCKER_VERSION go generate cmd/pulumi-resource-docker/main.go)
  (cd "$work/provider" && go build -trimpath -tags no_compose \
     -ldflags "-s -w -X github.com/pulumi/pulumi-docker/provider/v5/pkg/version.Version=$DOCKER_VERSION" \
     -o "$out" ./cmd/pulumi-resource-docker)
  mark_built docker "$tarball $tf"
}

build_python_host() {
  local tarball="pulumi-language-python-$PYTHON_HOST_VERSION.tar.gz" out="$DEPLOY_TOOLCHAIN_BIN/pulumi-language-python"
  up_to_date python-host "$tarball" "$out" "$DEPLOY_TOOLCHAIN_BIN/pulumi-language-python-exec" && return 0
  verify "$tarball"
  log "building the Python language host v$PYTHON_HOST_VERSION"
  local work="$BUILD/language-python" module
  unpack "$tarball" "$work"
  module="$work/sdk/python/cmd/pulumi-language-python"
  # In the pulumi repository the host replaces pkg/v3 and sdk/v3 with the tree around it; here
  # they are the published modules of the same release (the ones the CLI is built from).
  (cd "$module" \
     && go mod edit -dropreplace github.com/pulumi/pulumi/pkg/v3 -dropreplace github.com/pulumi/pulumi/sdk/v3 \
          -require "github.com/pulumi/pulumi/pkg/v3@v$PYTHON_HOST_VERSION" \
          -require "github.com/pulumi/pulumi/sdk/v3@v$PYTHON_HOST_VERSION" \
     && GOFLAGS=-mod=mod go mod tidy \
     && go build -trimpath \
          -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PYTHON_HOST_VERSION" \
          -o "$work/pulumi-language-python" .)
  install -m 0755 "$work/pulumi-language-python" "$out"
  install -m 0755 "$work/sdk/python/cmd/pulumi-language-python-exec" "$DEPLOY_TOOLCHAIN_BIN/pulumi-language-python-exec"
  install -m 0755 "$work/sdk/python/dist/pulumi-resource-pulumi-python" "$DEPLOY_TOOLCHAIN_BIN/pulumi-resource-pulumi-python"
  # The retired pieces of the v3.79 host and its front must not shadow the new host.
  rm -f "$DEPLOY_TOOLCHAIN_BIN/pulumi-language-python-upstream" "$DEPLOY_TOOLCHAIN_BIN/pulumi-analyzer-policy-python"
  mark_built python-host "$tarball"
}

build_cert_manager() {
  local tarball="cert-manager-$CERT_MANAGER_VERSION.tar.gz" cmd
  local outs=("$CERT_MANAGER_BIN/controller" "$CERT_MANAGER_BIN/acmesolver" "$CERT_MANAGER_BIN/webhook" "$CERT_MANAGER_BIN/cainjector")
  up_to_date cert-manager "$tarball" "${outs[@]}" && return 0
  verify "$tarball"
  log "building cert-manager v$CERT_MANAGER_VERSION: controller, acmesolver, webhook, cainjector"
  local work="$BUILD/cert-manager" published
  unpack "$tarball" "$work"
  # pkg/controller/acmechallenges imports test/unit/gen, which the archive leaves out with test/:
  # take that one package from the published root module of the same tag.
  published=$(cd "$BUILD" && go mod download -json "github.com/cert-manager/cert-manager@v$CERT_MANAGER_VERSION" \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$work/test/unit" && cp -R "$published/test/unit/gen" "$work/test/unit/gen" && chmod -R u+w "$work/test"
  mkdir -p "$CERT_MANAGER_BIN"
  for cmd in controller acmesolver webhook cainjector; do
    (cd "$work/cmd/$cmd" && go build -trimpath \
       -ldflags "-s -w -X github.com/cert-manager/cert-manager/pkg/util.AppVersion=v$CERT_MANAGER_VERSION" \
       -o "$CERT_MANAGER_BIN/$cmd" .)
  done
  mark_built cert-manager "$tarball"
}

verify_all() { local t; for t in $(awk '{print $2}' "$PINS"); do verify "$t"; done; log "all tarballs match their pinned sha256"; }

require_go() { command -v go >/dev/null || die "Go is required to build the upstream plugins"; }
case "${1:-all}" in
  verify) verify_all ;;
  command) require_go; timed build_command ;;
  docker) require_go; timed build_docker ;;
  python-host) require_go; timed build_python_host ;;
  cert-manager) require_go; timed build_cert_manager ;;
  all) verify_all; require_go; timed build_python_host; timed build_command; timed build_docker; timed build_cert_manager ;;
  *) die "unknown piece '$1' (verify, command, docker, python-host, cert-manager or all)" ;;
esac
