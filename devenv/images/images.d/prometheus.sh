# shellcheck shell=bash
# 127.0.0.1:5000/shop/prometheus:<version>: Prometheus and promtool as devenv/toolchain/prometheus.sh
# builds them from the Go module (sourced by devenv/images/build.sh). Not Debian's `prometheus`: that
# one is built without Kubernetes service discovery, which every config the Prometheus Operator
# generates needs. One image for both targets: the operator's Prometheus pods on Kubernetes
# (entrypoint /usr/bin/prometheus, the operator passes only arguments) and the Docker target's
# container (`prometheus ...` on PATH). A busybox root beside the static binaries: the Docker
# target's health check runs `sh`/`wget` in the container. No web UI (the build has no assets).

prometheus_source_version() { bash "$CLUSTER_ROOT/devenv/toolchain/prometheus.sh" --print-version; }

image_prometheus() {
  local script="$CLUSTER_ROOT/devenv/toolchain/prometheus.sh" r="$WORK/rootfs/prometheus" bin version digest
  bash "$script" >&2
  bin=$(bash "$script" --print-bin-dir)
  version=$(prometheus_source_version)
  digest="$(tree_digest "$bin" /bin/busybox "$IMAGES_DIR/images.d/prometheus.sh")-$version"
  fresh prometheus shop/prometheus "$version" "$digest" && return 0
  busybox_root "$r"; mkdir -p "$r/usr/bin" "$r/etc/prometheus" "$r/prometheus"
  cp "$bin/prometheus" "$bin/promtool" "$r/usr/bin/"
  ln -sf /usr/bin/prometheus "$r/bin/prometheus"; ln -sf /usr/bin/promtool "$r/bin/promtool"
  chown -R 65534:65534 "$r/prometheus"
  publish prometheus shop/prometheus "$version" "$r" "$digest" \
    --config.entrypoint /usr/bin/prometheus --config.exposedports 9090/tcp --config.user 65534 \
    --config.workingdir /prometheus \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.source=$(bash "$script" --print-module-version)"
}
