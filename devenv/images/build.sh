#!/usr/bin/env bash
# Builds the cluster's images without Docker and pushes them to the local registry
# (Debian's docker-registry on 127.0.0.1:5000, started here if it is not running):
#   127.0.0.1:5000/shop/{web,api,worker}:{1.4.2,1.4.3-failing,1.5.0,1.6.0,1.7.0-broken,1.7.1-mislabeled}
#       a tiny HTTP service on busybox-static (devenv/images/shop-app): /healthz answers
#       "ok <name> <version>" (1.7.0-broken: 500), header X-App-Version: <version>; /schema and
#       /app/migrate (psql): the shop's schema, one more migration per minor version (shop_schema);
#       1.7.1-mislabeled is healthy but holds the 1.6.0 build (a wrong artifact pushed under a
#       new tag): Kubernetes' probes pass, only the smoke test's version check catches it
#       1.4.3-failing is the 1.4.2 build whose health checks pass and whose every other request
#       answers 500: a canary only its analysis (error rate from Prometheus) can catch
#   127.0.0.1:5000/shop/postgres:15.18.0   PostgreSQL from Debian's postgresql-15
#   127.0.0.1:5000/pause:3.10.2            Kubernetes' pause.c, compiled statically
#   127.0.0.1:5000/coredns:<version>        cluster DNS: the binary devenv/cluster/build.sh built
#   127.0.0.1:5000/shop/traefik:3.1.4      the edge proxy: Traefik built by devenv/cluster/build.sh
# Each image: a rootfs directory -> umoci (OCI layout) -> skopeo copy to the registry.
# Idempotent: an image is rebuilt and pushed only when its inputs change or the
# registry lacks it. Work files: $CLUSTER_CACHE/images. Usage: devenv/images/build.sh [NAME...]
# Further images live in devenv/images/images.d/*.sh (one file per concern).
set -euo pipefail
IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$IMAGES_DIR/../cluster/lib.sh"

SHOP_VERSIONS=(1.4.2 1.4.3-failing 1.5.0 1.6.0 1.7.0-broken 1.7.1-mislabeled)
SHOP_SERVICES=(web api worker)
PAUSE_VERSION=3.10.2
POSTGRES_TAG=15.18.0
PG_MAJOR=15
WORK="$CLUSTER_CACHE/images"
LAYOUT="$WORK/oci"
mkdir -p "$WORK/stamps"

ensure_apt_packages
"$CLUSTER_ROOT/devenv/cluster/cluster.sh" registry >/dev/null

timed() { local start=$SECONDS; "$@"; clog "$* took $((SECONDS - start))s"; }

in_registry() { # repo tag
  curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$1/manifests/$2" 2>/dev/null
}

fresh() { # name repo tag digest: true when the registry has what this digest built
  [ "$(cat "$WORK/stamps/$1" 2>/dev/null)" = "$4" ] && in_registry "$2" "$3" && clog "$REGISTRY/$2:$3 up to date"
}

# publish NAME REPO TAG ROOTFS DIGEST umoci-config-args...: skip when unchanged and present.
publish() {
  local name=$1 repo=$2 tag=$3 rootfs=$4 digest=$5; shift 5
  fresh "$name" "$repo" "$tag" "$digest" && return 0
  [ -d "$LAYOUT" ] || umoci init --layout "$LAYOUT"
  umoci rm --image "$LAYOUT:$name" 2>/dev/null || true
  umoci new --image "$LAYOUT:$name"
  umoci insert --image "$LAYOUT:$name" "$rootfs" /
  umoci config --image "$LAYOUT:$name" --author deployplatform \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@"
  skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:$name" "docker://$REGISTRY/$repo:$tag"
  umoci gc --layout "$LAYOUT"
  echo "$digest" > "$WORK/stamps/$name"
  clog "pushed $REGISTRY/$repo:$tag"
}

tree_digest() { (for p in "$IMAGES_DIR/build.sh" "$@"; do find "$p" -type f -print0 | sort -z | xargs -0 sha256sum; done) | sha256sum | cut -c1-16; }

# A minimal busybox root: /bin/busybox plus its applet links, /etc/passwd, /tmp.
busybox_root() {
  local r=$1
  rm -rf "$r"; mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/app" "$r/root"
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
}

# The schema each build needs (devenv/images/shop-app/migrations/NNNN-*.sql up to it): 1.5.0 adds a
# column (reversible), 1.6.0 rewrites prices (irreversible), 1.7.0-broken's migration fails halfway;
# 1.7.1-mislabeled holds the 1.6.0 build.
shop_schema() { case $1 in 1.4.2|1.4.3-failing) echo 1 ;; 1.5.0) echo 2 ;; 1.6.0|1.7.1-mislabeled) echo 3 ;; 1.7.0-broken) echo 4 ;;
  *) cdie "no schema known for shop version $1 (build.sh shop_schema)" ;; esac; }

# psql (Debian's postgresql-client, the real binary) and its shared-library closure: the app
# reports its schema and /app/migrate runs the migrations with it.
PSQL_BIN=/usr/lib/postgresql/$PG_MAJOR/bin/psql
shop_psql() {
  local r=$1 lib
  mkdir -p "$r/usr/bin" "$r/lib64"
  cp -L "$PSQL_BIN" "$r/usr/bin/psql"
  ldd "$PSQL_BIN" | awk '/=> \//{print $3}' | while read -r lib; do mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"; done
  cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
}

build_shop() {
  local svc=$1 ver=$2; local r="$WORK/rootfs/shop-$svc-$ver" digest schema n
  digest="$SHOP_DIGEST-$ver"
  fresh "shop-$svc-$ver" "shop/$svc" "$ver" "$digest" && return 0
  busybox_root "$r"
  cp "$IMAGES_DIR/shop-app/handler.sh" "$IMAGES_DIR/shop-app/run.sh" "$r/app/"
  cp "$IMAGES_DIR/shop-app/worker.sh" "$r/app/worker"  # the stack files run `/app/worker --queue default`
  cp "$IMAGES_DIR/shop-app/migrate.sh" "$r/app/migrate"  # stack files declare `/app/migrate up|down`
  echo "$ver" > "$r/app/VERSION"; echo "$svc" > "$r/app/NAME"
  schema=$(shop_schema "$ver"); echo "$schema" > "$r/app/SCHEMA"
  mkdir -p "$r/app/migrations"
  for n in $(seq 1 "$schema"); do cp "$IMAGES_DIR/shop-app/migrations/$(printf %04d "$n")"-*.sql "$r/app/migrations/"; done
  shop_psql "$r"
  case $ver in
    *broken*) touch "$r/app/BROKEN" ;;
    *failing*) touch "$r/app/FAILING" ;;
    *mislabeled*) echo 1.6.0 > "$r/app/VERSION" ;;
  esac
  publish "shop-$svc-$ver" "shop/$svc" "$ver" "$r" \
    "$digest" \
    --config.entrypoint /bin/sh --config.entrypoint /app/run.sh \
    --config.env "APP_VERSION=$ver" --config.env "APP_NAME=$svc" --config.env PORT=8080 \
    --config.exposedports 8080/tcp --config.user 65534:65534 \
    --config.label "org.opencontainers.image.version=$ver" \
    --config.label "org.opencontainers.image.title=shop-$svc"
}

# busybox-static alone, for small jobs of the platform (the backup-results exporter runs its httpd).
build_busybox() {
  local r="$WORK/rootfs/busybox" ver digest
  ver=$(/bin/busybox --help 2>&1 | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')
  digest=$(tree_digest /bin/busybox)
  fresh busybox shop/busybox "$ver" "$digest" && return 0
  busybox_root "$r"
  publish busybox shop/busybox "$ver" "$r" "$digest" --config.entrypoint /bin/sh \
    --config.label "org.opencontainers.image.version=$ver"
}

build_pause() {
  local r="$WORK/rootfs/pause" src
  src=$(cd "$CLUSTER_ROOT/devenv/cluster/modules/kubernetes" && go mod download -json k8s.io/kubernetes | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  rm -rf "$r"; mkdir -p "$r"
  gcc -Os -Wall -Werror -static -DVERSION=v$PAUSE_VERSION-deployplatform -o "$r/pause" "$src/build/pause/linux/pause.c"
  strip "$r/pause"
  publish pause pause "$PAUSE_VERSION" "$r" "$(tree_digest "$src/build/pause/linux/pause.c")" \
    --config.entrypoint /pause --config.user 65535:65535
}

build_coredns() {
  local r="$WORK/rootfs/coredns" bin="$CLUSTER_BIN/coredns"
  [ -x "$bin" ] || "$CLUSTER_ROOT/devenv/cluster/build.sh" coredns
  rm -rf "$r"; mkdir -p "$r/etc/coredns"
  cp "$bin" "$r/coredns"
  printf 'root:x:0:0:root:/:/coredns\nnonroot:x:65532:65532::/:/coredns\n' > "$r/etc/passwd"
  publish coredns coredns "${COREDNS_VERSION#v}" "$r" "$(tree_digest "$bin")" \
    --config.entrypoint /coredns --config.exposedports 53/udp --config.exposedports 53/tcp
}

# Traefik as the platform's edge proxy runs it: `traefik --configFile=...` (binary on PATH).
build_traefik() {
  local r="$WORK/rootfs/traefik" bin="$CLUSTER_BIN/traefik"
  [ -x "$bin" ] || "$CLUSTER_ROOT/devenv/cluster/build.sh" traefik
  local digest; digest=$(tree_digest "$bin" /bin/busybox)
  fresh traefik shop/traefik "${TRAEFIK_VERSION#v}" "$digest" && return 0
  # A busybox shell beside Traefik: on a Docker host the routes file is replaced in the running
  # edge (`docker exec ... sh -c 'cat > tmp && mv tmp routes.yml'`), so a release switch never
  # recreates the container that holds the published ports.
  busybox_root "$r"; mkdir -p "$r/usr/local/bin" "$r/etc/traefik/dynamic" "$r/etc/ssl/certs"
  cp "$bin" "$r/usr/local/bin/traefik"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  publish traefik shop/traefik "${TRAEFIK_VERSION#v}" "$r" "$digest" \
    --config.entrypoint /usr/local/bin/traefik --config.exposedports 80/tcp --config.exposedports 443/tcp \
    --config.label "org.opencontainers.image.version=${TRAEFIK_VERSION#v}"
}

# PostgreSQL from the Debian packages installed on this machine: the server binaries,
# their shared-library closure (ldd), share/ data and a busybox shell for the entrypoint.
build_postgres() {
  local r="$WORK/rootfs/postgres" pgbin=/usr/lib/postgresql/$PG_MAJOR/bin
  if ! dpkg-query -W -f='${Status}' postgresql-$PG_MAJOR 2>/dev/null | grep -q 'install ok installed'; then
    clog "installing postgresql-$PG_MAJOR (Debian)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-$PG_MAJOR >/dev/null
  fi
  local pgver digest; pgver=$(dpkg-query -W -f='${Version}' postgresql-$PG_MAJOR)
  digest="$(tree_digest "$IMAGES_DIR/postgres")-$pgver"
  fresh postgres shop/postgres "$POSTGRES_TAG" "$digest" && return 0
  busybox_root "$r"
  mkdir -p "$r/usr/lib/postgresql/$PG_MAJOR" "$r/usr/share/postgresql" "$r/var/lib/postgresql" \
    "$r/var/run/postgresql" "$r/usr/share/zoneinfo" "$r/docker-entrypoint-initdb.d"
  cp -a "/usr/lib/postgresql/$PG_MAJOR/bin" "/usr/lib/postgresql/$PG_MAJOR/lib" "$r/usr/lib/postgresql/$PG_MAJOR/"
  rm -f "$r/usr/lib/postgresql/$PG_MAJOR/lib/llvmjit"*   # JIT needs libLLVM (100+ MB); jit=off
  rm -rf "$r/usr/lib/postgresql/$PG_MAJOR/lib/bitcode"
  cp -a "/usr/share/postgresql/$PG_MAJOR" "$r/usr/share/postgresql/"
  mkdir -p "$r/usr/lib/locale"; cp -a /usr/lib/locale/C.utf8 "$r/usr/lib/locale/"   # Debian's C.UTF-8
  cp -a /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc "$r/usr/share/zoneinfo/" 2>/dev/null || true
  # shared libraries of every ELF file copied above
  local f lib
  for f in "$r/usr/lib/postgresql/$PG_MAJOR/bin/"* "$r/usr/lib/postgresql/$PG_MAJOR/lib/"*.so; do
    ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib64/{print $1}'
  done | sort -u | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
  done
  mkdir -p "$r/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
  [ -d "$r/usr/lib/x86_64-linux-gnu" ] && cp -L /usr/lib/x86_64-linux-gnu/gconv/gconv-modules "$r/usr/lib/x86_64-linux-gnu/" 2>/dev/null || true
  for b in "$r/usr/lib/postgresql/$PG_MAJOR/bin/"*; do ln -sf "/usr/lib/postgresql/$PG_MAJOR/bin/$(basename "$b")" "$r/bin/$(basename "$b")"; done
  printf 'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n' >> "$r/etc/passwd"
  printf 'postgres:x:999:\n' >> "$r/etc/group"
  cp "$IMAGES_DIR/postgres/entrypoint.sh" "$r/entrypoint.sh"
  chown -R 999:999 "$r/var/lib/postgresql" "$r/var/run/postgresql"
  publish postgres shop/postgres "$POSTGRES_TAG" "$r" "$digest" \
    --config.entrypoint /bin/sh --config.entrypoint /entrypoint.sh \
    --config.env PGDATA=/var/lib/postgresql/data --config.env LANG=C.UTF-8 --config.env TZ=UTC \
    --config.exposedports 5432/tcp --config.volume /var/lib/postgresql/data \
    --config.stopsignal SIGINT \
    --config.label "org.opencontainers.image.version=$POSTGRES_TAG" \
    --config.label "org.debian.package.version=postgresql-$PG_MAJOR=$pgver"
}

# Alertmanager (and the exporters, images.d/exporters.sh) from the Debian packages installed on this
# machine (setup installs them for promtool/amtool): the binary, its shared-library closure and a
# busybox shell, tagged with the upstream version Debian packaged. Prometheus is built from its Go
# module instead (images.d/prometheus.sh): Debian's has no Kubernetes service discovery.
build_debian_go_binary() { # image-name debian-package binary-path entrypoint-name port
  local name=$1 package=$2 binary=$3 entry=$4 port=$5 r="$WORK/rootfs/$1" version digest lib
  version=$(dpkg-query -W -f='${Version}' "$package" 2>/dev/null) || cdie "Debian package $package is not installed"
  version=${version%%[+-]*}
  digest="$(tree_digest "$binary" /bin/busybox)-$version"
  fresh "$name" "shop/$name" "$version" "$digest" && return 0
  busybox_root "$r"; mkdir -p "$r/usr/bin" "$r/etc/$name" "$r/$name" "$r/lib64"
  cp -L "$binary" "$r/usr/bin/$entry"
  ldd "$binary" 2>/dev/null | awk '/=> \//{print $3}' | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
  # The package's shared data (Alertmanager's default notification templates live there).
  [ -d "/usr/share/prometheus/$name" ] && mkdir -p "$r/usr/share/prometheus" && cp -a "/usr/share/prometheus/$name" "$r/usr/share/prometheus/"
  ln -sf "/usr/bin/$entry" "$r/bin/$entry"
  chown -R 65534:65534 "$r/$name"
  publish "$name" "shop/$name" "$version" "$r" "$digest" \
    --config.entrypoint "/usr/bin/$entry" --config.exposedports "$port/tcp" --config.user 65534 \
    --config.label "org.opencontainers.image.version=$version" \
    --config.label "org.debian.package.version=$package=$(dpkg-query -W -f='${Version}' "$package")"
}

# More images, one file per concern: devenv/images/images.d/<name>.sh defines image_<name>()
# functions (using publish/tree_digest above); each is built by default and by name.
EXTRA_IMAGES=()
for extra in "$IMAGES_DIR"/images.d/*.sh; do
  [ -e "$extra" ] || continue
  source "$extra"
done
while read -r fn; do EXTRA_IMAGES+=("${fn#image_}"); done < <(declare -F | awk '$3 ~ /^image_/ {print $3}')

main() {
  # One build at a time: two builds sharing the OCI layout remove each other's blobs (umoci gc).
  exec 9>"$WORK/build.lock"
  flock 9
  start=$SECONDS
  targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(pause shop busybox postgres coredns traefik alertmanager "${EXTRA_IMAGES[@]}")
  for t in "${targets[@]}"; do
    case $t in
      pause) timed build_pause ;;
      postgres) timed build_postgres ;;
      coredns) timed build_coredns ;;
      traefik) timed build_traefik ;;
      alertmanager) timed build_debian_go_binary alertmanager prometheus-alertmanager /usr/bin/prometheus-alertmanager alertmanager 9093 ;;
      busybox) timed build_busybox ;;
      shop) [ -x "$PSQL_BIN" ] || { clog "installing postgresql-client-$PG_MAJOR (Debian)"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "postgresql-client-$PG_MAJOR" >/dev/null; }
            SHOP_DIGEST=$(tree_digest "$IMAGES_DIR/shop-app" /bin/busybox "$PSQL_BIN")
            for s in "${SHOP_SERVICES[@]}"; do for v in "${SHOP_VERSIONS[@]}"; do timed build_shop "$s" "$v"; done; done ;;
      *) declare -F "image_$t" >/dev/null && { timed "image_$t"; continue; }
         cdie "unknown image $t (pause|shop|busybox|postgres|coredns|traefik|alertmanager${EXTRA_IMAGES[*]:+|}$(IFS='|'; echo "${EXTRA_IMAGES[*]}"))" ;;
    esac
  done
  clog "devenv/images/build.sh done in $((SECONDS - start))s"
}

# bash reads a script as it runs it: the whole run is this one line, parsed before it starts,
# so editing the file while it runs cannot change what runs.
main "$@"; exit $?
