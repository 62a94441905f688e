#!/usr/bin/env bash
# Builds the test bed's binaries from their Go modules into a cache outside the clone.
# Idempotent: a binary already in the cache is not rebuilt, so a warm machine skips this in a second.
#
#   tests/cluster/build.sh            # all binaries
#   FASTROLLOUT_CACHE=/x tests/cluster/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/versions.sh
. "$here/versions.sh"

mkdir -p "$BIN_DIR" "$PROMTOOL_DIR"
log() { printf '[build] %s\n' "$*" >&2; }

k8s_components=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

build_kubernetes() {
  local missing=()
  for c in "${k8s_components[@]}"; do [ -x "$BIN_DIR/$c" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  # k8s.io/kubernetes requires its staging modules at v0.0.0 through replace directives that only
  # resolve inside its own repository; a wrapper module that replaces each with its published v0.Y.Z
  # tag builds it from the module proxy (the cluster-autoscaler project does the same).
  local src="$CACHE_ROOT/src/k8s-wrapper-$K8S_VERSION"
  mkdir -p "$src"
  if [ ! -f "$src/go.sum" ]; then
    log "resolving k8s.io/kubernetes@$K8S_VERSION (module download, first time only)"
    local gomod
    gomod=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    local staging_version="v0.${K8S_VERSION#v1.}"
    {
      echo "module fastrollout.io/testbed/k8s"
      echo
      grep -E '^go [0-9]' "$gomod"
      grep -E '^godebug' "$gomod" || true
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" \
        | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
      echo ")"
    } >"$src/go.mod"
    cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
    (cd "$src" || exit 1; go mod tidy -e >/dev/null 2>"$src/tidy.log" || { cat "$src/tidy.log" >&2; exit 1; })
  fi
  # Stamp versions, or kubectl and the apiserver report v0.0.0 and clients misjudge skew.
  local ldflags="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "${missing[@]}"; do
    log "building $c $K8S_VERSION (cold: kube-apiserver takes ~3 min on 2 cores)"
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c")
    mv "$BIN_DIR/$c.tmp" "$BIN_DIR/$c"
  done
}

go_install() {  # name module@version [dir]
  local name=$1 mod=$2 dir=${3:-$BIN_DIR}
  [ -x "$dir/$name" ] && return 0
  log "building $name from $mod"
  GOBIN="$dir" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$mod"
}

build_kubernetes
go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
# Cold: 8.4 min of CPU (21.5 min wall on 2 cores shared with other builds; roughly 5 alone): it links
# every service discovery SDK (AWS, Azure, GCP, OCI...). `promtool --version` prints no version (go
# install sets no ldflags); the directory name says it.
go_install promtool "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION" "$PROMTOOL_DIR"
log "binaries ready in $BIN_DIR and $PROMTOOL_DIR"
