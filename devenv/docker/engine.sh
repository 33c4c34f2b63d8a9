#!/usr/bin/env bash
# A Docker engine for the project's Docker target, beside the local Kubernetes cluster.
#
#   devenv/docker/engine.sh install   Debian's docker.io when dockerd is missing (root)
#   devenv/docker/engine.sh start     start dockerd (idempotent) and install the host guards
#   devenv/docker/engine.sh status    what runs, client/daemon API, FORWARD policy, guards;
#                                     exit 0 running, 3 stopped
#   devenv/docker/engine.sh stop      stop dockerd, remove its iptables chains/rules, the guards
#                                     and its bridges (idempotent; the cluster's rules stay)
#   devenv/docker/engine.sh env       print `export DOCKER_HOST=...` (eval "$(... env)")
#   devenv/docker/engine.sh docker ARGS...   the docker client against this engine
#
# Its own socket, exec-root and pidfile under /run, data-root and log under
# ${DEPLOY_CACHE:-$HOME/.cache/deployplatform}/docker, so it never meets a system dockerd's
# state. Images come from the local registry (127.0.0.1:5000, plain HTTP); the machine is
# offline, so nothing else is pulled. Design and measurements: devenv/docker/README.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../pidfile.sh"

NAME=deployplatform-docker
DEPLOY_CACHE="${DEPLOY_CACHE:-$HOME/.cache/deployplatform}"
DOCKER_CACHE="$DEPLOY_CACHE/docker"
DATA_ROOT="$DOCKER_CACHE/data"
LOG_FILE="$DOCKER_CACHE/dockerd.log"
CONFIG_FILE="$DOCKER_CACHE/daemon.json"
SOCKET=/run/$NAME.sock
EXEC_ROOT=/run/$NAME                 # short: containerd's sockets live under it (108-byte limit)
PIDFILE=/run/$NAME.pid
DOCKER_HOST_URL="unix://$SOCKET"
REGISTRY=127.0.0.1:5000
START_TIMEOUT="${DP_DOCKER_START_TIMEOUT:-60}"
STOP_TIMEOUT="${DP_DOCKER_STOP_TIMEOUT:-60}"

# Addresses. The cluster uses 10.244.0.0/24 (pods), 10.96.0.0/16 (services) and 10.250.0.1
# (node, on lo) (scripts/cluster/cluster.sh); the engine keeps to 172.30.0.0/16:
ENGINE_RANGE=172.30.0.0/16
BIP=172.30.0.1/24                    # docker0, the default bridge
ADDRESS_POOL=172.30.0.0/17           # what `docker network create` allocates from (/24 each)
# Internal networks (the product's database network) take an explicit subnet from this half,
# which the daemon never allocates on its own: the guards below refuse anything from it to
# host addresses and to anything outside it. e.g.
#   docker network create --internal --subnet 172.30.128.0/24 shop-dev-backend
INTERNAL_POOL=172.30.128.0/17
LOG_OPTS=(--log-driver json-file --log-opt max-size=10m --log-opt max-file=3)

GUARD_CHAIN=DP-DOCKER-GUARD          # mangle: internal pool -> host / outside the pool
FORWARD_CHAIN=DP-DOCKER-FORWARD      # filter, from DOCKER-USER: unpublished container ports
COMMENT="$NAME"

log() { printf '[docker-engine %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[docker-engine] ERROR: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

need_root() { [ "$(id -u)" = 0 ] || die "'$1' needs root (network, iptables, /run): run it with sudo"; }
docker_cli() { command -v "${DP_DOCKER_CLI:-docker}" || true; }
dk() { local cli; cli=$(docker_cli); [ -n "$cli" ] || die "no docker client on PATH"; "$cli" -H "$DOCKER_HOST_URL" "$@"; }
ping_ok() { [ -S "$SOCKET" ] && [ "$(curl -s --max-time 2 --unix-socket "$SOCKET" http://engine/_ping 2>/dev/null)" = OK ]; }
# dockerd writes its pidfile itself (pid only): a pid counts while it is still a dockerd
# (devenv/pidfile.sh says why kill -0 is not enough once a session has ended).
engine_pid() { pidfile_pid "$PIDFILE" dockerd; }
pid_alive() { engine_pid >/dev/null; }
forward_policy() { iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}'; }
has_chain() { iptables -t "$1" -S "$2" >/dev/null 2>&1; }
elapsed() { local us=$(( ${EPOCHREALTIME/[.,]/} - $1 )); printf '%d.%02ds' $((us / 1000000)) $((us % 1000000 / 10000)); }

# ---------------------------------------------------------------- install
cmd_install() {
  need_root install
  if command -v dockerd >/dev/null; then
    log "dockerd present: $(dockerd --version)"
  else
    command -v apt-get >/dev/null || die "dockerd is missing and this is not a Debian system: install Docker Engine by hand"
    if apt-cache policy docker.io 2>/dev/null | grep -q 'Candidate: (none)' || ! apt-cache show docker.io >/dev/null 2>&1; then
      log "apt-get update"
      apt-get update -q >/dev/null
    fi
    # The package must not start a system dockerd (on /var/run/docker.sock, docker0, default
    # pools): without systemd its init script would. policy-rc.d 101 = "do not start".
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; made_policy=1; fi
    log "installing Debian docker.io (containerd, runc, iptables come with it)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=300 docker.io >/dev/null; then
      [ "$made_policy" = 1 ] && rm -f "$policy"
      die "apt-get install docker.io failed (see above)"
    fi
    [ "$made_policy" = 1 ] && rm -f "$policy"
    log "installed: $(dockerd --version)"
  fi
  local tool
  for tool in containerd runc iptables curl; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install $tool)"
  done
  local cli; cli=$(docker_cli)
  [ -n "$cli" ] || die "no docker client on PATH"
  log "client: $cli ($("$cli" version --format '{{.Client.Version}} API {{.Client.APIVersion}}' 2>/dev/null | head -n 1)); it negotiates the API version down to the daemon's (20.10 = API 1.41)"
  if pgrep -x dockerd >/dev/null && ! pid_alive; then
    log "note: another dockerd runs on this machine (pid $(pgrep -x dockerd | tr '\n' ' ')); both would share iptables chain names (DOCKER, DOCKER-USER)"
  fi
}

# ---------------------------------------------------------------- iptables
# Coexisting with the cluster:
# * FORWARD policy. dockerd 20.10 sets it to DROP only when it has to turn ip_forward on itself
#   (and iptables is on); the cluster relies on ACCEPT for pod and Service traffic. `start` turns
#   ip_forward on first (what the cluster's host_network does too), so dockerd leaves the policy
#   alone; if it still flips ACCEPT to DROP, `start` restores ACCEPT and says so. What DROP would
#   have given -- nothing forwarded reaches a container port that is not published -- comes
#   back for the engine's addresses only, from DOCKER-USER ($FORWARD_CHAIN): a new connection to
#   172.30.0.0/16 from outside the engine (the LAN, pods) is dropped unless it was DNATed to a
#   published port. Pod/Service traffic never matches it.
# * Internal networks. Docker's `--internal` stops forwarding, but a container still reaches
#   the host itself through its network's gateway address (INPUT), and through that the host's
#   NodePorts (kube-proxy DNATs local addresses -> FORWARD, where kube-proxy's own ACCEPT can
#   come before DOCKER-USER). So the guard sits in mangle PREROUTING, before any DNAT and any
#   filter chain: a NEW connection from $INTERNAL_POOL to a local address, or to anything
#   outside the pool, is dropped. Replies to connections the host opens still pass. (mangle
#   cannot REJECT, hence DROP: a probe times out.)
# Both live in chains of our own, jumped to from position 1, installed by `start`, removed by `stop`.
install_guards() {
  has_chain filter DOCKER-USER || die "dockerd did not create the DOCKER-USER chain (is it running with --iptables?)"
  has_chain mangle "$GUARD_CHAIN" || iptables -t mangle -N "$GUARD_CHAIN"
  iptables -t mangle -F "$GUARD_CHAIN"
  iptables -t mangle -A "$GUARD_CHAIN" -m addrtype --dst-type LOCAL -m conntrack --ctstate NEW \
    -m comment --comment "$COMMENT: internal networks do not reach the host" -j DROP
  iptables -t mangle -A "$GUARD_CHAIN" ! -d "$INTERNAL_POOL" -m conntrack --ctstate NEW \
    -m comment --comment "$COMMENT: internal networks stay inside their pool" -j DROP
  local jump=(-s "$INTERNAL_POOL" -m comment --comment "$COMMENT: internal-network guard" -j "$GUARD_CHAIN")
  iptables -t mangle -C PREROUTING "${jump[@]}" 2>/dev/null || iptables -t mangle -I PREROUTING 1 "${jump[@]}"

  has_chain filter "$FORWARD_CHAIN" || iptables -N "$FORWARD_CHAIN"
  iptables -F "$FORWARD_CHAIN"
  iptables -A "$FORWARD_CHAIN" -d "$ENGINE_RANGE" ! -s "$ENGINE_RANGE" -m conntrack --ctstate NEW \
    -m conntrack ! --ctstate DNAT -m comment --comment "$COMMENT: only published ports from outside the engine" -j DROP
  jump=(-m comment --comment "$COMMENT: engine forward guard" -j "$FORWARD_CHAIN")
  iptables -C DOCKER-USER "${jump[@]}" 2>/dev/null || iptables -I DOCKER-USER 1 "${jump[@]}"
}

guards_installed() {
  iptables -t mangle -C PREROUTING -s "$INTERNAL_POOL" -m comment --comment "$COMMENT: internal-network guard" -j "$GUARD_CHAIN" 2>/dev/null &&
    iptables -C DOCKER-USER -m comment --comment "$COMMENT: engine forward guard" -j "$FORWARD_CHAIN" 2>/dev/null
}

# A rule is dockerd's (or ours) when it jumps to a DOCKER* / DP-DOCKER-* chain, names one of
# dockerd's bridges or one of the engine's addresses. The cluster's rules (KUBE-*, CNI-*,
# "dpcluster" comments, dpcni0, 10.x) match none of these.
ENGINE_RULE='(-j|-g) (DOCKER[A-Z0-9-]*|DP-DOCKER-[A-Z-]+)( |$)|(-i|-o) (docker0|br-[0-9a-f]{12})( |$)|172\.30\.'
remove_rules() {
  local table chain rule
  for table in filter nat mangle raw; do
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-P"{print $2}'); do
      iptables -t "$table" -S "$chain" | { grep -E -- "^-A $chain .*($ENGINE_RULE)" || true; } |
        sed "s/^-A $chain //" | while IFS= read -r rule; do
          eval "iptables -t $table -D $chain $rule" || log "could not delete ($table $chain) $rule"
        done
    done
    local chains; chains=$(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && ($2 ~ /^DOCKER/ || $2 ~ /^DP-DOCKER-/){print $2}')
    for chain in $chains; do iptables -t "$table" -F "$chain"; done
    for chain in $chains; do iptables -t "$table" -X "$chain" || log "could not delete chain $table/$chain"; done
  done
}

leftover_rules() {
  local table
  for table in filter nat mangle raw; do
    iptables -t "$table" -S 2>/dev/null | grep -E -- "^-N (DOCKER|DP-DOCKER-)|$ENGINE_RULE" | sed "s/^/  $table: /" || true
  done
}

# docker0 and the br-* bridges that carry the engine's addresses (or the names dockerd gave us).
engine_bridges() {
  local known="${1:-}" dev
  for dev in $(ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    if [ "$dev" = docker0 ] || [[ " $known " == *" $dev "* ]] ||
       ip -4 -o addr show dev "$dev" 2>/dev/null | grep -q ' inet 172\.30\.'; then
      echo "$dev"
    fi
  done
}

network_bridges() { # bridge names of this engine's networks (while it answers)
  local id name opt
  for id in $(dk network ls -q --filter driver=bridge 2>/dev/null); do
    name=$(dk network inspect -f '{{.Name}}' "$id" 2>/dev/null) || continue
    opt=$(dk network inspect -f '{{index .Options "com.docker.network.bridge.name"}}' "$id" 2>/dev/null || true)
    if [ "$name" = bridge ]; then echo docker0
    elif [ -n "$opt" ] && [ "$opt" != "<no value>" ]; then echo "$opt"
    else echo "br-${id:0:12}"; fi
  done
}

# ---------------------------------------------------------------- start
cmd_start() {
  need_root start
  command -v dockerd >/dev/null || die "dockerd is missing: run '$0 install' first"
  command -v iptables >/dev/null || die "iptables is missing: run '$0 install' first"
  if pid_alive && ping_ok; then
    install_guards
    log "already running (pid $(engine_pid), $DOCKER_HOST_URL)"
    echo "export DOCKER_HOST=$DOCKER_HOST_URL"
    return 0
  fi
  if pid_alive; then
    die "dockerd pid $(engine_pid) is alive but $SOCKET does not answer: '$0 stop' first (log: $LOG_FILE)"
  fi
  rm -f "$PIDFILE"
  if [ -S "$SOCKET" ]; then rm -f "$SOCKET"; fi
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
  chmod 711 "$DOCKER_CACHE" "$DATA_ROOT"
  # Our own (empty) config file, so /etc/docker/daemon.json of a system engine never applies.
  [ -f "$CONFIG_FILE" ] || echo '{}' >"$CONFIG_FILE"
  if [ -f "$LOG_FILE" ] && [ "$(stat -c %s "$LOG_FILE")" -gt 10485760 ]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi

  local policy_before forward_before started=$SECONDS t0=${EPOCHREALTIME/[.,]/}
  policy_before=$(forward_policy)
  forward_before=$(sysctl -n net.ipv4.ip_forward)
  # See the iptables notes above: with ip_forward already on, dockerd does not touch the policy.
  [ "$forward_before" = 1 ] || { sysctl -qw net.ipv4.ip_forward=1; log "net.ipv4.ip_forward 0 -> 1 (before dockerd, so it leaves the FORWARD policy alone)"; }

  log "starting dockerd (socket $SOCKET, data-root $DATA_ROOT, exec-root $EXEC_ROOT, log $LOG_FILE)"
  printf '\n==== %s start\n' "$(date -Is)" >>"$LOG_FILE"
  setsid dockerd \
    --host "$DOCKER_HOST_URL" \
    --config-file "$CONFIG_FILE" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$PIDFILE" \
    --insecure-registry "$REGISTRY" \
    --bip "$BIP" \
    --default-address-pool "base=$ADDRESS_POOL,size=24" \
    --iptables=true --ip-forward=true \
    "${LOG_OPTS[@]}" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local pid=$!
  until ping_ok; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 25 "$LOG_FILE" >&2
      die "dockerd exited during start (log above, full log: $LOG_FILE)"
    fi
    if [ $((SECONDS - started)) -ge "$START_TIMEOUT" ]; then
      tail -n 25 "$LOG_FILE" >&2
      die "dockerd did not answer on $SOCKET within ${START_TIMEOUT}s (it keeps running as pid $pid; '$0 stop' ends it)"
    fi
    sleep 0.2
  done
  local policy_after; policy_after=$(forward_policy)
  if [ "$policy_after" = DROP ] && [ "$policy_before" = ACCEPT ]; then
    iptables -P FORWARD ACCEPT
    log "dockerd set the FORWARD policy to DROP; restored ACCEPT (the cluster's pod/Service traffic needs it)"
  fi
  install_guards
  log "running (pid $(engine_pid || echo "$pid"), ready in $(elapsed "$t0"); FORWARD policy $policy_before -> $(forward_policy))"
  echo "export DOCKER_HOST=$DOCKER_HOST_URL"
}

# ---------------------------------------------------------------- stop
cmd_stop() {
  need_root stop
  local known="" pid
  if ping_ok; then known=$(network_bridges | tr '\n' ' '); fi
  if pid_alive; then
    pid=$(engine_pid)
    log "stopping dockerd (pid $pid; it stops its containers first)"
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT * 5)) ]; do sleep 0.2; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      log "dockerd did not stop within ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  else
    log "dockerd is not running"
  fi
  # Its containerd (a child with state under the exec-root) and shims, only if left behind.
  local cpid
  # Its containerd counts only while its command line still names this engine's exec-root.
  for cpid in $(own_containerd_pid) $(shim_pids); do
    kill -0 "$cpid" 2>/dev/null && { log "ending leftover process $cpid"; kill -KILL "$cpid" 2>/dev/null || true; }
  done
  rm -f "$PIDFILE" "$SOCKET"

  local others; others=$(pgrep -x dockerd || true)
  if [ -n "$others" ]; then
    log "another dockerd runs (pid $others): it shares the DOCKER* chains and docker0, so they stay; only our guards go"
    remove_guards
  else
    remove_rules
    local dev
    for dev in $(engine_bridges "$known"); do
      ip link delete "$dev" type bridge && log "removed bridge $dev"
    done
  fi
  local left; left=$(leftover_rules)
  [ -z "$left" ] || log "left in iptables: $left"
  log "stopped; FORWARD policy $(forward_policy), net.ipv4.ip_forward stays $(sysctl -n net.ipv4.ip_forward) (the cluster needs it)"
}

remove_guards() {
  iptables -t mangle -D PREROUTING -s "$INTERNAL_POOL" -m comment --comment "$COMMENT: internal-network guard" -j "$GUARD_CHAIN" 2>/dev/null || true
  iptables -D DOCKER-USER -m comment --comment "$COMMENT: engine forward guard" -j "$FORWARD_CHAIN" 2>/dev/null || true
  iptables -t mangle -F "$GUARD_CHAIN" 2>/dev/null && iptables -t mangle -X "$GUARD_CHAIN" 2>/dev/null || true
  iptables -F "$FORWARD_CHAIN" 2>/dev/null && iptables -X "$FORWARD_CHAIN" 2>/dev/null || true
}

own_containerd_pid() { # dockerd's containerd, if its pidfile still names it
  local pid; pid=$(pidfile_pid "$EXEC_ROOT/containerd/containerd.pid" containerd) || return 0
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$EXEC_ROOT/" && echo "$pid"
  return 0
}

shim_pids() { # containerd-shims started for this engine's containerd (by their -address)
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "containerd-shim.* -address $EXEC_ROOT/containerd/" && echo "${p#/proc/}"
  done
  return 0
}

# ---------------------------------------------------------------- status
cmd_status() {
  local cli; cli=$(docker_cli)
  if pid_alive && ping_ok; then
    echo "engine:        running (pid $(engine_pid))"
    echo "DOCKER_HOST:   $DOCKER_HOST_URL"
    echo "daemon:        $(dk version --format '{{.Server.Version}} (API {{.Server.APIVersion}}, min {{.Server.MinAPIVersion}})' 2>&1)"
    echo "client:        $cli $(dk version --format '{{.Client.Version}} (API {{.Client.APIVersion}} negotiated)' 2>&1)"
    echo "data-root:     $DATA_ROOT"
    echo "exec-root:     $EXEC_ROOT"
    echo "log:           $LOG_FILE"
    echo "containers:    $(dk ps -q | wc -l) running, $(dk ps -aq | wc -l) in all"
    if [ "$(id -u)" = 0 ]; then
      echo "FORWARD:       policy $(forward_policy)"
      if guards_installed; then echo "guards:        installed (internal pool $INTERNAL_POOL: no host, nothing outside it)"
      else echo "guards:        MISSING ('$0 start' installs them)"; fi
    fi
    local id name subnet
    for id in $(dk network ls -q --filter driver=bridge); do
      [ "$(dk network inspect -f '{{.Internal}}' "$id")" = true ] || continue
      name=$(dk network inspect -f '{{.Name}}' "$id")
      subnet=$(dk network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$id"); subnet=${subnet% }
      if python3 -c "import ipaddress,sys; sys.exit(0 if all(ipaddress.ip_network(s).subnet_of(ipaddress.ip_network('$INTERNAL_POOL')) for s in sys.argv[1:]) else 1)" $subnet 2>/dev/null; then
        echo "internal:      $name $subnet (host-isolated)"
      else
        echo "internal:      $name $subnet NOT host-isolated: give it a --subnet from $INTERNAL_POOL"
      fi
    done
    return 0
  fi
  if pid_alive; then
    echo "engine:        not answering (pid $(engine_pid) alive, $SOCKET silent; log: $LOG_FILE)"
  else
    echo "engine:        stopped"
  fi
  if [ "$(id -u)" = 0 ]; then
    local left bridges; left=$(leftover_rules); bridges=$(engine_bridges | tr '\n' ' ')
    [ -z "$left" ] || printf 'leftovers:\n%s\n' "$left"
    [ -z "$bridges" ] || echo "bridges left:  $bridges"
  fi
  return 3
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST_URL" ;;
  docker) shift; dk "$@" ;;
  -h|--help|help) usage ;;
  "") usage >&2; exit 2 ;;
  *) printf "devenv/docker/engine.sh: unknown command '%s' (try --help)\n" "$1" >&2; exit 2 ;;
esac; exit $?  # nothing after this line is read: safe to edit while it runs
