#!/usr/bin/env bash
# Installs kube-score (https://github.com/zegl/kube-score), the static checker the hardening test
# runs on the rendered prod manifests (tests/e2e/test_cluster_hardening.py, docs/security.md),
# from the Go module proxy into $DEPLOY_CACHE/kube-score/<version>/ (never into the repo), and
# prints the binary's path. Idempotent: nothing is built when that version is already there.
# Go verifies the module against the checksum database as for any `go install pkg@version`.
# Usage: devenv/toolchain/kube-score.sh            (prints the path of the kube-score binary)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../../scripts/env.sh"

KUBE_SCORE_VERSION="${KUBE_SCORE_VERSION:-v1.20.0}"
OUT="$DEPLOY_CACHE/kube-score/$KUBE_SCORE_VERSION"
BINARY="$OUT/kube-score"

log() { printf '[kube-score] %s\n' "$*" >&2; }

if [ ! -x "$BINARY" ]; then
  command -v go >/dev/null || { echo "devenv/toolchain/kube-score.sh: Go is required to install kube-score" >&2; exit 1; }
  log "installing github.com/zegl/kube-score $KUBE_SCORE_VERSION from the Go module proxy into $OUT"
  start=$SECONDS
  mkdir -p "$OUT"
  # GOBIN puts the binary where we want it; a temporary name, so an interrupted build leaves none.
  tmp=$(mktemp -d "$OUT/.install.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Upstream's release builds stamp the version this way (.goreleaser.yml ldflags).
  GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=readonly go install -trimpath \
    -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION#v}" \
    "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
  mv "$tmp/kube-score" "$BINARY"
  log "installed in $((SECONDS - start))s"
fi
echo "$BINARY"
