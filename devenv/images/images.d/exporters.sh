# The exporters the alert rules read on the Docker target (components/alerting/*_rules.py), from the
# Debian packages, packaged like Prometheus and Alertmanager (build_debian_go_binary in build.sh):
#   127.0.0.1:5000/shop/node-exporter:<version>      host filesystems (NodeDiskAlmostFull)
#   127.0.0.1:5000/shop/postgres-exporter:<version>  pg_up, connections (DatabaseDown, DatabaseConnectionsHigh)
#   127.0.0.1:5000/shop/blackbox-exporter:<version>  HTTPS probes through the edge, certificate expiry
# <version> is the upstream version Debian packaged (1.5.0, 0.11.1, 0.23.0 on bookworm): the defaults of
# platform:monitoring's *ExporterVersion keys.

ensure_debian_package() { # package: installed from Debian's archive when missing (root)
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' && return 0
  [ "$(id -u)" = 0 ] || cdie "Debian package $1 is missing (need root to install it)"
  clog "installing $1 (Debian)"
  # The package's service must not start on the build machine: only its binary is packaged.
  local policy=/usr/sbin/policy-rc.d mine=""
  [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; mine=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "$1" >/dev/null
  local code=$?
  [ -n "$mine" ] && rm -f "$policy"
  [ "$code" = 0 ] || cdie "apt-get install $1 failed"
}

image_node_exporter() {
  ensure_debian_package prometheus-node-exporter
  build_debian_go_binary node-exporter prometheus-node-exporter /usr/bin/prometheus-node-exporter node-exporter 9100
}

image_postgres_exporter() {
  ensure_debian_package prometheus-postgres-exporter
  build_debian_go_binary postgres-exporter prometheus-postgres-exporter /usr/bin/prometheus-postgres-exporter postgres-exporter 9187
}

image_blackbox_exporter() {
  ensure_debian_package prometheus-blackbox-exporter
  build_debian_go_binary blackbox-exporter prometheus-blackbox-exporter /usr/bin/prometheus-blackbox-exporter blackbox-exporter 9115
}
