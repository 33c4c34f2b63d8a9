# shellcheck shell=bash
# Shared settings for devenv/cluster/*.sh and devenv/images/build.sh. Source it.
# Everything built or run lives under $CLUSTER_CACHE, never in the repo.
CLUSTER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY_CACHE="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}"
CLUSTER_CACHE="${CLUSTER_CACHE:-$DEPLOY_CACHE/cluster}"
K8S_VERSION="v1.37.2"          # devenv/cluster/modules/kubernetes/go.mod pins the same
COREDNS_VERSION="v1.15.0"       # devenv/cluster/modules/coredns/go.mod pins the same
TRAEFIK_VERSION="v3.1.4"        # devenv/cluster/modules/traefik/go.mod pins the same
CLUSTER_BIN="$CLUSTER_CACHE/bin"
CLUSTER_STAMPS="$CLUSTER_CACHE/stamps"
CLUSTER_RUN="$CLUSTER_CACHE/run"        # state of a running cluster (pids, logs, data)
CLUSTER_PKI="$CLUSTER_CACHE/pki"
KUBECONFIG_FILE="$CLUSTER_CACHE/kubeconfig"
REGISTRY="127.0.0.1:5000"
export CLUSTER_ROOT DEPLOY_CACHE CLUSTER_CACHE K8S_VERSION CLUSTER_BIN

clog() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
cdie() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

# Debian packages the cluster needs at run time (binaries we do not build).
CLUSTER_APT_PACKAGES=(containerd runc containernetworking-plugins etcd-server docker-registry
  busybox-static skopeo umoci conntrack iptables socat ethtool ipset openssl curl)

ensure_apt_packages() {
  local missing=() p
  for p in "${CLUSTER_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || cdie "missing Debian packages (need root to install): ${missing[*]}"
  clog "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}
