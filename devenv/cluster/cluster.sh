#!/usr/bin/env bash
# A single-node Kubernetes cluster on this machine, from the binaries devenv/cluster/build.sh
# caches and Debian's containerd, runc, CNI plugins, etcd and docker-registry.
#
#   cluster.sh start      start everything (idempotent; generates PKI/kubeconfigs on first run)
#   cluster.sh status     processes, health endpoints, nodes and pods
#   cluster.sh stop       stop pods and every process started here (state is kept)
#   cluster.sh reset      stop, then delete cluster state (etcd, containerd, kubelet, PKI);
#                         the image registry's storage and the built binaries are kept
#   cluster.sh registry   only start the local image registry (127.0.0.1:5000)
#   cluster.sh containerd only start the registry and containerd (image/runtime checks)
#
# Addresses: the API server answers on https://127.0.0.1:6443 (kubeconfig:
# ~/.cache/deployplatform/cluster/kubeconfig). Kubernetes refuses a loopback node IP or
# advertise address, so the node's address 10.250.0.1/32 sits on lo;
# pods live on the bridge dpcni0 (10.244.0.0/24), services on 10.96.0.0/16. None of it
# leaves this machine. Design, versions and limits: docs/cluster.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../pidfile.sh"

NODE_NAME=dp-node
NODE_IP=10.250.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
PAUSE_IMAGE=$REGISTRY/pause:3.10.2
COREDNS_IMAGE=$REGISTRY/coredns:${COREDNS_VERSION#v}

PIDS=$CLUSTER_RUN/pids
LOGS=$CLUSTER_RUN/logs
CONF=$CLUSTER_RUN/conf
CTRD_SOCK=$CLUSTER_RUN/containerd/containerd.sock
KUBECTL=("$CLUSTER_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE")
ADDONS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/addons"

# ---------------------------------------------------------------- processes
# A pid counts only while it is still the process start_proc started (devenv/pidfile.sh).
# The second argument names the process a pid-only pidfile of an older cluster.sh stands for.
pid_of() { local comm=$1; [ "$1" = registry ] && comm=docker-registry; pidfile_pid "$PIDS/$1.pid" "$comm"; }

start_proc() { # name cmd...: runs detached, logs to $LOGS/name.log
  local name=$1; shift
  if pid_of "$name" >/dev/null; then clog "$name already running (pid $(pid_of "$name"))"; return 0; fi
  mkdir -p "$PIDS" "$LOGS"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  pidfile_write "$PIDS/$name.pid" $!
  clog "started $name (pid $!, log $LOGS/$name.log)"
}

stop_proc() { # name: SIGTERM, then SIGKILL after 15 s
  local name=$1 pid i
  pid=$(pid_of "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { clog "$name did not stop, SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
  rm -f "$PIDS/$name.pid"; clog "stopped $name"
}

# write_conf FILE < content: replace FILE only when the content differs. kube-proxy exits
# when its config file changes and containerd reloads CNI on any write.
write_conf() {
  local tmp; tmp=$(mktemp "$1.XXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

wait_for() { # description seconds command...
  local what=$1 secs=$2 i; shift 2
  for i in $(seq $((secs * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  cdie "timed out after ${secs}s waiting for $what (logs: $LOGS)"
}

# ---------------------------------------------------------------- registry
start_registry() {
  mkdir -p "$CLUSTER_CACHE/registry" "$CONF"
  write_conf "$CONF/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $CLUSTER_CACHE/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY
EOF
  if curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then return 0; fi
  start_proc registry docker-registry serve "$CONF/registry.yml"
  wait_for "registry on $REGISTRY" 20 curl -fsS "http://$REGISTRY/v2/"
}

# ---------------------------------------------------------------- PKI
pki() {
  local d=$CLUSTER_PKI
  mkdir -p "$d"
  [ -f "$d/ca.crt" ] || { clog "generating the cluster CA and certificates (openssl)";
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=deployplatform-cluster-ca" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null; }
  [ -f "$d/sa.key" ] || { openssl genrsa -out "$d/sa.key" 2048 2>/dev/null; openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null; }
  cert apiserver "kube-apiserver" "" server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP"
  cert apiserver-kubelet-client "kube-apiserver-kubelet-client" "system:masters" client
  cert admin "deployplatform-admin" "system:masters" client
  cert controller-manager "system:kube-controller-manager" "" client
  cert scheduler "system:kube-scheduler" "" client
  cert kube-proxy "system:kube-proxy" "" client
  cert kubelet-client "system:node:$NODE_NAME" "system:nodes" client
  cert kubelet-server "system:node:$NODE_NAME" "system:nodes" server "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
  kubeconfig admin "$KUBECONFIG_FILE"
  kubeconfig controller-manager "$CONF/controller-manager.kubeconfig"
  kubeconfig scheduler "$CONF/scheduler.kubeconfig"
  kubeconfig kube-proxy "$CONF/kube-proxy.kubeconfig"
  kubeconfig kubelet-client "$CONF/kubelet.kubeconfig"
}

cert() { # name CN O client|server [SANs]
  local d=$CLUSTER_PKI name=$1 cn=$2 o=$3 kind=$4 sans=${5:-} subj ext
  [ -f "$d/$name.crt" ] && return 0
  subj="/CN=$cn"; [ -n "$o" ] && subj="/O=$o$subj"
  ext="$d/$name.ext"
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ "$kind" = server ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; else echo "extendedKeyUsage=clientAuth"; fi
    [ -n "$sans" ] && echo "subjectAltName=$sans"; } > "$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
    -keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$ext"
}

kubeconfig() { # cert-name file
  local d=$CLUSTER_PKI
  mkdir -p "$(dirname "$2")"
  cat > "$2" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: deployplatform
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 < "$d/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 < "$d/$1.crt")
    client-key-data: $(base64 -w0 < "$d/$1.key")
contexts:
- name: deployplatform
  context: {cluster: deployplatform, user: $1}
current-context: deployplatform
EOF
  chmod 600 "$2"
}

# ---------------------------------------------------------------- host network
# Service IPs exist only as kube-proxy DNAT rules. Before a new Service's rules are synced, a
# packet to it would follow the default route off this machine, where the sandbox's egress proxy
# answers any TCP connection with HTTP 404: Traefik kept such a keep-alive connection and marked
# a healthy backend down for good. These rules run after kube-proxy's DNAT (nat before filter),
# so they only see service addresses nothing translated, and refuse them at once. (A route of
# type unreachable would also stop the host's own connections to ClusterIPs: local packets are
# routed before the OUTPUT DNAT.)
SERVICE_GUARD=(-d "$SERVICE_CIDR" -m comment --comment "dpcluster: service IP without kube-proxy rules" -j REJECT)
service_cidr_guard() {
  local chain
  ip route del unreachable "$SERVICE_CIDR" 2>/dev/null || true  # what an earlier version added
  for chain in FORWARD OUTPUT; do
    iptables -C "$chain" "${SERVICE_GUARD[@]}" 2>/dev/null || iptables -I "$chain" 1 "${SERVICE_GUARD[@]}"
  done
}

host_network() {
  # The kernel here has no dummy interface type ("Unknown device type"), so the node's
  # address is a /32 on lo: still a local address, reachable from the pod bridge.
  ip -4 addr show dev lo | grep -q " $NODE_IP/32" || ip addr add "$NODE_IP/32" dev lo
  service_cidr_guard
  sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1 || true
  mkdir -p /var/run/netns
  # hostPath provisioner's fixed base directory -> our state directory (addons/storage.yaml)
  mkdir -p "$CLUSTER_RUN/volumes"
  if [ ! -e /tmp/hostpath_pv ] || [ -L /tmp/hostpath_pv ]; then ln -sfn "$CLUSTER_RUN/volumes" /tmp/hostpath_pv; fi
}


# ---------------------------------------------------------------- components
start_etcd() {
  mkdir -p "$CLUSTER_RUN/etcd"; chmod 700 "$CLUSTER_RUN/etcd"
  start_proc etcd "$CLUSTER_BIN/etcd" --name "$NODE_NAME" --data-dir "$CLUSTER_RUN/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
    --quota-backend-bytes 2147483648 --snapshot-count 10000
  wait_for etcd 30 curl -fsS http://127.0.0.1:2381/health
}

start_apiserver() {
  local d=$CLUSTER_PKI
  start_proc kube-apiserver "$CLUSTER_BIN/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --client-ca-file "$d/ca.crt" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --kubelet-client-certificate "$d/apiserver-kubelet-client.crt" --kubelet-client-key "$d/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$d/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --event-ttl 1h
  wait_for "kube-apiserver /readyz" 120 curl -fsS --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" https://127.0.0.1:6443/readyz
}

start_controllers() {
  local d=$CLUSTER_PKI
  start_proc kube-controller-manager "$CLUSTER_BIN/kube-controller-manager" \
    --kubeconfig "$CONF/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$CONF/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$CONF/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
    --cluster-signing-cert-file "$d/ca.crt" --cluster-signing-key-file "$d/ca.key" \
    --root-ca-file "$d/ca.crt" --service-account-private-key-file "$d/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
    --controllers '*,bootstrapsigner,tokencleaner' --enable-hostpath-provisioner
  start_proc kube-scheduler "$CLUSTER_BIN/kube-scheduler" \
    --kubeconfig "$CONF/scheduler.kubeconfig" \
    --authentication-kubeconfig "$CONF/scheduler.kubeconfig" \
    --authorization-kubeconfig "$CONF/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false
}

start_containerd() {
  local c=$CLUSTER_RUN/containerd
  mkdir -p "$c/root" "$c/state" "$c/certs.d/$REGISTRY" "$CLUSTER_RUN/cni/net.d" "$CLUSTER_RUN/cni/ipam"
  write_conf "$c/certs.d/$REGISTRY/hosts.toml" <<EOF
server = "http://$REGISTRY"
[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
  write_conf "$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # This sandbox's root lacks CAP_SYS_RESOURCE: lowering oom_score_adj below the current 0
  # fails ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"), and kubelet
  # asks -998 for every sandbox. Clamp to containerd's own value instead.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_RUN/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
EOF
  write_conf "$CLUSTER_RUN/cni/net.d/10-dpcluster.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "dpcluster",
  "plugins": [
    {"type": "bridge", "bridge": "dpcni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$CLUSTER_RUN/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  local was_running=no log_offset=0
  pid_of containerd >/dev/null && was_running=yes
  [ -f "$LOGS/containerd.log" ] && log_offset=$(stat -c %s "$LOGS/containerd.log")
  start_proc containerd containerd --config "$c/config.toml"
  wait_for containerd 30 ctr --address "$CTRD_SOCK" version
  # containerd answers `ctr version` before its CRI plugin has recovered its state; a kubelet
  # started in between exits with "server is not initialized yet" (seen on a warm restart).
  # The CRI plugin logs "Start streaming server" once it serves (containerd 1.6, Debian's).
  [ "$was_running" = yes ] || wait_for "containerd's CRI plugin" 60 cri_started_since "$log_offset"
}

cri_started_since() { # byte offset in containerd.log where this start began
  # not `tail | grep -q`: under pipefail grep's early exit can SIGPIPE tail and fail the check
  grep -q 'msg="Start streaming server"' <(tail -c +"$(($1 + 1))" "$LOGS/containerd.log")
}

start_kubelet() {
  local d=$CLUSTER_PKI k=$CLUSTER_RUN/kubelet
  mkdir -p "$k"
  printf 'nameserver 127.0.0.1\n' | write_conf "$CONF/resolv.conf"   # no upstream DNS here: nothing to forward to
  local before; before=$(cksum < "$CONF/kubelet.yaml" 2>/dev/null || true)
  write_conf "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $d/kubelet-server.crt
tlsPrivateKeyFile: $d/kubelet-server.key
containerRuntimeEndpoint: unix://$CTRD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: $CONF/resolv.conf
podCIDR: $POD_CIDR
maxPods: 110
serializeImagePulls: false
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
evictionHard: {memory.available: "200Mi", nodefs.available: "5%", imagefs.available: "5%"}
healthzBindAddress: 127.0.0.1
EOF
  # A running kubelet reads its config only at start (a new maxPods, say): restart it on a change.
  # Its pods keep running meanwhile (they are containerd's).
  if [ -n "$before" ] && [ "$before" != "$(cksum < "$CONF/kubelet.yaml")" ] && pid_of kubelet >/dev/null; then
    clog "kubelet.yaml changed: restarting the kubelet"; stop_proc kubelet
  fi
  start_proc kubelet "$CLUSTER_BIN/kubelet" --config "$CONF/kubelet.yaml" \
    --kubeconfig "$CONF/kubelet.kubeconfig" --root-dir "$k" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
  wait_for "kubelet /healthz" 60 curl -fsS http://127.0.0.1:10248/healthz
}

start_kube_proxy() {
  write_conf "$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CONF/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0}
# NodePorts answer on loopback too (kube-proxy sets route_localnet), so a stack's edge is
# https://<host>.localhost:<edge.httpsPort> from this machine, like a kind port mapping.
nodePortAddresses: [127.0.0.0/8, $NODE_IP/32]
EOF
  start_proc kube-proxy "$CLUSTER_BIN/kube-proxy" --config "$CONF/kube-proxy.yaml"
}

apply_addons() {
  sed -e "s#@COREDNS_IMAGE@#$COREDNS_IMAGE#g" -e "s#@DNS_SERVICE_IP@#$DNS_SERVICE_IP#g" \
      -e "s#@CLUSTER_DOMAIN@#$CLUSTER_DOMAIN#g" "$ADDONS/coredns.yaml" | "${KUBECTL[@]}" apply -f - >/dev/null
  "${KUBECTL[@]}" apply -f "$ADDONS/storage.yaml" >/dev/null
  clog "applied addons (CoreDNS $COREDNS_IMAGE, default StorageClass standard)"
}

# The custom resource definitions the platform program creates objects of, taken from the
# projects' own Go modules (same versions as docs/cluster.md says), so those objects are
# validated by the real API server. monitoring.coreos.com: every kind the Prometheus Operator
# add-on (addons/prometheus-operator, same version) reconciles or watches for a stack's
# Prometheus and Alertmanager (docs/monitoring-kubernetes.md); not the agent and Thanos kinds.
CRD_MODULES=(
  "github.com/cert-manager/cert-manager@v1.19.1:deploy/crds:*.yaml"
  "github.com/prometheus-operator/prometheus-operator@v0.79.2:example/prometheus-operator-crd:monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_podmonitors.yaml monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_probes.yaml monitoring.coreos.com_scrapeconfigs.yaml monitoring.coreos.com_prometheuses.yaml monitoring.coreos.com_alertmanagers.yaml monitoring.coreos.com_alertmanagerconfigs.yaml"
)
install_crds() {
  local entry module dir files f names paths=()
  for entry in "${CRD_MODULES[@]}"; do
    module=${entry%%:*}; entry=${entry#*:}; dir=${entry%%:*}; files=${entry#*:}
    local root
    root=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$root/$dir" ] || cdie "CRDs: $module has no $dir (go mod download failed?)"
    read -ra names <<< "$files"   # patterns expand in the module directory, not here
    for f in "${names[@]}"; do paths+=("$root/$dir"/$f); done
  done
  for f in "${paths[@]}"; do "${KUBECTL[@]}" apply --server-side --force-conflicts -f "$f" >/dev/null; done
  "${KUBECTL[@]}" wait --for=condition=Established --timeout=60s crd --all >/dev/null
  clog "installed ${#paths[@]} CRDs (cert-manager.io, acme.cert-manager.io, monitoring.coreos.com)"
}

node_ready() {
  [ "$("${KUBECTL[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cmd_start() {
  local t0=$SECONDS b
  ensure_apt_packages
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do
    [ -x "$CLUSTER_BIN/$b" ] || cdie "$CLUSTER_BIN/$b missing: run devenv/cluster/build.sh first"
  done
  mkdir -p "$CLUSTER_RUN" "$CONF"
  host_network
  pki
  start_registry
  # the sandbox (pause) and DNS images must be in the registry (idempotent, ~1 s when present)
  "$CLUSTER_ROOT/devenv/images/build.sh" pause coredns prometheus-operator | grep -v 'up to date\|took\|done in' || true
  start_etcd
  start_apiserver
  start_controllers
  start_containerd
  start_kubelet
  start_kube_proxy
  wait_for "node $NODE_NAME Ready" 120 node_ready
  apply_addons
  install_crds
  # The Prometheus Operator (docs/monitoring-kubernetes.md). Without it the cluster still serves
  # everything else; only the stacks' Prometheus and Alertmanager stay unscheduled, so say so loudly.
  bash "$ADDONS/prometheus-operator/apply.sh" || clog "WARNING: the Prometheus Operator add-on is not running (above); stacks get no Prometheus/Alertmanager pods"
  # cert-manager's controller (issues the stacks' certificates); the cluster is usable without it
  bash "$ADDONS/cert-manager.sh" apply || clog "WARNING: cert-manager add-on failed: bash $ADDONS/cert-manager.sh apply"
  clog "cluster up in $((SECONDS - t0))s; export KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_status() {
  local n rc=0 p
  for n in registry etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
    if p=$(pid_of "$n"); then printf '  %-24s running (pid %s)\n' "$n" "$p"
    elif [ "$n" = registry ] && curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; then printf '  %-24s running (not started here)\n' "$n"
    else printf '  %-24s stopped\n' "$n"; rc=1; fi
  done
  if [ -f "$KUBECONFIG_FILE" ] && pid_of kube-apiserver >/dev/null; then
    "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1 && echo "  apiserver /readyz: ok" || { echo "  apiserver /readyz: FAILED"; rc=1; }
    "${KUBECTL[@]}" get nodes -o wide 2>&1 | sed 's/^/  /'
    "${KUBECTL[@]}" get pods -A -o wide 2>&1 | sed 's/^/  /'
  fi
  return $rc
}

cmd_stop() {
  local pid
  stop_proc kube-proxy
  stop_proc kubelet
  # stop every container this containerd runs, then the daemon and its shims
  if pid_of containerd >/dev/null; then
    for t in $(ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CTRD_SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    sleep 1
  fi
  stop_proc containerd
  # shims are started by containerd with our socket address: end exactly those
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" || true); do kill -9 "$pid" 2>/dev/null || true; done
  stop_proc kube-scheduler
  stop_proc kube-controller-manager
  stop_proc kube-apiserver
  stop_proc etcd
  stop_proc registry
}

cleanup_mounts() {
  local m
  for m in $(awk -v r="$CLUSTER_RUN" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  for m in $(awk '$2 ~ "^/(var/)?run/netns/cni-" {print $2}' /proc/mounts); do umount -l "$m" 2>/dev/null || true; rm -f "$m"; done
}

cleanup_iptables() {
  [ -x "$CLUSTER_BIN/kube-proxy" ] && "$CLUSTER_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  # the bridge plugin's per-pod masquerade chains, tagged with our network's name
  local rule chain
  iptables -t nat -S POSTROUTING | grep -F 'name: \"dpcluster\"' | sed 's/^-A //' | while read -r rule; do
    eval "iptables -t nat -D $rule" 2>/dev/null || true
  done
  # kubelet's own chains (canaries, the localnet firewall), IPv4 and IPv6
  local ipt t
  for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null || continue
    $ipt -D INPUT -j KUBE-FIREWALL 2>/dev/null || true
    $ipt -D OUTPUT -j KUBE-FIREWALL 2>/dev/null || true
    for t in filter nat mangle; do
      for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
        $ipt -t $t -F $chain 2>/dev/null && $ipt -t $t -X $chain 2>/dev/null || true
      done
    done
  done
  for chain in $(iptables -t nat -S | awk '/^-N CNI-/{print $2}'); do
    iptables -t nat -S "$chain" | grep -qF 'name: \"dpcluster\"' || continue
    iptables -t nat -F "$chain"; iptables -t nat -X "$chain" 2>/dev/null || true
  done
}

cmd_reset() {
  cmd_stop
  cleanup_mounts
  cleanup_iptables
  ip link del dpcni0 2>/dev/null || true
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
  local chain
  for chain in FORWARD OUTPUT; do iptables -D "$chain" "${SERVICE_GUARD[@]}" 2>/dev/null || true; done
  [ -L /tmp/hostpath_pv ] && rm -f /tmp/hostpath_pv
  rm -rf "$CLUSTER_RUN" "$CLUSTER_PKI" "$KUBECONFIG_FILE"
  clog "cluster state removed (kept: binaries, registry storage $CLUSTER_CACHE/registry)"
}

case ${1:-} in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  reset) cmd_reset ;;
  registry) start_registry ;;
  pki) mkdir -p "$CONF"; pki ;;
  containerd) mkdir -p "$CLUSTER_RUN" "$CONF"; host_network; start_registry; start_containerd ;;
  *) echo "usage: $0 start|status|stop|reset|registry" >&2; exit 2 ;;
esac; exit $?  # nothing after this line is read: safe to edit while it runs
