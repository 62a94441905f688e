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

# The linter comes from Debian (package shellcheck), installed here the way up.sh installs the bed's
# packages, so a fresh CI machine runs this step. Only where there is no apt-get (or it fails) is it
# skipped, loudly, here and again at the end; FASTROLLOUT_REQUIRE_SHELLCHECK=1 (.ci/run sets it) makes
# that a failure instead.
step "shellcheck: every shell script in the repository"
shellcheck_skipped=false
if ! command -v shellcheck >/dev/null && command -v apt-get >/dev/null; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing shellcheck (apt, first time only)"
  { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends shellcheck \
    || { "${sudo[@]}" apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends shellcheck; }
  } >/dev/null || true
fi
if command -v shellcheck >/dev/null; then
  # Tracked files (git ls-files), so nothing a virtualenv or a cache put in the tree is checked.
  mapfile -t scripts < <(git ls-files -- '*.sh' .ci/run)
  [ ${#scripts[@]} -gt 0 ] || { echo "no shell scripts found: is this a git checkout?" >&2; exit 1; }
  shellcheck -x "${scripts[@]}"
  echo "${#scripts[@]} scripts clean"
elif [ "${FASTROLLOUT_REQUIRE_SHELLCHECK:-0}" = 1 ]; then
  echo "shellcheck is not installed and could not be installed (no apt-get, or it failed)" >&2
  exit 1
else
  shellcheck_skipped=true
  printf '\n!!! WARNING: shellcheck is not installed and there is no working apt-get: the shell scripts\n'
  printf '!!! were NOT CHECKED. Install shellcheck (https://www.shellcheck.net) and rerun.\n'
fi

# The chart tests that render with helm (tests/unit/test_chart.py) use the test bed's own helm: required,
# never skipped, once tests/cluster/build.sh has built it; on a cold cache they run after the bed is up.
helm_bin="$(. tests/cluster/versions.sh && printf %s "$BIN_DIR")/helm"
helm_later=false
if [ -x "$helm_bin" ]; then export HELM="$helm_bin" FASTROLLOUT_REQUIRE_HELM=1; else helm_later=true; fi
# Likewise promtool for the alert rules (tests/unit/test_alerts.py), built by the same build.sh.
promtool_bin="$(. tests/cluster/versions.sh && printf %s "$PROMTOOL_DIR")/promtool"
promtool_later=false
if [ -x "$promtool_bin" ]; then
  export PROMTOOL="$promtool_bin" FASTROLLOUT_REQUIRE_PROMTOOL=1
else
  promtool_later=true
fi

step "unit tests (planner branch coverage must stay >= 90%)"
python -m pytest tests/unit -q --cov=fastrollout --cov-branch --cov-report=term:skip-covered \
  --cov-report=xml:coverage.xml --ignore=tests/unit/plan/test_plan_invariants.py
python -m coverage report --include='operator/fastrollout/plan/*' --fail-under=90

# Apart, without coverage tracing (which makes them 2.5x slower): the seeded CI share of the generated
# scenarios. FASTROLLOUT_FUZZ=long runs the soak profile (tests/unit/plan/test_plan_invariants.py).
step "generated scenarios: every safety invariant after every step (hypothesis)"
python -m pytest tests/unit/plan/test_plan_invariants.py -q -p no:cacheprovider

if $helm_later; then
  printf '\n!!! WARNING: %s is not built yet: the helm chart tests above were SKIPPED (unless\n' "$helm_bin"
  # shellcheck disable=SC2016 # a literal $HELM: the variable's name, for the reader
  printf '!!! $HELM or another cached or installed helm was found).\n'
  if $unit_only; then printf '!!! They run in a full tests/run.sh (or build helm: tests/cluster/build.sh).\n'
  else printf '!!! They run once the test bed is up.\n'; fi
fi
if $shellcheck_skipped; then
  printf '\n!!! WARNING: shellcheck was not installed: the shell scripts were NOT CHECKED (see above).\n'
fi
if $promtool_later; then
  printf '\n!!! WARNING: %s is not built yet: the promtool alert tests above were SKIPPED\n' "$promtool_bin"
  printf "!!! (unless \$PROMTOOL or another cached or installed promtool was found).\n"
  if $unit_only; then printf '!!! They run in a full tests/run.sh (or build it: tests/cluster/build.sh).\n'
  else printf '!!! They run once the test bed is up.\n'; fi
fi
$unit_only && exit 0

step "test bed up (real kube-apiserver, controller-manager, scheduler, etcd, kwok, helm, real node)"
tests/cluster/up.sh --real-node
if [ "${FASTROLLOUT_KEEP_TESTBED:-0}" != 1 ]; then trap 'tests/cluster/down.sh' EXIT; fi

if $helm_later; then
  step "helm chart tests, with the helm the test bed just built (skipped in the unit step)"
  HELM="$helm_bin" FASTROLLOUT_REQUIRE_HELM=1 python -m pytest tests/unit/test_chart.py -q -p no:cacheprovider
fi
if $promtool_later; then
  step "alert rule tests, with the promtool the test bed just built (skipped in the unit step)"
  PROMTOOL="$promtool_bin" FASTROLLOUT_REQUIRE_PROMTOOL=1 \
    python -m pytest tests/unit/test_alerts.py -q -p no:cacheprovider
fi

step "integration and end-to-end tests on the test bed"
python -m pytest tests/integration tests/e2e -q -p no:cacheprovider
