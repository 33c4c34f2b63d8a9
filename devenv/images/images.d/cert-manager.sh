# shellcheck shell=bash
# cert-manager on the local cluster (devenv/cluster/addons/cert-manager.sh deploys it):
#   127.0.0.1:5000/cert-manager/controller:v1.19.1   issues and renews Certificates (ACME, CA, self-signed)
#   127.0.0.1:5000/cert-manager/acmesolver:v1.19.1   the HTTP-01 solver pods the controller starts
# The binaries are the ones devenv/toolchain/upstream.sh builds from the pinned upstream tarball
# (docs/toolchain.md). The webhook and cainjector are not packaged: see docs/tls.md.
# Sourced by devenv/images/build.sh (publish, tree_digest, busybox_root, $WORK, $REGISTRY).

CERT_MANAGER_VERSION=v1.19.1
CERT_MANAGER_BIN="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}/cert-manager/$CERT_MANAGER_VERSION/bin"

# One cert-manager binary as /app/cmd/<name>/<name>-linux (the path upstream's images use),
# with its shared libraries (if cgo linked any), the system CA bundle and a nonroot user.
cert_manager_image() { # name
  local name=$1 bin="$CERT_MANAGER_BIN/$1" r="$WORK/rootfs/cert-manager-$1" digest lib
  [ -x "$bin" ] || bash "$CLUSTER_ROOT/devenv/toolchain/upstream.sh" cert-manager
  [ -x "$bin" ] || cdie "$bin missing after devenv/toolchain/upstream.sh cert-manager"
  digest=$(tree_digest "$bin" "$IMAGES_DIR/images.d/cert-manager.sh")
  fresh "cert-manager-$name" "cert-manager/$name" "$CERT_MANAGER_VERSION" "$digest" && return 0
  rm -rf "$r"; mkdir -p "$r/usr/local/bin" "$r/etc/ssl/certs" "$r/tmp" "$r/lib64"
  chmod 1777 "$r/tmp"
  cp "$bin" "$r/usr/local/bin/$name"
  { ldd "$bin" 2>/dev/null || true; } | awk '/=> \//{print $3}' | while read -r lib; do   # none if static
    mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
  done
  [ -e /lib64/ld-linux-x86-64.so.2 ] && cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  printf 'root:x:0:0:root:/:/nonexistent\nnonroot:x:65532:65532::/:/nonexistent\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$r/etc/group"
  publish "cert-manager-$name" "cert-manager/$name" "$CERT_MANAGER_VERSION" "$r" "$digest" \
    --config.entrypoint "/usr/local/bin/$name" --config.user 65532:65532 \
    --config.label "org.opencontainers.image.version=$CERT_MANAGER_VERSION" \
    --config.label "org.opencontainers.image.title=cert-manager-$name"
}

image_cert-manager() { cert_manager_image controller; cert_manager_image acmesolver; }
