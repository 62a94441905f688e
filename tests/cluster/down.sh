#!/usr/bin/env bash
# Stops the test bed started by up.sh and removes its state dir. Idempotent: safe when nothing runs.
#
#   tests/cluster/down.sh          # FASTROLLOUT_STATE picks which bed (default /tmp/fastrollout-testbed)
#
# Stops only processes recorded in $STATE/pids whose command line still matches what was started (never
# by name), TERM first and KILL after a timeout. The control plane adds no mounts, iptables rules or
# interfaces; components that do (a real node) put an executable $STATE/cleanup.d/<name> hook there,
# which runs after its processes stopped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
. "$here/lib.sh"

# Refuse to rm -rf anything that does not look like a bed's state dir (a mistyped FASTROLLOUT_STATE).
case "$STATE" in
  "" | / | "$HOME" | /tmp | /root | /home) echo "refusing to remove FASTROLLOUT_STATE=$STATE" >&2; exit 1 ;;
esac

mkdir -p "$(dirname "$STATE")"
exec 9>"$STATE.lock"
flock -w 600 9 || die "another up.sh/down.sh holds $STATE.lock"

if [ ! -d "$STATE" ]; then
  log "nothing to stop ($STATE does not exist)"
  rm -f "$STATE.lock"
  exit 0
fi

# Components not in the known list (added by other scripts) first: they are clients of the control plane.
if [ -d "$PIDS" ]; then
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    [[ " ${COMPONENTS[*]} " == *" $name "* ]] && continue
    stop_one "$name" 30
  done
  # Reverse start order: kwok and the controllers before the apiserver, etcd last (so nothing logs
  # connection errors during a clean stop, and etcd closes its data cleanly).
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop_one "${COMPONENTS[i]}" 15
  done
  # A pid file whose process is not the one we started (reused pid) is dropped, never signalled.
  rm -f "$PIDS"/*.pid "$PIDS"/*.args
fi

if [ -d "$STATE/cleanup.d" ]; then
  for hook in "$STATE"/cleanup.d/*; do
    [ -x "$hook" ] || continue
    log "cleanup: $(basename "$hook")"
    "$hook" || log "cleanup hook $(basename "$hook") failed (continuing)"
  done
fi

rm -rf "$STATE"
rm -f "$STATE.lock"
log "down: stopped and removed $STATE"
