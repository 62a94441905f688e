#!/usr/bin/env bash
# The whole benchmark and its report in one command: every system (fastrollout 100%, 25%, without a
# Service, and with cutover ServiceSelector plus its rollback inside the window; Deployment 25%/25% and
# 100%/0) at N = 100 and 1,000 (3 runs each) and
# 4,000 (2 runs), at stock and raised controller-manager/scheduler QPS, then the operator's cost at 10,000
# pods, then bench/results/{summary.md,results.json,*.png}. About 3 hours on 2 cores. Each step starts
# (or reuses) the benchmark's own test bed in /tmp/fr-bench, beside any other bed; it is stopped at the end.
# New runs are added to bench/results/runs/ and the report is made from all of them (medians over runs):
# move old runs aside first for a report of this sweep alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export FASTROLLOUT_STATE=/tmp/fr-bench
trap 'tests/cluster/down.sh' EXIT

all=fastrollout,fastrollout-selector,fastrollout-selector-rollback,fastrollout-nosvc,fastrollout-25,deploy-25-25,deploy-100-0
python bench/rollout.py --state "$FASTROLLOUT_STATE" --n 100,1000 --repeat 3 --qps stock,raised --systems "$all"
python bench/rollout.py --state "$FASTROLLOUT_STATE" --n 4000 --repeat 2 --qps stock,raised --systems "$all"
python bench/operator_cost.py --state "$FASTROLLOUT_STATE"
python bench/report.py
