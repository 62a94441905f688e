# Names of the locally built images; sourced by images.sh, realnode.sh and tests (not executable).
# Its variables are read by the scripts that source it (SC2034 cannot see them).
# shellcheck shell=bash disable=SC2034
# The pause image is built from pause.c of the pinned Kubernetes module; containerd's sandbox_image must
# be exactly this name. "localhost/" marks it as never pullable: if it were ever missing, containerd
# fails fast against localhost instead of reaching out to a public registry.
PAUSE_IMAGE=${PAUSE_IMAGE:-localhost/fastrollout/pause:k8s-${K8S_VERSION:?source versions.sh first}}
# containerd stores these as docker.io/fastrollout/...; pods name them as written and use
# imagePullPolicy: Never (there is no registry to pull from).
WORKER_IMAGE=${WORKER_IMAGE:-fastrollout/worker:dev}
OPERATOR_IMAGE=${OPERATOR_IMAGE:-fastrollout/operator:dev}
# Debian's python3 in the image; pip installs the operator's wheels for this version.
IMAGE_PYTHON_VERSION=3.11
IMAGE_SUITE=bookworm
