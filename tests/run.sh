#!/usr/bin/env bash
# The project's whole check, as the README and CI run it:
#   static checks -> unit tests (planner branch coverage >= 90%) -> test bed up -> integration tests.
#
#   tests/run.sh            # everything (starts the test bed; builds it the first time: ~10 min cold)
#   tests/run.sh --unit     # static checks and unit tests only, no cluster
# Set FASTROLLOUT_KEEP_TESTBED=1 to leave the test bed running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
unit_only=false
[ "${1:-}" = "--unit" ] && unit_only=true

step() { printf '\n=== %s\n' "$*"; }

step "ruff (lint + format)"
ruff check operator tests bench
ruff format --check operator tests bench

step "mypy --strict"
mypy

step "import-linter: api and plan stay pure"
lint-imports

step "CRD drift: crds/ is what the models render"
python -m fastrollout crd --check crds/fastrollout.io_fastrollouts.yaml

step "unit tests (planner branch coverage must stay >= 90%)"
python -m pytest tests/unit -q --cov=fastrollout --cov-branch --cov-report=term:skip-covered \
  --cov-report=xml:coverage.xml
python -m coverage report --include='operator/fastrollout/plan/*' --fail-under=90

$unit_only && exit 0

step "test bed up (real kube-apiserver, controller-manager, scheduler, etcd, kwok, helm, real node)"
tests/cluster/up.sh --real-node
if [ "${FASTROLLOUT_KEEP_TESTBED:-0}" != 1 ]; then trap 'tests/cluster/down.sh' EXIT; fi

step "integration and end-to-end tests on the test bed"
python -m pytest tests/integration tests/e2e -q -p no:cacheprovider
