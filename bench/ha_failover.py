"""Leader failover, repeated: how long a rollout stands still when the leading operator is SIGKILLed,
and whether any action happens twice.

    python bench/ha_failover.py                     # 20 kill tests on the bed FASTROLLOUT_STATE names
    python bench/ha_failover.py --repeats 4 --out /tmp/ha.json

Each repeat is `tests/integration/test_ha.py::test_leader_killed_mid_rollout` in a fresh namespace: two
operator processes with leader election (4 s lease, 3 s renew deadline, 1 s retry), a v1 -> v2 rollout,
the leader killed right after it created v2's ReplicaSet (even repeats) or right after the cutover's
collection delete (odd repeats). Failover is the kill -> the first status write by the new leader, as
the FastRollout's watch delivers it; duplicates count ReplicaSet creates (watch ADDED events and log
lines of both processes), collection deletes (log lines) and events posted twice. CI runs the same test
with FASTROLLOUT_HA_REPEATS=2. Results print as a table and go to bench/results/ha_failover.json.
Use a bed of your own for long runs (FASTROLLOUT_STATE=... FASTROLLOUT_PORT_OFFSET=... up.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/integration/test_ha.py::test_leader_killed_mid_rollout"


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pure: the figures of a list of kill-test results (one dict per repeat)."""
    failovers = sorted(r["failover_seconds"] for r in results)
    return {
        "repeats": len(results),
        "lease_seconds": results[0]["lease_seconds"] if results else None,
        "failover_seconds": {
            "min": failovers[0] if failovers else None,
            "median": statistics.median(failovers) if failovers else None,
            "max": failovers[-1] if failovers else None,
        },
        "duplicate_actions": sum(r["duplicates"] for r in results),
        "by_kill_point": {
            point: sorted(r["failover_seconds"] for r in results if r["kill_point"] == point)
            for point in sorted({r["kill_point"] for r in results})
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ha_failover.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "results.jsonl"
        env = dict(os.environ, FASTROLLOUT_HA_REPEATS=str(args.repeats), FASTROLLOUT_HA_RESULTS=str(lines))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "operator"), env.get("PYTHONPATH", "")) if p
        )
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"],
            cwd=REPO,
            env=env,
            check=False,
        )
        elapsed = time.monotonic() - started
        results = [json.loads(line) for line in lines.read_text().splitlines()] if lines.exists() else []
    summary = {**summarize(results), "pytest_exit": proc.returncode, "wall_seconds": round(elapsed, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "results": results}, indent=1) + "\n")
    print(f"{'repeat':>6} {'kill point':<17} {'failover s':>10} {'duplicates':>10}")
    for r in results:
        print(f"{r['attempt']:>6} {r['kill_point']:<17} {r['failover_seconds']:>10.2f} {r['duplicates']:>10}")
    print(json.dumps(summary, indent=1))
    return 0 if proc.returncode == 0 and len(results) == args.repeats else 1


if __name__ == "__main__":
    raise SystemExit(main())
