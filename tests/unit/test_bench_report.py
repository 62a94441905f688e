"""bench/report.py: grouping repeated runs into rows and checking issue 5's targets, on made-up runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report as rp


def run(
    system: str,
    n: int,
    qps: str,
    stopped: float | None,
    cutover: float | None = None,
    dipped: bool = False,
    writes: int = 100,
) -> dict[str, Any]:
    return {
        "name": f"{system}-{n}-{qps}",
        "system": system,
        "n": n,
        "qps": qps,
        "qps_settings": {"KCM_QPS": 20, "KCM_BURST": 30, "SCHED_QPS": 50, "SCHED_BURST": 100},
        "start_s": 2.0,
        "drain_s": 20.0,
        "times": {
            "new_ready_s": 1.0,
            "traffic_stopped_s": stopped,
            "drained_s": 30.0,
            "cutover_latency_s": cutover,
            "capacity_dipped": dipped,
            "min_ready_capacity": n - 1 if dipped else n,
            "capacity_below_n_s": 2.5 if dipped else 0.0,
            "timeline": [[0.0, 0, n, 0, n, n], [1.0, n, 0, n, n, n]],
            "timeline_fields": [
                "t",
                "new_ready",
                "old_serving",
                "old_draining",
                "old_present",
                "ready_capacity",
            ],
        },
        "writes": {"total": writes, "control": writes // 2},
    }


def test_rows_group_repeats_and_sort() -> None:
    runs = [
        run("deploy-25-25", 100, "stock", 30.0, dipped=True),
        run("fastrollout", 100, "stock", 8.0, cutover=1.0),
        run("fastrollout", 100, "stock", 10.0, cutover=1.5),
        run("fastrollout", 100, "stock", 9.0, cutover=1.2),
        run("fastrollout", 100, "raised", 5.0, cutover=1.1),
    ]
    rows = rp.rows_from_runs(runs)
    assert [(r.system, r.qps) for r in rows] == [
        ("fastrollout", "stock"),
        ("deploy-25-25", "stock"),
        ("fastrollout", "raised"),
    ]
    fr = rows[0]
    assert fr.runs == 3
    assert (fr.traffic_stopped.median, fr.traffic_stopped.low, fr.traffic_stopped.high) == (9.0, 8.0, 10.0)
    assert fr.cutover.median == 1.2
    assert fr.dipped == 0
    dep = rows[1]
    assert dep.dipped == 1
    assert dep.min_capacity == 99
    assert dep.cutover.median is None
    assert "kcm 20/30, sched 50/100" in fr.settings()


def test_targets_pass_and_fail_with_numbers() -> None:
    runs = [
        run("fastrollout", 4000, "stock", 250.0, cutover=3.0),
        run("deploy-25-25", 4000, "stock", 450.0),
        run("fastrollout-nosvc", 4000, "stock", 240.0, cutover=2.5),
    ]
    rows = rp.rows_from_runs(runs)
    ecs = rp.ecs_results([4000], 2.0, 20.0)
    cost = {
        "pods": 10000,
        "peak_rss_mib": 200.0,
        "probes": {"event_to_status_s": {"p50": 0.3, "p99": 1.2, "count": 40}},
    }
    checks = rp.check_targets(rows, ecs, cost)
    # 250/450 = 0.56x <= 0.6; cutover 3.0 <= 5 with a Service; 2.5 > 2 without; 200 MiB = 210 MB <= 300;
    # p99 1.2 > 1; ECS 840 / 250 = 3.4x < 10
    assert [c.status for c in checks] == ["PASS", "PASS", "FAIL", "PASS", "FAIL", "FAIL", "NOT RUN"]
    assert "250.0 s vs 450.0 s = 0.56x" in checks[0].detail
    assert "worst 2.50 s" in checks[2].detail
    assert "210 MB" in checks[3].detail
    assert "p99 1.200 s" in checks[4].detail
    assert checks[5].line().startswith("FAIL: N=4000, stock QPS: fastrollout >= 10x")
    assert checks[6].detail == "no N=4000 fastrollout run at raised QPS"


def test_ratio_target() -> None:
    rows = rp.rows_from_runs(
        [run("fastrollout", 4000, "stock", 240.0), run("deploy-25-25", 4000, "stock", 480.0)]
    )
    check = rp.check_targets(rows, rp.ecs_results([4000], 2.0, 20.0), None)[0]
    assert check.status == "PASS"
    assert "240.0 s vs 480.0 s = 0.50x" in check.detail


def test_targets_not_run_without_data() -> None:
    checks = rp.check_targets([], rp.ecs_results([4000], 2.0, 20.0), None)
    assert {c.status for c in checks} == {"NOT RUN"}


def test_ecs_factor_uses_model_completed() -> None:
    rows = rp.rows_from_runs([run("fastrollout", 4000, "stock", 84.0)])
    ecs = rp.ecs_results([4000], 2.0, 20.0)
    check = rp.check_targets(rows, ecs, None)[-2]
    assert check.status == "PASS"
    assert f"MODEL {ecs[(4000, 'default')].completed_s:.0f} s" in check.detail
    assert "= 10.0x" in check.detail


def test_render_writes_summary_and_raw(tmp_path: Path) -> None:
    runs = [
        run("fastrollout", 100, "stock", 8.0, cutover=1.0),
        run("deploy-25-25", 100, "stock", 30.0, dipped=True),
    ]
    docs = [{"file": "x.json", "kind": "rollout", "machine": {"nproc": 2}, "runs": runs}]
    text = rp.render(runs, None, docs, tmp_path, plots=False)
    assert "| fastrollout (maxSurge 100%) | 100 |" in text
    assert "**MODEL** ECS rolling (default)" in text
    assert "yes in 1/1 (min 99, up to 2.5 s)" in text
    raw = json.loads((tmp_path / "results.json").read_text())
    assert len(raw["runs"]) == 2
    assert "100-default" in raw["ecs_model"]
    assert raw["ecs_model"]["100-default"]["label"].startswith("MODEL")


@pytest.mark.parametrize("n", [100, 4000])
def test_gap_text_names_mechanisms(n: int) -> None:
    rows = rp.rows_from_runs([run("fastrollout", n, "stock", 10.0)])
    text = "\n".join(rp.gap_text(rows, rp.ecs_results([n], 2.0, 20.0), n, 2.0))
    for word in (
        "launching all new",
        "health-check gating",
        "deregistration delay",
        "waiter poll",
        "stock QPS",
    ):
        assert word in text
    assert "| total |" in text


def rollback(n: int, qps: str, status_s: float, switched_s: float) -> dict[str, Any]:
    r = run("fastrollout-selector-rollback", n, qps, switched_s, cutover=status_s)
    r["kind"] = "rollback"
    r["times"] |= {
        "status_traffic_stopped_s": status_s,
        "switched_s": switched_s,
        "service_switched_s": 0.2,
    }
    r["forward_times"] = {"cutover_latency_s": 1.5}
    return r


def selector(n: int, qps: str, cutover: float) -> dict[str, Any]:
    r = run("fastrollout-selector", n, qps, 10.0, cutover=cutover)
    r["times"] |= {
        "min_ready_percent_s": 5.0,
        "service_switched_s": 5.5,
        "switched_s": 6.0,
        "status_traffic_stopped_s": 5.0 + cutover,
        "first_old_terminating_s": 8.0 + cutover,
    }
    return r


def test_selector_targets_and_rollback_rows() -> None:
    runs = [
        selector(100, "raised", 1.0),
        selector(4000, "raised", 1.8),
        selector(100, "stock", 1.2),
        selector(4000, "stock", 3.5),
        rollback(4000, "stock", 0.9, 0.4),
        rollback(4000, "stock", 1.1, 0.5),
    ]
    rows = rp.rows_from_runs(runs)
    assert {r.system for r in rows} == {"fastrollout-selector"}  # rollbacks have their own table
    checks = rp.check_selector_targets(rows, runs)
    by_name = {c.name: c for c in checks}
    # stock: 3.5 > 3 s; raised: 1.8 <= 2 s; ratios 3.5/1.2 > 2 and 1.8/1.0 <= 2; rollback 1.0 <= 3 s
    assert [c.status for c in checks] == ["FAIL", "PASS", "FAIL", "PASS", "PASS", "NOT RUN"]
    assert "not run at N=[1000]" in checks[0].detail
    assert "3.50 s / 1.20 s = 2.92" in checks[2].detail
    assert "status 1.00 (0.90-1.10) s" in checks[4].detail
    assert len(by_name) == len(checks)
    table = "\n".join(rp.rollback_table(runs))
    assert "| 4,000 | stock (kcm 20/30) | 2 | 0.20 | 0.45 (0.40-0.50) | 1.00 (0.90-1.10) | no |" in table
    steps = "\n".join(rp.selector_cutover_table(runs))
    assert "| 100 | stock | 1 | 0.50 | 0.50 | 0.20 | 1.20 | 3.00 |" in steps
