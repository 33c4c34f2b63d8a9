#!/usr/bin/env bash
# Builds Prometheus and promtool from the published Go module github.com/prometheus/prometheus,
# with the machine's Go, into $DEPLOY_CACHE/prometheus/<version>/bin (never into the repo):
#   prometheus   the server each stack runs (image 127.0.0.1:5000/shop/prometheus, both targets)
#   promtool     the same release's checker, shipped in that image beside it
# Why from source: Debian's `prometheus` package is built without Kubernetes service discovery
# (kubernetes_sd_configs is "unknown"), and every scrape config the Prometheus Operator generates
# for a PodMonitor uses it, so the operator's Prometheus crash-loops on Debian's binary.
# Version 2.55.1 (module v0.55.1; Prometheus v2.X.Y is published as module v0.X.Y, v3 as v0.3XX.Y):
# the newest 2.x, inside the Prometheus Operator v0.79.2's compatibility matrix (v2.45.0..v3.0.1,
# pkg/operator/defaults.go), the same major as Debian's promtool that checks the rules (2.42.0),
# so no v3 semantics changes (regex `.` matching newlines, left-open ranges) between the two.
# Upstream's own build (.promu.yml) with one difference: without the `builtinassets` tag, so the
# binary carries no web UI (it would need npm to build): the HTTP API (/api/v1, /-/ready,
# /-/reload, /metrics) is all the platform and its tests use; the UI pages answer an error.
# Static (CGO off, netgo as upstream): the image holds nothing else it links against.
# Every service discovery upstream registers (cmd/prometheus imports ./plugins) is built in.
# Idempotent: nothing is rebuilt when both binaries and the stamp of this script are present.
# Build time (2 cores, docs/toolchain.md): about 15 minutes from an empty Go build cache.
# Usage: devenv/toolchain/prometheus.sh [--print-bin-dir|--print-version|--print-module-version]
set -euo pipefail
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
DEPLOY_CACHE="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v2.55.1}"
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.55.1}"  # the module tag of that release
MODULE=github.com/prometheus/prometheus
OUT="$DEPLOY_CACHE/prometheus/$PROMETHEUS_VERSION"
BIN="$OUT/bin"
WORK="$DEPLOY_CACHE/build/prometheus-$PROMETHEUS_VERSION"
export GOCACHE="${CLUSTER_GOCACHE:-$DEPLOY_CACHE/cluster/go-build}"
export GOFLAGS="-buildvcs=false"

log() { printf '[prometheus %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[prometheus] ERROR: %s\n' "$*" >&2; exit 1; }

case ${1:-} in
  --print-bin-dir) echo "$BIN"; exit 0 ;;
  --print-version) echo "${PROMETHEUS_VERSION#v}"; exit 0 ;;
  --print-module-version) echo "$MODULE@$PROMETHEUS_MODULE_VERSION"; exit 0 ;;
esac
command -v go >/dev/null || die "Go is required (the machine's toolchain)"

stamp() { { sha256sum < "$SELF"; go version; } | sha256sum | cut -c1-16; }

if [ -x "$BIN/prometheus" ] && [ -x "$BIN/promtool" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$(stamp)" ]; then
  log "$PROMETHEUS_VERSION: up to date ($BIN)"
  exit 0
fi

started=$SECONDS
log "building $MODULE@$PROMETHEUS_MODULE_VERSION = Prometheus $PROMETHEUS_VERSION (prometheus, promtool; first time on 2 cores: 10+ minutes)"
src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$MODULE@$PROMETHEUS_MODULE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -f "$src/go.mod" ] || die "go mod download $MODULE@$PROMETHEUS_MODULE_VERSION failed"
# A work copy: the module's go.mod has replace directives (klog -> klog-gokit), which `go install
# module@version` refuses; as the main module of a `go build` they apply, exactly as upstream's.
rm -rf "$WORK"; mkdir -p "$(dirname "$WORK")" "$BIN"
cp -R "$src" "$WORK"; chmod -R u+w "$WORK"
(cd "$WORK" &&
  CGO_ENABLED=0 GOFLAGS="$GOFLAGS -mod=readonly" nice -n 10 go build -trimpath -tags netgo,stringlabels \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v} -X github.com/prometheus/common/version.Revision=$MODULE@$PROMETHEUS_MODULE_VERSION -X github.com/prometheus/common/version.Branch=release -X github.com/prometheus/common/version.BuildUser=deployplatform" \
    -o "$BIN/" ./cmd/prometheus ./cmd/promtool)
"$BIN/prometheus" --version 2>&1 | head -1 | grep -q "version ${PROMETHEUS_VERSION#v} " || die "the built prometheus does not report version ${PROMETHEUS_VERSION#v}"
# The reason for this build: a config with Kubernetes discovery must load.
printf 'scrape_configs:\n- job_name: probe\n  kubernetes_sd_configs:\n  - role: pod\n' > "$WORK/k8s-sd.yml"
"$BIN/promtool" check config --syntax-only "$WORK/k8s-sd.yml" >/dev/null || die "the built promtool refuses kubernetes_sd_configs"
stamp > "$OUT/stamp"
echo $((SECONDS - started)) > "$OUT/seconds"
rm -rf "$WORK"
log "built in $((SECONDS - started))s: $BIN/prometheus, $BIN/promtool"
