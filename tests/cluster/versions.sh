# Pinned versions and cache paths of the test bed; sourced by every script under tests/cluster.
# Every variable here is read by the scripts that source this file (SC2034 cannot see them).
# shellcheck shell=bash disable=SC2034
# Kubernetes 1.36.x: newest line that still runs on Debian's containerd 1.6 (see README, test bed).
K8S_VERSION=${K8S_VERSION:-v1.36.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
# promtool (checks and unit-tests charts/fastrollout/files/alerts.yaml): the Go module's v0.3XX.Y tag is
# Prometheus v3.XX.Y; v0.316.0 is Prometheus 3.16.0.
PROMTOOL_VERSION=${PROMTOOL_VERSION:-v0.316.0}
CACHE_ROOT=${FASTROLLOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastrollout}
BIN_DIR="$CACHE_ROOT/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
# A directory of its own, so a new promtool does not rebuild Kubernetes (nor the reverse).
PROMTOOL_DIR="$CACHE_ROOT/bin/promtool-$PROMTOOL_VERSION"
