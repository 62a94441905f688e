#!/usr/bin/env bash
# Smoke test of the real node (tests/cluster/realnode.sh up first): real worker pods become Ready, a
# ClusterIP Service answers from the host through kube-proxy, and a graceful delete runs the preStop
# hook, then SIGTERM. Prints the timings it measures. Leaves nothing behind (its own namespace).
#
#   tests/cluster/realnode/smoke.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/versions.sh
. "$here/../versions.sh"
# shellcheck source=tests/cluster/images/names.sh
. "$here/../images/names.sh"
STATE=${FASTROLLOUT_STATE:-/tmp/fastrollout-testbed}
NS=realnode-smoke
PRESTOP_SECONDS=2
kc() { "$BIN_DIR/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
k() { kc -n "$NS" "$@"; }
ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
say() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { say "FAIL: $*"; exit 1; }
trap 'kc delete namespace "$NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true' EXIT

[ "$(kc get node "${REALNODE_NAME:-fastrollout-real}" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ] \
  || fail "real node not Ready: run tests/cluster/realnode.sh up"
kc delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
kc create namespace "$NS" >/dev/null
# Pods are refused until the ServiceAccount controller made `default` (a few ms).
for _ in $(seq 1 100); do k get serviceaccount default >/dev/null 2>&1 && break; sleep 0.1; done
pod_spec() {  # version
  cat <<EOF
      nodeSelector: {fastrollout.test/node: real}
      tolerations: [{key: fastrollout.test/real, operator: Exists, effect: NoSchedule}]
      automountServiceAccountToken: false
      dnsPolicy: Default
      terminationGracePeriodSeconds: 20
      containers:
      - name: worker
        image: $WORKER_IMAGE
        imagePullPolicy: Never
        env:
        - {name: WORKER_VERSION, value: "$1"}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /readyz, port: 9090}, periodSeconds: 1}
        lifecycle:
          preStop:
            exec:
              command: [python3, -c, "import time; open('/proc/1/fd/1', 'w').write('preStop: sleeping $PRESTOP_SECONDS s\\\\n'); time.sleep($PRESTOP_SECONDS)"]
EOF
}

# 1. A Deployment of 3 workers and a Service in front.
t0=$(ms)
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: worker}
spec:
  selector: {app: worker}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  replicas: 3
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
$(pod_spec v1)
EOF
k rollout status deployment/worker --timeout=90s >/dev/null || fail "3 workers not Ready in 90 s"
say "3 worker pods Ready $(($(ms) - t0)) ms after apply"

# 2. From the host, through the ClusterIP (kube-proxy's iptables DNAT). Pods Ready -> EndpointSlice ->
# kube-proxy rules takes a moment (kube-proxy batches syncs, minSyncPeriod 1s): wait until all 3 pods
# have answered, then every request must succeed.
ip=$(k get service worker -o jsonpath='{.spec.clusterIP}')
t0=$(ms)
seen=""
until [ "$(wc -w <<<"$seen")" -ge 3 ]; do
  [ $(($(ms) - t0)) -lt 20000 ] || fail "ClusterIP $ip: only pods [$seen] answered within 20 s"
  p=$(curl -fsS -m 2 "http://$ip/" 2>/dev/null | grep -o '"pod": *"[^"]*"' | cut -d'"' -f4 || true)
  [ -n "$p" ] && [[ " $seen " != *" $p "* ]] && seen="$seen $p"
  sleep 0.05
done
say "ClusterIP $ip: all 3 pods answered $(($(ms) - t0)) ms after they were Ready (EndpointSlice -> kube-proxy)"
out=$(for _ in $(seq 1 60); do curl -fsS -m 2 "http://$ip/" || echo FAILED; echo; done)
n_ok=$(grep -c '"version": *"v1"' <<<"$out" || true)
pods=$(grep -o '"pod": *"[^"]*"' <<<"$out" | sort | uniq -c)
[ "$n_ok" = 60 ] || fail "$((60 - n_ok)) of 60 requests failed: $out"
say "60/60 requests to the ClusterIP answered by version v1:"
echo "$pods"

# 3. Graceful delete: preStop first, then SIGTERM, then the worker drains and exits.
pod=$(k get pods -l app=worker -o jsonpath='{.items[0].metadata.name}')
uid=$(k get pod "$pod" -o jsonpath='{.metadata.uid}')
logf="$STATE/realnode/pod-logs/${NS}_${pod}_${uid}/worker/0.log"
[ -f "$logf" ] || fail "no container log at $logf"
# kubelet removes the log with the pod: follow it while it exists.
tail -n 0 -F "$logf" >"$STATE/realnode/smoke-$pod.log" 2>/dev/null &
tailpid=$!
sleep 0.3
t0=$(ms)
k delete pod "$pod" --grace-period=20 --wait=true >/dev/null
t_del=$(($(ms) - t0))
sleep 0.3
kill "$tailpid" 2>/dev/null || true
wait "$tailpid" 2>/dev/null || true
say "graceful delete of $pod took $t_del ms; container log during it:"
sed 's/^/    /' "$STATE/realnode/smoke-$pod.log"
grep -n 'preStop' "$STATE/realnode/smoke-$pod.log" >/dev/null || fail "preStop hook did not run"
l_pre=$(grep -n 'preStop' "$STATE/realnode/smoke-$pod.log" | head -1 | cut -d: -f1)
l_term=$(grep -n 'SIGTERM' "$STATE/realnode/smoke-$pod.log" | head -1 | cut -d: -f1 || true)
[ -n "$l_term" ] || fail "the worker did not log SIGTERM"
[ "$l_pre" -lt "$l_term" ] || fail "SIGTERM came before the preStop hook"
[ "$t_del" -ge $((PRESTOP_SECONDS * 1000)) ] || fail "delete returned before the preStop sleep could end"
rm -f "$STATE/realnode/smoke-$pod.log"
say "preStop ran, then SIGTERM; the delete waited for the hook (${PRESTOP_SECONDS}s) and the drain"

# 4. One bare pod, create -> Ready, a few times.
for i in 1 2 3; do
  t0=$(ms)
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: single-$i, labels: {app: single}}
spec:
$(pod_spec v1 | sed 's/^    //')
EOF
  k wait --for=condition=Ready "pod/single-$i" --timeout=60s >/dev/null || fail "single-$i not Ready"
  say "pod single-$i: create -> Ready $(($(ms) - t0)) ms"
done
say "PASS"
