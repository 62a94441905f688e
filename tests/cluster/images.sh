#!/usr/bin/env bash
# Builds the test bed's container images with no registry and no Docker engine, and imports them into
# containerd's k8s.io namespace (the one the CRI plugin, so kubelet, sees).
#
#   tests/cluster/images.sh                    # build all (cached); import if a containerd is running
#   tests/cluster/images.sh build [IMAGE...]   # build only; IMAGE: pause worker operator
#   tests/cluster/images.sh import [IMAGE...]  # build if needed, then import (fails without containerd)
#   tests/cluster/images.sh ref IMAGE          # print this checkout's own name of IMAGE (builds if needed)
#   CONTAINERD_ADDRESS=/run/containerd/containerd.sock tests/cluster/images.sh import worker
#
# Two names per image in containerd. `fastrollout/operator:dev` is whatever checkout imported last: on a
# bed shared by several checkouts (worktrees, a CI clone) it changes under a running test. The
# checkout's own name, `fastrollout/operator:dev-<input hash>` (`ref`), never changes: tests that start
# the image in a pod (test_helm.py, the e2e operator release) run that one, so they test their own code.
#
# Images (names in images/names.sh):
#   pause    static binary from pause.c of the pinned k8s.io/kubernetes module (containerd's sandbox_image)
#   worker   Debian minbase + python3 + the fastrollout package; runs `python3 -m fastrollout.worker`
#   operator the same base + the operator's PyPI dependencies; runs `fastrollout run` as uid 65532
#
# How: a debootstrap'd rootfs tarball (cached) and small app layers -> umoci (OCI layout) -> skopeo
# docker-archive (keeps the name; an OCI-archive import gets renamed) -> `ctr -n k8s.io images import`.
# Cache: every archive is keyed by a hash of all its inputs; containerd images carry that hash as the
# label fastrollout.test/input, so an unchanged image costs one hash and one `ctr images ls`.
# Env: FASTROLLOUT_CACHE (cache root), DEBIAN_MIRROR (default: the host's apt source for the suite).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/cluster/versions.sh
. "$here/versions.sh"
# shellcheck source=tests/cluster/images/names.sh
. "$here/images/names.sh"
STATE=${FASTROLLOUT_STATE:-/tmp/fastrollout-testbed}
IMG_CACHE="$CACHE_ROOT/images"
LAYOUT="$IMG_CACHE/oci"  # one OCI layout for all images, so the shared base layer is stored once
SITE="usr/local/lib/python$IMAGE_PYTHON_VERSION/dist-packages"  # on Debian python3's sys.path
# Bump when the rootfs recipe below changes (the rootfs is the slow part, so it has its own key).
ROOTFS_RECIPE=1
ROOTFS_PACKAGES=python3
BUILT=0  # set by a build_* that had to build

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
secs_since() { local d=$(($(now_ms) - $1)); printf '%d.%01ds' $((d / 1000)) $((d % 1000 / 100)); }

# Temporary dirs are removed on any exit. debootstrap mounts proc/sys inside its target; unmount
# whatever is still mounted below a temp dir before deleting it, never delete through a mount.
tmpdirs=()
cleanup() {
  local d m
  for d in "${tmpdirs[@]}"; do
    [ -d "$d" ] || continue
    while read -r m; do umount -l "$m" 2>/dev/null || true; done \
      < <(awk -v p="$d/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r)
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT
# Sets TMP (not echoed: a $(...) subshell would lose the bookkeeping the EXIT trap needs).
mktmp() { TMP=$(mktemp -d "$IMG_CACHE/tmp.XXXXXX"); tmpdirs+=("$TMP"); }

ensure_tools() {
  local pkgs=() t
  declare -A pkg_of=([debootstrap]=debootstrap [umoci]=umoci [skopeo]=skopeo [gcc]=gcc [ctr]=containerd)
  for t in "${!pkg_of[@]}"; do command -v "$t" >/dev/null || pkgs+=("${pkg_of[$t]}"); done
  # gcc -static needs the static libc (libc.a), which only libc6-dev ships.
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || pkgs+=(libc6-dev)
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || pkgs+=(debian-archive-keyring)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  fi
}

# Content hash of files/dirs (paths relative to the repo where possible), ignoring bytecode caches.
hash_paths() {
  local p
  for p in "$@"; do
    if [ -d "$p" ]; then
      (cd "$p" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
        | xargs -0 -r sha256sum)
    else
      sha256sum <"$p"
    fi
  done | sha256sum | cut -c1-16
}

# A layer tarball whose bytes depend only on the content: sorted, fixed owner and mtime. Python files
# are byte-compiled with unchecked-hash pycs (valid whatever the mtime; the host's 3.11 has the same
# magic number as Debian's 3.11), so containers never compile at start and need no writable dirs.
make_layer() {  # dir out.tar
  python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$1" >/dev/null
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@946684800 -C "$1" -cf "$2" .
}

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  # The same source apt on this host uses, so no host name is written down here.
  # shellcheck disable=SC2016  # $(...) are apt's format fields, not shell
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' 2>/dev/null \
    | awk -v s="$IMAGE_SUITE" '$2 == s && $3 == "main" {print $1; exit}'
}

# The base rootfs: Debian minbase + python3, trimmed, with a nonroot user (65532). Cached as a tarball
# keyed by its recipe only, so changing the app never re-runs debootstrap (~1-2 min).
rootfs_tar() {  # sets ROOTFS
  local key out dir mirror t0
  key=$(printf '%s\n' "$IMAGE_SUITE" minbase "$ROOTFS_PACKAGES" "$ROOTFS_RECIPE" | sha256sum | cut -c1-16)
  out="$IMG_CACHE/rootfs-$IMAGE_SUITE-$key.tar"
  ROOTFS=$out
  [ -f "$out" ] && return 0
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || die "no apt source for $IMAGE_SUITE main on this host; set DEBIAN_MIRROR"
  t0=$(now_ms)
  mktmp; dir=$TMP
  log "debootstrap $IMAGE_SUITE minbase + $ROOTFS_PACKAGES (first time only)"
  if ! debootstrap --variant=minbase --include="${ROOTFS_PACKAGES// /,}" "$IMAGE_SUITE" "$dir/root" "$mirror" \
      >"$dir/debootstrap.log" 2>&1; then
    tail -20 "$dir/debootstrap.log" >&2
    die "debootstrap failed (log above)"
  fi
  (
    cd "$dir/root"
    # Package caches, docs and locales are dead weight in a container; resolv.conf and hostname
    # would leak the build host's (the runtime mounts its own); /dev comes from the runtime too.
    rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* var/log/* \
      usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* etc/resolv.conf etc/hostname
    find dev -mindepth 1 -delete
    echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin' >>etc/passwd
    echo 'nonroot:x:65532:' >>etc/group
    install -d -o 65532 -g 65532 -m 0755 home/nonroot
  )
  tar --sort=name --numeric-owner -C "$dir/root" -cf "$out.tmp" .
  mv "$out.tmp" "$out"
  # Older rootfs tarballs are several tens of MB each and never used again.
  find "$IMG_CACHE" -maxdepth 1 -name "rootfs-*.tar" ! -path "$out" -delete
  log "rootfs ready: $(du -h "$out" | cut -f1) in $(secs_since "$t0")"
}

# Tag base-<key> in the layout: an empty image plus the rootfs layer. Images branch off this tag, so
# the base layer is compressed once, not once per image build.
base_tag() {  # sets BASE_TAG
  local key tag
  rootfs_tar
  key=$(basename "$ROOTFS" .tar)
  tag="base-${key#rootfs-}"
  BASE_TAG=$tag
  if ! umoci stat --image "$LAYOUT:$tag" >/dev/null 2>&1; then
    log "adding the base layer to the OCI layout"
    umoci new --image "$LAYOUT:$tag"
    add_layer "$LAYOUT:$tag" "$ROOTFS" "debootstrap $IMAGE_SUITE minbase + $ROOTFS_PACKAGES"
  fi
}

# docker-archive from a layout tag; skopeo writes the name into the archive, which ctr import keeps.
# --insecure-policy: a local layout to a local file, there is no signature to check.
export_archive() {  # tag name out
  skopeo --insecure-policy copy --quiet "oci:$LAYOUT:$1" "docker-archive:$3.tmp:$2"
  mv "$3.tmp" "$3"
}

add_layer() {  # image layer.tar description [--tag new]
  # A history entry per layer: tools that pair history with layers get confused without one.
  umoci raw add-layer --image "$1" --history.created 2000-01-01T00:00:00Z --history.created_by "$3" \
    "${@:4}" "$2"
}

common_config=(
  --os linux --architecture amd64 --created 2000-01-01T00:00:00Z
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --config.workingdir /
)

# Each build_* sets ARCHIVE and KEY for its image; the archive is only rebuilt when KEY changes.
build_pause() {
  local src dir
  src="$(go env GOMODCACHE)/k8s.io/kubernetes@$K8S_VERSION/build/pause/linux/pause.c"
  if [ ! -f "$src" ]; then
    log "downloading k8s.io/kubernetes@$K8S_VERSION for pause.c"
    (cd "$IMG_CACHE" && GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@$K8S_VERSION")
  fi
  KEY=$(printf '%s\n' "$(hash_paths "$src" "$0" "$here/images/names.sh")" "$PAUSE_IMAGE" | sha256sum | cut -c1-16)
  ARCHIVE="$IMG_CACHE/pause-$KEY.tar"
  [ -f "$ARCHIVE" ] && return 0
  BUILT=1
  mktmp; dir=$TMP
  mkdir "$dir/layer"
  # Static, so the image needs nothing but this one file (the upstream image is built the same way).
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-fastrollout" -o "$dir/layer/pause" "$src"
  strip "$dir/layer/pause"
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@946684800 -C "$dir/layer" -cf "$dir/layer.tar" .
  umoci new --image "$LAYOUT:pause"
  add_layer "$LAYOUT:pause" "$dir/layer.tar" "gcc -static pause.c"
  umoci config --no-history --image "$LAYOUT:pause" "${common_config[@]}" \
    --config.entrypoint /pause --config.user 65535:65535
  export_archive pause "$PAUSE_IMAGE" "$ARCHIVE"
}

# The fastrollout package as a layer: only the package directory, so tests and docs don't churn it.
package_layer() {  # stage_dir
  mkdir -p "$1/$SITE"
  cp -r "$repo/operator/fastrollout" "$1/$SITE/"
  find "$1/$SITE/fastrollout" -name __pycache__ -prune -exec rm -rf {} +
}

build_worker() {
  local base dir
  base_tag
  base=$BASE_TAG
  KEY=$(printf '%s\n' "$base" "$(hash_paths "$repo/operator/fastrollout" "$0" "$here/images/names.sh")" \
    "$WORKER_IMAGE" | sha256sum | cut -c1-16)
  ARCHIVE="$IMG_CACHE/worker-$KEY.tar"
  [ -f "$ARCHIVE" ] && return 0
  BUILT=1
  mktmp; dir=$TMP
  package_layer "$dir/app"
  make_layer "$dir/app" "$dir/app.tar"
  add_layer "$LAYOUT:$base" "$dir/app.tar" "fastrollout package" --tag worker
  umoci config --no-history --image "$LAYOUT:worker" "${common_config[@]}" \
    --config.env PYTHONUNBUFFERED=1 --config.env PYTHONDONTWRITEBYTECODE=1 --config.env HOME=/home/nonroot \
    --config.entrypoint python3 --config.entrypoint -m --config.entrypoint fastrollout.worker \
    --config.user 65532:65532
  export_archive worker "$WORKER_IMAGE" "$ARCHIVE"
}

# The operator's runtime dependencies as read from pyproject.toml, one per line.
operator_deps() {
  python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$repo/pyproject.toml"
}

# Tag opdeps-<key>: base + the dependencies' wheels. Keyed by the dependency list, so code changes
# only rebuild the small package layer on top.
opdeps_tag() {  # sets DEPS_TAG
  local base deps key tag dir t0
  base_tag
  base=$BASE_TAG
  deps=$(operator_deps)
  key=$(printf '%s\n' "$base" "$deps" "$IMAGE_PYTHON_VERSION" | sha256sum | cut -c1-16)
  tag="opdeps-$key"
  DEPS_TAG=$tag
  if ! umoci stat --image "$LAYOUT:$tag" >/dev/null 2>&1; then
    t0=$(now_ms)
    mktmp; dir=$TMP
    log "pip: operator dependencies for cp${IMAGE_PYTHON_VERSION/./} manylinux"
    # Wheels only, for the image's interpreter and glibc (bookworm: 2.36), not the host's.
    local -a reqs
    mapfile -t reqs <<<"$deps"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --no-warn-conflicts --no-compile \
      --target "$dir/deps/$SITE" --implementation cp --python-version "$IMAGE_PYTHON_VERSION" \
      --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --only-binary=:all: \
      "${reqs[@]}"
    # Console scripts pip wrote point at the host's interpreter; the image has its own entrypoint.
    rm -rf "$dir/deps/$SITE/bin"
    make_layer "$dir/deps" "$dir/deps.tar"
    add_layer "$LAYOUT:$base" "$dir/deps.tar" "pip: operator dependencies" --tag "$tag"
    log "operator dependencies layer: $(du -h "$dir/deps.tar" | cut -f1) in $(secs_since "$t0")"
  fi
}

build_operator() {
  local deps dir
  opdeps_tag
  deps=$DEPS_TAG
  KEY=$(printf '%s\n' "$deps" "$(hash_paths "$repo/operator/fastrollout" "$0" "$here/images/names.sh" \
    "$here/images/fastrollout")" "$OPERATOR_IMAGE" | sha256sum | cut -c1-16)
  ARCHIVE="$IMG_CACHE/operator-$KEY.tar"
  [ -f "$ARCHIVE" ] && return 0
  BUILT=1
  mktmp; dir=$TMP
  package_layer "$dir/app"
  install -D -m 0755 "$here/images/fastrollout" "$dir/app/usr/local/bin/fastrollout"
  make_layer "$dir/app" "$dir/app.tar"
  add_layer "$LAYOUT:$deps" "$dir/app.tar" "fastrollout package + fastrollout command" --tag operator
  umoci config --no-history --image "$LAYOUT:operator" "${common_config[@]}" \
    --config.env PYTHONUNBUFFERED=1 --config.env PYTHONDONTWRITEBYTECODE=1 --config.env HOME=/home/nonroot \
    --config.entrypoint fastrollout --config.entrypoint run --config.user 65532:65532
  export_archive operator "$OPERATOR_IMAGE" "$ARCHIVE"
}

# containerd normalizes names the docker way: "a/b:t" is stored as "docker.io/a/b:t".
full_ref() {
  local n=$1 first=${1%%/*}
  if [[ $n != */* ]]; then n="docker.io/library/$n"
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then n="docker.io/$n"; fi
  echo "$n"
}

containerd_address() {
  if [ -n "${CONTAINERD_ADDRESS:-}" ]; then echo "$CONTAINERD_ADDRESS"
  elif [ -S "$STATE/realnode/containerd.sock" ]; then echo "$STATE/realnode/containerd.sock"
  elif [ -S /run/containerd/containerd.sock ]; then echo /run/containerd/containerd.sock
  fi
}

# The checkout's own name of an image: <name>-<input hash>, e.g. fastrollout/operator:dev-3b2d420a4d350be4.
own_ref() {  # name key
  echo "$1-$2"
}

import_image() {  # address name key archive
  local addr=$1 ref own listed
  ref=$(full_ref "$2")
  own=$(full_ref "$(own_ref "$2" "$3")")
  # A filter, not grep on `ctr images ls`: its table truncates label values.
  listed=$(ctr -a "$addr" -n k8s.io images ls -q "name==$own" 2>/dev/null || true)
  if [ "$listed" = "$own" ]; then
    log "$own: already in containerd"
  else
    # The archive carries the shared name; give it the own name at once. Every images.sh holds the
    # cache lock (main) from build to here, so no other checkout's import comes between the two.
    ctr -a "$addr" -n k8s.io images import "$4" >/dev/null
    ctr -a "$addr" -n k8s.io images tag --force "$ref" "$own" >/dev/null
    ctr -a "$addr" -n k8s.io images label "$own" "fastrollout.test/input=$3" >/dev/null
    log "$own: imported"
  fi
  # The shared name follows the checkout that imported last (tests/demo.sh and hand-run pods use it).
  listed=$(ctr -a "$addr" -n k8s.io images ls -q "name==$ref,labels.\"fastrollout.test/input\"==$3" 2>/dev/null || true)
  if [ "$listed" != "$ref" ]; then
    ctr -a "$addr" -n k8s.io images tag --force "$own" "$ref" >/dev/null
    ctr -a "$addr" -n k8s.io images label "$ref" "fastrollout.test/input=$3" >/dev/null
    log "$ref: now $own"
  fi
}

main() {
  local mode=auto images=() addr img t0 t1 name
  case "${1:-}" in build | import | ref) mode=$1; shift ;; -h | --help) sed -n '2,25p' "$0"; exit 0 ;; esac
  images=("$@")
  [ ${#images[@]} -gt 0 ] || images=(pause worker operator)
  for img in "${images[@]}"; do
    case $img in pause | worker | operator) ;; *) die "unknown image '$img' (pause worker operator)" ;; esac
  done
  [ "$mode" != ref ] || [ ${#images[@]} -eq 1 ] || die "ref takes one image (pause worker operator)"
  t0=$(now_ms)
  ensure_tools
  mkdir -p "$IMG_CACHE"
  # One build at a time per cache: they share the layout and its tags.
  exec 9>"$IMG_CACHE/.lock"
  flock 9
  [ -f "$LAYOUT/index.json" ] || umoci init --layout "$LAYOUT"
  declare -A archive_of key_of
  for img in "${images[@]}"; do
    t1=$(now_ms)
    "build_$img"
    archive_of[$img]=$ARCHIVE
    key_of[$img]=$KEY
    log "$img: $(basename "$ARCHIVE") ($(du -h "$ARCHIVE" | cut -f1)) in $(secs_since "$t1")"
    # Keep the current archive of each image and the two newest others: checkouts sharing this cache
    # (worktrees, a CI clone) then find theirs again instead of rebuilding each other's in turn.
    touch "$ARCHIVE"
    find "$IMG_CACHE" -maxdepth 1 -name "$img-*.tar" -printf '%T@ %p\n' | sort -rn | tail -n +4 \
      | cut -d' ' -f2- | xargs -r rm -f
  done
  # Drop blobs no tag references any more (old app layers); ~2 s, so only after a build.
  [ "$BUILT" = 1 ] && umoci gc --layout "$LAYOUT"
  addr=$(containerd_address)
  if [ -z "$addr" ]; then
    case $mode in
      import | ref) die "no containerd socket (start tests/cluster/realnode.sh up, or set CONTAINERD_ADDRESS)" ;;
    esac
    log "no containerd running: built only (realnode.sh up imports them); total $(secs_since "$t0")"
    return 0
  fi
  if [ "$mode" != build ]; then
    for img in "${images[@]}"; do
      t1=$(now_ms)
      case $img in pause) name=$PAUSE_IMAGE ;; worker) name=$WORKER_IMAGE ;; operator) name=$OPERATOR_IMAGE ;; esac
      import_image "$addr" "$name" "${key_of[$img]}" "${archive_of[$img]}"
      log "$img: import step $(secs_since "$t1")"
    done
  fi
  log "done in $(secs_since "$t0")"
  if [ "$mode" = ref ]; then own_ref "$name" "${key_of[${images[0]}]}"; fi
}

main "$@"
