#!/usr/bin/env bash
# Builds and caches the cluster binaries from their published Go modules:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
#   (k8s.io/kubernetes, wrapper devenv/cluster/modules/kubernetes) and coredns
#   (github.com/coredns/coredns, wrapper devenv/cluster/modules/coredns) and traefik, the edge proxy
#   (github.com/traefik/traefik/v3, wrapper devenv/cluster/modules/traefik).
# etcd comes from Debian's etcd-server. Idempotent: a piece is rebuilt only when its
# wrapper module changes or a binary is missing. Prints the time of each step.
# Outputs: $CLUSTER_CACHE/bin (default ~/.cache/deployplatform/cluster/bin). Details: docs/cluster.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export GOFLAGS="-mod=readonly -buildvcs=false"
export GOCACHE="${CLUSTER_GOCACHE:-$CLUSTER_CACHE/go-build}"
NICE=(nice -n 10)
mkdir -p "$CLUSTER_BIN" "$CLUSTER_STAMPS" "$GOCACHE"

command -v go >/dev/null || cdie "Go is required (the machine's toolchain, go >= 1.26)"

source_digest() { (cd "$CLUSTER_ROOT/$1" && find . -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }
up_to_date() { # name wrapper-dir binary...
  local name=$1 dir=$2 d; shift 2
  d=$(source_digest "$dir")
  for b in "$@"; do [ -x "$CLUSTER_BIN/$b" ] || return 1; done
  [ "$(cat "$CLUSTER_STAMPS/$name" 2>/dev/null)" = "$d" ]
}
# A real build also records how long it took (benchmarks/cluster_timings.py reports it).
mark_built() { source_digest "$2" > "$CLUSTER_STAMPS/$1"; echo $((SECONDS - piece_started)) > "$CLUSTER_STAMPS/$1.seconds"; }
timed() { piece_started=$SECONDS; "$@"; clog "$1 took $((SECONDS - piece_started))s"; }

K8S_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

build_kubernetes() {
  up_to_date kubernetes devenv/cluster/modules/kubernetes "${K8S_CMDS[@]}" && { clog "kubernetes $K8S_VERSION: up to date"; return 0; }
  clog "building kubernetes $K8S_VERSION: ${K8S_CMDS[*]} (first time on 2 cores: tens of minutes)"
  local v=${K8S_VERSION#v} pkgs=() c ld=()
  for c in "${K8S_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=("-X $p.gitVersion=$K8S_VERSION" "-X $p.gitMajor=$major" "-X $p.gitMinor=$minor"
         "-X $p.gitTreeState=clean" "-X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  done
  (cd "$CLUSTER_ROOT/devenv/cluster/modules/kubernetes" && "${NICE[@]}" go build -trimpath \
     -ldflags "-s -w ${ld[*]}" -o "$CLUSTER_BIN/" "${pkgs[@]}")
  mark_built kubernetes devenv/cluster/modules/kubernetes
}

build_coredns() {
  up_to_date coredns devenv/cluster/modules/coredns coredns && { clog "coredns $COREDNS_VERSION: up to date"; return 0; }
  clog "building coredns $COREDNS_VERSION"
  # static (CGO off): it runs in a scratch image (devenv/images/build.sh coredns)
  (cd "$CLUSTER_ROOT/devenv/cluster/modules/coredns" && CGO_ENABLED=0 "${NICE[@]}" go build -trimpath -ldflags "-s -w" \
     -o "$CLUSTER_BIN/coredns" .)
  mark_built coredns devenv/cluster/modules/coredns
}

build_traefik() {
  up_to_date traefik devenv/cluster/modules/traefik traefik && { clog "traefik $TRAEFIK_VERSION: up to date"; return 0; }
  clog "building traefik $TRAEFIK_VERSION"
  # not in the checksum database mirror: go.sum (made with GONOSUMDB) is what is verified
  (cd "$CLUSTER_ROOT/devenv/cluster/modules/traefik" && GONOSUMDB=github.com/traefik CGO_ENABLED=0 "${NICE[@]}" go build -trimpath \
     -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v} -X github.com/traefik/traefik/v3/pkg/version.Codename=deployplatform" \
     -o "$CLUSTER_BIN/traefik" github.com/traefik/traefik/v3/cmd/traefik)
  mark_built traefik devenv/cluster/modules/traefik
}

link_etcd() {
  ensure_apt_packages
  command -v etcd >/dev/null || cdie "etcd not found (Debian package etcd-server)"
  ln -sf "$(command -v etcd)" "$CLUSTER_BIN/etcd"
  clog "etcd: $(etcd --version 2>/dev/null | head -1)"
}

main() {
  start=$SECONDS
  only=("$@"); [ ${#only[@]} -gt 0 ] || only=(etcd kubernetes coredns traefik)
  for piece in "${only[@]}"; do
    case $piece in
      kubernetes) timed build_kubernetes ;;
      coredns) timed build_coredns ;;
      traefik) timed build_traefik ;;
      etcd) timed link_etcd ;;
      *) cdie "unknown piece $piece (kubernetes|coredns|traefik|etcd)" ;;
    esac
  done
  clog "build.sh done in $((SECONDS - start))s; binaries in $CLUSTER_BIN"
}

# bash reads a script as it runs it: the whole run is this one line, parsed before it starts,
# so editing the file while it runs cannot change what runs.
main "$@"; exit $?
