#!/usr/bin/env bash
# One command from a fresh clone to a deployed dev stack:
#   system tools, Python environment, offline Pulumi toolchain, the local Kubernetes cluster
#   (built from Go modules, images in a local registry; docs/cluster.md), a Docker engine beside
#   it (devenv/docker/), local file backend,
#   per-machine secrets passphrase, the three stacks, dev secrets, then `pulumi up -s dev`
#   deploying the whole product to that cluster.
# Idempotent; `--no-up` stops before the deploy (the test command uses that).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DEPLOY_ROOT"

RUN_UP=1
for arg in "$@"; do
  case "$arg" in
    --no-up) RUN_UP=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "scripts/setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }
started=$SECONDS

system_packages() {
  # promtool/amtool validate the alert rules and routing the program renders; the tests start
  # their own sshd.
  local missing=()
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
  # sshd: the Docker target's ssh:// host is tested through a real sshd on a loopback port.
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  # chromium: deployctl dashboard is tested in a real headless browser (tests/e2e/test_dashboard.py).
  command -v chromium >/dev/null || missing+=(chromium)
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing ${missing[*]} (Debian packages)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start daemons we do not want; the tests run the tools only.
  $sudo systemctl disable --now prometheus prometheus-alertmanager ssh >/dev/null 2>&1 || true
}

python_env() {
  local stamp=.venv/.requirements.sha256 want
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  step "creating .venv and installing requirements.txt"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  # deployctl as a command (also `python -m deployctl`), from this checkout.
  .venv/bin/python -m pip install -q --no-deps -e . 2>/dev/null
  echo "$want" > "$stamp"
}

passphrase() {
  [ -n "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] || return 0
  [ -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ] && return 0
  step "generating this machine's secrets passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE"
  mkdir -p "$(dirname "$PULUMI_CONFIG_PASSPHRASE_FILE")"
  (umask 077 && head -c 32 /dev/urandom | base64 > "$PULUMI_CONFIG_PASSPHRASE_FILE")
}

git_filter() {
  # Keeps machine-local encryptionsalt/secure values out of commits (see .gitattributes).
  git rev-parse --git-dir >/dev/null 2>&1 || return 0
  git config filter.pulumi-stack-local.clean "python3 scripts/stack_config_filter.py"
  git config filter.pulumi-stack-local.smudge cat
}

backend_and_stacks() {
  step "logging in to $PULUMI_BACKEND_URL and creating the stacks"
  case "$PULUMI_BACKEND_URL" in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
  pulumi login "$PULUMI_BACKEND_URL" >/dev/null
  for stack in dev staging prod; do
    # A stack file with a salt but no such stack in this backend was made with another machine's
    # passphrase: pulumi would only say "incorrect passphrase". Say what it is and how to fix it.
    if grep -q '^encryptionsalt:' "Pulumi.$stack.yaml" 2>/dev/null && ! pulumi stack select "$stack" >/dev/null 2>&1; then
      echo "scripts/setup.sh: Pulumi.$stack.yaml carries the encryptionsalt (and secure: values) of a stack this" >&2
      echo "  backend ($PULUMI_BACKEND_URL) does not have: they were made with another machine's passphrase and" >&2
      echo "  cannot be read here. Drop them (git never holds them), then run setup again:" >&2
      echo "  python3 scripts/stack_config_filter.py < Pulumi.$stack.yaml > Pulumi.$stack.yaml.clean && mv Pulumi.$stack.yaml.clean Pulumi.$stack.yaml" >&2
      exit 1
    fi
    pulumi stack select --create "$stack" >/dev/null
  done
  pulumi stack select dev
}

dev_secrets() {
  # dev only: random values, encrypted with this machine's passphrase. Other stacks get
  # theirs from an operator: pulumi config set --secret platform:<key> -s <stack>.
  local key
  for key in $(python -m components.config.secret_keys Pulumi.dev.yaml); do
    if ! pulumi config get "platform:$key" -s dev >/dev/null 2>&1; then
      head -c 24 /dev/urandom | base64 | tr -d '\n' | pulumi config set --secret "platform:$key" -s dev >/dev/null
      echo "set a random dev secret platform:$key"
    fi
  done
}

main() {
  system_packages
  python_env
  step "building the offline Pulumi toolchain (cached in $DEPLOY_CACHE)"
  bash devenv/toolchain/build.sh
  step "building and starting the local Kubernetes cluster (cached in $DEPLOY_CACHE/cluster)"
  [ "$(id -u)" -eq 0 ] || { echo "scripts/setup.sh: the local cluster needs root (network, containerd, kubelet); run it with sudo" >&2; exit 1; }
  bash devenv/cluster/build.sh
  bash devenv/images/build.sh
  bash devenv/cluster/cluster.sh start
  step "starting the Docker engine for the Docker target (devenv/docker/README.md)"
  bash devenv/docker/engine.sh install
  bash devenv/docker/engine.sh start
  step "starting the local ACME server (Pebble: devenv/acme/pebble.sh; docs/tls.md)"
  bash devenv/acme/pebble.sh start
  passphrase
  git_filter
  backend_and_stacks
  dev_secrets
  pulumi version
  pulumi plugin ls
  echo "setup took $((SECONDS - started))s"

  if [ "$RUN_UP" = 1 ]; then
    step "pulumi up -s dev"
    adopt_orphaned_dev_namespace
    # --refresh: the cluster can lose what the state records (cluster.sh reset wipes etcd, a
    # namespace deleted by hand); without it such a dev stays "unchanged" and answers nothing.
    pulumi up -s dev --yes --skip-preview --refresh
    wait_until_dev_answers
    issue_dev_certificates_over_acme
    step "dev is up; its endpoints (the edge's certificate is from this machine's Pebble: trust Pebble's root, or curl -k)"
    pulumi stack output -s dev endpoints --json
    echo "try: curl --cacert <(curl -sk https://127.0.0.1:15000/roots/0) https://shop.dev.localhost:30443/api/healthz"
  fi
}

# "dev is up" only once the API answers through the edge: on a first create kube-proxy can take
# ~10 s after the Deployments are ready to route the new Services, and the edge answers 502.
wait_until_dev_answers() {
  local url i since=$SECONDS
  url="$(pulumi stack output -s dev endpoints --json | python -c 'import json, sys; print(json.load(sys.stdin)["edge"][0])')api/healthz"
  for i in $(seq 90); do
    curl -fsk --max-time 5 "$url" >/dev/null 2>&1 && { echo "setup: $url answers (after $((SECONDS - since))s)"; return 0; }
    sleep 1
  done
  echo "setup: $url did not answer within 90s:" >&2
  curl -sk --max-time 5 "$url" >&2 || true
  return 1
}

# dev's edge certificates come over ACME from this machine's Pebble (Pulumi.dev.yaml edge.tls,
# docs/tls.md): `pulumi up` ends with the edge on cert-manager's temporary certificates, and Pebble
# validates HTTP-01 on port 80 of the address its DNS gives a host. Each of dev's hosts is pointed
# at the edge Service there (what external DNS does for a real cluster); cert-manager's next
# self-check passes and the order completes. dev is up once every Certificate is Ready and the
# edge serves Pebble's. Nothing to do when dev's stack file says another mode or directory.
issue_dev_certificates_over_acme() {
  local plan namespace port hosts host ip since=$SECONDS i
  # dev's namespace, HTTPS port and hosts as the program reads them, when it orders from Pebble.
  plan="$(ACME_DIRECTORY="$(bash devenv/acme/pebble.sh env | sed -n 's/^ACME_DIRECTORY=//p')" python - <<'PY'
import os, yaml
from components.config.edge import EdgeSpec
from components.config.targets import KubernetesTarget
config = yaml.safe_load(open("Pulumi.dev.yaml"))["config"]
edge = EdgeSpec.model_validate(config["platform:edge"])
if edge.tls.mode == "acme" and edge.tls.acme_server == os.environ["ACME_DIRECTORY"]:
    print(KubernetesTarget.model_validate(config.get("platform:kubernetes") or {}).namespace, edge.https_port, *edge.hosts)
PY
)"
  [ -n "$plan" ] || return 0
  read -r namespace port hosts <<<"$plan"
  local kubectl=("$DEPLOY_CACHE/cluster/bin/kubectl" --kubeconfig "$DEPLOY_CACHE/cluster/kubeconfig" --namespace "$namespace")
  ip="$("${kubectl[@]}" get service edge -o 'jsonpath={.spec.clusterIP}')"
  for host in $hosts; do bash devenv/acme/pebble.sh dns-add "$host" "$ip"; done
  if ! "${kubectl[@]}" wait --for=condition=Ready certificate --all --timeout=300s; then
    echo "setup: dev's edge certificates were not issued over ACME within 300s:" >&2
    "${kubectl[@]}" get certificate,certificaterequest,order,challenge -o wide >&2 || true
    "${kubectl[@]}" describe challenges >&2 || true
    return 1
  fi
  # The edge reads the issued Secret from a projected volume the kubelet refreshes (up to a minute).
  for host in $hosts; do
    for i in $(seq 120); do
      served_issuer "$host" "$port" | grep -q "Pebble Intermediate" && break
      [ "$i" = 120 ] && { echo "setup: the edge still serves $(served_issuer "$host" "$port") for $host, not Pebble's certificate" >&2; return 1; }
      sleep 2
    done
  done
  echo "setup: dev's certificates issued over ACME by Pebble and served by the edge (after $((SECONDS - since))s): $hosts"
}

served_issuer() { # HOST PORT: the issuer of the certificate the edge serves for HOST
  openssl s_client -connect "127.0.0.1:$2" -servername "$1" </dev/null 2>/dev/null | openssl x509 -noout -issuer 2>/dev/null
}

# The local cluster outlives a checkout (it is cached in $DEPLOY_CACHE), the state does not
# (.state is per checkout): a fresh clone on a machine that ran dev from another clone finds
# shop-dev already there, owned by another state's field managers, and its first up fails on
# server-side-apply conflicts. The embedded dev namespace on our own local cluster is
# disposable: when this checkout's state does not hold it, it is deleted first, saying so.
adopt_orphaned_dev_namespace() {
  local namespace
  # The namespace as the program reads it: the stack file's value, else the model's default.
  namespace="$(python -c 'import yaml; from components.config.targets import KubernetesTarget
print(KubernetesTarget.model_validate(yaml.safe_load(open("Pulumi.dev.yaml"))["config"].get("platform:kubernetes") or {}).namespace)')"
  local kubectl=("$DEPLOY_CACHE/cluster/bin/kubectl" --kubeconfig "$DEPLOY_CACHE/cluster/kubeconfig")
  "${kubectl[@]}" get namespace "$namespace" >/dev/null 2>&1 || return 0
  # Read the whole state first: `export | grep -q` under pipefail fails when grep stops early
  # (SIGPIPE to pulumi), which once deleted a namespace this checkout's state did hold.
  local state
  state="$(pulumi stack export -s dev 2>/dev/null || true)"
  [[ "$state" == *'"type": "kubernetes:core/v1:Namespace"'* ]] && return 0
  echo "setup: namespace $namespace on the local cluster is not in this checkout's dev state (another checkout deployed it); deleting it so dev can be created here"
  "${kubectl[@]}" delete namespace "$namespace" --wait=true --timeout=180s
  # Its ACME ClusterIssuer is cluster-scoped: the namespace does not take it along.
  "${kubectl[@]}" delete clusterissuer "$namespace-acme" --ignore-not-found
}

# bash reads a script as it runs it: the whole run is this one line, parsed before it starts,
# so editing the file while it runs cannot change what runs.
main "$@"; exit $?
