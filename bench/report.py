"""Regenerates bench/results/: results.json (raw), summary.md (tables, ECS MODEL rows, targets), plots.

    python bench/report.py                     # every bench/results/runs/*.json
    python bench/report.py --runs a.json,b.json

Measured rows come from bench/rollout.py and bench/operator_cost.py runs; ECS rows are computed here by
bench/ecs_model.py with the same N, start and drain times and are labelled MODEL everywhere.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import ecs_model
from bench.analysis import Spread, analyze, spread

RESULTS = Path(__file__).resolve().parent / "results"
SYSTEM_ORDER = (
    "fastrollout",
    "fastrollout-selector",
    "fastrollout-nosvc",
    "fastrollout-25",
    "deploy-25-25",
    "deploy-100-0",
)
SELECTOR_SYSTEMS = ("fastrollout-selector", "fastrollout-selector-rollback")
SYSTEM_LABEL = {
    "fastrollout": "fastrollout (maxSurge 100%)",
    "fastrollout-selector": "fastrollout (100%, cutover ServiceSelector)",
    "fastrollout-selector-rollback": "fastrollout ServiceSelector, rollback inside the window",
    "fastrollout-nosvc": "fastrollout (100%, no serviceName)",
    "fastrollout-25": "fastrollout (maxSurge 25%)",
    "deploy-25-25": "Deployment 25%/25%",
    "deploy-100-0": "Deployment 100%/0",
}
QPS_ORDER = ("stock", "raised")
ECS_PRESETS = ("default", "tuned")
MODEL = "MODEL"

# Targets of issue 5
TARGET_RATIO_VS_DEPLOYMENT = 0.6
TARGET_CUTOVER_NO_SERVICE_S = 2.0
TARGET_CUTOVER_SERVICE_S = 5.0
TARGET_PEAK_RSS_MB = 300.0
TARGET_EVENT_P99_S = 1.0
TARGET_ECS_FACTOR = 10.0

# Targets of issue 10 (strategy.cutover ServiceSelector)
TARGET_SELECTOR_CUTOVER_S = {"stock": 3.0, "raised": 2.0}
TARGET_SELECTOR_RATIO = 2.0  # cutover at N = 4,000 / at N = 100
TARGET_ROLLBACK_S = 3.0  # rollback inside the window at N = 4,000


@dataclass
class Row:
    system: str
    n: int
    qps: str
    qps_settings: Mapping[str, int]
    runs: int
    new_ready: Spread
    traffic_stopped: Spread
    drained: Spread
    writes: Spread
    control_writes: Spread
    cutover: Spread
    cutover_excl_delete: Spread  # cutover minus the DeleteCollection's own duration (apiserver)
    dipped: int  # runs whose ready capacity went below N
    min_capacity: int
    below_n_s: float  # longest time below N in one run
    load: float | None = None  # highest 1-min load average seen around these runs (shared machine)

    def settings(self) -> str:
        s = self.qps_settings
        return f"{self.qps} (kcm {s.get('KCM_QPS')}/{s.get('KCM_BURST')}, sched {s.get('SCHED_QPS')}/{s.get('SCHED_BURST')})"


def _key(system: str) -> int:
    return SYSTEM_ORDER.index(system) if system in SYSTEM_ORDER else len(SYSTEM_ORDER)


def rows_from_runs(runs: Iterable[Mapping[str, Any]]) -> list[Row]:
    """One row per (system, N, QPS setting): median and min-max over the repeats (rollbacks inside the
    window are not rollouts from scratch: they have their own table)."""
    groups: dict[tuple[str, int, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("kind") == "rollback":
            continue
        groups[(r["system"], int(r["n"]), r["qps"])].append(r)
    rows = []
    for (system, n, qps), rs in groups.items():
        times = [r["times"] for r in rs]
        rows.append(
            Row(
                system=system,
                n=n,
                qps=qps,
                qps_settings=rs[0].get("qps_settings") or {},
                runs=len(rs),
                new_ready=spread(t["new_ready_s"] for t in times),
                traffic_stopped=spread(t["traffic_stopped_s"] for t in times),
                drained=spread(t["drained_s"] for t in times),
                writes=spread(float(r["writes"]["total"]) for r in rs),
                control_writes=spread(float(r["writes"]["control"]) for r in rs),
                cutover=spread(t.get("cutover_latency_s") for t in times)
                if system.startswith("fastrollout")
                else Spread(None, None, None, 0, 0),
                cutover_excl_delete=spread(_excl_delete(t) for t in times)
                if system.startswith("fastrollout") and system not in SELECTOR_SYSTEMS
                else Spread(None, None, None, 0, 0),
                dipped=sum(1 for t in times if t["capacity_dipped"]),
                min_capacity=min(int(t["min_ready_capacity"]) for t in times),
                below_n_s=max(float(t["capacity_below_n_s"]) for t in times),
                load=max(
                    (max(r["loadavg_before_after"]) for r in rs if r.get("loadavg_before_after")),
                    default=None,
                ),
            )
        )
    qps_rank = {q: i for i, q in enumerate(QPS_ORDER)}
    rows.sort(key=lambda r: (r.n, qps_rank.get(r.qps, 9), _key(r.system)))
    return rows


def _excl_delete(t: Mapping[str, Any]) -> float | None:
    keys = ("cutover_latency_s", "cutover_started_s", "all_old_terminating_s")
    if any(t.get(k) is None for k in keys):
        return None
    return float(t["cutover_latency_s"]) - (float(t["all_old_terminating_s"]) - float(t["cutover_started_s"]))


def find(rows: Sequence[Row], system: str, n: int, qps: str) -> Row | None:
    return next((r for r in rows if (r.system, r.n, r.qps) == (system, n, qps)), None)


# --- ECS model ---------------------------------------------------------------------------------------------


def ecs_results(
    ns: Iterable[int], start_s: float, drain_s: float
) -> dict[tuple[int, str], ecs_model.EcsResult]:
    presets = {"default": ecs_model.defaults, "tuned": ecs_model.tuned}
    return {
        (n, name): ecs_model.simulate(n, start_s, drain_s, presets[name]())
        for n in ns
        for name in ECS_PRESETS
    }


# --- targets -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS | FAIL | NOT RUN
    detail: str

    def line(self) -> str:
        return f"{self.status}: {self.name} — {self.detail}"


def check_targets(
    rows: Sequence[Row],
    ecs: Mapping[tuple[int, str], ecs_model.EcsResult],
    cost: Mapping[str, Any] | None,
    big_n: int = 4000,
) -> list[Check]:
    checks = []
    fr = find(rows, "fastrollout", big_n, "stock")
    dep = find(rows, "deploy-25-25", big_n, "stock")
    name = f"N={big_n}, stock QPS: fastrollout traffic-stopped <= {TARGET_RATIO_VS_DEPLOYMENT}x Deployment 25%/25%"
    if fr is None or dep is None or fr.traffic_stopped.median is None or dep.traffic_stopped.median is None:
        checks.append(Check(name, "NOT RUN", f"no N={big_n} stock runs of both systems"))
    else:
        ratio = fr.traffic_stopped.median / dep.traffic_stopped.median
        checks.append(
            Check(
                name,
                "PASS" if ratio <= TARGET_RATIO_VS_DEPLOYMENT else "FAIL",
                f"{fr.traffic_stopped.median:.1f} s vs {dep.traffic_stopped.median:.1f} s = {ratio:.2f}x "
                f"(medians of {fr.runs} and {dep.runs} runs)",
            )
        )
    for system, limit, what in (
        ("fastrollout", TARGET_CUTOVER_SERVICE_S, "with a Service"),
        ("fastrollout-nosvc", TARGET_CUTOVER_NO_SERVICE_S, "without a Service"),
    ):
        name = f"cutover latency (minReadyPercent reached -> TrafficStopped in status) <= {limit:g} s {what}, every N"
        got = [r for r in rows if r.system == system and r.cutover.high is not None]
        if not got:
            checks.append(Check(name, "NOT RUN", f"no {system} runs"))
            continue
        worst = max(got, key=lambda r: r.cutover.high or 0.0)
        per = ", ".join(f"N={r.n} {r.qps} {r.cutover.fmt(2)} s" for r in got)
        ok = all((r.cutover.high or 0.0) <= limit for r in got)
        excl = [r.cutover_excl_delete.high for r in got if r.cutover_excl_delete.high is not None]
        share = (
            f"; without the apiserver's DeleteCollection time, worst {max(excl):.2f} s"
            f" ({'within' if max(excl) <= limit else 'over'} {limit:g} s)"
            if excl
            else ""
        )
        checks.append(
            Check(
                name,
                "PASS" if ok else "FAIL",
                f"worst {worst.cutover.high:.2f} s (N={worst.n} {worst.qps}){share}; {per}",
            )
        )
    if cost is None:
        checks.append(
            Check("operator at 10,000 pods: peak RSS, event-to-status p99", "NOT RUN", "no cost run")
        )
    else:
        pods = cost.get("pods")
        rss = cost.get("peak_rss_mib")
        if rss is None and cost.get("rss_samples"):
            rss = max(kib for _, kib in cost["rss_samples"]) / 1024  # sampled every 0.5 s (cut-short run)
        name = f"operator peak RSS <= {TARGET_PEAK_RSS_MB:g} MB at {pods} managed pods"
        if rss is None:
            checks.append(Check(name, "NOT RUN", "cost run did not finish"))
        else:
            mb = rss * 1.048576
            checks.append(
                Check(
                    name,
                    "PASS" if mb <= TARGET_PEAK_RSS_MB else "FAIL",
                    f"{mb:.0f} MB ({rss:.0f} MiB, VmHWM)",
                )
            )
        probes = (cost.get("probes") or {}).get("event_to_status_s") or {}
        name = f"event-to-status p99 <= {TARGET_EVENT_P99_S:g} s at {pods} managed pods"
        p99 = probes.get("p99")
        if p99 is None:
            checks.append(Check(name, "NOT RUN", "no probes"))
        else:
            p50 = probes.get("p50")
            checks.append(
                Check(
                    name,
                    "PASS" if p99 <= TARGET_EVENT_P99_S else "FAIL",
                    f"p99 {p99:.3f} s, p50 {p50:.3f} s over {probes.get('count')} probes "
                    f"(pod or endpoint change -> status shows both)",
                )
            )
    model = ecs.get((big_n, "default"))
    for qps in QPS_ORDER:
        name = (
            f"N={big_n}, {qps} QPS: fastrollout >= {TARGET_ECS_FACTOR:g}x faster than the ECS default MODEL "
            "(traffic-stopped vs COMPLETED)"
        )
        row = find(rows, "fastrollout", big_n, qps)
        if row is None or row.traffic_stopped.median is None or model is None:
            checks.append(Check(name, "NOT RUN", f"no N={big_n} fastrollout run at {qps} QPS"))
            continue
        factor = model.completed_s / row.traffic_stopped.median
        checks.append(
            Check(
                name,
                "PASS" if factor >= TARGET_ECS_FACTOR else "FAIL",
                f"MODEL {model.completed_s:.0f} s / measured {row.traffic_stopped.median:.1f} s = {factor:.1f}x",
            )
        )
    return checks


# --- rendering ----------------------------------------------------------------------------------------------


def _s(x: Spread, digits: int = 1) -> str:
    return x.fmt(digits)


def table(rows: Sequence[Row], ecs: Mapping[tuple[int, str], ecs_model.EcsResult]) -> list[str]:
    out = [
        "| system | N | QPS setting (controller-manager, scheduler) | runs | new ready (s) | traffic stopped (s) | "
        "all old gone (s) | API writes | writes excl. bindings+kubelet status | capacity below N | cutover (s) | load |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    ns = sorted({r.n for r in rows})
    for n in ns:
        for r in [r for r in rows if r.n == n]:
            dip = (
                "no"
                if r.dipped == 0
                else f"yes in {r.dipped}/{r.runs} (min {r.min_capacity}, up to {r.below_n_s:.1f} s)"
            )
            out.append(
                f"| {SYSTEM_LABEL.get(r.system, r.system)} | {r.n:,} | {r.settings()} | {r.runs} | "
                f"{_s(r.new_ready)} | {_s(r.traffic_stopped)} | {_s(r.drained)} | {_s(r.writes, 0)} | "
                f"{_s(r.control_writes, 0)} | {dip} | {_s(r.cutover, 2) if r.system.startswith('fastrollout') else ''} | "
                f"{'' if r.load is None else f'{r.load:.1f}'} |"
            )
        for preset in ECS_PRESETS:
            m = ecs.get((n, preset))
            if m is None:
                continue
            out.append(
                f"| **{MODEL}** ECS rolling ({preset}) | {n:,} | {MODEL}: 200%/100%, launch 500/min | {MODEL} | "
                f"{m.all_new_healthy_s:.0f} | {m.traffic_stopped_s:.0f} | {m.all_old_stopped_s:.0f} "
                f"(COMPLETED {m.completed_s:.0f}) | {MODEL} | | no ({MODEL}) | | |"
            )
    return out


def cutover_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where fastrollout's cutover time goes: operator reaction, the API's delete, endpoint update, status."""
    groups: dict[tuple[int, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["system"].startswith("fastrollout") and r["system"] not in SELECTOR_SYSTEMS:
            groups[(int(r["n"]), r["qps"], r["system"])].append(r["times"])

    out = [
        "| system | N | QPS | all new Ready -> an old pod terminating (operator reaction + scale/delete call) "
        "| -> all old terminating (collection delete) | all old terminating -> no old ready endpoint "
        "(EndpointSlice controller) | -> status TrafficStopped (operator sees it, writes status) | total cutover |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    qps_rank = {q: i for i, q in enumerate(QPS_ORDER)}
    for (n, qps, system), ts in sorted(
        groups.items(), key=lambda kv: (kv[0][0], qps_rank.get(kv[0][1], 9), _key(kv[0][2]))
    ):
        out.append(
            f"| {SYSTEM_LABEL.get(system, system)} | {n:,} | {qps} | "
            f"{_d(ts, 'min_ready_percent_s', 'cutover_started_s')} | "
            f"{_d(ts, 'cutover_started_s', 'all_old_terminating_s')} | "
            f"{_d(ts, 'all_old_terminating_s', 'traffic_stopped_s')} | "
            f"{_d(ts, 'traffic_stopped_s', 'status_traffic_stopped_s')} | "
            f"{_d(ts, 'min_ready_percent_s', 'status_traffic_stopped_s')} |"
        )
    return out


def _d(ts: Sequence[Mapping[str, Any]], a: str, b: str) -> str:
    """Median (min-max) of t[b] - t[a] over the runs that have both."""
    vals = [t[b] - t[a] for t in ts if t.get(a) is not None and t.get(b) is not None]
    return spread(vals).fmt(2)


def _v(ts: Sequence[Mapping[str, Any]], key: str) -> str:
    return spread(t.get(key) for t in ts).fmt(2)


def selector_cutover_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Where a ServiceSelector cutover's time goes: the operator's pass and its selector patch, the
    EndpointSlice controller swapping the endpoints, the status write; then the old pods' deletion."""
    groups: dict[tuple[int, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        if r["system"] == "fastrollout-selector" and r.get("kind") != "rollback":
            groups[(int(r["n"]), r["qps"])].append(r["times"])
    qps_rank = {q: i for i, q in enumerate(QPS_ORDER)}
    out = [
        "| N | QPS | runs | all new Ready -> Service selector switched (operator pass + patch) "
        "| -> all new endpoints ready, no old one (EndpointSlice controller) "
        "| -> status TrafficStopped (operator sees it, writes status) | total cutover "
        "| status TrafficStopped -> first old pod terminating (margin) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, qps), ts in sorted(groups.items(), key=lambda kv: (kv[0][0], qps_rank.get(kv[0][1], 9))):
        out.append(
            f"| {n:,} | {qps} | {len(ts)} | {_d(ts, 'min_ready_percent_s', 'service_switched_s')} | "
            f"{_d(ts, 'service_switched_s', 'switched_s')} | "
            f"{_d(ts, 'switched_s', 'status_traffic_stopped_s')} | "
            f"{_d(ts, 'min_ready_percent_s', 'status_traffic_stopped_s')} | "
            f"{_d(ts, 'status_traffic_stopped_s', 'first_old_terminating_s')} |"
        )
    return out


def rollback_runs(runs: Iterable[Mapping[str, Any]]) -> dict[tuple[int, str], list[Mapping[str, Any]]]:
    groups: dict[tuple[int, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("kind") == "rollback":
            groups[(int(r["n"]), r["qps"])].append(r)
    qps_rank = {q: i for i, q in enumerate(QPS_ORDER)}
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], qps_rank.get(kv[0][1], 9))))


def rollback_table(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Rollback inside rollbackWindowSeconds: the previous template applied again while its pods are
    still Ready out of the Service. Seconds from that PATCH."""
    out = [
        "| N | QPS setting | runs | -> Service selector switched back | -> EndpointSlices: all previous-version "
        "endpoints ready, none of the left version | -> status Complete, TrafficStopped (previous version) "
        "| ready capacity below N | API writes | forward cutover before it (s) | load |",
        "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for (n, qps), rs in rollback_runs(runs).items():
        ts = [r["times"] for r in rs]
        fwd = [r.get("forward_times") or {} for r in rs]
        dipped = [t for t in ts if t.get("capacity_dipped")]
        dip = (
            "no"
            if not dipped
            else f"yes in {len(dipped)}/{len(ts)} (min {min(int(t['min_ready_capacity']) for t in ts)})"
        )
        s = rs[0].get("qps_settings") or {}
        load = max(
            (max(r["loadavg_before_after"]) for r in rs if r.get("loadavg_before_after")), default=None
        )
        out.append(
            f"| {n:,} | {qps} (kcm {s.get('KCM_QPS')}/{s.get('KCM_BURST')}) | {len(rs)} | "
            f"{_v(ts, 'service_switched_s')} | {_v(ts, 'switched_s')} | "
            f"{_v(ts, 'status_traffic_stopped_s')} | {dip} | "
            f"{spread(float(r['writes']['total']) for r in rs).fmt(0)} | "
            f"{_v(fwd, 'cutover_latency_s')} | {'' if load is None else f'{load:.1f}'} |"
        )
    return out


def check_selector_targets(
    rows: Sequence[Row], runs: Sequence[Mapping[str, Any]], big_n: int = 4000, small_n: int = 100
) -> list[Check]:
    """Issue 10's targets for strategy.cutover ServiceSelector, on the medians."""
    checks = []
    sel = [r for r in rows if r.system == "fastrollout-selector"]
    for qps, limit in TARGET_SELECTOR_CUTOVER_S.items():
        name = f"ServiceSelector cutover (minReadyPercent reached -> TrafficStopped) median <= {limit:g} s at every N, {qps} QPS"
        got = [r for r in sel if r.qps == qps and r.cutover.median is not None]
        if not got:
            checks.append(Check(name, "NOT RUN", f"no fastrollout-selector runs at {qps} QPS"))
            continue
        per = ", ".join(f"N={r.n}: {r.cutover.fmt(2)} s ({r.runs} runs)" for r in got)
        ok = all((r.cutover.median or 0.0) <= limit for r in got)
        missing = {big_n, small_n, 1000} - {r.n for r in got}
        note = f"; not run at N={sorted(missing)}" if missing else ""
        checks.append(Check(name, "PASS" if ok else "FAIL", per + note))
    for qps in QPS_ORDER:
        name = f"ServiceSelector cutover N={big_n:,} / N={small_n} <= {TARGET_SELECTOR_RATIO:g}, {qps} QPS"
        big = find(rows, "fastrollout-selector", big_n, qps)
        small = find(rows, "fastrollout-selector", small_n, qps)
        if big is None or small is None or not big.cutover.median or not small.cutover.median:
            checks.append(Check(name, "NOT RUN", f"no fastrollout-selector runs at N={small_n} and {big_n}"))
            continue
        ratio = big.cutover.median / small.cutover.median
        checks.append(
            Check(
                name,
                "PASS" if ratio <= TARGET_SELECTOR_RATIO else "FAIL",
                f"{big.cutover.median:.2f} s / {small.cutover.median:.2f} s = {ratio:.2f}",
            )
        )
    groups = rollback_runs(runs)
    for qps in QPS_ORDER:
        name = f"rollback inside the window at N={big_n:,}, {qps} QPS: spec change -> status TrafficStopped on the previous version <= {TARGET_ROLLBACK_S:g} s"
        rs = groups.get((big_n, qps))
        if not rs:
            checks.append(Check(name, "NOT RUN", f"no rollback runs at N={big_n} {qps} QPS"))
            continue
        st = spread(r["times"].get("status_traffic_stopped_s") for r in rs)
        sw = spread(r["times"].get("switched_s") for r in rs)
        ok = st.median is not None and st.median <= TARGET_ROLLBACK_S
        checks.append(
            Check(
                name,
                "PASS" if ok else "FAIL",
                f"status {st.fmt(2)} s, EndpointSlices switched {sw.fmt(2)} s ({len(rs)} runs)",
            )
        )
    return checks


def breakdown_table(results: Mapping[tuple[int, str], ecs_model.EcsResult], n: int) -> list[str]:
    out = [
        f"| mechanism ({MODEL}, N={n:,}) | "
        + " | ".join(f"{p}: COMPLETED" for p in ECS_PRESETS)
        + " | "
        + " | ".join(f"{p}: traffic stopped" for p in ECS_PRESETS)
        + " |",
        "|---|" + "---:|" * (2 * len(ECS_PRESETS)),
    ]
    mechs = list(ecs_model.Breakdown().as_dict())
    for mech in mechs:
        cells = [f"{results[(n, p)].completed_breakdown.as_dict()[mech]:.1f}" for p in ECS_PRESETS]
        cells += [f"{results[(n, p)].traffic_stopped_breakdown.as_dict()[mech]:.1f}" for p in ECS_PRESETS]
        out.append(f"| {mech} | " + " | ".join(cells) + " |")
    totals = [f"**{results[(n, p)].completed_s:.1f}**" for p in ECS_PRESETS]
    totals += [f"**{results[(n, p)].traffic_stopped_s:.1f}**" for p in ECS_PRESETS]
    out.append("| total | " + " | ".join(totals) + " |")
    return out


def gap_text(
    rows: Sequence[Row], ecs: Mapping[tuple[int, str], ecs_model.EcsResult], n: int, start_s: float
) -> list[str]:
    """The critical path of the ECS default MODEL beside fastrollout's measured one, part by part."""
    m = ecs.get((n, "default"))
    measured: dict[str, Row] = {}
    for q in QPS_ORDER:
        found = find(rows, "fastrollout", n, q)
        if found is not None and found.traffic_stopped.median is not None:
            measured[q] = found
    if m is None or not measured:
        return []
    b = m.completed_breakdown.as_dict()

    def fr_parts(r: Row) -> tuple[float, float, float]:
        ready = r.new_ready.median or 0.0
        stopped = r.traffic_stopped.median or 0.0
        return max(ready - start_s, 0.0), start_s, stopped - ready

    head = (
        "| critical-path part | ECS default "
        + MODEL
        + " (s) | "
        + " | ".join(f"fastrollout measured, {q} QPS (s)" for q in measured)
        + " |"
    )
    out = [
        f"Critical path to done at N={n:,}: ECS COMPLETED ({MODEL}) vs fastrollout traffic-stopped (measured, median).",
        "",
        head,
        "|---|---:|" + "---:|" * len(measured),
    ]
    parts = {q: fr_parts(r) for q, r in measured.items()}
    lines = [
        (
            "launching all new tasks/pods (ECS: 500 tasks/min quota + placement; k8s: ReplicaSet controller "
            "creates at the controller-manager's client QPS, scheduler binds)",
            b["launch_rate_limit"] + b["placement"],
            [p[0] for p in parts.values()],
        ),
        ("start (same per-pod start delay)", b["task_start"], [p[1] for p in parts.values()]),
        (
            "health-check gating (ECS: 30 s container and ALB check intervals; k8s: readiness as soon as ready)",
            b["health_check_gating"],
            [0.0 for _ in parts],
        ),
        (
            "cutover (ECS: nothing, old tasks are deregistered as new ones turn healthy; fastrollout: "
            "all new Ready -> no old ready endpoint)",
            b["scheduler_reaction"],
            [p[2] for p in parts.values()],
        ),
        (
            "deregistration delay (300 s) — not on fastrollout's path: an endpoint turns not-ready at once",
            b["deregistration_delay"],
            [0.0 for _ in parts],
        ),
        (
            "stop / drain of the last old task — fastrollout reports it (drainingReplicas) but does not wait",
            b["stop_drain"],
            [0.0 for _ in parts],
        ),
        ("waiter poll (15 s)", b["poll"], [0.0 for _ in parts]),
    ]
    for label, ecs_s, fr_s in lines:
        out.append(f"| {label} | {ecs_s:.1f} | " + " | ".join(f"{x:.1f}" for x in fr_s) + " |")
    totals = " | ".join(f"**{r.traffic_stopped.median:.1f}**" for r in measured.values())
    out.append(f"| total | **{m.completed_s:.1f}** | {totals} |")
    out.append("")
    for q, r in measured.items():
        stopped = r.traffic_stopped.median or 1.0
        out.append(
            f"- {q} QPS: the ECS MODEL takes {m.completed_s / stopped:.1f}x as long; "
            f"{b['deregistration_delay'] + b['stop_drain'] + b['poll']:.0f} s of the gap is deregistration, "
            f"drain and poll (completion semantics), {b['health_check_gating']:.0f} s health-check intervals, "
            f"and {b['launch_rate_limit'] + b['placement'] - parts[q][0]:.0f} s launch rate (ECS quota vs "
            "the controller-manager's pod creation rate at this setting)."
        )
    return out


def plot(
    rows: Sequence[Row],
    runs: Sequence[Mapping[str, Any]],
    ecs: Mapping[tuple[int, str], ecs_model.EcsResult],
    out: Path,
) -> list[str]:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    made = []
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, qps in zip(axes, QPS_ORDER, strict=True):
        for system in SYSTEM_ORDER:
            pts = [
                r
                for r in rows
                if r.system == system and r.qps == qps and r.traffic_stopped.median is not None
            ]
            if not pts:
                continue
            xs = [r.n for r in pts]
            ys = [r.traffic_stopped.median for r in pts]
            lo = [(r.traffic_stopped.median or 0) - (r.traffic_stopped.low or 0) for r in pts]
            hi = [(r.traffic_stopped.high or 0) - (r.traffic_stopped.median or 0) for r in pts]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=SYSTEM_LABEL[system])
        ns = sorted({r.n for r in rows})
        for preset, style in zip(ECS_PRESETS, (":", "-."), strict=True):
            ax.plot(
                ns,
                [ecs[(n, preset)].completed_s for n in ns],
                linestyle=style,
                color="grey",
                marker="x",
                label=f"ECS {preset} COMPLETED ({MODEL})",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (pods)")
        ax.set_title(f"time to traffic stopped, {qps} QPS")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds from the spec change (median, min-max)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path = out / "traffic_stopped_vs_n.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path.name)

    big = max((int(r["n"]) for r in runs), default=0)
    chosen = {}
    for r in runs:
        if (
            int(r["n"]) == big
            and r["qps"] == "stock"
            and r["system"] not in chosen
            and r["times"].get("timeline")
        ):
            chosen[r["system"]] = r
    if chosen:
        systems = [s for s in SYSTEM_ORDER if s in chosen]
        fig, axes = plt.subplots(len(systems), 1, figsize=(11, 2.6 * len(systems)), sharex=True)
        if len(systems) == 1:
            axes = [axes]
        for ax, system in zip(axes, systems, strict=True):
            r = chosen[system]
            fields = r["times"]["timeline_fields"]
            tl = r["times"]["timeline"]
            col = {f: i for i, f in enumerate(fields)}
            t = [p[col["t"]] for p in tl]
            for f, label in (
                ("new_ready", "new pods Ready"),
                ("old_serving", "old pods serving (ready endpoint)"),
                ("old_draining", "old pods draining (terminating)"),
                ("ready_capacity", "ready endpoints (capacity)"),
            ):
                ax.plot(
                    t, [p[col[f]] for p in tl], label=label, linestyle="--" if f == "ready_capacity" else "-"
                )
            ts = r["times"]["traffic_stopped_s"]
            if ts is not None:
                ax.axvline(ts, color="k", linestyle=":", linewidth=1)
                ax.text(ts, big * 1.02, f" traffic stopped {ts:.0f} s", fontsize=8)
            ax.set_title(f"{SYSTEM_LABEL[system]}, N={big:,}, stock QPS ({r['name']})", fontsize=9)
            ax.set_ylabel("pods")
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=8, loc="center right")
        axes[-1].set_xlabel("seconds from the spec change")
        fig.tight_layout()
        path = out / f"timeline_n{big}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path.name)
    return made


def load(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], dict[str, Any] | None, list[dict[str, Any]]]:
    """(rollout runs, the newest finished cost run, the raw documents)."""
    runs: list[dict[str, Any]] = []
    cost: dict[str, Any] | None = None
    docs = []
    for p in sorted(paths):
        doc = json.loads(p.read_text())
        doc["file"] = p.name
        docs.append(doc)
        if doc.get("kind") == "rollout":
            runs.extend(doc.get("runs") or [])
        elif doc.get("kind") == "operator_cost" and doc.get("startup_s") is not None:
            cost = doc  # the newest that got past start-up (a cut-short run reports what it measured)
    return runs, cost, docs


def render(
    runs: list[dict[str, Any]],
    cost: dict[str, Any] | None,
    docs: list[dict[str, Any]],
    out: Path,
    plots: bool = True,
) -> str:
    rows = rows_from_runs(runs)
    start = float(runs[0]["start_s"]) if runs else 2.0
    drain = float(runs[0]["drain_s"]) if runs else 20.0
    ns = sorted({r.n for r in rows} | {4000})
    ecs = ecs_results(ns, start, drain)
    big = 4000
    checks = check_targets(rows, ecs, cost, big)
    selector_checks = check_selector_targets(rows, runs, big)
    machine: dict[str, Any] = {}
    for d in docs:
        if d.get("machine"):
            machine = dict(d["machine"])
            break
    out.mkdir(parents=True, exist_ok=True)
    made = plot(rows, runs, ecs, out) if plots and runs else []

    md = ["# fastrollout benchmark results", ""]
    md += [
        "Generated by `python bench/report.py` from `bench/results/runs/*.json`. Measured rows: real "
        "kube-apiserver/controller-manager/scheduler/etcd of the test bed, pods on kwok nodes. "
        f"Rows marked **{MODEL}** are computed by `bench/ecs_model.py` (not a measurement).",
        "",
        f"Machine: {machine.get('nproc')} CPUs ({machine.get('cpu')}), {machine.get('memory_gib')} GiB, "
        f"kernel {machine.get('kernel')}, Kubernetes {machine.get('kubernetes')}, Python {machine.get('python')}. "
        f"Test bed scripts: {json.dumps(machine.get('testbed'))}.",
        "",
        f"Pods: Ready {start:g} s after scheduling (kwok `fastrollout.test/start-delay`), a deleted pod stays "
        f"Terminating {drain:g} s (`fastrollout.test/drain-seconds`), grace 30 s; every system behind its own "
        "Service. Times are seconds from the PATCH that changed the template, measured from watch events "
        "(pods and EndpointSlices, raw JSON) on one clock. Median and (min-max) over the runs.",
        "",
        "- new ready: all N new-version pods Ready. traffic stopped: no EndpointSlice endpoint of an "
        "old-version pod has `ready` true (same rule for every system). all old gone: no old-version pod "
        "left in the API.",
        "- API writes: delta of kube-apiserver `apiserver_request_total` (POST/PUT/PATCH/DELETE/"
        "DELETECOLLECTION/APPLY) on pods, replicasets, deployments, endpointslices, endpoints, fastrollouts, "
        "events between just before the change and 3 s after the last old pod went away; the next column "
        "leaves out the scheduler's bindings and the (simulated) kubelet's status patches, which every "
        "system pays per pod. Leases and auth reviews are excluded.",
        "- capacity below N: whether the count of pods with a ready endpoint ever fell below N (every watch "
        "event is a sample). cutover: fastrollout only, from all new pods Ready (minReadyPercent 100) to "
        "the FastRollout status first showing TrafficStopped (watched). load: the highest 1-minute load "
        "average read before/after these runs (2 CPUs shared with other engineers' test beds; blank where "
        "not recorded).",
        "- Fleets are created once per N (at raised QPS), then each rollout bumps the version of the "
        "steady fleet; the QPS setting in force while timing is the one printed. Systems run one at a "
        "time; the other fleets of the same N sit idle in the cluster.",
        "",
        "## Rollouts",
        "",
        *table(rows, ecs),
        "",
        "## fastrollout cutover, step by step (seconds; median (min-max))",
        "",
        "For maxSurge 25% the last wave's cutover is shown (earlier waves scale the old ReplicaSet down).",
        "",
        *cutover_table(runs),
        "",
        "## Targets (issue 5)",
        "",
        "```",
        *[c.line() for c in checks],
        "```",
        "",
        "## ServiceSelector cutover, step by step (seconds; median (min-max))",
        "",
        "`strategy.cutover: ServiceSelector`: the operator patches the Service's selector key "
        "`fastrollout.io/revision` to the target revision (watched on the Service), the EndpointSlice "
        "controller swaps the endpoints, the operator stamps TrafficStopped; the old pods are deleted "
        "only after that plus a 2 s propagation margin (last column).",
        "",
        *selector_cutover_table(runs),
        "",
        "## Rollback inside rollbackWindowSeconds (seconds from the PATCH; median (min-max))",
        "",
        "Each run: a forward rollout with rollbackWindowSeconds 600 (its cutover in the second-to-last "
        "column), then the previous template applied again while its pods are still Ready out of the "
        "Service. The times come from the same watches as the rollouts: the Service's selector, the "
        "EndpointSlices and the FastRollout's status.",
        "",
        *rollback_table(runs),
        "",
        "## Targets (issue 10)",
        "",
        "```",
        *[c.line() for c in selector_checks],
        "```",
        "",
    ]
    if ecs:
        md += [
            f"## Where the ECS gap comes from ({MODEL}, N={big:,}, start {start:g} s, drain {drain:g} s)",
            "",
        ]
        md += breakdown_table(ecs, big)
        gap_n = big if find(rows, "fastrollout", big, "stock") else max((r.n for r in rows), default=big)
        md += ["", *gap_text(rows, ecs, gap_n, start), ""]
    if cost is not None:
        md += cost_section(cost)
    if made:
        md += ["## Plots", ""] + [f"![{m}]({m})" for m in made] + [""]
    text = "\n".join(md) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(text)
    raw = {
        "runs": runs,
        "operator_cost": cost,
        "sources": [d["file"] for d in docs],
        "machine": machine,
        "ecs_model": {f"{n}-{p}": r.summary() for (n, p), r in ecs.items()},
        "targets": [c.__dict__ for c in checks],
        "targets_issue10": [c.__dict__ for c in selector_checks],
    }
    (out / "results.json").write_text(json.dumps(raw, indent=1) + "\n")
    return text


def cost_section(cost: Mapping[str, Any]) -> list[str]:
    ro = cost.get("rollout") or {}
    probes = cost.get("probes") or {}

    def pq(key: str) -> str:
        p = probes.get(key) or {}
        if p.get("p50") is None:
            return "n/a"
        return f"p50 {p['p50']:.3f} s, p99 {p['p99']:.3f} s, max {p['max']:.3f} s ({p['count']} probes, {p['missing']} missing)"

    return [
        f"## Operator cost ({cost.get('pods'):,} managed pods in {len(cost.get('fleets') or [])} FastRollouts: {cost.get('fleets')})",
        "",
        f"- start-up with all pods present (process start -> child caches synced): {cost.get('startup_s')} s; "
        f"RSS then {cost.get('rss_after_startup_mib')} MiB; CPU {cost.get('cpu_startup_s')} s",
        f"- one {ro.get('n')}-pod rollout at {ro.get('qps_label')}: {ro.get('wall_s')} s wall, operator CPU "
        f"{ro.get('cpu_s')} s ({ro.get('cpu_percent_of_one_core')}% of one core)",
        f"- peak RSS (VmHWM, start-up + rollout + probes): {cost.get('peak_rss_mib')} MiB; at the end "
        f"{cost.get('rss_end_mib')} MiB",
        f"- pod Ready change -> status.readyReplicas: {pq('pod_to_status_s')}",
        f"- endpoint change -> status servingReplicas: {pq('slice_to_status_s')}",
        f"- child event -> status shows both: {pq('event_to_status_s')}",
        f"- (for scale: pod event -> its EndpointSlice change, the controller-manager's part: {pq('pod_to_slice_s')})",
        "",
    ]


def reanalyze(runs: list[dict[str, Any]], events_dir: Path) -> int:
    """Recomputes each run's times from its stored event recording (after a change to bench.analysis)."""
    done = 0
    for r in runs:
        path = events_dir / f"{r['name']}.json.gz"
        if not path.exists():
            continue
        with gzip.open(path, "rt") as f:
            rec = json.load(f)
        step = 1.0 if int(r["n"]) < 4000 else 2.0
        r["times"] = analyze(rec["events"], rec["t0"], rec["target"], int(rec["n"]), 100, step).as_dict()
        done += 1
    return done


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", help="comma-separated run files (default: bench/results/runs/*.json)")
    ap.add_argument("--out", default=str(RESULTS), help="output directory (default bench/results)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument(
        "--reanalyze",
        action="store_true",
        help="recompute every run's times from bench/results/events/ (where recorded) before reporting",
    )
    args = ap.parse_args(argv)
    paths = (
        [Path(p) for p in args.runs.split(",")] if args.runs else sorted((RESULTS / "runs").glob("*.json"))
    )
    runs, cost, docs = load(paths)
    if args.reanalyze:
        print(f"re-analysed {reanalyze(runs, RESULTS / 'events')} of {len(runs)} runs", file=sys.stderr)
        by_name = {p.name: p for p in paths}
        for doc in docs:  # the runs are shared with the documents: store the new times with them
            if doc.get("kind") == "rollout" and doc["file"] in by_name:
                body = {k: v for k, v in doc.items() if k != "file"}
                by_name[doc["file"]].write_text(json.dumps(body, indent=1) + "\n")
    text = render(runs, cost, docs, Path(args.out), plots=not args.no_plots)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
