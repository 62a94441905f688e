#!/usr/bin/env bash
# A real node for the test bed: containerd + runc + CNI bridge + kubelet + kube-proxy (iptables), joined
# to the control plane that tests/cluster/up.sh runs, running images built by tests/cluster/images.sh.
#
#   tests/cluster/realnode.sh up       # idempotent; ~seconds when binaries and images are cached
#   tests/cluster/realnode.sh down     # removes every process, mount, iptables rule, link and dir it made
#   tests/cluster/realnode.sh status
#   tests/cluster/realnode.sh check-clean   # exit 1 if anything of a real node is left on the host
#
# Env: FASTROLLOUT_STATE (test bed state dir, default /tmp/fastrollout-testbed; its kubeconfig and CA are
# used to join), REALNODE_NAME (default fastrollout-real), REALNODE_TMPFS=0 (containerd's root on disk
# instead of a tmpfs; REALNODE_TMPFS_SIZE caps the tmpfs, default 6g).
#
# The node carries label fastrollout.test/node=real and taint fastrollout.test/real=true:NoSchedule, so
# only pods that ask for it (toleration + nodeSelector) land here; kwok's fake nodes keep the rest.
#
# Layout: everything lives in $FASTROLLOUT_STATE/realnode. containerd, its shims, the containers and
# kubelet run in a private mount namespace (propagation: slave), so their overlay, netns and volume
# mounts never appear on the host and all vanish when the last of those processes exits. The namespace
# also tells `down` exactly which processes are ours: every process in it, and nothing else.
# One real node per machine: it owns the bridge cni0 and the range 10.244.0.0/24.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/versions.sh
. "$here/versions.sh"
# shellcheck source=tests/cluster/images/names.sh
. "$here/images/names.sh"

STATE=${FASTROLLOUT_STATE:-/tmp/fastrollout-testbed}
NODE=${REALNODE_NAME:-fastrollout-real}
RN="$STATE/realnode"
PIDS="$RN/pids"
LOGS="$RN/logs"
PKI="$RN/pki"
SOCK="$RN/containerd.sock"
ADMIN_KUBECONFIG="$STATE/kubeconfig"
BRIDGE=cni0
NODE_IP=10.244.0.1          # the bridge's address: node IP, pods' gateway, kubelet's listen address
POD_SUBNET=10.244.0.0/24    # this node's pods (host-local IPAM)
CLUSTER_CIDR=10.244.0.0/16  # kube-proxy's notion of "from a pod"
GUARD=FASTROLLOUT-GUARD     # our iptables chain (not KUBE-/CNI-, so sweeps of those never touch it)
# Sysctls we, kubelet (kernel tunables) or kube-proxy may change; recorded at up, restored at down.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

log() { printf '[realnode %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%01ds' $((d / 1000)) $((d % 1000 / 100)); }
kctl() { "$BIN_DIR/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=5s "$@"; }

# --- processes -------------------------------------------------------------------------------------
# A pid counts as ours only if it is alive and its command line is exactly the one we started.
cmdline_of() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null; }
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
running() {  # name
  local pid
  [ -f "$PIDS/$1.pid" ] && [ -f "$PIDS/$1.args" ] || return 1
  pid=$(cat "$PIDS/$1.pid")
  [ -n "$pid" ] && alive "$pid" && [ "$(cmdline_of "$pid")" = "$(cat "$PIDS/$1.args")" ]
}
# Detached (own session, so it outlives this script and its terminal). setsid, unshare and nsenter
# all exec without forking here, so $! is the pid of the final program and its command line is cmd...
# where: host (our namespaces), ns (the node's mount namespace), newns (create that namespace).
start_proc() {  # name where cmd...
  local name=$1 where=$2 pre=()
  shift 2
  printf '%s\n' "$@" >"$PIDS/$name.args"
  case $where in
    ns) pre=(nsenter --mount="/proc/$(cat "$PIDS/anchor.pid")/ns/mnt" --) ;;
    newns) pre=(unshare --mount --propagation slave --) ;;
  esac
  # 8>&- 9>&-: daemons must not inherit the callers' flock fds (ours, up.sh's), or they hold the locks forever.
  setsid ${pre[@]+"${pre[@]}"} "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$PIDS/$name.pid"
}
stop_proc() {  # name [timeout_s]: TERM, then KILL; only a verified pid of ours
  local name=$1 timeout=${2:-10} pid i
  if running "$name"; then
    pid=$(cat "$PIDS/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "$name (pid $pid) ignored TERM for ${timeout}s; KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.args"
}
# Every process in our mount namespace (shims, containers, kubelet, containerd): found by namespace
# identity recorded at up, which no unrelated process can share.
ns_pids() {
  local ns p
  [ -f "$RN/mntns" ] || return 0
  ns=$(cat "$RN/mntns")
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
  done
  return 0
}
# Processes in kubelet's pod cgroups (cgroup v1: any one hierarchy lists them all).
kubepods_pids() {
  local d=/sys/fs/cgroup/pids/kubepods
  [ -d "$d" ] || return 0
  find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null || true
}
wait_for() {  # timeout_s description command...
  local timeout=$1 what=$2 i
  shift 2
  for ((i = 0; i < timeout * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what not ready after ${timeout}s (logs: $LOGS; \`$0 down\` cleans up)"
}

# --- prerequisites ---------------------------------------------------------------------------------
ensure_tools() {
  local pkgs=() t
  declare -A pkg_of=([containerd]=containerd [runc]=runc [iptables]=iptables [conntrack]=conntrack
    [openssl]=openssl [nsenter]=util-linux [ip]=iproute2 [socat]=socat)
  for t in "${!pkg_of[@]}"; do command -v "$t" >/dev/null || pkgs+=("${pkg_of[$t]}"); done
  [ -x /usr/lib/cni/bridge ] || pkgs+=(containernetworking-plugins)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
  if [ ! -x "$BIN_DIR/kubelet" ] || [ ! -x "$BIN_DIR/kube-proxy" ] || [ ! -x "$BIN_DIR/kubectl" ]; then
    "$here/build.sh"
  fi
}

# The test bed's CA, whichever of the usual names up.sh gave it.
find_ca() {
  local c
  for c in ca ca/ca cluster-ca; do
    if [ -f "$STATE/pki/$c.crt" ] && [ -f "$STATE/pki/$c.key" ]; then
      CA_CRT="$STATE/pki/$c.crt" CA_KEY="$STATE/pki/$c.key"
      return 0
    fi
  done
  die "no CA (crt+key) under $STATE/pki: start the control plane first (tests/cluster/up.sh)"
}

# The Service range, as the apiserver was started with (pods get a route to it, nothing else).
service_cidr() {
  local a
  a=$(grep -h -- '--service-cluster-ip-range' "$STATE/pids/kube-apiserver.args" 2>/dev/null | head -1 || true)
  a=${a#*=}
  echo "${a:-10.96.0.0/12}" | cut -d, -f1
}

# --- certificates ----------------------------------------------------------------------------------
issue_cert() {  # name subject ext
  [ -f "$PKI/$1.crt" ] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key" 2>/dev/null
  openssl req -new -key "$PKI/$1.key" -subj "$2" -out "$PKI/$1.csr" 2>/dev/null
  printf '%b\n' "$3" >"$PKI/$1.ext"
  openssl x509 -req -in "$PKI/$1.csr" -CA "$CA_CRT" -CAkey "$CA_KEY" -set_serial "0x$(openssl rand -hex 16)" \
    -days 30 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null
  rm -f "$PKI/$1.csr" "$PKI/$1.ext"
}
write_kubeconfig() {  # out user cert-name
  local server
  server=$(kctl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "$server", certificate-authority: "$CA_CRT"}
users:
- name: $2
  user: {client-certificate: "$PKI/$3.crt", client-key: "$PKI/$3.key"}
contexts:
- name: default
  context: {cluster: testbed, user: "$2"}
current-context: default
EOF
}
make_certs() {
  local client="extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature"
  # The Node authorizer and NodeRestriction admission key on exactly this identity.
  issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE" "$client"
  # Serving cert for :10250, so the apiserver can verify the kubelet against the test bed CA.
  issue_cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE" \
    "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nsubjectAltName=IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE"
  # The default ClusterRoleBinding system:node-proxier binds this user name.
  issue_cert kube-proxy "/CN=system:kube-proxy" "$client"
  write_kubeconfig "$RN/kubelet.kubeconfig" "system:node:$NODE" kubelet
  write_kubeconfig "$RN/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
}

# --- configs ---------------------------------------------------------------------------------------
write_configs() {
  local svc=$1
  mkdir -p "$RN/cni/net.d" "$RN/cni/ipam" "$RN/pod-logs" "$RN/kubelet"
  # Pods get routes to the pod range and the Service range only, no default route: a pod cannot even
  # try to reach anything that is not on this machine.
  cat >"$RN/cni/net.d/10-fastrollout.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "fastrollout",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$RN/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$CLUSTER_CIDR"}, {"dst": "$svc"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # containerd 1.6, CRI plugin. root/state/runc root under $RN so down removes them with the dir.
  cat >"$RN/containerd.toml" <<EOF
version = 2
root = "$RN/containerd/root"
state = "$RN/containerd/state"
# Only overlayfs is used; skipping the others saves start time and their probe warnings.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$RN/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # Built locally by images.sh; there is no registry to pull it from.
  sandbox_image = "$PAUSE_IMAGE"
  # The VM lacks CAP_SYS_RESOURCE: a negative oom_score_adj (which kubelet asks for) makes runc fail
  # every sandbox with "can't get final child's PID from pipe". Clamp instead.
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Workers run as uid 65532; let them bind low ports and ping inside their own netns.
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroup v1 and no systemd on this VM: cgroupfs, matching kubelet's cgroupDriver.
        SystemdCgroup = false
        Root = "$RN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RN/cni/net.d"
    max_conf_num = 1
EOF
  cat >"$RN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This VM has cgroup v1 only; kubelet 1.35+ refuses to start on it unless told not to.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
# Listen on the bridge address only (never on the uplink); the apiserver reaches us at the node IP.
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CA_CRT}
authorization:
  mode: Webhook
registerNode: true
registerWithTaints:
- {key: fastrollout.test/real, value: "true", effect: NoSchedule}
# Images cannot be pulled again (no registry): never garbage-collect them, and never evict for disk
# (eviction on imagefs pressure deletes images too).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%, imagefs.inodesFree: 1%}
podLogsDir: $RN/pod-logs
volumePluginDir: $RN/kubelet/volume-plugins
# No cluster DNS here, and the host's resolvers are off-machine: pods get no nameserver at all (dnsPolicy
# Default and the ClusterFirst fallback both read this), so nothing in a pod even tries to resolve out.
resolvConf: ""
# No systemd inhibitor locks here; graceful node shutdown cannot work, so don't try.
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
serializeImagePulls: false
maxPods: 110
EOF
  cat >"$RN/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE
clientConnection:
  kubeconfig: $RN/kube-proxy.kubeconfig
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts only on the node IP (the bridge), never on the uplink.
nodePortAddresses: [primary]
iptables:
  # Default 1s batching of rule syncs: the propagation lag the e2e tests measure is the real one.
  minSyncPeriod: 1s
  syncPeriod: 30s
  # true would set route_localnet=1 on the host; nothing here needs NodePorts on 127.0.0.1.
  localhostNodePorts: false
# Leave the host's conntrack table size and timeouts alone (and /sys/module is read-only here).
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# --- host network ----------------------------------------------------------------------------------
save_sysctls() {
  local k
  [ -f "$RN/sysctl.orig" ] && return 0
  for k in "${SYSCTLS[@]}"; do
    [ -e "/proc/sys/${k//.//}" ] && echo "$k=$(sysctl -n "$k")"
  done >"$RN/sysctl.orig"
}
restore_sysctls() {
  [ -f "$RN/sysctl.orig" ] || return 0
  sysctl -q -p "$RN/sysctl.orig" >/dev/null 2>&1 || log "some sysctls could not be restored"
}

# Our guard chain, in filter and mangle FORWARD: pod traffic may only leave through the bridge. The
# mangle copy runs before filter, so kube-proxy's ACCEPT rules (which it inserts at the top of filter
# FORWARD) can never let pod traffic out to the uplink. OUTPUT: host traffic to pod or Service
# addresses may only go to the bridge.
guard_up() {
  local svc=$1 t
  for t in filter mangle; do
    iptables -t "$t" -N "$GUARD" 2>/dev/null || iptables -t "$t" -F "$GUARD"
    iptables -t "$t" -A "$GUARD" -s "$CLUSTER_CIDR" ! -o "$BRIDGE" -j DROP \
      -m comment --comment "fastrollout real node: pod traffic never leaves the machine"
    iptables -t "$t" -C FORWARD -j "$GUARD" 2>/dev/null || iptables -t "$t" -I FORWARD 1 -j "$GUARD"
  done
  iptables -t filter -N "$GUARD-OUT" 2>/dev/null || iptables -t filter -F "$GUARD-OUT"
  iptables -t filter -A "$GUARD-OUT" -o "$BRIDGE" -j RETURN
  iptables -t filter -A "$GUARD-OUT" -o lo -j RETURN
  iptables -t filter -A "$GUARD-OUT" -d "$CLUSTER_CIDR" -j DROP
  iptables -t filter -A "$GUARD-OUT" -d "$svc" -j DROP
  iptables -t filter -C OUTPUT -j "$GUARD-OUT" 2>/dev/null || iptables -t filter -I OUTPUT 1 -j "$GUARD-OUT"
}

network_up() {
  local svc=$1
  save_sysctls
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    touch "$RN/bridge.ours"  # up.sh may create the bridge first (apiserver advertise address)
  fi
  ip addr replace "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # Host traffic to ClusterIPs goes into the bridge (where kube-proxy's DNAT applies), never out the
  # default route, even before kube-proxy has written its rules. A route to a local link only.
  ip route replace "$svc" dev "$BRIDGE" src "$NODE_IP"
  guard_up "$svc"
  # Routing between pods via a ClusterIP needs forwarding; the guard above keeps it on the bridge.
  sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
}

# Remove every iptables chain kube-proxy, kubelet, the CNI plugins or we made, in every table, v4 and v6.
sweep_iptables() {
  local cmd t chains c rules
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for t in filter nat mangle raw; do
      rules=$("$cmd-save" -t "$t" 2>/dev/null || true)
      [ -n "$rules" ] || continue
      chains=$(grep -oE '^:(KUBE-|CNI-|FASTROLLOUT-)[^ ]+' <<<"$rules" | cut -c2- || true)
      [ -n "$chains" ] || continue
      # Rules anywhere that jump to those chains, then the chains themselves.
      while read -r rule; do
        [ -n "$rule" ] || continue
        eval "$cmd -t $t ${rule/#-A /-D }" 2>/dev/null || true
      done < <(grep -E '^-A ' <<<"$rules" | grep -E -- '-j (KUBE-|CNI-|FASTROLLOUT-)' | grep -vE '^-A (KUBE-|CNI-|FASTROLLOUT-)' || true)
      for c in $chains; do "$cmd" -t "$t" -F "$c" 2>/dev/null || true; done
      for c in $chains; do "$cmd" -t "$t" -X "$c" 2>/dev/null || true; done
    done
  done
}

# --- up / down -------------------------------------------------------------------------------------
all_running() { running anchor && running containerd && running kubelet && running kube-proxy && running api-relay; }

# The apiserver listens on loopback only. Pods reach it through the `kubernetes` Service, whose endpoint
# is the apiserver's advertise address; with up.sh's FASTROLLOUT_ADVERTISE_ADDRESS=$NODE_IP that is the
# bridge address, where this relay (TLS passes through untouched) listens. Keeps the apiserver off the
# uplink without changing how up.sh binds it.
start_relay() {
  local server hostport
  server=$(kctl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  hostport=${server#https://}
  start_proc api-relay host socat "TCP-LISTEN:${hostport##*:},bind=$NODE_IP,reuseaddr,fork,backlog=128" "TCP:$hostport"
}
# socat forks a child per connection (long-lived watches); they share its process group (setsid made
# socat the group leader), so stop the group.
stop_relay() {
  local pid
  if running api-relay; then
    pid=$(cat "$PIDS/api-relay.pid")
    kill -TERM -- "-$pid" 2>/dev/null || true
  fi
  stop_proc api-relay 5
}

node_ready() {
  [ "$(kctl get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

cmd_up() {
  local t0 t1 svc
  t0=$(now_ms)
  [ -f "$ADMIN_KUBECONFIG" ] || die "no $ADMIN_KUBECONFIG: start the control plane first (tests/cluster/up.sh)"
  ensure_tools
  find_ca
  kctl get --raw /readyz >/dev/null || die "the apiserver of $STATE does not answer"
  if all_running; then
    CONTAINERD_ADDRESS=$SOCK "$here/images.sh" import
    wait_for 60 "node $NODE" node_ready
    log "already up; node $NODE Ready ($(secs_since "$t0"))"
    return 0
  fi
  # Half up (a crash, an interrupted up): start from clean rather than guess what survived.
  if [ -d "$RN" ]; then log "partial real node found; cleaning it first"; cmd_down; fi
  # One real node per machine (fixed bridge, pod range and kubelet/kube-proxy ports): refuse clearly
  # rather than fail half-way if another bed's real node runs.
  if [ -n "$(ss -Htln '( sport = :10250 or sport = :10256 )' 2>/dev/null)" ]; then
    die "ports 10250/10256 are taken: another test bed's real node runs here (realnode.sh down with its FASTROLLOUT_STATE)"
  fi
  mkdir -p "$PIDS" "$LOGS" "$PKI"
  # kubelet creates this fixed path; remove it at down only if it was not there before.
  [ -d /var/log/containers ] || touch "$RN/varlog-containers.ours"
  svc=$(service_cidr)
  write_configs "$svc"
  network_up "$svc"
  # The anchor holds the private mount namespace; everything that mounts runs inside it.
  start_proc anchor newns sleep infinity
  wait_for 5 "mount namespace" test -e "/proc/$(cat "$PIDS/anchor.pid")/ns/mnt"
  sleep 0.05  # unshare has to exec sleep before its namespace is the new one
  wait_for 5 "mount namespace" running anchor
  readlink "/proc/$(cat "$PIDS/anchor.pid")/ns/mnt" >"$RN/mntns"
  [ "$(cat "$RN/mntns")" != "$(readlink /proc/self/ns/mnt)" ] || die "unshare did not create a mount namespace"
  t1=$(now_ms)
  # containerd's root (image content, unpacked snapshots, ~1 GB with all three images) on a tmpfs inside
  # the namespace: the import is not bound by the disk, and down needs no `rm -rf` of tens of thousands
  # of files (6 s): the tmpfs goes with the namespace. Pages are only used as files are written.
  if [ "${REALNODE_TMPFS:-1}" = 1 ]; then
    mkdir -p "$RN/containerd/root"
    nsenter --mount="/proc/$(cat "$PIDS/anchor.pid")/ns/mnt" -- \
      mount -t tmpfs -o "size=${REALNODE_TMPFS_SIZE:-6g},mode=0711" fastrollout-realnode "$RN/containerd/root"
  fi
  start_proc containerd ns containerd --config "$RN/containerd.toml"
  wait_for 20 containerd ctr -a "$SOCK" version
  log "containerd up ($(secs_since "$t1"))"
  # Images and certificates don't depend on each other: import while the certs are made.
  t1=$(now_ms)
  CONTAINERD_ADDRESS=$SOCK "$here/images.sh" import >"$LOGS/images.log" 2>&1 &
  local images_pid=$!
  make_certs
  if ! wait "$images_pid"; then cat "$LOGS/images.log" >&2; die "images.sh failed"; fi
  log "images in containerd ($(secs_since "$t1"))"
  start_proc kubelet ns "$BIN_DIR/kubelet" --config "$RN/kubelet.yaml" --kubeconfig "$RN/kubelet.kubeconfig" \
    --root-dir "$RN/kubelet" --hostname-override "$NODE" --node-ip "$NODE_IP" \
    --node-labels fastrollout.test/node=real
  start_proc kube-proxy host "$BIN_DIR/kube-proxy" --config "$RN/kube-proxy.yaml"
  start_relay
  wait_for 60 "node $NODE" node_ready
  running kubelet || die "kubelet exited (see $LOGS/kubelet.log)"
  running kube-proxy || die "kube-proxy exited (see $LOGS/kube-proxy.log)"
  running api-relay || die "the apiserver relay exited (see $LOGS/api-relay.log)"
  install_hook
  log "node $NODE Ready; real node up in $(secs_since "$t0")"
}

cmd_down() {
  local t0 pids p i
  t0=$(now_ms)
  [ -d "$RN" ] || { log "no real node in $STATE"; return 0; }
  stop_relay
  stop_proc kube-proxy
  # kube-proxy's own cleanup knows every rule it wrote (incl. ones in built-in chains).
  if [ -x "$BIN_DIR/kube-proxy" ]; then "$BIN_DIR/kube-proxy" --cleanup >>"$LOGS/kube-proxy.log" 2>&1 || true; fi
  stop_proc kubelet
  # The containers: kill each task through containerd so the shims exit cleanly (they remove their
  # sockets and runc state); down is not a drain, so there is no grace here.
  if running containerd; then
    for i in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null || true); do
      ctr -a "$SOCK" -n k8s.io tasks kill -a -s SIGKILL "$i" >/dev/null 2>&1 || true
    done
    for i in $(ctr -a "$SOCK" -n k8s.io tasks ls -q 2>/dev/null || true); do
      ctr -a "$SOCK" -n k8s.io tasks delete -f "$i" >/dev/null 2>&1 || true
    done
  fi
  stop_proc containerd
  # Whatever is left is ours by construction: in our mount namespace (kubelet, containerd, shims), or
  # in kubelet's cgroup tree (container processes, which have mount namespaces of their own).
  pids=$({ ns_pids; kubepods_pids; } | sort -u | grep -vx "$(cat "$PIDS/anchor.pid" 2>/dev/null || echo none)" || true)
  if [ -n "$pids" ]; then
    log "killing leftover processes of the real node: ${pids//$'\n'/ }"
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  fi
  stop_proc anchor 5
  # The namespace, with every mount in it, is gone once its last process is.
  for ((i = 0; i < 50; i++)); do [ -z "$(ns_pids)" ] && break; sleep 0.1; done
  [ -z "$(ns_pids)" ] || log "WARNING: processes still in the real node's namespace: $(ns_pids | tr '\n' ' ')"
  remove_cgroups
  sweep_iptables
  if [ -f "$RN/bridge.ours" ] && ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; fi
  restore_sysctls
  remove_host_leftovers
  # The Node object would linger NotReady and hold pods bound to it; gone with the node.
  if [ -f "$ADMIN_KUBECONFIG" ] && [ -x "$BIN_DIR/kubectl" ]; then
    kctl delete node "$NODE" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf --one-file-system "$RN"
  rm -f "$STATE/cleanup.d/realnode"
  log "real node down ($(secs_since "$t0"))"
}

# kubelet's QoS/pod cgroups (cgroupfs driver, cgroup v1: one tree per controller). Empty once all
# processes are gone; remove deepest first.
remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$d" ] && log "WARNING: could not remove cgroup $d"
  done
  return 0
}

# Files that kubelet and the CRI plugin put at fixed host paths outside our dirs.
remove_host_leftovers() {
  local f
  # kubelet links /var/log/containers/* to the pod logs (a fixed path, not configurable).
  for f in /var/log/containers/*.log; do
    [ -L "$f" ] && [[ $(readlink "$f") == "$RN/"* ]] && rm -f "$f"
  done
  [ -f "$RN/varlog-containers.ours" ] && rmdir /var/log/containers 2>/dev/null
  # Netns mount points the CRI plugin made: in the host namespace they are plain files (the mounts
  # lived in ours), which `ip netns` would list as broken namespaces.
  for f in /run/netns/cni-*; do
    [ -f "$f" ] && ! mountpoint -q "$f" && rm -f "$f"
  done
  rmdir /run/netns 2>/dev/null || true
  # Shim sockets (/run/containerd/s) of shims that no longer run; the system containerd, if any, keeps
  # its own (its shims are alive, their sockets are listened on).
  if [ -d /run/containerd/s ]; then
    for f in /run/containerd/s/*; do
      [ -S "$f" ] || continue
      grep -q " ${f}$" /proc/net/unix 2>/dev/null || rm -f "$f"
    done
    rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  fi
  return 0
}

# down.sh runs $STATE/cleanup.d/* after stopping the control plane: so the bed's down takes the real node
# down too, with the same cleanup as `realnode.sh down`.
install_hook() {
  mkdir -p "$STATE/cleanup.d"
  cat >"$STATE/cleanup.d/realnode.tmp" <<EOF
#!/bin/sh
FASTROLLOUT_STATE='$STATE' REALNODE_NAME='$NODE' exec '$here/realnode.sh' down
EOF
  chmod +x "$STATE/cleanup.d/realnode.tmp"
  mv "$STATE/cleanup.d/realnode.tmp" "$STATE/cleanup.d/realnode"
}

cmd_status() {
  local n
  for n in anchor containerd kubelet kube-proxy api-relay; do
    if running "$n"; then echo "$n: running (pid $(cat "$PIDS/$n.pid"))"; else echo "$n: stopped"; fi
  done
  if [ -f "$ADMIN_KUBECONFIG" ]; then kctl get node "$NODE" -o wide 2>/dev/null || echo "node $NODE: not registered"; fi
}

# Anything of a real node left on the host? Prints what it finds; exit 1 if something.
cmd_check_clean() {
  local bad=0 out
  [ -d "$RN" ] && { echo "dir: $RN"; bad=1; }
  out=$(grep -E " ($RN|/run/netns/cni-|/run/containerd)" /proc/self/mounts || true)
  [ -n "$out" ] && { echo "mounts:"; echo "$out"; bad=1; }
  out=$(iptables-save 2>/dev/null | grep -E 'KUBE-|CNI-|FASTROLLOUT-' || true)
  [ -n "$out" ] && { echo "iptables: $(wc -l <<<"$out") lines"; bad=1; }
  out=$(ip6tables-save 2>/dev/null | grep -E 'KUBE-|CNI-|FASTROLLOUT-' || true)
  [ -n "$out" ] && { echo "ip6tables: $(wc -l <<<"$out") lines"; bad=1; }
  out=$(ip -br link | grep -E "^($BRIDGE|veth)" || true)
  [ -n "$out" ] && { echo "links:"; echo "$out"; bad=1; }
  out=$(find /var/log/containers -maxdepth 1 -lname "$RN/*" 2>/dev/null; ls -d /run/netns/cni-* 2>/dev/null || true)
  [ -n "$out" ] && { echo "files:"; echo "$out"; bad=1; }
  out=$(ls /sys/fs/cgroup/*/kubepods -d 2>/dev/null || true)
  [ -n "$out" ] && { echo "cgroups:"; echo "$out"; bad=1; }
  # shellcheck disable=SC2009  # pgrep cannot match on the whole command line this way
  # Zombies (Z) are already dead, waiting for init to reap them: not left behind.
  out=$(ps -eo pid,stat,args | awk '$2 !~ /Z/' | grep -E "$RN|containerd-shim|[k]ubelet --config|[k]ube-proxy --config" | grep -v grep || true)
  [ -n "$out" ] && { echo "processes:"; echo "$out"; bad=1; }
  [ $bad = 0 ] && echo "clean: no real node dirs, mounts, iptables chains, links, cgroups or processes"
  return $bad
}

# One up/down at a time (e.g. parallel test workers); not up.sh's lock, which it may hold while calling us.
if [ "${1:-}" = up ] || [ "${1:-}" = down ]; then
  if [ ! -d "$STATE" ]; then
    [ "$1" = down ] && { log "no test bed at $STATE"; exit 0; }
    die "no test bed at $STATE: run tests/cluster/up.sh"
  fi
  exec 8>"$STATE/realnode.lock"
  flock -w 300 8 || die "another realnode.sh holds $STATE/realnode.lock"
fi
case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  check-clean) cmd_check_clean ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
