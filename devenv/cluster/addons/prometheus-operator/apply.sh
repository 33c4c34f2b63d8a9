#!/usr/bin/env bash
# Applies the Prometheus Operator add-on (operator.yaml beside this script) to the running local
# cluster and waits until the controller is available. Called by `devenv/cluster/cluster.sh start`
# after the CRDs are installed; idempotent (kubectl apply of unchanged objects changes nothing).
# Its images must be in the local registry: `devenv/images/build.sh prometheus-operator`
# (cluster.sh start runs that first; a no-op when they are up to date).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../../lib.sh"
VERSION=$(bash "$CLUSTER_ROOT/devenv/toolchain/prometheus-operator.sh" --print-version)
KUBECTL=("$CLUSTER_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE")
started=$SECONDS

sed -e "s#@VERSION@#${VERSION#v}#g" \
    -e "s#@OPERATOR_IMAGE@#$REGISTRY/prometheus-operator:$VERSION#g" \
    -e "s#@RELOADER_IMAGE@#$REGISTRY/prometheus-config-reloader:$VERSION#g" \
    -e "s#@PROMETHEUS_BASE_IMAGE@#$REGISTRY/shop/prometheus#g" \
    -e "s#@ALERTMANAGER_BASE_IMAGE@#$REGISTRY/shop/alertmanager#g" \
    -e "s#@CLUSTER_DOMAIN@#${CLUSTER_DOMAIN:-cluster.local}#g" \
    "$HERE/operator.yaml" | "${KUBECTL[@]}" apply -f - >/dev/null
if ! "${KUBECTL[@]}" -n prometheus-operator rollout status deployment/prometheus-operator --timeout=180s >/dev/null; then
  "${KUBECTL[@]}" -n prometheus-operator get pods -o wide >&2 || true
  "${KUBECTL[@]}" -n prometheus-operator logs deployment/prometheus-operator --tail=20 >&2 || true
  cdie "the Prometheus Operator did not become available within 180s (kubectl -n prometheus-operator describe pods)"
fi
clog "Prometheus Operator $VERSION available in namespace prometheus-operator ($((SECONDS - started))s)"
