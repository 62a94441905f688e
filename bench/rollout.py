"""Rollout benchmark: fastrollout vs Deployments on the test bed's kwok nodes, same run, same pods.

    python bench/rollout.py --n 100,1000 --repeat 3 --qps stock,raised
    python bench/rollout.py --n 4000 --repeat 1 --qps stock,raised --append

For each N, one fleet per system is created at version v1 in its own namespace, behind its own Service
(kwok annotations: Ready `--start` s after scheduling; a deleted pod stays Terminating `--drain` s; grace
`--grace` s). Then, for each QPS setting (kube-controller-manager and kube-scheduler client QPS, applied by
re-running tests/cluster/up.sh, which restarts only those two) and each repeat, every system in turn gets a
version bump (template label and, for fastrollout, spec.version) and is timed from that PATCH to
(a) all new pods Ready, (b) no old pod with a ready EndpointSlice endpoint, (c) all old pods gone, from a
watch (bench.cluster.Recorder) on one clock; the API writes are the delta of kube-apiserver's
`apiserver_request_total` around the rollout. The next rollout of the same fleet starts from the version
the last one reached, so fleets are made once per N (with raised QPS, to save the minutes stock QPS
takes to create them; the setting in force while timing is the one printed).

Systems: fastrollout (maxSurge 100%), fastrollout-25 (maxSurge 25%), deploy-25-25 (RollingUpdate
defaults), deploy-100-0 (maxSurge 100%, maxUnavailable 0); on request fastrollout-nosvc (no
serviceName), fastrollout-selector (maxSurge 100%, strategy.cutover ServiceSelector: the cutover is one
patch of the Service's selector) and fastrollout-selector-rollback (the same fleet; each repeat is a
forward rollout with rollbackWindowSeconds --window, then the previous template applied again inside
the window, timed from that PATCH to the previous version serving: see `Bench.rollback_cycle`). Results go to bench/results/runs/*.json, the
event recordings to bench/results/events/ (not committed); `python bench/report.py` makes the report.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.analysis import analyze, write_deltas
from bench.cluster import (
    API_VERSION,
    GROUP,
    MERGE_PATCH,
    PLURAL,
    QPS_SETTINGS,
    SERVICE_LABEL,
    VERSION_LABEL,
    Api,
    Bed,
    Operator,
    Recorder,
    log,
    qps_label,
    wait_for,
)

RESULTS = Path(__file__).resolve().parent / "results"
SYSTEMS = ("fastrollout", "fastrollout-25", "deploy-25-25", "deploy-100-0")
# fastrollout without spec.serviceName: "receives traffic" ends when a pod starts terminating (the
# benchmark still judges (b) from the Service's EndpointSlices, as for every system)
# fastrollout-selector: strategy.cutover ServiceSelector (issue 10); fastrollout-selector-rollback: the same,
# timing a rollback inside rollbackWindowSeconds (one forward rollout, then the previous template again)
SELECTOR_SYSTEMS = ("fastrollout-selector", "fastrollout-selector-rollback")
ROLLBACK_SYSTEM = "fastrollout-selector-rollback"
EXTRA_SYSTEMS = ("fastrollout-nosvc", *SELECTOR_SYSTEMS)


@dataclass(frozen=True)
class PodTiming:
    start_s: float
    drain_s: float
    grace_s: int


def pod_template(app: str, version: str, timing: PodTiming) -> dict[str, Any]:
    return {
        "metadata": {
            "labels": {"app": app, VERSION_LABEL: version},
            "annotations": {
                "fastrollout.test/start-delay": f"{timing.start_s:g}",
                "fastrollout.test/drain-seconds": f"{timing.drain_s:g}",
            },
        },
        "spec": {
            "nodeSelector": {"type": "kwok"},
            "terminationGracePeriodSeconds": timing.grace_s,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [
                {
                    "name": "worker",
                    "image": "fastrollout/worker:bench",
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ],
        },
    }


def service(app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "labels": {SERVICE_LABEL: "true", "app": app}},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def workload(system: str, app: str, n: int, version: str, timing: PodTiming) -> tuple[str, dict[str, Any]]:
    """(collection path suffix, body) of the system's workload object."""
    template = pod_template(app, version, timing)
    if system.startswith("fastrollout"):
        surge = "25%" if system == "fastrollout-25" else "100%"
        strategy: dict[str, Any] = {"maxSurge": surge, "minReadyPercent": 100}
        if system in SELECTOR_SYSTEMS:
            strategy["cutover"] = "ServiceSelector"
        return f"/apis/{GROUP}/{API_VERSION}/namespaces/{{ns}}/{PLURAL}", {
            "apiVersion": f"{GROUP}/{API_VERSION}",
            "kind": "FastRollout",
            "metadata": {"name": app},
            "spec": {
                "replicas": n,
                "selector": {"matchLabels": {"app": app}},
                "template": template,
                "version": version,
                **({} if system == "fastrollout-nosvc" else {"serviceName": app}),
                "strategy": strategy,
                "drain": {"terminationGracePeriodSeconds": timing.grace_s},
                "completeWhen": "TrafficStopped",
                "progressDeadlineSeconds": 3600,
                "rollbackOnFailure": False,
            },
        }
    surge, unavailable = ("25%", "25%") if system == "deploy-25-25" else ("100%", 0)
    return "/apis/apps/v1/namespaces/{ns}/deployments", {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app},
        "spec": {
            "replicas": n,
            "selector": {"matchLabels": {"app": app}},
            "template": template,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
            "progressDeadlineSeconds": 3600,
            "revisionHistoryLimit": 2,
        },
    }


def bump_patch(system: str, version: str, window_s: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"metadata": {"labels": {VERSION_LABEL: version}}}}
    if system.startswith("fastrollout"):
        spec["version"] = version
    if window_s is not None:
        spec["strategy"] = {"rollbackWindowSeconds": window_s}
    return {"spec": spec}


@dataclass
class Fleet:
    system: str
    ns: str
    app: str
    n: int
    version_no: int
    path: str  # the workload object's URL
    next_no: int = 2  # the next version never used (a rollback goes back to an older one)

    @property
    def version(self) -> str:
        return f"v{self.version_no}"


def prepared_bed(args: argparse.Namespace) -> tuple[Bed, Api]:
    """The benchmark's own test bed, up at the setup QPS, with the CRD and no leftovers of an earlier run."""
    bed = Bed(args.state, args.port_offset, kwok_nodes=args.kwok_nodes, scripts=args.cluster_scripts)
    bed.up(args.setup_qps)
    api = Api(bed.kubeconfig)
    api.install_crd()
    for ns in api.leftover_namespaces():
        log(f"removing leftover namespace {ns}")
        api.empty_namespace(ns)
    return bed, api


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.timing = PodTiming(args.start, args.drain, args.grace)
        self.bed, self.api = prepared_bed(args)
        self.operator: Operator | None = None
        if any(s.startswith("fastrollout") for s in args.systems):
            self.operator = Operator(self.bed.kubeconfig, RESULTS / "logs" / f"operator-{args.stamp}.log")
            log(f"operator synced in {self.operator.wait_synced():.1f}s")
        self.recorder = Recorder(self.api)
        self.recorder.start()
        self.runs: list[dict[str, Any]] = []
        self.out = RESULTS / "runs" / f"rollout-{args.stamp}.json"
        self.machine = machine_info(self.api) | {
            "testbed": self.bed.fingerprint(),
            "operator_code": operator_code(),
        }

    def close(self) -> None:
        self.recorder.stop()
        if self.operator is not None:
            self.operator.stop()

    def steady(self, fleet: Fleet) -> bool:
        c = self.recorder.fleet(fleet.ns, fleet.version).counts()
        ok = c.new_ready == fleet.n and c.old_present == 0 and c.ready_capacity == fleet.n
        if ok and fleet.system.startswith("fastrollout"):
            st = self.recorder.frs.get((fleet.ns, fleet.app)) or {}
            ok = st.get("version") == fleet.version and st.get("phase") == "Complete"
        return ok

    def create(self, system: str, n: int) -> Fleet:
        ns = f"b-{system}-{n}-{self.args.stamp[-6:]}".lower()
        app = "w"
        self.api.ensure_namespace(ns)
        self.api.request("POST", f"/api/v1/namespaces/{ns}/services", service(app))
        path, body = workload(system, app, n, "v1", self.timing)
        path = path.format(ns=ns)
        self.api.request("POST", path, body)
        return Fleet(system, ns, app, n, 1, f"{path}/{app}")

    def rollout(self, fleet: Fleet, qps: str, rep: int) -> dict[str, Any]:
        if fleet.system == ROLLBACK_SYSTEM:
            return self.rollback_cycle(fleet, qps, rep)
        wait_for(lambda: self.steady(fleet), 1800, f"{fleet.ns} steady at {fleet.version}", 0.2)
        self.recorder.quiet_for(fleet.ns, 2.0, 30)
        new = fleet.next_no
        fleet.next_no += 1
        target = f"v{new}"
        load_before = loadavg()
        before = self.api.request_totals()
        t0, snapshot, index = self.recorder.snapshot(fleet.ns, target)
        self.api.request("PATCH", fleet.path, bump_patch(fleet.system, target), content_type=MERGE_PATCH)
        fleet.version_no = new
        log(f"{fleet.system} N={fleet.n} {qps} rep {rep}: {fleet.version} rolling")
        timeout = self.args.timeout
        wait_for(lambda: self.steady(fleet), timeout, f"{fleet.ns} rollout to {target}", 0.1)
        t_done = time.time()
        self.recorder.quiet_for(fleet.ns, 3.0, 30)
        after = self.api.request_totals()
        events = snapshot + self.recorder.events_since(fleet.ns, index)
        times = analyze(events, t0, target, fleet.n, 100, timeline_step=1.0 if fleet.n < 4000 else 2.0)
        writes = write_deltas(before, after)
        fr_status = (
            self.recorder.frs.get((fleet.ns, fleet.app)) if fleet.system.startswith("fastrollout") else None
        )
        name = f"{fleet.system}-n{fleet.n}-{qps}-r{rep}-{self.args.stamp}"
        ev_dir = RESULTS / "events"
        ev_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(ev_dir / f"{name}.json.gz", "wt") as f:
            json.dump({"t0": t0, "target": target, "n": fleet.n, "events": events}, f)
        run = {
            "name": name,
            "system": fleet.system,
            "n": fleet.n,
            "qps": qps,
            "qps_settings": QPS_SETTINGS[qps],
            "repeat": rep,
            "version": target,
            "start_s": self.timing.start_s,
            "drain_s": self.timing.drain_s,
            "grace_s": self.timing.grace_s,
            "t0": t0,
            "wall_s": round(t_done - t0, 3),
            "loadavg_before_after": [load_before, loadavg()],
            "times": times.as_dict(),
            "writes": writes.as_dict(),
            "fr_status": fr_status,
        }
        log(
            f"  new-ready {times.new_ready_s}s traffic-stopped {times.traffic_stopped_s}s drained {times.drained_s}s "
            f"writes {writes.total} (control {writes.control_writes()}) min-capacity {times.min_ready_capacity}/{fleet.n}"
            + (f" cutover {times.cutover_latency_s}s" if times.cutover_latency_s is not None else "")
        )
        return run

    def serving(self, fleet: Fleet, version: str, warm: int) -> bool:
        """The FastRollout says Complete with TrafficStopped for `version`, whose N pods are Ready with
        a ready endpoint and no other pod has one; `warm` Ready pods of other versions (the ones kept
        warm for a rollback) exist besides."""
        c = self.recorder.fleet(fleet.ns, version).counts()
        st = self.recorder.frs.get((fleet.ns, fleet.app)) or {}
        return (
            c.new_ready == fleet.n
            and c.ready_capacity == fleet.n
            and c.old_serving == 0
            and c.pods_ready - c.new_ready == warm
            and st.get("version") == version
            and st.get("phase") == "Complete"
            and st.get("trafficStopped") is True
        )

    def rollback_cycle(self, fleet: Fleet, qps: str, rep: int) -> dict[str, Any]:
        """One rollback inside the window: from a steady fleet at vK, (1) a forward rollout to a new
        version vM with rollbackWindowSeconds --window (vK's pods stay Ready, out of the Service), then
        (2) vK's template applied again (the same PATCH a user's `kubectl apply` of the old manifest
        makes; the window stays), timed from that PATCH to the FastRollout status Complete with
        TrafficStopped for vK, and from the same watch events to the EndpointSlices showing all vK
        endpoints ready and none of vM; (3) untimed clean-up: rollbackWindowSeconds 0, so vM's pods go
        and the next repeat starts from N pods of vK again."""
        window = self.args.window
        wait_for(lambda: self.steady(fleet), 1800, f"{fleet.ns} steady at {fleet.version}", 0.2)
        self.recorder.quiet_for(fleet.ns, 2.0, 30)
        stable = fleet.version
        new = fleet.next_no
        fleet.next_no += 1
        forward = f"v{new}"
        t0f, snap, index = self.recorder.snapshot(fleet.ns, forward)
        self.api.request(
            "PATCH", fleet.path, bump_patch(fleet.system, forward, window), content_type=MERGE_PATCH
        )
        log(f"{fleet.system} N={fleet.n} {qps} rep {rep}: {stable} -> {forward} (window {window}s)")
        wait_for(
            lambda: self.serving(fleet, forward, fleet.n),
            self.args.timeout,
            f"{fleet.ns} {forward} serving, {stable} warm",
            0.1,
        )
        self.recorder.quiet_for(fleet.ns, 2.0, 30)
        fwd_events = snap + self.recorder.events_since(fleet.ns, index)
        fwd = analyze(fwd_events, t0f, forward, fleet.n, 100, timeline_step=None)

        load_before = loadavg()
        before = self.api.request_totals()
        t0, snapshot, index = self.recorder.snapshot(fleet.ns, stable)
        self.api.request("PATCH", fleet.path, bump_patch(fleet.system, stable), content_type=MERGE_PATCH)
        log(f"  rollback {forward} -> {stable} inside the window")
        wait_for(lambda: self.serving(fleet, stable, fleet.n), 600, f"{fleet.ns} back on {stable}", 0.05)
        t_done = time.time()
        self.recorder.quiet_for(fleet.ns, 2.0, 30)
        after = self.api.request_totals()
        events = snapshot + self.recorder.events_since(fleet.ns, index)
        times = analyze(events, t0, stable, fleet.n, 100, timeline_step=0.5)
        writes = write_deltas(before, after)
        fr_status = self.recorder.frs.get((fleet.ns, fleet.app))
        name = f"{fleet.system}-n{fleet.n}-{qps}-r{rep}-{self.args.stamp}"
        ev_dir = RESULTS / "events"
        ev_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(ev_dir / f"{name}.json.gz", "wt") as f:
            json.dump({"t0": t0, "target": stable, "n": fleet.n, "events": events}, f)
        with gzip.open(ev_dir / f"{name}-forward.json.gz", "wt") as f:
            json.dump({"t0": t0f, "target": forward, "n": fleet.n, "events": fwd_events}, f)

        # clean-up, not timed: the window ends now, the forward version's pods go
        self.api.request(
            "PATCH",
            fleet.path,
            {"spec": {"strategy": {"rollbackWindowSeconds": 0}}},
            content_type=MERGE_PATCH,
        )
        wait_for(lambda: self.steady(fleet), 1800, f"{fleet.ns} back to {fleet.n} pods of {stable}", 0.2)
        run = {
            "name": name,
            "kind": "rollback",
            "system": fleet.system,
            "n": fleet.n,
            "qps": qps,
            "qps_settings": QPS_SETTINGS[qps],
            "repeat": rep,
            "version": stable,
            "from_version": forward,
            "rollback_window_s": window,
            "start_s": self.timing.start_s,
            "drain_s": self.timing.drain_s,
            "grace_s": self.timing.grace_s,
            "t0": t0,
            "wall_s": round(t_done - t0, 3),
            "loadavg_before_after": [load_before, loadavg()],
            "times": times.as_dict(),
            "forward_times": fwd.as_dict(with_timeline=False),
            "writes": writes.as_dict(),
            "fr_status": fr_status,
        }
        log(
            f"  rollback: status TrafficStopped {times.status_traffic_stopped_s}s, selector switched "
            f"{times.service_switched_s}s, slices all-{stable}-ready-none-{forward} {times.switched_s}s, "
            f"min-capacity {times.min_ready_capacity}/{fleet.n}; forward cutover {fwd.cutover_latency_s}s"
        )
        return run

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        args = {k: v for k, v in vars(self.args).items() if not callable(v)}
        doc = {"kind": "rollout", "machine": self.machine, "args": args, "runs": self.runs}
        self.out.write_text(json.dumps(doc, indent=1) + "\n")

    def run(self) -> None:
        for n in self.args.n:
            repeats = self.args.repeat_for(n)
            self.bed.up(self.args.setup_qps)
            fleets = [self.create(s, n) for s in self.args.systems]
            for fleet in fleets:
                wait_for(lambda f=fleet: self.steady(f), 1800, f"{fleet.ns} created", 0.2)  # type: ignore[misc]
            log(f"N={n}: {len(fleets)} fleets steady")
            for qps in self.args.qps:
                self.bed.up(qps)
                time.sleep(self.args.settle)
                for rep in range(repeats):
                    order = fleets[rep % len(fleets) :] + fleets[: rep % len(fleets)]
                    for fleet in order:
                        self.runs.append(self.rollout(fleet, qps, rep))
                        self.save()
            for fleet in fleets:
                self.api.empty_namespace(fleet.ns)
                self.recorder.forget(fleet.ns)


def operator_code() -> dict[str, str]:
    """The commit the operator process runs from, and whether operator/ differed from it (the working
    tree is shared with other engineers: a run's operator is the code on disk when it started)."""
    import subprocess  # noqa: PLC0415

    repo = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", "-C", str(repo), *cmd], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    return {"head": git("rev-parse", "HEAD"), "operator_changes": git("status", "--porcelain", "operator")}


def loadavg() -> float:
    """The 1-minute load average (the machine is shared: a high value means other work ran too)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine_info(api: Api) -> dict[str, Any]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    import os  # noqa: PLC0415

    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "kubernetes": api.server_version(),
        "python": platform.python_version(),
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        ),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="100,1000", help="comma-separated fleet sizes (default 100,1000)")
    ap.add_argument(
        "--repeat",
        default="3",
        help="repeats per N and QPS: one number, or N=R pairs, e.g. 100=3,1000=3,4000=1 (default 3)",
    )
    ap.add_argument("--qps", default="stock,raised", help="QPS settings to time, in order (stock, raised)")
    ap.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"some of {','.join(SYSTEMS + EXTRA_SYSTEMS)}"
    )
    ap.add_argument("--start", type=float, default=2.0, help="pod start delay, s (kwok; default 2)")
    ap.add_argument("--drain", type=float, default=20.0, help="drain of a deleted pod, s (kwok; default 20)")
    ap.add_argument("--grace", type=int, default=30, help="terminationGracePeriodSeconds (default 30)")
    ap.add_argument("--state", default="/tmp/fr-bench", help="test bed state dir (default /tmp/fr-bench)")
    ap.add_argument("--port-offset", type=int, default=200, help="test bed port offset (default 200)")
    ap.add_argument(
        "--cluster-scripts",
        default=str(Path(__file__).resolve().parents[1] / "tests/cluster"),
        help="directory with up.sh/down.sh (default tests/cluster; pass a pinned copy for a long sweep)",
    )
    ap.add_argument("--kwok-nodes", type=int, default=8, help="kwok nodes, 5,000 pods each (default 8)")
    ap.add_argument(
        "--setup-qps", default="raised", help="QPS setting while fleets are created (default raised)"
    )
    ap.add_argument(
        "--settle", type=float, default=10.0, help="seconds to wait after a QPS change (default 10)"
    )
    ap.add_argument("--timeout", type=float, default=1800.0, help="per-rollout timeout, s (default 1800)")
    ap.add_argument(
        "--window",
        type=int,
        default=600,
        help=f"rollbackWindowSeconds of {ROLLBACK_SYSTEM}'s forward rollouts (default 600)",
    )
    ap.add_argument("--down", action="store_true", help="stop the test bed at the end")
    args = ap.parse_args(argv)
    args.n = [int(x) for x in args.n.split(",")]
    args.qps = [q for q in args.qps.split(",") if q]
    args.systems = [s for s in args.systems.split(",") if s]
    for q in [*args.qps, args.setup_qps]:
        if q not in QPS_SETTINGS:
            ap.error(f"unknown QPS setting {q}; known: {', '.join(QPS_SETTINGS)}")
    for s in args.systems:
        if s not in SYSTEMS + EXTRA_SYSTEMS:
            ap.error(f"unknown system {s}")
    if "=" in args.repeat:
        table = {int(k): int(v) for k, v in (p.split("=") for p in args.repeat.split(","))}
    else:
        table = {n: int(args.repeat) for n in args.n}
    args.repeat = table
    args.stamp = time.strftime("%Y%m%d-%H%M%S")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repeat_table: dict[int, int] = args.repeat
    args.repeat_for = lambda n: repeat_table.get(n, 1)
    log(
        f"rollout benchmark: N={args.n} repeats={repeat_table} qps={[qps_label(q) for q in args.qps]} "
        f"systems={args.systems} start={args.start}s drain={args.drain}s grace={args.grace}s"
    )
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.save()
        bench.close()
        if args.down:
            bench.bed.down()
    log(f"wrote {bench.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
