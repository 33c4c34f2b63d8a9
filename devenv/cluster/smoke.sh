#!/usr/bin/env bash
# End-to-end check of a running cluster (devenv/cluster/cluster.sh start, devenv/images/build.sh):
# real pods from the local registry, Services through kube-proxy from the host, cluster DNS,
# probes (a broken version must not become Ready), kubectl exec/logs, PostgreSQL on a
# dynamically provisioned volume. Works in namespace dp-smoke, deleted at the end
# (KEEP=1 keeps it). Prints one line per check and "N passed, N failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
K=("$CLUSTER_BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE")
NS=dp-smoke
pass=0 fail=0
check() { # description command...
  local what=$1; shift
  if out=$("$@" 2>&1); then pass=$((pass + 1)); echo "ok   $what"
  else fail=$((fail + 1)); echo "FAIL $what"; printf '%s\n' "$out" | tail -5 | sed 's/^/       /'; fi
}
svc_ip() { "${K[@]}" -n $NS get svc "$1" -o jsonpath='{.spec.clusterIP}'; }

"${K[@]}" delete namespace $NS --ignore-not-found --wait=true >/dev/null 2>&1
"${K[@]}" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: $NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: $REGISTRY/shop/web:1.5.0
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 5}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Secret
metadata: {name: pg, namespace: $NS}
stringData: {password: smoke-only}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: postgres, namespace: $NS}
spec:
  serviceName: postgres
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers:
      - name: postgres
        image: $REGISTRY/shop/postgres:15.18.0
        env:
        - {name: POSTGRES_DB, value: shop}
        - {name: POSTGRES_USER, value: shop}
        - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
        - {name: POSTGRES_PASSWORD, valueFrom: {secretKeyRef: {name: pg, key: password}}}
        ports: [{containerPort: 5432}]
        readinessProbe: {exec: {command: [pg_isready, -h, 127.0.0.1, -U, shop]}, periodSeconds: 3}
        volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: postgres, namespace: $NS}
spec:
  selector: {app: postgres}
  ports: [{port: 5432}]
EOF

check "node Ready" sh -c "'$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' get node -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
check "CoreDNS ready" "${K[@]}" -n kube-system rollout status deploy/coredns --timeout=120s
check "web 1.5.0 rolled out (2 pods Ready)" "${K[@]}" -n $NS rollout status deploy/web --timeout=120s
web=$(svc_ip web)
check "host -> Service web /healthz has the version" sh -c "curl -fsS -m 5 http://$web/healthz | grep -qx 'ok web 1.5.0'"
check "X-App-Version header" sh -c "curl -fsS -m 5 -D - -o /dev/null http://$web/healthz | grep -qi '^X-App-Version: 1.5.0'"
# kube-proxy may lag the second endpoint by a sync period: retry for up to 20 s
check "both pods answer through the Service" sh -c "for t in \$(seq 10); do n=\$(for i in \$(seq 20); do curl -fsS -m 5 http://$web/; done | sort -u | wc -l); [ \$n = 2 ] && exit 0; sleep 2; done; echo \"distinct answers: \$n\"; exit 1"
check "pod -> DNS name of the Service" "${K[@]}" -n $NS exec deploy/web -- sh -c "nslookup web.$NS.svc.cluster.local >/dev/null && wget -qO- http://web.$NS/version | grep -qx 1.5.0"
check "kubectl logs" sh -c "'$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n $NS logs deploy/web | grep -q 'listening on'"
"${K[@]}" -n $NS set image deploy/web web=$REGISTRY/shop/web:1.7.0-broken >/dev/null
check "1.7.0-broken never becomes Ready (rollout stalls)" sh -c "! '$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n $NS rollout status deploy/web --timeout=25s"
check "old pods keep serving 1.5.0 during the stalled rollout" sh -c "curl -fsS -m 5 http://$web/healthz | grep -qx 'ok web 1.5.0'"
check "rollback to 1.5.0" sh -c "'$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n $NS rollout undo deploy/web >/dev/null && '$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n $NS rollout status deploy/web --timeout=90s"
check "postgres Ready on a provisioned volume" "${K[@]}" -n $NS rollout status sts/postgres --timeout=180s
pg=$(svc_ip postgres)
check "host -> Service postgres: write and read" sh -c "PGPASSWORD=smoke-only psql -h $pg -U shop -d shop -tAc 'create table if not exists t(x int); insert into t values (42); select sum(x) from t' | grep -qx 42"
"${K[@]}" -n $NS delete pod postgres-0 --wait=true >/dev/null 2>&1
check "data survives the pod's replacement" sh -c "'$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n $NS rollout status sts/postgres --timeout=120s >/dev/null && '$CLUSTER_BIN/kubectl' --kubeconfig '$KUBECONFIG_FILE' -n $NS exec postgres-0 -- psql -h /var/run/postgresql -U shop -d shop -tAc 'select sum(x) from t' | grep -qx 42"

[ "${KEEP:-0}" = 1 ] || "${K[@]}" delete namespace $NS --wait=false >/dev/null 2>&1
echo "smoke: $pass passed, $fail failed"
[ "$fail" = 0 ]
