"""Operator cost at fleet scale: start-up, memory, CPU per rollout, child-event-to-status latency.

    python bench/operator_cost.py                       # 4,000 + 3 x 2,000 = 10,000 pods
    python bench/operator_cost.py --fleets 2000,2000,2000,2000,2000 --rollout 0

1. Several FastRollouts on kwok nodes (`--fleets`, default 4000,2000,2000,2000) are created and made
   steady by a first operator process (created at `--setup-qps`, default raised).
2. That operator is stopped and a fresh one started with all pods present: start-up time = process
   start -> its child caches report synced (kopf `/healthz` probe `children_synced`, polled every 0.1 s).
3. One rollout of fleet `--rollout` (default the 4,000-pod one) at `--qps` (default raised): the
   operator's CPU seconds (utime + stime from /proc/PID/stat) from the spec change until old pods are
   gone and the status is Complete.
4. `--samples` probes: a ready pod of a steady fleet gets Ready=False (a status patch, as a kubelet
   would write); kwok turns it Ready again `--start` s later. Our watches timestamp the pod event, its
   EndpointSlice endpoint turning not-ready, and the FastRollout status showing one pod fewer ready
   (readyReplicas) and serving (versions[].servingReplicas): event-to-status latency p50 / p99.
5. Peak RSS = VmHWM of the operator process (start-up, rollout and probes included).

Writes bench/results/runs/cost-*.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.analysis import percentile, probe
from bench.cluster import (
    API_VERSION,
    GROUP,
    MERGE_PATCH,
    PLURAL,
    Operator,
    Recorder,
    log,
    qps_label,
    wait_for,
)
from bench.rollout import RESULTS, PodTiming, bump_patch, machine_info, prepared_bed, service, workload

STRATEGIC = "application/strategic-merge-patch+json"


class Cost:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.timing = PodTiming(args.start, args.drain, args.grace)
        self.bed, self.api = prepared_bed(args)
        self.recorder = Recorder(self.api)
        self.recorder.start()
        self.names = [f"f{i}" for i in range(len(args.fleets))]
        # one namespace per fleet, so the recorder's per-namespace state is one fleet's
        self.nss = {name: f"cost-{args.stamp[-6:]}-{name}" for name in self.names}
        self.versions = dict.fromkeys(self.names, 1)
        self.result: dict[str, Any] = {
            "kind": "operator_cost",
            "machine": machine_info(self.api) | {"testbed": self.bed.fingerprint()},
            "args": vars(args),
            "fleets": args.fleets,
            "pods": sum(args.fleets),
        }
        self.out = RESULTS / "runs" / f"cost-{args.stamp}.json"

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.result, indent=1) + "\n")

    def steady(self, name: str, n: int) -> bool:
        version = f"v{self.versions[name]}"
        ns = self.nss[name]
        st = self.recorder.frs.get((ns, name)) or {}
        if st.get("version") != version or st.get("phase") != "Complete":
            return False
        if st.get("readyReplicas") != n or st.get("drainingReplicas"):
            return False
        c = self.recorder.fleet(ns, version).counts()
        return c.old_present == 0 and c.new_ready == n

    def all_steady(self) -> bool:
        return all(self.steady(name, n) for name, n in zip(self.names, self.args.fleets, strict=True))

    def create(self) -> None:
        for name, n in zip(self.names, self.args.fleets, strict=True):
            ns = self.nss[name]
            self.api.ensure_namespace(ns)
            self.api.request("POST", f"/api/v1/namespaces/{ns}/services", service(name))
            path, body = workload("fastrollout", name, n, "v1", self.timing)
            self.api.request("POST", path.format(ns=ns), body)

    def run(self) -> None:
        args = self.args
        first = Operator(self.bed.kubeconfig, RESULTS / "logs" / f"cost-setup-{args.stamp}.log")
        try:
            first.wait_synced()
            self.create()
            wait_for(self.all_steady, 3600, "all fleets steady", 0.5)
            log(f"{sum(args.fleets)} pods steady in {len(args.fleets)} FastRollouts")
            self.result["setup_operator_peak_rss_mib"] = round(first.rss_kib()[1] / 1024, 1)
        finally:
            first.stop()
        time.sleep(2)

        # --- start-up with everything present ---------------------------------------------------
        op = Operator(self.bed.kubeconfig, RESULTS / "logs" / f"cost-{args.stamp}.log")
        rss_samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sample_rss() -> None:
            while not stop.is_set():
                try:
                    rss_samples.append((round(time.time() - op.started, 2), op.rss_kib()[0]))
                except OSError:
                    return
                stop.wait(0.5)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        try:
            startup = op.wait_synced()
            rss, hwm = op.rss_kib()
            self.result["startup_s"] = round(startup, 2)
            self.result["rss_after_startup_mib"] = round(rss / 1024, 1)
            self.result["cpu_startup_s"] = round(op.cpu_seconds(), 2)
            log(f"operator start-up with {sum(args.fleets)} pods: {startup:.2f}s, RSS {rss / 1024:.0f} MiB")
            self.save()
            time.sleep(5)

            # --- one rollout of the big fleet -------------------------------------------------------
            self.bed.up(args.qps)
            time.sleep(args.settle)
            name = self.names[args.rollout]
            n = args.fleets[args.rollout]
            wait_for(self.all_steady, 600, "steady before the rollout", 0.5)
            cpu0 = op.cpu_seconds()
            t0 = time.time()
            self.versions[name] += 1
            ns = self.nss[name]
            path = f"/apis/{GROUP}/{API_VERSION}/namespaces/{ns}/{PLURAL}/{name}"
            self.api.request(
                "PATCH", path, bump_patch("fastrollout", f"v{self.versions[name]}"), content_type=MERGE_PATCH
            )
            wait_for(self.all_steady, args.timeout, f"{name} rollout", 0.2)
            t1 = time.time()
            self.recorder.quiet_for(ns, 3.0, 30)
            cpu1 = op.cpu_seconds()
            self.result["rollout"] = {
                "fleet": name,
                "n": n,
                "qps": args.qps,
                "qps_label": qps_label(args.qps),
                "wall_s": round(t1 - t0, 2),
                "cpu_s": round(cpu1 - cpu0, 2),
                "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / max(t1 - t0, 1e-9), 1),
            }
            log(f"rollout of {n}: {t1 - t0:.1f}s wall, operator CPU {cpu1 - cpu0:.2f}s")
            self.save()

            # --- child-event-to-status probes ---------------------------------------------------------
            self.result["probes"] = self.probes()
            self.save()
            rss, hwm = op.rss_kib()
            self.result["rss_end_mib"] = round(rss / 1024, 1)
            self.result["peak_rss_mib"] = round(hwm / 1024, 1)
            self.result["cpu_total_s"] = round(op.cpu_seconds(), 2)
        finally:
            stop.set()
            op.stop()
            self.result["rss_samples"] = rss_samples
            self.save()
        log(f"peak RSS {self.result.get('peak_rss_mib')} MiB")

    def probes(self) -> dict[str, Any]:
        args = self.args
        rng = random.Random(5)
        samples: list[dict[str, Any]] = []
        for i in range(args.samples):
            k = i % len(self.names)
            name, n = self.names[k], self.args.fleets[k]
            wait_for(lambda name=name, n=n: self.steady(name, n), 60, f"{name} steady")  # type: ignore[misc]
            ns = self.nss[name]
            fleet = self.recorder.fleets.get(ns)
            assert fleet is not None
            version = f"v{self.versions[name]}"
            with self.recorder.lock:
                candidates = [
                    p
                    for p, (v, ready, deleting) in fleet.pods.items()
                    if v == version and ready and not deleting
                ]
            pod = rng.choice(candidates)
            index = len(self.recorder.events.get(ns, []))
            t_write = time.time()
            self.api.request(
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/{pod}/status",
                {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "BenchProbe"}]}},
                content_type=STRATEGIC,
            )
            deadline = time.time() + args.start + 10
            result = probe([], t_write, pod, name, n - 1)
            while time.time() < deadline:
                result = probe(self.recorder.events_since(ns, index), t_write, pod, name, n - 1)
                if result.t_status_ready is not None and result.t_status_serving is not None:
                    break
                time.sleep(0.02)
            samples.append(
                {
                    "fleet": name,
                    "pod": pod,
                    "pod_to_status_s": result.pod_to_status(),
                    "slice_to_status_s": result.slice_to_status(),
                    "event_to_status_s": result.event_to_status(),
                    "write_to_pod_event_s": None if result.t_pod is None else result.t_pod - t_write,
                    "pod_to_slice_s": None
                    if result.t_pod is None or result.t_slice is None
                    else result.t_slice - result.t_pod,
                }
            )
            # kwok turns it Ready again after the start delay; wait for the status to show that too
            wait_for(lambda name=name, n=n: self.steady(name, n), 60, f"{name} recovered")  # type: ignore[misc]
            time.sleep(rng.uniform(0.2, 2.0))
        out: dict[str, Any] = {"samples": samples}
        for key in ("pod_to_status_s", "slice_to_status_s", "event_to_status_s", "pod_to_slice_s"):
            vals = [s[key] for s in samples if s[key] is not None]
            out[key] = {
                "p50": percentile(vals, 50),
                "p99": percentile(vals, 99),
                "max": max(vals) if vals else None,
                "count": len(vals),
                "missing": len(samples) - len(vals),
            }
        log(
            "event-to-status p50/p99: "
            + ", ".join(
                f"{k} {out[k]['p50']}/{out[k]['p99']}" for k in ("pod_to_status_s", "slice_to_status_s")
            )
        )
        return out

    def close(self) -> None:
        self.recorder.stop()
        if not self.args.keep:
            for ns in self.nss.values():
                self.api.empty_namespace(ns)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fleets", default="4000,2000,2000,2000", help="pods per FastRollout")
    ap.add_argument("--rollout", type=int, default=0, help="index of the fleet to roll out (default 0)")
    ap.add_argument("--samples", type=int, default=40, help="event-to-status probes (default 40)")
    ap.add_argument(
        "--qps", default="raised", help="QPS setting during the rollout and probes (default raised)"
    )
    ap.add_argument("--setup-qps", default="raised", help="QPS setting while fleets are created")
    ap.add_argument("--start", type=float, default=3.0, help="pod start delay, s (default 3)")
    ap.add_argument("--drain", type=float, default=20.0, help="drain of a deleted pod, s (default 20)")
    ap.add_argument("--grace", type=int, default=30)
    ap.add_argument("--state", default="/tmp/fr-bench")
    ap.add_argument("--port-offset", type=int, default=200)
    ap.add_argument("--cluster-scripts", default=str(Path(__file__).resolve().parents[1] / "tests/cluster"))
    ap.add_argument("--kwok-nodes", type=int, default=8)
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--keep", action="store_true", help="leave the fleets in place")
    args = ap.parse_args(argv)
    args.fleets = [int(x) for x in args.fleets.split(",")]
    args.stamp = time.strftime("%Y%m%d-%H%M%S")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cost = Cost(args)
    try:
        cost.run()
    finally:
        cost.save()
        cost.close()
    log(f"wrote {cost.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
