# Shared settings and process helpers of the test bed; sourced by up.sh and down.sh (not executable).
# Everything a running bed owns lives under $STATE, so down.sh can find and remove all of it.
# Its variables are read by the scripts that source it (SC2034 cannot see them).
# shellcheck shell=bash disable=SC2034

# shellcheck source=tests/cluster/versions.sh
. "$(dirname "${BASH_SOURCE[0]}")/versions.sh"

STATE=${FASTROLLOUT_STATE:-/tmp/fastrollout-testbed}
# One offset shifts every port, so a second bed (another FASTROLLOUT_STATE) can run beside the first.
# Use a multiple of 100: the base ports below are closer than 100 to each other.
# A bed remembers its port offset, so rerunning up.sh on its state dir without the variable does not
# restart it on the default ports (where another bed may listen).
if [ -z "${FASTROLLOUT_PORT_OFFSET:-}" ] && [ -f "$STATE/port-offset" ]; then
  FASTROLLOUT_PORT_OFFSET=$(cat "$STATE/port-offset")
fi
PORT_OFFSET=${FASTROLLOUT_PORT_OFFSET:-0}
API_PORT=$((6443 + PORT_OFFSET))
ETCD_PORT=$((2379 + PORT_OFFSET))
ETCD_PEER_PORT=$((2380 + PORT_OFFSET))
KCM_PORT=$((10257 + PORT_OFFSET))
SCHED_PORT=$((10259 + PORT_OFFSET))
# Not 10250/10248/10249/10256: those are the real node's kubelet and kube-proxy ports.
KWOK_PORT=$((10280 + PORT_OFFSET))

PIDS="$STATE/pids"
LOGS="$STATE/logs"
PKI="$STATE/pki"
KUBECONFIG_ADMIN="$STATE/kubeconfig"
# kubectl and helm write caches under $HOME by default; keep them in the state dir so down.sh removes them.
export KUBECACHEDIR="$STATE/cache/kube"
# Start order; down.sh stops in reverse. Other components (a real node) may add pid files later;
# down.sh stops those first.
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kctl() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# The pid file alone is not proof: a pid can be reused by an unrelated process after a reboot or a
# crash. A component counts as running only if its pid is alive AND its command line is exactly the one
# we started (kept in <name>.args, one argument per line). down.sh relies on this to never signal a
# process that is not ours.
cmdline_of() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null; }
# A zombie still answers kill -0; treat it as gone (its parent, not us, has to reap it) once EVERY
# thread is a zombie: a Go daemon's main thread turns zombie first while its other threads still hold
# its listening sockets, and a restart in that window failed with "bind: address already in use".
alive() {
  local task
  kill -0 "$1" 2>/dev/null || return 1
  for task in /proc/"$1"/task/*/status; do
    grep -q '^State:.*[ZX]' "$task" 2>/dev/null || return 0
  done
  return 1
}

running() {  # name
  local name=$1 pid
  [ -f "$PIDS/$name.pid" ] && [ -f "$PIDS/$name.args" ] || return 1
  pid=$(cat "$PIDS/$name.pid")
  [ -n "$pid" ] && alive "$pid" || return 1
  [ "$(cmdline_of "$pid")" = "$(cat "$PIDS/$name.args")" ]
}

stop_one() {  # name [timeout_seconds]: TERM, then KILL after the timeout; only our own, verified pid
  local name=$1 timeout=${2:-15} pid i
  # kube-apiserver 1.36 on etcd 3.4 lingers ~15 s after TERM (its watch cache waits for resource
  # versions etcd 3.4 cannot confirm); all its state is in etcd, so a KILL after 5 s loses nothing.
  [ "$name" = kube-apiserver ] && [ "$timeout" -gt 5 ] && timeout=5
  if running "$name"; then
    pid=$(cat "$PIDS/$name.pid")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name did not exit within ${timeout}s after TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.args"
}
