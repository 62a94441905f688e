#!/usr/bin/env bash
# The demo, the README's first command: starts the test bed, installs the operator, applies
# examples/fleet.yaml (300 workers behind a Service, on kwok's simulated nodes), rolls it to
# examples/fleet-v2.yaml and prints live progress and the timings. Leaves the cluster running.
# Needs nothing installed by hand: when fastrollout is not importable, it pip-installs the package first.
#
#   tests/demo.sh                  # operator installed with Helm, running on the bed's real node
#   tests/demo.sh --no-real-node   # operator as a local process (no kubelet/containerd needed)
#
# Idempotent: a rerun reuses the bed and the operator; the fleet, left at version 2 by the last run,
# is first rolled back to version 1 (just another rollout), then to version 2 again.
# The real node is one per machine: when another test bed's real node holds its ports, the demo says
# so and falls back to --no-real-node. Stop everything with tests/cluster/down.sh.
#
# Env: FASTROLLOUT_STATE (the bed's state dir, default /tmp/fastrollout-testbed), DEMO_DRAIN_SECONDS
# (how long an old pod takes to finish its request and exit, default 20), DEMO_START_DELAY /
# DEMO_START_DELAY_MAX (a new pod's start-up time, uniform in [2, 8] s by default).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=tests/cluster/lib.sh
. "$here/cluster/lib.sh" # STATE, PIDS, LOGS, BIN_DIR, KUBECONFIG_ADMIN, running, stop_one

NS=workers
NAME=bank-workers
RELEASE=fastrollout
RELEASE_NS=fastrollout-system
OPERATOR=demo-operator # pid/args under $PIDS: down.sh stops it with the bed
DRAIN=${DEMO_DRAIN_SECONDS:-20}
START_DELAY=${DEMO_START_DELAY:-2}
START_DELAY_MAX=${DEMO_START_DELAY_MAX:-8}
V1_FILE="$repo/examples/fleet.yaml"
V2_FILE="$repo/examples/fleet-v2.yaml"

real_node=1
for arg in "$@"; do
  case "$arg" in
    --no-real-node) real_node=0 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (usage: tests/demo.sh [--no-real-node])" ;;
  esac
done

t_demo=$(date +%s)
bold='' plain=''
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s==> [%s] %s%s\n' "$bold" "$(date +%H:%M:%S)" "$*" "$plain"; }
version_in() { sed -n 's/^  version: "\(.*\)"$/\1/p' "$1" | head -1; }
V1=$(version_in "$V1_FILE")
V2=$(version_in "$V2_FILE")
if [ -z "$V1" ] || [ -z "$V2" ]; then die "could not read spec.version from examples/fleet*.yaml"; fi

if [ "$real_node" = 1 ] && [ ! -d "$STATE/realnode" ] &&
  [ -n "$(ss -Htln '( sport = :10250 or sport = :10256 )' 2>/dev/null)" ]; then
  log "ports 10250/10256 are taken: another test bed's real node runs on this machine (one per machine)."
  log "Falling back to --no-real-node: the operator runs as a local process instead of a pod."
  real_node=0
fi

# --- 0. the Python package ---------------------------------------------------------------------------
# The README's first command must be enough on a fresh machine: when fastrollout (or a dependency) is
# not importable, install the package, editable, with its runtime dependencies only (the local
# operator, `python3 -m fastrollout`; the dev extra is for tests/run.sh). Debian's own python3 comes
# without pip, and refuses pip installs outside a venv (PEP 668, "externally managed"): pip comes from
# apt, and the install goes to /usr/local, where Debian puts what the administrator installs.
ensure_python_package() {
  if python3 -c 'import fastrollout, kopf, kubernetes, pydantic, prometheus_client' 2>/dev/null; then return 0; fi
  step "0/5 Python package: python3 -m pip install -e . (fastrollout is not importable yet)"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if ! python3 -m pip --version >/dev/null 2>&1; then
    command -v apt-get >/dev/null || die "python3 has no pip and there is no apt-get: install pip, then rerun"
    log "installing python3-pip (apt)"
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    "${apt[@]}" install -y -qq --no-install-recommends python3-pip >/dev/null 2>&1 || {
      "${apt[@]}" update -qq
      "${apt[@]}" install -y -qq --no-install-recommends python3-pip >/dev/null
    }
  fi
  local pip=(python3 -m pip install -q --disable-pip-version-check -e "$repo")
  if python3 -c 'import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(not (sys.prefix == sys.base_prefix and os.path.exists(marker)))'; then
    log "this python3 is externally managed (PEP 668): installing into /usr/local with --break-system-packages"
    pip+=(--break-system-packages)
  fi
  PIP_ROOT_USER_ACTION=ignore "${pip[@]}"
  python3 -c 'import fastrollout' || die "python3 -m pip install -e $repo did not make fastrollout importable"
  log "installed: $(python3 -c 'import fastrollout; print(fastrollout.__file__)')"
}
ensure_python_package

# --- 1. the test bed ---------------------------------------------------------------------------------
if [ "$real_node" = 1 ]; then
  step "1/5 test bed: control plane, kwok nodes and a real node (first run: builds Kubernetes, ~10 min)"
  "$here/cluster/up.sh" --real-node
else
  step "1/5 test bed: control plane and kwok nodes (first run: builds Kubernetes, ~10 min)"
  "$here/cluster/up.sh"
fi
export KUBECONFIG="$KUBECONFIG_ADMIN"
export PATH="$BIN_DIR:$PATH"
export HELM_CACHE_HOME="$STATE/cache/helm" HELM_CONFIG_HOME="$STATE/config/helm" HELM_DATA_HOME="$STATE/data/helm"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null

apply_crd() {
  kubectl apply --server-side --force-conflicts -f "$repo/crds/" >/dev/null
  kubectl wait --for=condition=Established crd/fastrollouts.fastrollout.io --timeout=60s >/dev/null
}

# --- 2. the operator ---------------------------------------------------------------------------------
if [ "$real_node" = 1 ]; then
  step "2/5 operator: helm upgrade --install from charts/fastrollout, on the real node, watching namespace $NS"
  if running "$OPERATOR"; then log "stopping the local operator of an earlier --no-real-node run"; stop_one "$OPERATOR" 15; fi
  # --take-ownership: on a bed the tests used, the CRD exists already (kubectl apply --server-side);
  # the chart adopts it (it is annotated helm.sh/resource-policy: keep, so nothing ever deletes it).
  helm upgrade --install "$RELEASE" "$repo/charts/fastrollout" -n "$RELEASE_NS" --create-namespace \
    --set image.repository=fastrollout/operator,image.tag=dev,image.pullPolicy=Never \
    --set-json 'nodeSelector={"fastrollout.test/node":"real"}' \
    --set-json 'tolerations=[{"key":"fastrollout.test/real","operator":"Equal","value":"true","effect":"NoSchedule"}]' \
    --set-json "watchNamespaces=[\"$NS\"]" \
    --take-ownership --wait --timeout 5m
  kubectl -n "$RELEASE_NS" get pods -o wide
  operator_logs="kubectl -n $RELEASE_NS logs deploy/$RELEASE"
else
  step "2/5 operator: python -m fastrollout run, a local process watching namespace $NS"
  if helm status "$RELEASE" -n "$RELEASE_NS" >/dev/null 2>&1; then
    log "uninstalling the Helm release of an earlier run (two operators must not act on one fleet)"
    helm uninstall "$RELEASE" -n "$RELEASE_NS" --wait >/dev/null
  fi
  apply_crd
  log_file="$LOGS/$OPERATOR.log"
  if running "$OPERATOR"; then
    log "operator already running (pid $(cat "$PIDS/$OPERATOR.pid"))"
  else
    ports=$(python3 -c 'import socket
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    read -r metrics_port health_port <<<"$(echo "$ports" | tr '\n' ' ')"
    # The interpreter's real path: a wrapper (pyenv shim) would exec it under another command line,
    # and down.sh stops only a pid whose command line is the one recorded.
    python=$(python3 -c 'import sys; print(sys.executable)')
    args=("$python" -m fastrollout run --kubeconfig "$KUBECONFIG" --namespace "$NS"
      --metrics-port "$metrics_port" --health-port "$health_port")
    printf '%s\n' "${args[@]}" >"$PIDS/$OPERATOR.args"
    : >"$log_file"
    # Its own session (not stopped by ^C here), pid recorded before exec, so down.sh can stop it.
    # shellcheck disable=SC2016  # $$, $0 and $@ are the inner bash's
    PYTHONPATH="$repo/operator" setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$OPERATOR.pid" "${args[@]}" \
      >>"$log_file" 2>&1 </dev/null &
    for _ in $(seq 1 600); do
      grep -q 'started [0-9]* child watches' "$log_file" 2>/dev/null && break
      [ -s "$PIDS/$OPERATOR.pid" ] && ! kill -0 "$(cat "$PIDS/$OPERATOR.pid")" 2>/dev/null && break
      sleep 0.1
    done
    running "$OPERATOR" || { tail -20 "$log_file" >&2; die "the operator did not start (log: $log_file)"; }
    log "operator started (pid $(cat "$PIDS/$OPERATOR.pid"), metrics on :$metrics_port, log $log_file)"
  fi
  operator_logs="tail -f $log_file"
fi

render() { # file: examples/ adapted to kwok nodes, applied
  python3 "$here/demo/fleet.py" render "$1" --drain-seconds "$DRAIN" --start-delay "$START_DELAY" \
    --start-delay-max "$START_DELAY_MAX" | kubectl apply -f -
}

# --- 3. version 1 ------------------------------------------------------------------------------------
step "3/5 fleet: examples/fleet.yaml (version $V1), pods on kwok nodes, old pods drain in ${DRAIN}s"
render "$V1_FILE"
python3 "$here/demo/fleet.py" wait "$NS" "$NAME" "$V1" --timeout 900

# --- 4. version 2 ------------------------------------------------------------------------------------
step "4/5 rollout: examples/fleet-v2.yaml (version $V2), a line a second"
render "$V2_FILE"
python3 "$here/demo/fleet.py" watch "$NS" "$NAME" "$V2" --timeout 900

# --- 5. what is left running -------------------------------------------------------------------------
state_env=""
[ "$STATE" = /tmp/fastrollout-testbed ] || state_env="FASTROLLOUT_STATE=$STATE FASTROLLOUT_PORT_OFFSET=$PORT_OFFSET "
step "5/5 done in $(($(date +%s) - t_demo)) s; the cluster keeps running"
kubectl get fr -n "$NS"
echo
kubectl get events -n "$NS" --field-selector involvedObject.kind=FastRollout --sort-by=.lastTimestamp | tail -8
cat <<EOF

Look around:
  export KUBECONFIG=$KUBECONFIG_ADMIN
  export PATH=$BIN_DIR:\$PATH
  kubectl get fr -n $NS -w
  python3 tests/demo/fleet.py render examples/fleet.yaml | kubectl apply -f -   # roll back: another rollout
  $operator_logs
Stop everything:
  ${state_env}tests/cluster/down.sh
EOF
