#!/usr/bin/env bash
# Builds the Prometheus Operator and its prometheus-config-reloader from the published Go module
# github.com/prometheus-operator/prometheus-operator (the version devenv/cluster/cluster.sh takes
# its monitoring.coreos.com CRDs from), with the machine's Go, into
# $DEPLOY_CACHE/prometheus-operator/<version>/bin (never into the repo):
#   operator                      the controller (devenv/cluster/addons/prometheus-operator)
#   prometheus-config-reloader    the sidecar it puts beside every Prometheus and Alertmanager
# The module's go.mod replaces its two nested modules (pkg/apis/monitoring, pkg/client) with
# ./pkg/... directories that a module download does not contain, so `go install ...@version`
# refuses it. The module is copied to a work directory, those two replaces are dropped and the
# nested modules come from the proxy at the same version (go.sum gains their two hashes; every
# other dependency is exactly upstream's go.sum). Static (CGO off): the images hold nothing else.
# Idempotent: nothing is rebuilt when both binaries and the stamp of this script are present.
# Usage: devenv/toolchain/prometheus-operator.sh [--print-bin-dir|--print-version]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY_CACHE="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.79.2}"
MODULE=github.com/prometheus-operator/prometheus-operator
OUT="$DEPLOY_CACHE/prometheus-operator/$PROMETHEUS_OPERATOR_VERSION"
BIN="$OUT/bin"
WORK="$DEPLOY_CACHE/build/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
export GOCACHE="${CLUSTER_GOCACHE:-$DEPLOY_CACHE/cluster/go-build}"
export GOFLAGS="-buildvcs=false"

log() { printf '[prometheus-operator %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[prometheus-operator] ERROR: %s\n' "$*" >&2; exit 1; }

case ${1:-} in
  --print-bin-dir) echo "$BIN"; exit 0 ;;
  --print-version) echo "$PROMETHEUS_OPERATOR_VERSION"; exit 0 ;;
esac
command -v go >/dev/null || die "Go is required (the machine's toolchain)"

stamp() { { sha256sum < "$HERE/prometheus-operator.sh"; go version; } | sha256sum | cut -c1-16; }

if [ -x "$BIN/operator" ] && [ -x "$BIN/prometheus-config-reloader" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$(stamp)" ]; then
  log "$PROMETHEUS_OPERATOR_VERSION: up to date ($BIN)"
  exit 0
fi

started=$SECONDS
log "building $MODULE $PROMETHEUS_OPERATOR_VERSION (operator, prometheus-config-reloader; first time on 2 cores: a few minutes)"
src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$MODULE@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -f "$src/go.mod" ] || die "go mod download $MODULE@$PROMETHEUS_OPERATOR_VERSION failed"
rm -rf "$WORK"; mkdir -p "$(dirname "$WORK")" "$BIN"
cp -R "$src" "$WORK"; chmod -R u+w "$WORK"
(cd "$WORK" &&
  go mod edit -dropreplace "$MODULE/pkg/apis/monitoring" -dropreplace "$MODULE/pkg/client" &&
  go mod download "$MODULE/pkg/apis/monitoring" "$MODULE/pkg/client" &&
  GOFLAGS="$GOFLAGS -mod=mod" CGO_ENABLED=0 nice -n 10 go build -trimpath \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_OPERATOR_VERSION#v} -X github.com/prometheus/common/version.Revision=module-proxy -X github.com/prometheus/common/version.Branch=release" \
    -o "$BIN/" ./cmd/operator ./cmd/prometheus-config-reloader)
"$BIN/operator" --version 2>&1 | head -1 | grep -q "${PROMETHEUS_OPERATOR_VERSION#v}" || die "the built operator does not report version ${PROMETHEUS_OPERATOR_VERSION#v}"
stamp > "$OUT/stamp"
echo $((SECONDS - started)) > "$OUT/seconds"
rm -rf "$WORK"
log "built in $((SECONDS - started))s: $BIN/operator, $BIN/prometheus-config-reloader"
