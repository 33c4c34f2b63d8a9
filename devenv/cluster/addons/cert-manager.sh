#!/usr/bin/env bash
# cert-manager's controller as a cluster add-on: its images (devenv/images/images.d/cert-manager.sh,
# idempotent: about a second when the registry has them) and the Deployment in addons/cert-manager.yaml.
# devenv/cluster/cluster.sh start runs `cert-manager.sh apply` after the CRDs; also by hand:
#   cert-manager.sh apply     push the images if needed, apply, wait until the controller is available
#   cert-manager.sh status    the controller's Deployment and pods
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
ADDONS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBECTL=("$CLUSTER_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE")
VERSION=v1.19.1
NODE_IP=10.250.0.1      # cluster.sh NODE_IP: where devenv/acme/pebble.sh's DNS server answers pods
SOLVER_NAMESERVERS="$NODE_IP:8053"

cmd_apply() {
  local t0=$SECONDS
  bash "$CLUSTER_ROOT/devenv/images/build.sh" cert-manager | grep -v 'up to date\|took\|done in' || true
  sed -e "s#@CONTROLLER_IMAGE@#$REGISTRY/cert-manager/controller:$VERSION#g" \
      -e "s#@ACMESOLVER_IMAGE@#$REGISTRY/cert-manager/acmesolver:$VERSION#g" \
      -e "s#@SOLVER_NAMESERVERS@#$SOLVER_NAMESERVERS#g" "$ADDONS/cert-manager.yaml" \
    | "${KUBECTL[@]}" apply -f - >/dev/null
  # A controller that is not up is reported, not fatal: the rest of the cluster works without it,
  # and what needs it (tls.mode acme, tests/e2e/test_acme_certificates.py) says so itself.
  if "${KUBECTL[@]}" -n cert-manager rollout status deployment/cert-manager --timeout=180s >/dev/null 2>&1; then
    clog "cert-manager $VERSION controller available ($((SECONDS - t0))s)"
  else
    clog "WARNING: cert-manager's controller is not available after 180s: $0 status"
  fi
}

cmd_status() {
  "${KUBECTL[@]}" -n cert-manager get deployment,pods -o wide
}

case ${1:-} in
  apply) cmd_apply ;;
  status) cmd_status ;;
  *) echo "usage: $0 apply|status" >&2; exit 2 ;;
esac
