# shellcheck shell=bash
# The Prometheus Operator's two images, from the static binaries
# devenv/toolchain/prometheus-operator.sh builds from the Go module (sourced by devenv/images/build.sh):
#   127.0.0.1:5000/prometheus-operator:<version>          the controller (entrypoint /bin/operator)
#   127.0.0.1:5000/prometheus-config-reloader:<version>   the sidecar; the operator runs it as
#                                                          /bin/prometheus-config-reloader (fixed path)
# Each holds its binary, /etc/passwd and /tmp only, and runs as nobody (65534) like upstream's.

prometheus_operator_bin() {
  local script="$CLUSTER_ROOT/devenv/toolchain/prometheus-operator.sh"
  bash "$script" >&2
  bash "$script" --print-bin-dir
}

prometheus_operator_version() { bash "$CLUSTER_ROOT/devenv/toolchain/prometheus-operator.sh" --print-version; }

# static_binary_image NAME BINARY: a root with only the binary at /bin/NAME.
static_binary_image() {
  local name=$1 binary=$2 r="$WORK/rootfs/$1" version digest
  version=$(prometheus_operator_version)
  digest=$(tree_digest "$binary" "$IMAGES_DIR/images.d/prometheus-operator.sh")
  fresh "$name" "$name" "$version" "$digest" && return 0
  rm -rf "$r"; mkdir -p "$r/bin" "$r/etc" "$r/tmp"; chmod 1777 "$r/tmp"
  cp "$binary" "$r/bin/$name"
  printf 'root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
  publish "$name" "$name" "$version" "$r" "$digest" \
    --config.entrypoint "/bin/$name" --config.user 65534:65534 \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.opencontainers.image.source=github.com/prometheus-operator/prometheus-operator@$version"
}

image_prometheus-operator() {
  local bin; bin=$(prometheus_operator_bin)
  static_binary_image prometheus-operator "$bin/operator"
  static_binary_image prometheus-config-reloader "$bin/prometheus-config-reloader"
}
