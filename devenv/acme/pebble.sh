#!/usr/bin/env bash
# A local ACME server for the development machine: Pebble (Let's Encrypt's test CA, Debian's
# `pebble` package) and its DNS companion pebble-challtestsrv, so certificates are issued over
# ACME (HTTP-01) for real on this offline machine: by cert-manager on the local cluster and by
# Traefik's resolver on the Docker host (docs/tls.md).
#
#   pebble.sh start            start both (idempotent); writes the TLS CA bundle of the directory
#   pebble.sh status           processes, the directory, the DNS server; exit 1 if one is down
#   pebble.sh stop             stop both (state is kept; Pebble forgets accounts and its CA by design)
#   pebble.sh env              the values a stack needs (directory URL, CA bundle file) and the
#                              validity the running Pebble issues with, shell syntax
#   pebble.sh dns-add HOST IP  make HOST resolve to IP for Pebble (and cert-manager's self-check)
#   pebble.sh dns-del HOST     forget HOST (it resolves to the default, 127.0.0.1, again)
#
# Addresses: the ACME directory is https://10.250.0.1:14000/dir (the cluster node's address, on
# lo: reachable from this machine, from pods and from Docker containers alike); Pebble's
# management API (its issuing root and intermediate) answers on https://127.0.0.1:15000; the
# DNS server answers on port 8053 (all addresses: pods query it at 10.250.0.1:8053).
# HTTP-01 is validated on port 80 of the address a name resolves to: names nobody added resolve
# to 127.0.0.1 (a Docker edge publishing port 80 there), `dns-add` points a name at an edge
# Service's cluster IP (port 80 of every edge Service on the cluster).
# State under $DEPLOY_CACHE/acme: the directory's TLS key pair and CA (generated once), config,
# pids, logs. Certificates Pebble issues are valid for PEBBLE_VALIDITY_SECONDS (default 90 days,
# like Let's Encrypt; read at start); an order may ask for a shorter notAfter (cert-manager's
# duration). Traefik's resolver asks for none, so a short-lived certificate on the Docker edge
# needs a Pebble started with a short validity (tests/e2e/test_acme_certificates.py starts it so).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../pidfile.sh"
DEPLOY_CACHE="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}"
ACME_STATE="$DEPLOY_CACHE/acme"
CERTS="$ACME_STATE/certs"
RUN="$ACME_STATE/run"
LISTEN_IP=10.250.0.1            # devenv/cluster/cluster.sh NODE_IP (on lo)
ACME_PORT=14000
MANAGEMENT_PORT=15000
DNS_PORT=8053
CHALLTEST_MANAGEMENT=127.0.0.1:8055
VALIDITY_SECONDS="${PEBBLE_VALIDITY_SECONDS:-7776000}"
DIRECTORY_URL="https://$LISTEN_IP:$ACME_PORT/dir"
CA_BUNDLE="$CERTS/ca.pem"

log() { printf '[acme %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[acme] ERROR: %s\n' "$*" >&2; exit 1; }

# A pid counts only while it is still the process start_proc started (devenv/pidfile.sh).
pid_of() { local comm=$1; [ "$1" = challtestsrv ] && comm=pebble-challtestsrv; pidfile_pid "$RUN/$1.pid" "$comm"; }

start_proc() { # name [VAR=value...] cmd...: detached, logs to $RUN/name.log
  local name=$1; shift
  if pid_of "$name" >/dev/null; then log "$name already running (pid $(pid_of "$name"))"; return 0; fi
  setsid env "$@" >>"$RUN/$name.log" 2>&1 < /dev/null &
  pidfile_write "$RUN/$name.pid" $!
  log "started $name (pid $!, log $RUN/$name.log)"
}

stop_proc() {
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$RUN/$name.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"; log "stopped $name"
}

wait_for() { # what seconds cmd...
  local what=$1 secs=$2 i; shift 2
  for i in $(seq $((secs * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "timed out after ${secs}s waiting for $what (logs: $RUN)"
}

ensure_packages() {
  command -v pebble >/dev/null && command -v pebble-challtestsrv >/dev/null && command -v openssl >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "Debian packages pebble and openssl are needed (run as root to install them)"
  log "installing Debian packages pebble openssl"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q pebble openssl >/dev/null 2>&1 || {
    apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q pebble openssl >/dev/null; }
}

# The directory's own TLS (not the CA that signs issued certificates, which Pebble regenerates
# on every start): a CA clients trust through $CA_BUNDLE and a server certificate for every
# address clients use.
tls_material() {
  mkdir -p "$CERTS"; chmod 700 "$CERTS"
  [ -f "$CERTS/ca.key" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=deployplatform Pebble directory CA" -keyout "$CERTS/ca.key" -out "$CA_BUNDLE" 2>/dev/null
  [ -f "$CERTS/pebble.crt" ] && return 0
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:pebble,IP:127.0.0.1,IP:%s\n' \
    "$LISTEN_IP" > "$CERTS/pebble.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=pebble" \
    -keyout "$CERTS/pebble.key" -out "$CERTS/pebble.csr" 2>/dev/null
  openssl x509 -req -in "$CERTS/pebble.csr" -CA "$CA_BUNDLE" -CAkey "$CERTS/ca.key" -CAcreateserial \
    -days 3650 -extfile "$CERTS/pebble.ext" -out "$CERTS/pebble.crt" 2>/dev/null
  rm -f "$CERTS/pebble.csr" "$CERTS/pebble.ext"
  log "generated the directory's TLS certificate (CA bundle $CA_BUNDLE)"
}

config() {
  cat > "$ACME_STATE/pebble-config.json" <<EOF
{"pebble": {
  "listenAddress": "0.0.0.0:$ACME_PORT",
  "managementListenAddress": "127.0.0.1:$MANAGEMENT_PORT",
  "certificate": "$CERTS/pebble.crt",
  "privateKey": "$CERTS/pebble.key",
  "httpPort": 80,
  "tlsPort": 443,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false,
  "certificateValidityPeriod": $VALIDITY_SECONDS
}}
EOF
}

directory_up() { curl -fsS --cacert "$CA_BUNDLE" "https://127.0.0.1:$ACME_PORT/dir"; }
dns_up() { curl -fsS -o /dev/null -X POST -d '{"host":"probe.invalid"}' "http://$CHALLTEST_MANAGEMENT/clear-txt"; }

cmd_start() {
  ensure_packages
  mkdir -p "$RUN"
  tls_material
  # The config a running Pebble was started with stays as it is (`env` reports its validity).
  pid_of pebble >/dev/null || config
  # The DNS server Pebble (and cert-manager's HTTP-01 self-check) resolves names with; its own
  # challenge servers are off (the edges answer the challenges).
  start_proc challtestsrv pebble-challtestsrv -dns01 ":$DNS_PORT" -management "$CHALLTEST_MANAGEMENT" \
    -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 ""
  wait_for "pebble-challtestsrv on $CHALLTEST_MANAGEMENT" 20 dns_up
  # No random sleep before validating, no nonces rejected at random, no authorization reused:
  # every order is validated over HTTP-01 at once (Pebble's defaults test clients' retries).
  start_proc pebble PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
    pebble -config "$ACME_STATE/pebble-config.json" -dnsserver "127.0.0.1:$DNS_PORT"
  wait_for "Pebble's directory on :$ACME_PORT" 30 directory_up
  log "ACME directory $DIRECTORY_URL (CA bundle $CA_BUNDLE)"
}

cmd_status() {
  local rc=0 n
  for n in challtestsrv pebble; do
    if pid_of "$n" >/dev/null; then printf '  %-14s running (pid %s)\n' "$n" "$(pid_of "$n")"
    else printf '  %-14s stopped\n' "$n"; rc=1; fi
  done
  if directory_up >/dev/null 2>&1; then echo "  directory     $DIRECTORY_URL ok"; else echo "  directory     $DIRECTORY_URL FAILED"; rc=1; fi
  if dns_up >/dev/null 2>&1; then echo "  dns           :$DNS_PORT ok"; else echo "  dns           :$DNS_PORT FAILED"; rc=1; fi
  return $rc
}

cmd_env() {
  local validity=$VALIDITY_SECONDS  # what the running Pebble was started with, from its config
  [ -f "$ACME_STATE/pebble-config.json" ] && validity=$(sed -n 's/.*"certificateValidityPeriod": *\([0-9]*\).*/\1/p' \
    "$ACME_STATE/pebble-config.json")
  printf 'ACME_DIRECTORY=%s\nACME_CA_BUNDLE=%s\nACME_DNS=%s:%s\nACME_MANAGEMENT=https://127.0.0.1:%s\nACME_VALIDITY_SECONDS=%s\n' \
    "$DIRECTORY_URL" "$CA_BUNDLE" "$LISTEN_IP" "$DNS_PORT" "$MANAGEMENT_PORT" "$validity"
}

case ${1:-} in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) stop_proc pebble; stop_proc challtestsrv ;;
  env) cmd_env ;;
  dns-add) [ $# -eq 3 ] || die "usage: $0 dns-add HOST IPV4"
           curl -fsS -X POST -d "{\"host\":\"$2\",\"addresses\":[\"$3\"]}" "http://$CHALLTEST_MANAGEMENT/add-a" ;;
  dns-del) [ $# -eq 2 ] || die "usage: $0 dns-del HOST"
           curl -fsS -X POST -d "{\"host\":\"$2\"}" "http://$CHALLTEST_MANAGEMENT/clear-a" ;;
  *) echo "usage: $0 start|status|stop|env|dns-add HOST IP|dns-del HOST" >&2; exit 2 ;;
esac; exit $?  # nothing after this line is read: safe to edit while it runs
