#!/usr/bin/env bash
# Starts the test bed: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with
# KWOK_NODES fake nodes, all on loopback, all state under $FASTROLLOUT_STATE (default /tmp/fastrollout-testbed).
#
#   tests/cluster/up.sh                       # then: export KUBECONFIG=/tmp/fastrollout-testbed/kubeconfig
#   KCM_QPS=200 KCM_BURST=300 KWOK_NODES=8 tests/cluster/up.sh
#   tests/cluster/up.sh --real-node           # also a real kubelet + containerd node (tests/cluster/realnode.sh)
#
# Idempotent: a component already running with the same command line is left alone (so a second run
# on a healthy bed takes about a second); one whose settings changed (e.g. KCM_QPS) is restarted alone;
# a dead one is started again on the same etcd data. Stop everything with tests/cluster/down.sh.
#
# Environment:
#   FASTROLLOUT_STATE        state dir (pids/, logs/, pki/, etcd data, kubeconfigs)
#   FASTROLLOUT_PORT_OFFSET  added to every port (multiples of 100), for a second bed beside the first
#   FASTROLLOUT_ADVERTISE_ADDRESS  apiserver advertise address (default 127.0.0.1; 10.244.0.1 with a real node)
#   FASTROLLOUT_REAL_NODE=1  same as --real-node
#   KCM_QPS / KCM_BURST      kube-controller-manager client QPS/burst (stock 20/30)
#   SCHED_QPS / SCHED_BURST  kube-scheduler client QPS/burst (stock 50/100)
#   KWOK_NODES               number of fake nodes (default 4; at most 100)
#   KWOK_PARALLELISM         kwok workers applying pod stages (default 16)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
. "$here/lib.sh"

REAL_NODE=${FASTROLLOUT_REAL_NODE:-0}
for arg in "$@"; do
  case "$arg" in
    --real-node) REAL_NODE=1 ;;
    *) die "unknown argument: $arg (usage: up.sh [--real-node])" ;;
  esac
done
# A bed that already has a real node keeps it: rerunning up.sh without the flag must not restart the
# apiserver with another advertise address under the node's pods.
[ -d "$STATE/realnode" ] && REAL_NODE=1
# Pods on the real node reach the API through the `kubernetes` Service, whose endpoint is the advertise
# address: the real node's bridge IP, where realnode.sh relays to the apiserver on loopback.
default_advertise=127.0.0.1
[ "$REAL_NODE" = 1 ] && default_advertise=10.244.0.1

KCM_QPS=${KCM_QPS:-20}
KCM_BURST=${KCM_BURST:-30}
SCHED_QPS=${SCHED_QPS:-50}
SCHED_BURST=${SCHED_BURST:-100}
KWOK_NODES=${KWOK_NODES:-4}
ADVERTISE=${FASTROLLOUT_ADVERTISE_ADDRESS:-$default_advertise}
SERVICE_CIDR=10.96.0.0/16
# kwok node i has InternalIP 10.127.0.(i+1) and gets pod IPs from its spec.podCIDR, 10.(128+i).0.0/16. Nothing routes these
# (kwok pods are not real), they only have to be unique and clear of the service range and of the real
# node's bridge (10.244.0.0/24).
{ [ "$KWOK_NODES" -ge 0 ] && [ "$KWOK_NODES" -le 100 ]; } || die "KWOK_NODES must be 0..100 (got $KWOK_NODES)"

t_start=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - t_start) / 1000000)); printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100)); }

# --- concurrency guard -------------------------------------------------------------------------------
# pytest-xdist workers or a CI step and a developer may call up.sh at once; they must not race to start
# two apiservers on one etcd. The lock sits next to (not inside) the state dir so down.sh can delete the
# state dir while holding it.
mkdir -p "$(dirname "$STATE")"
exec 9>"$STATE.lock"
flock -w 600 9 || die "another up.sh/down.sh holds $STATE.lock for 10 minutes"

# --- dependencies ------------------------------------------------------------------------------------
ensure_apt_deps() {
  # etcd-server: Debian's etcd 3.4 works with apiserver 1.36. The runtime packages (containerd, runc,
  # CNI plugins, iptables, conntrack) are for the real node; installed here so one command prepares a
  # fresh CI machine. Only calls apt when something is missing (dpkg-query is ~10 ms).
  local pkgs=(etcd-server openssl curl containerd runc containernetworking-plugins iptables conntrack)
  local missing=() p
  for p in "${pkgs[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get; install them by hand"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing ${missing[*]} (apt, first time only)"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >"$STATE.apt.log" 2>&1 || {
    "${sudo[@]}" apt-get update >>"$STATE.apt.log" 2>&1
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>"$STATE.apt.log" 2>&1 \
      || { tail -20 "$STATE.apt.log" >&2; die "apt-get install failed"; }
  }
  rm -f "$STATE.apt.log"
  # Debian starts containerd (and sometimes etcd) as a service on install: the bed runs its own etcd
  # on its own ports, so the packaged service only has to not hold them. Nothing to stop here by name.
}
ensure_apt_deps
command -v go >/dev/null || die "Go (1.26) is needed to build the binaries once: https://go.dev/dl/"
"$here/build.sh"
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b missing after build.sh"
done

mkdir -p "$PIDS" "$LOGS" "$PKI" "$STATE/etcd" "$STATE/certs" "$KUBECACHEDIR"
echo "$PORT_OFFSET" >"$STATE/port-offset"
chmod 700 "$STATE"

# --- PKI (openssl; ECDSA P-256 because key generation is instant, unlike RSA) ------------------------
gen_key() { [ -f "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

gen_cert() {  # name subject ext(client|server) [SANs]
  local name=$1 subj=$2 kind=$3 sans=${4:-}
  [ -f "$PKI/$name.crt" ] && return 0
  gen_key "$PKI/$name.key"
  local ext="$PKI/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ "$kind" = server ]; then echo "extendedKeyUsage=serverAuth"; else echo "extendedKeyUsage=clientAuth"; fi
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" 2>/dev/null \
    | openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$ext"
}

if [ ! -f "$PKI/ca.crt" ]; then
  log "generating CA, certificates and service-account keys in $PKI"
  gen_key "$PKI/ca.key"
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=fastrollout-testbed-ca" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/ca.crt" 2>/dev/null
fi
# 10.96.0.1 is the `kubernetes` Service IP (first of the service range): in-cluster clients (the operator
# on the real node) dial it. 10.244.0.1 is the real node's bridge, where the apiserver is reachable from pods.
gen_cert apiserver "/CN=kube-apiserver" server \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:10.244.0.1"
# apiserver -> kubelet (logs/exec on the real node); system:masters keeps it simple in a test bed.
gen_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
gen_cert admin "/O=system:masters/CN=fastrollout-admin" client
# The control-plane identities that the default RBAC bootstrap policy already knows.
gen_cert controller-manager "/CN=system:kube-controller-manager" client
gen_cert scheduler "/CN=system:kube-scheduler" client
# kwok plays the kubelet of every fake node (status of nodes and pods, leases, pod deletion). The Node
# authorizer would limit a kubelet identity to one node, so kwok runs as cluster admin instead.
gen_cert kwok "/O=system:masters/CN=kwok" client
if [ ! -f "$PKI/sa.key" ]; then
  gen_key "$PKI/sa.key"
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi

write_kubeconfig() {  # file cert-name
  local file=$1 who=$2
  # Rewritten every run (cheap) because the server URL carries the port, which FASTROLLOUT_PORT_OFFSET moves.
  cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fastrollout-testbed
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $who
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$who.crt")
    client-key-data: $(base64 -w0 "$PKI/$who.key")
contexts:
- name: fastrollout-testbed
  context:
    cluster: fastrollout-testbed
    user: $who
    namespace: default
current-context: fastrollout-testbed
EOF
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}
write_kubeconfig "$KUBECONFIG_ADMIN" admin
write_kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager
write_kubeconfig "$STATE/scheduler.kubeconfig" scheduler
write_kubeconfig "$STATE/kwok.kubeconfig" kwok

# --- process management ------------------------------------------------------------------------------
start() {  # name cmd args...
  local name=$1
  shift
  local want
  want=$(printf '%s\n' "$@")
  if running "$name"; then
    if [ "$(cat "$PIDS/$name.args")" = "$want" ]; then
      return 0
    fi
    log "$name: settings changed, restarting it"
    stop_one "$name"
  fi
  log "starting $name (log: $LOGS/$name.log)"
  printf '%s\n' "$want" >"$PIDS/$name.args"
  # setsid: its own session, so it outlives this script, the pytest run and the terminal, and no ^C in
  # the caller's terminal reaches it. stdin from /dev/null and output to the log: a caller that waits
  # for our stdout to close (CI runners, subprocess.run) must not wait for the daemons.
  # A background child of a non-interactive shell is never a process-group leader, so setsid does not
  # fork again and $! is the daemon's own pid.
  # env (when START_ENV is set) and setsid both exec, so the pid and /proc/<pid>/cmdline are the daemon's.
  # 9>&-: the daemon must not inherit the lock fd, or it would hold $STATE.lock for its whole life and
  # every later up.sh/down.sh would wait for it.
  env ${START_ENV[@]+"${START_ENV[@]}"} setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name.pid"
  STARTED+=("$name")
}
STARTED=()
START_ENV=()  # extra environment for a component start (e.g. a client-go feature gate); none needed today

wait_until() {  # name timeout-seconds command...: polls; fails early if the component died
  local name=$1 timeout=$2
  shift 2
  local deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$PIDS/$name.pid" ] && ! running "$name"; then
      tail -30 "$LOGS/$name.log" >&2 || true
      die "$name exited; see $LOGS/$name.log"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -30 "$LOGS/$name.log" >&2 || true; die "$name not ready after ${timeout}s"; }
    sleep 0.2
  done
}

# --- etcd --------------------------------------------------------------------------------------------
# Plain HTTP on loopback only: nothing else on the machine shares it, and TLS would only add plumbing.
start etcd /usr/bin/etcd \
  --name=fastrollout-testbed \
  --data-dir="$STATE/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="fastrollout-testbed=http://127.0.0.1:$ETCD_PEER_PORT" \
  --quota-backend-bytes=$((8 * 1024 * 1024 * 1024)) \
  --auto-compaction-retention=5m \
  --snapshot-count=50000 \
  --log-level=warn
wait_until etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ----------------------------------------------------------------------------------
# --delete-collection-workers=10: a DeleteCollection of pods (how a cutover removes a whole old version
# in one call) is served by this many parallel workers; the default of 1 deletes one pod at a time and
# makes a 4,000-pod collection delete take seconds longer (see shared/notes/watch-scale.md).
# --feature-gates=WatchList=false: on etcd 3.4 (no RequestWatchProgress) the apiserver accepts a
# streaming-list watch (sendInitialEvents, what client-go >= 1.35 informers try first) and then ends it
# with an error; kwok's client-go then loops on it and only sees changes on periodic re-lists (pods got
# their status ~10 s late). With the gate off the request is refused up front and every client falls
# back to plain LIST + WATCH, which etcd 3.4 serves fine.
# --advertise-address: the `kubernetes` Service endpoint; there is no usable non-loopback address the
# apiserver listens on until a real node's bridge exists, so loopback by default. An Endpoints object
# may not hold a loopback IP, so then the endpoint reconciler is off (else it fails every 10 s): the
# Service has no endpoints, which nothing on kwok nodes needs.
reconciler=lease
case "$ADVERTISE" in 127.*) reconciler=none ;; esac
start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --advertise-address="$ADVERTISE" \
  --endpoint-reconciler-type="$reconciler" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC \
  --allow-privileged=true \
  --delete-collection-workers=10 \
  --feature-gates=WatchList=false \
  --cert-dir="$STATE/certs/apiserver" \
  --profiling=false \
  --v=1
wait_until kube-apiserver 60 kctl get --raw=/readyz
# A new apiserver (new flags, or a crash) means every client's watches broke at once: restart the
# clients too rather than trust each one's reconnect logic (kwok's caches went stale once, seen as
# lease update conflicts and pods without status). They start in about a second.
if [[ " ${STARTED[*]} " == *" kube-apiserver "* ]]; then
  for c in kwok kube-scheduler kube-controller-manager; do
    if running "$c"; then log "restarting $c after the apiserver restart"; stop_one "$c"; fi
  done
fi

# --- kube-controller-manager -------------------------------------------------------------------------
# --leader-elect=false: one instance; skipping the lease saves the ~2 s first acquisition and API calls.
# --use-service-account-credentials: each controller runs as its own ServiceAccount, as in a real
# cluster, so RBAC mistakes a controller would hit in production show up here too.
start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$STATE/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --cert-dir="$STATE/certs/controller-manager" \
  --leader-elect=false \
  --kube-api-qps="$KCM_QPS" \
  --kube-api-burst="$KCM_BURST" \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" \
  --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --profiling=false \
  --v=1

# --- kube-scheduler ----------------------------------------------------------------------------------
# QPS/burst only exist in the config file (the --kube-api-qps flags are deprecated and ignored when a
# config file is given).
cat >"$STATE/scheduler-config.yaml.tmp" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $STATE/scheduler.kubeconfig
  qps: $SCHED_QPS
  burst: $SCHED_BURST
leaderElection:
  leaderElect: false
EOF
# Compare before replacing, so the file's content (not only the command line) decides about a restart.
sched_cfg_changed=0
cmp -s "$STATE/scheduler-config.yaml.tmp" "$STATE/scheduler-config.yaml" 2>/dev/null || sched_cfg_changed=1
mv "$STATE/scheduler-config.yaml.tmp" "$STATE/scheduler-config.yaml"
if [ "$sched_cfg_changed" = 1 ] && running kube-scheduler; then
  log "kube-scheduler: QPS/burst changed, restarting it"
  stop_one kube-scheduler
fi
start kube-scheduler "$BIN_DIR/kube-scheduler" \
  --config="$STATE/scheduler-config.yaml" \
  --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
  --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHED_PORT" \
  --cert-dir="$STATE/certs/scheduler" \
  --profiling=false \
  --v=1

# --- kwok --------------------------------------------------------------------------------------------
# Manages only nodes annotated kwok.x-k8s.io/node=fake, so a real kubelet can join the same cluster.
# Its config (parallelism) and the stages (kwok-stages.yaml) go into one file in the state dir: a change
# to either is a settings change (restart), and a running kwok never reads a half-written file.
# podPlayStageParallelism: kwok applies stages with 4 workers by default, which caps a fleet at a few
# hundred pod updates per second and made 2,000 pods take ~50 s to become Ready.
{
  cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: ${KWOK_PARALLELISM:-16}
  nodePlayStageParallelism: 4
  # A KwokConfiguration from a file gets no defaults for these: 0 makes kwok refuse to start.
  nodeLeaseParallelism: 4
  podsOnNodeSyncParallelism: 1
EOF
  cat "$here/kwok-stages.yaml"
} >"$STATE/kwok.yaml.new"
if ! cmp -s "$STATE/kwok.yaml.new" "$STATE/kwok.yaml" 2>/dev/null; then
  mv "$STATE/kwok.yaml.new" "$STATE/kwok.yaml"
  if running kwok; then log "kwok: config or stages changed, restarting it"; stop_one kwok; fi
else
  rm -f "$STATE/kwok.yaml.new"
fi
# --node-lease-duration-seconds: kwok renews a Lease per node every ~10 s instead of rewriting node
# status, which is what a real kubelet does and far cheaper for the apiserver.
# --v=WARN: at INFO kwok logs every patch of every pod (two lines per pod start).
start kwok "$BIN_DIR/kwok" \
  --kubeconfig="$STATE/kwok.kubeconfig" \
  --config="$STATE/kwok.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 \
  --server-address="127.0.0.1:$KWOK_PORT" \
  --v=WARN

wait_until kube-controller-manager 60 curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
wait_until kube-scheduler 60 curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"
wait_until kwok 60 curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"

# --- fake nodes --------------------------------------------------------------------------------------
have_nodes=$(kctl get nodes -l type=kwok -o name 2>/dev/null | wc -l)
if [ "$have_nodes" -ne "$KWOK_NODES" ]; then
  log "creating $KWOK_NODES kwok nodes (had $have_nodes)"
  {
    for ((i = 0; i < KWOK_NODES; i++)); do
      cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
spec:
  podCIDR: 10.$((128 + i)).0.0/16
  podCIDRs: [10.$((128 + i)).0.0/16]
status:
  addresses:
  - {type: InternalIP, address: 10.127.0.$((1 + i))}
  - {type: Hostname, address: kwok-node-$i}
  allocatable: {cpu: "1000", memory: 4Ti, pods: "5000", ephemeral-storage: 10Ti}
  capacity: {cpu: "1000", memory: 4Ti, pods: "5000", ephemeral-storage: 10Ti}
EOF
    done
  } | kctl apply -f - >/dev/null
  # Shrinking KWOK_NODES: remove the surplus nodes (pods on them are garbage-collected by the pod GC).
  for n in $(kctl get nodes -l type=kwok -o jsonpath='{.items[*].metadata.name}'); do
    idx=${n#kwok-node-}
    if ! [[ $idx =~ ^[0-9]+$ ]] || [ "$idx" -ge "$KWOK_NODES" ]; then kctl delete node "$n" --wait=false >/dev/null; fi
  done
fi

# Nodes created by an older up.sh (or by hand) may lack an InternalIP; pods on them would get an empty
# hostIP, which the apiserver rejects, and never start. Status is not part of `apply`, so patch it.
for n in $(kctl get nodes -l type=kwok -o jsonpath='{range .items[?(@.metadata.name)]}{.metadata.name}={.status.addresses[?(@.type=="InternalIP")].address}{" "}{end}'); do
  name=${n%%=*} ip=${n#*=} idx=${name#kwok-node-}
  { [ -z "$ip" ] && [[ $idx =~ ^[0-9]+$ ]]; } || continue
  log "setting InternalIP of $name"
  kctl patch node "$name" --subresource=status --type=merge \
    -p "{\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"10.127.0.$((1 + idx))\"},{\"type\":\"Hostname\",\"address\":\"$name\"}]}}" >/dev/null
done

# --- readiness ---------------------------------------------------------------------------------------
wait_until kube-apiserver 60 kctl get --raw=/readyz
# The ServiceAccount controller creates `default` in each namespace; pods cannot be created before it.
wait_until kube-controller-manager 60 kctl get serviceaccount default -n default
if [ "$KWOK_NODES" -gt 0 ]; then
  wait_until kwok 60 kctl wait --for=condition=Ready node -l type=kwok --timeout=5s
fi

if [ "$REAL_NODE" = 1 ]; then
  "$here/realnode.sh" up
fi

if [ ${#STARTED[@]} -eq 0 ]; then
  log "already up ($(elapsed)); apiserver https://127.0.0.1:$API_PORT"
else
  log "up in $(elapsed): started ${STARTED[*]}; apiserver https://127.0.0.1:$API_PORT, etcd 127.0.0.1:$ETCD_PORT, $KWOK_NODES kwok nodes"
  log "stop with: $here/down.sh"
fi
echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
