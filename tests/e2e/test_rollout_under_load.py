"""End-to-end: a real worker fleet rolled out by the in-cluster operator under continuous real traffic.

The operator runs as a pod on the real node, installed with helm (conftest ``operator_release``). A fleet
of ``FASTROLLOUT_E2E_REPLICAS`` (default 20) reference workers runs on the real node behind a ClusterIP
Service; the load generator (``load.py``) sends requests from this host through the ClusterIP (kube-proxy,
iptables) the whole time, and watches record EndpointSlices, pods and the FastRollout with this host's
clock (``recorder.py``). Then:

1. ``rollouts`` (module fixture, run once): v1 -> v2; three ``?sleep=20`` requests are sent straight to
   three v1 pods just before the cutover; as soon as v2 reports TrafficStopped (v1 pods still draining
   those requests) v2 -> v3; then back to v2, a new rollout; wait until Drained.
2. ``crash`` (module fixture, after it): a version whose worker exits 1 at start, under load.

Each test asserts one property on what was recorded; the numbers go to the terminal summary and to
``<pytest tmp>/e2e-last-run.json``.

    FASTROLLOUT_STATE=/tmp/fr-e2e python -m pytest tests/e2e -s
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.e2e import analysis as an
from tests.e2e.load import LoadGenerator, Result, request, summarize
from tests.e2e.recorder import Event, Recorder, api_client, assert_intact

pytestmark = [pytest.mark.integration, pytest.mark.realnode]

REPLICAS = int(os.environ.get("FASTROLLOUT_E2E_REPLICAS", "20"))
NAME = "workers"
PRESTOP_S = 4
GRACE_S = 40
LONG_SLEEP_S = 20
LONG_REQUESTS = 3
# About 250-300 requests/s in all: enough to time kube-proxy per pod (40 endpoints: a request per pod
# every ~0.15 s), cheap on 2 cores. Many slow clients rather than a few fast ones: a client whose request
# lands on a pod busy with a 20 s request waits behind it (single-request workers queue, by contract), so
# with few clients the whole load would stall for the length of the long requests.
LOAD_CLIENTS = 96
LOAD_PAUSE_S = 0.3
ROLLOUT_TIMEOUT_S = 150
GROUP, API_VERSION, PLURAL = "fastrollout.io", "v1alpha1", "fastrollouts"


# ------------------------------------------------------------------------------------------ manifests


def service_manifest(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "selector": {"app": NAME},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def fastrollout_manifest(
    namespace: str, version: str, image: str, *, crash: bool = False, strategy: dict[str, Any] | None = None
) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "WORKER_VERSION", "value": version},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        # grace 40 - preStop 4 - margin 5 (docs/worker-contract.md rule 7)
        {"name": "WORKER_DRAIN_DEADLINE_SECONDS", "value": str(GRACE_S - PRESTOP_S - 5)},
    ]
    if crash:
        env.append({"name": "WORKER_CRASH_ON_START", "value": "1"})
    return {
        "apiVersion": f"{GROUP}/{API_VERSION}",
        "kind": "FastRollout",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {
            "replicas": REPLICAS,
            "version": version,
            "selector": {"matchLabels": {"app": NAME}},
            "serviceName": NAME,
            "strategy": {"maxSurge": "100%", "minReadyPercent": 100, **(strategy or {})},
            "drain": {"preStopSleepSeconds": PRESTOP_S, "terminationGracePeriodSeconds": GRACE_S},
            "completeWhen": "TrafficStopped",
            "progressDeadlineSeconds": 120,
            "rollbackOnFailure": True,
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {
                    "nodeSelector": {"fastrollout.test/node": "real"},
                    "tolerations": [
                        {"key": "fastrollout.test/real", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "dnsPolicy": "Default",  # the real node has no cluster DNS
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,  # this checkout's worker (Testbed.own_image), not the shared :dev
                            "imagePullPolicy": "Never",
                            "env": env,
                            "ports": [
                                {"name": "http", "containerPort": 8080},
                                {"name": "admin", "containerPort": 9090},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "admin"},
                                "periodSeconds": 1,
                                "failureThreshold": 1,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/livez", "port": "admin"},
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


# ------------------------------------------------------------------------------------------ the fleet


@dataclasses.dataclass(frozen=True)
class Applied:
    version: str
    at: float  # wall clock just before `kubectl apply`
    generation: int


class Fleet:
    """The FastRollout, its Service, and recorders of its EndpointSlices, pods and status."""

    def __init__(self, bed: Any, namespace: str) -> None:
        self.bed, self.namespace = bed, namespace
        api = api_client(str(bed.kubeconfig))
        core, discovery, custom = (
            client.CoreV1Api(api),
            client.DiscoveryV1Api(api),
            client.CustomObjectsApi(api),
        )
        self.slices = Recorder(
            "endpointslices",
            discovery.list_namespaced_endpoint_slice,
            namespace=namespace,
            label_selector=f"kubernetes.io/service-name={NAME}",
        )
        self.pods = Recorder(
            "pods", core.list_namespaced_pod, namespace=namespace, label_selector=f"app={NAME}"
        )
        self.rollout = Recorder(
            "fastrollout",
            custom.list_namespaced_custom_object,
            group=GROUP,
            version=API_VERSION,
            namespace=namespace,
            plural=PLURAL,
            field_selector=f"metadata.name={NAME}",
        )
        self.recorders = (self.slices, self.pods, self.rollout)
        self.cluster_ip = ""
        self.artifacts = Path()
        self.ready_at = 0.0  # all REPLICAS endpoints of v1 ready

    def start(self) -> Fleet:
        for r in self.recorders:
            r.start()
        return self

    def stop(self) -> None:
        for r in self.recorders:
            r.stop()

    def apply(self, version: str, *, crash: bool = False, strategy: dict[str, Any] | None = None) -> Applied:
        at = time.time()
        manifest = fastrollout_manifest(
            self.namespace, version, self.bed.own_image("worker"), crash=crash, strategy=strategy
        )
        self.bed.apply(json.dumps(manifest))
        generation = int(
            self.bed.kubectl(
                "get", "fastrollout", NAME, "-n", self.namespace, "-o", "jsonpath={.metadata.generation}"
            ).stdout
        )
        return Applied(version, at, generation)

    def status(self) -> dict[str, Any]:
        obj = self.rollout.latest().get(NAME) or {}
        return dict(obj.get("status") or {})

    def wait_for_status(
        self, applied: Applied, what: str, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> Event:
        """Wait until a recorded FastRollout event for ``applied`` satisfies ``predicate``; return it."""

        def seen() -> Event | None:
            for ev in self.rollout.events():
                st = ev.obj.get("status") or {}
                if (
                    ev.t >= applied.at
                    and int(st.get("observedGeneration") or 0) >= applied.generation
                    and predicate(ev.obj)
                ):
                    return ev
            return None

        try:
            return self.bed.wait_for(
                seen, timeout=timeout, interval=0.05, message=f"{applied.version}: {what}"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstatus now: {self.status()}") from None

    def ready_endpoints(self, version: str) -> list[tuple[str, an.Endpoint]]:
        """Ready endpoints now of non-terminating pods of ``version`` (from the latest objects only: cheap
        enough to poll while the load runs)."""
        pods = self.pods.latest()
        slices = [Event(0.0, "ADDED", obj) for obj in self.slices.latest().values()]
        timeline = an.endpoint_timeline(slices)
        if not timeline:
            return []
        out = []
        for pod, ep in timeline[-1][1].items():
            meta = (pods.get(pod) or {}).get("metadata") or {}
            if (
                ep.ready
                and not meta.get("deletionTimestamp")
                and (meta.get("labels") or {}).get(an.VERSION_LABEL) == version
            ):
                out.append((pod, ep))
        return out


def traffic_stopped(version: str) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        cond = an.condition(obj, "TrafficStopped")
        return bool((obj.get("status") or {}).get("version") == version and cond and cond["status"] == "True")

    return check


@pytest.fixture(scope="module")
def fleet(
    testbed: Any,
    operator_release: dict[str, Any],
    e2e_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    f = Fleet(testbed, e2e_namespace)
    f.artifacts = tmp_path_factory.mktemp("e2e-artifacts")
    f.start()
    testbed.apply(json.dumps(service_manifest(e2e_namespace)))
    f.cluster_ip = testbed.kubectl(
        "get", "service", NAME, "-n", e2e_namespace, "-o", "jsonpath={.spec.clusterIP}"
    ).stdout.strip()
    applied = f.apply("v1")
    f.wait_for_status(
        applied, "Complete", lambda o: o["status"].get("phase") == "Complete", ROLLOUT_TIMEOUT_S
    )
    testbed.wait_for(
        lambda: len(f.ready_endpoints("v1")) >= REPLICAS, timeout=60, message=f"{REPLICAS} ready v1 endpoints"
    )
    f.ready_at = time.time()
    # kube-proxy syncs at most once a second: wait until every pod has answered through the ClusterIP.
    answered: set[str] = set()

    def all_answered() -> bool:
        r = request(f.cluster_ip, 80, "/", timeout=5)
        if r.ok and r.pod:
            answered.add(r.pod)
        return len(answered) >= REPLICAS

    testbed.wait_for(
        all_answered, timeout=60, interval=0.01, message="every v1 pod answering via the ClusterIP"
    )
    yield f
    f.stop()
    # Everything recorded, for a post-mortem: one JSON object per line, (t, type, object).
    for r in f.recorders:
        with (f.artifacts / f"{r.name}.jsonl").open("w") as fh:
            for ev in r.events():
                fh.write(json.dumps({"t": ev.t, "type": ev.type, "object": ev.obj}) + "\n")
    testbed.kubectl("delete", "fastrollout", NAME, "-n", e2e_namespace, "--wait=false", check=False)


# ------------------------------------------------------------------------------------------ rollouts


@dataclasses.dataclass
class RolloutTimes:
    applied: Applied
    traffic_stopped: Event | None = None
    new_ready_at: float | None = None
    drained_at: float | None = None  # last pod cut over by this rollout deleted
    cut_over: list[str] = dataclasses.field(default_factory=list)  # pods whose endpoint it turned not ready

    @property
    def t_stopped(self) -> float:
        """TrafficStopped at T: the earlier of when this host saw it and status.trafficStoppedAt (+1 s,
        its resolution), so "after T" is never judged late."""
        assert self.traffic_stopped is not None
        stamp = an.timestamp((self.traffic_stopped.obj.get("status") or {}).get("trafficStoppedAt"))
        return min(self.traffic_stopped.t, stamp + 1.0) if stamp else self.traffic_stopped.t


@dataclasses.dataclass
class Run:
    results: list[Result]
    rollouts: list[RolloutTimes]
    long_results: list[tuple[str, Result]]  # (pod targeted, result)
    long_started_on: dict[str, float]  # pod -> when its long request started
    v1_draining_at_v3: list[str]
    v1_draining_reported_at_v3: int
    slices: list[Event]
    pods: dict[str, an.PodInfo]
    load_started: float
    load_stopped: float
    timeline: list[tuple[float, an.Snapshot]]
    histories: dict[str, an.EndpointHistory]
    lags: dict[str, float]


def _long_requests(
    fleet: Fleet, out: list[tuple[str, Result]], started: dict[str, float]
) -> list[threading.Thread]:
    """One ``?sleep=20`` request straight to each of LONG_REQUESTS ready v1 pods (pod IP, port 8080)."""
    targets = sorted(fleet.ready_endpoints("v1"))[:LONG_REQUESTS]
    threads = []
    for pod, ep in targets:

        def run(pod: str = pod, ip: str = ep.ip) -> None:
            started[pod] = time.time()
            out.append((pod, request(ip, 8080, f"/?sleep={LONG_SLEEP_S}", timeout=LONG_SLEEP_S + 40)))

        t = threading.Thread(target=run, name=f"long-{pod}", daemon=True)
        t.start()
        threads.append(t)
    return threads


def _roll(fleet: Fleet, version: str, on_almost_ready: Callable[[], None] | None = None) -> RolloutTimes:
    applied = fleet.apply(version)
    times = RolloutTimes(applied)
    if on_almost_ready is not None:
        # Just before the cutover: all but 5 new endpoints ready (or 12 s after the apply at the latest).
        fleet.bed.wait_for(
            lambda: len(fleet.ready_endpoints(version)) >= REPLICAS - 5 or time.time() - applied.at > 12,
            timeout=ROLLOUT_TIMEOUT_S,
            interval=0.02,
            message=f"{version}: {REPLICAS - 5} new endpoints ready",
        )
        on_almost_ready()
    times.traffic_stopped = fleet.wait_for_status(
        applied, "TrafficStopped", traffic_stopped(version), ROLLOUT_TIMEOUT_S
    )
    return times


@pytest.fixture(scope="module")
def rollouts(fleet: Fleet, e2e_report: dict[str, Any]) -> Run:
    long_results: list[tuple[str, Result]] = []
    long_started: dict[str, float] = {}
    long_threads: list[threading.Thread] = []
    load = LoadGenerator(
        fleet.cluster_ip, 80, clients=LOAD_CLIENTS, pause=LOAD_PAUSE_S, timeout=60, max_seconds=420
    ).start()
    try:
        time.sleep(3)
        # 1. v1 -> v2, with long requests on v1 pods just before the cutover.
        r1 = _roll(
            fleet, "v2", lambda: long_threads.extend(_long_requests(fleet, long_results, long_started))
        )
        # 2. v2 -> v3 at once, while the v1 pods are still draining their long requests.
        pods_now = an.pod_infos(fleet.pods.events())
        v1_draining = sorted(
            p.name
            for p in pods_now.values()
            if p.version == "v1" and p.terminating_seen and not p.deleted_seen
        )
        v1_reported = sum(
            int(v.get("drainingReplicas") or 0)
            for v in fleet.status().get("versions") or []
            if v.get("version") == "v1"
        )
        r2 = _roll(fleet, "v3")
        # 3. Back to v2: a new rollout of the previous template.
        time.sleep(2)
        r3 = _roll(fleet, "v2")
        fleet.wait_for_status(
            r3.applied,
            "Drained",
            lambda o: (
                (o.get("status") or {}).get("version") == "v2"
                and (an.condition(o, "Drained") or {}).get("status") == "True"
            ),
            timeout=GRACE_S + 60,
        )
        for t in long_threads:
            t.join(LONG_SLEEP_S + 45)
        time.sleep(2)
    finally:
        results = load.stop()
    assert_intact(fleet.recorders)  # everything below is read off the recordings
    assert load.started_at is not None
    assert load.stopped_at is not None
    slices = fleet.slices.events()
    pods = an.pod_infos(fleet.pods.events())
    timeline = an.endpoint_timeline(slices)
    histories = an.endpoint_histories(timeline)
    rolls = [r1, r2, r3]
    for r in rolls:
        assert r.traffic_stopped is not None
        # Pods this rollout cut over: not of the target version, endpoint turned not ready by it.
        r.cut_over = sorted(
            pod
            for pod, h in histories.items()
            if h.not_ready_at is not None
            and r.applied.at <= h.not_ready_at <= r.traffic_stopped.t + 2
            and pods.get(pod, an.PodInfo(pod, None, 0, "")).version != r.applied.version
        )
        new_ready = [
            t
            for t, snap in timeline
            if t >= r.applied.at
            and sum(
                ep.ready
                and pod in pods
                and pods[pod].version == r.applied.version
                and pods[pod].first_seen >= r.applied.at - 1
                for pod, ep in snap.items()
            )
            >= REPLICAS
        ]
        r.new_ready_at = new_ready[0] if new_ready else None
        gone = [pods[p].deleted_seen for p in r.cut_over if p in pods]
        r.drained_at = max(g for g in gone if g) if gone and all(gone) else None
    not_ready = {p: histories[p].not_ready_at for r in rolls for p in r.cut_over}
    lags = an.propagation_lags(results, {p: t for p, t in not_ready.items() if t is not None})
    run = Run(
        results=results,
        rollouts=rolls,
        long_results=long_results,
        long_started_on=long_started,
        v1_draining_at_v3=v1_draining,
        v1_draining_reported_at_v3=v1_reported,
        slices=slices,
        pods=pods,
        load_started=load.started_at,
        load_stopped=load.stopped_at,
        timeline=timeline,
        histories=histories,
        lags=lags,
    )
    with (fleet.artifacts / "requests.jsonl").open("w") as fh:
        for x in results:
            fh.write(json.dumps(dataclasses.asdict(x)) + "\n")
    e2e_report["artifacts"] = str(fleet.artifacts)
    _report(run, e2e_report)
    return run


def _report(run: Run, report: dict[str, Any]) -> None:
    s = summarize(run.results)
    lags = sorted(run.lags.values())
    report["rollouts_under_load"] = {
        "replicas": REPLICAS,
        "load": s,
        "propagation_lag_s": {
            "pods": len(lags),
            "p50": round(an.percentile(lags, 50), 3) if lags else None,
            "p90": round(an.percentile(lags, 90), 3) if lags else None,
            "max": round(lags[-1], 3) if lags else None,
            "min": round(lags[0], 3) if lags else None,
        },
        "rollouts": [
            _rollout_numbers(run, r, until) for r, until in zip(run.rollouts, _ends(run), strict=True)
        ],
        "long_requests": [
            {
                "pod": pod,
                "status": r.status,
                "error": r.error,
                "version": r.version,
                "seconds": round(r.duration, 2),
                "started_before_cutover_s": _rel(run.histories[pod].not_ready_at, r.start)
                if pod in run.histories
                else None,
            }
            for pod, r in run.long_results
        ],
        "v1_pods_draining_when_v3_applied": len(run.v1_draining_at_v3),
    }
    lines = report.setdefault("summary_lines", [])
    lines.append(f"recorded requests and watch events (JSON lines): {report.get('artifacts')}")
    lines.append(
        f"rollouts v1->v2->v3->v2, {REPLICAS} pods, load through the ClusterIP: {s['sent']} requests sent "
        f"({s['per_second']}/s over {s['seconds']} s), {s['failed']} failed {s['failures'] or ''}, "
        f"answers by version {s['versions']}"
    )
    pl = report["rollouts_under_load"]["propagation_lag_s"]
    lines.append(
        f"propagation lag (endpoint not ready in the EndpointSlice -> last request kube-proxy sent to the pod), "
        f"{pl['pods']} pods: p50 {pl['p50']} s, p90 {pl['p90']} s, max {pl['max']} s (min {pl['min']} s); "
        f"stated bound {an.PROPAGATION_BOUND_S} s, preStop sleep {PRESTOP_S} s"
    )
    for r in report["rollouts_under_load"]["rollouts"]:
        drain, exits = r["pod_drain_s"] or {}, r["worker_exit_s"] or {}
        lines.append(
            f"rollout to {r['to']}: new pods ready {r['new_ready_s']} s, traffic stopped {r['traffic_stopped_s']} s, "
            f"old pods drained (gone) {r['drained_s']} s after apply; {r['cut_over_pods']} pods cut over, per pod from "
            f"not ready: worker exited p50 {exits.get('p50')} s / max {exits.get('max')} s (exit codes "
            f"{r['exit_codes']}), pod gone p50 {drain.get('p50')} s / max {drain.get('max')} s; last request "
            f"answered by an old version started {r['last_old_request_after_traffic_stopped_s']} s after TrafficStopped"
        )
    lines.append(
        "long requests (?sleep=20) on v1 pods across the cutover: "
        + ", ".join(
            f"{x['status'] or x['error']} in {x['seconds']} s (started {x['started_before_cutover_s']} s before cutover)"
            for x in report["rollouts_under_load"]["long_requests"]
        )
    )


def _ends(run: Run) -> list[float]:
    """Each rollout's window ends when the next one is applied (the last one's with the load)."""
    return [r.applied.at for r in run.rollouts[1:]] + [run.load_stopped]


def _rollout_numbers(run: Run, r: RolloutTimes, until: float) -> dict[str, Any]:
    drains = []
    for pod in r.cut_over:
        info, history = run.pods.get(pod), run.histories.get(pod)
        if info and info.deleted_seen and history and history.not_ready_at:
            drains.append(info.deleted_seen - history.not_ready_at)
    drains.sort()
    exits = []
    for pod in r.cut_over:
        info, history = run.pods.get(pod), run.histories.get(pod)
        if info and info.finished_at and history and history.not_ready_at:
            exits.append(info.finished_at - history.not_ready_at)
    exits.sort()
    t = r.t_stopped
    old = [
        x.start - t
        for x in run.results
        if x.ok and x.version != r.applied.version and t - 30 < x.start < until
    ]
    return {
        "to": r.applied.version,
        "new_ready_s": _rel(r.new_ready_at, r.applied.at),
        "traffic_stopped_s": _rel(r.traffic_stopped.t if r.traffic_stopped else None, r.applied.at),
        "drained_s": _rel(r.drained_at, r.applied.at),
        "cut_over_pods": len(r.cut_over),
        "status_rolloutStartedAt": (r.traffic_stopped.obj.get("status") or {}).get("rolloutStartedAt")
        if r.traffic_stopped
        else None,
        "status_trafficStoppedAt": (r.traffic_stopped.obj.get("status") or {}).get("trafficStoppedAt")
        if r.traffic_stopped
        else None,
        "pod_drain_s": _p50_max(drains),
        "worker_exit_s": _p50_max(exits),
        "exit_codes": dict(Counter(str(run.pods[p].exit_code) for p in r.cut_over if p in run.pods)),
        "last_old_request_after_traffic_stopped_s": round(max(old), 3) if old else None,
    }


def _p50_max(values: list[float]) -> dict[str, float] | None:
    return {"p50": round(an.percentile(values, 50), 2), "max": round(max(values), 2)} if values else None


def _rel(t: float | None, base: float) -> float | None:
    return round(t - base, 2) if t is not None else None


# ------------------------------------------------------------------------------------------ tests


def test_rollouts_under_load_fail_no_request(rollouts: Run) -> None:
    failed = [r for r in rollouts.results if r.failure]
    kinds = Counter(r.failure for r in failed)
    examples = [f"{r.failure} at +{r.start - rollouts.load_started:.2f}s: {r.detail}" for r in failed[:5]]
    assert not failed, (
        f"{len(failed)} of {len(rollouts.results)} requests failed: {dict(kinds)}; e.g. {examples}"
    )
    assert len(rollouts.results) >= 5000, f"only {len(rollouts.results)} requests: the load generator starved"
    starts = sorted(r.start for r in rollouts.results)
    gap, at = max((b - a, a) for a, b in itertools.pairwise(starts))
    assert gap < 2.0, (
        f"no request started for {gap:.1f}s from +{at - rollouts.load_started:.1f}s: load stalled"
    )
    versions = Counter(r.version for r in rollouts.results)
    assert set(versions) == {"v1", "v2", "v3"}, f"answers by version: {dict(versions)}"


def test_every_response_names_the_version_of_the_pod_that_served_it(rollouts: Run) -> None:
    wrong = [
        (r.pod, r.version, rollouts.pods[r.pod].version if r.pod in rollouts.pods else "unknown pod")
        for r in rollouts.results
        if r.ok and (r.pod not in rollouts.pods or rollouts.pods[r.pod].version != r.version)
    ]
    assert not wrong, f"{len(wrong)} responses name a version other than their pod's label: {wrong[:5]}"


def test_v3_rolled_out_while_v1_pods_were_still_draining(rollouts: Run) -> None:
    assert rollouts.v1_draining_at_v3, (
        "no v1 pod was draining when v3 was applied: the scenario lost its point"
    )
    assert rollouts.v1_draining_reported_at_v3 > 0, "status.versions did not report the draining v1 pods"
    v3 = rollouts.rollouts[1]
    last_v1_gone = max(rollouts.pods[p].deleted_seen or float("inf") for p in rollouts.v1_draining_at_v3)
    assert v3.applied.at < last_v1_gone


def test_long_requests_complete_during_drain(rollouts: Run) -> None:
    assert len(rollouts.long_results) == LONG_REQUESTS, f"long requests: {rollouts.long_results}"
    for pod, r in rollouts.long_results:
        h = rollouts.histories.get(pod)
        info = rollouts.pods.get(pod)
        assert r.ok, f"long request to {pod}: {r}"
        assert (r.version, r.pod) == ("v1", pod), f"long request to {pod}: {r}"
        assert r.duration >= LONG_SLEEP_S
        assert h is not None, f"{pod}: no endpoint recorded"
        assert h.not_ready_at is not None, f"{pod}: its endpoint never went not ready"
        # Started before its pod was cut over, answered after it started terminating: during its drain.
        assert r.start < h.not_ready_at, (
            f"{pod}: the long request started {r.start - h.not_ready_at:.2f}s after cutover"
        )
        assert info is not None, f"{pod}: pod not recorded"
        assert info.terminating_seen is not None, f"{pod}: never seen terminating"
        assert r.end > info.terminating_seen + PRESTOP_S, (
            f"{pod}: answered at {r.end}, terminating since {info.terminating_seen}"
        )


def test_old_pods_drain_cleanly(rollouts: Run) -> None:
    """Every pod a rollout cut over ran its preStop sleep, got SIGTERM, finished and exited 0 (not 137:
    killed at the end of the grace period; not 124: the worker's own drain deadline)."""
    cut_over = [p for r in rollouts.rollouts for p in r.cut_over]
    codes = {p: rollouts.pods[p].exit_code if p in rollouts.pods else "unseen" for p in cut_over}
    bad = {p: c for p, c in codes.items() if c != 0}
    assert not bad, f"cut-over pods that did not exit 0: {bad}"
    for p in cut_over:
        info, h = rollouts.pods[p], rollouts.histories[p]
        assert info.finished_at is not None
        assert h.not_ready_at is not None
        # finishedAt has 1 s resolution: the worker ran at least (about) the preStop sleep after cutover.
        assert info.finished_at >= h.not_ready_at + PRESTOP_S - 1.5, (
            f"{p} exited before its preStop sleep ended"
        )


def test_no_old_version_serves_after_traffic_stopped(rollouts: Run) -> None:
    # The preStop sleep is what covers kube-proxy's lag: the bound must leave the workers time to spare.
    assert an.PROPAGATION_BOUND_S < PRESTOP_S, (an.PROPAGATION_BOUND_S, PRESTOP_S)
    assert rollouts.lags, "no propagation lag measured: no old pod served any request?"
    cut_over = [p for r in rollouts.rollouts for p in r.cut_over]
    # A lag per cut-over pod, measured close to its cutover: otherwise the load did not test it.
    near = [p for p in cut_over if p in rollouts.lags and rollouts.lags[p] > -2.0]
    assert len(near) >= 0.8 * len(cut_over), (
        f"lag measured within 2 s of cutover for {len(near)} of {len(cut_over)} cut-over pods: load too thin"
    )
    violations = []
    for r, until in zip(rollouts.rollouts, _ends(rollouts), strict=True):
        t = r.t_stopped
        # TrafficStopped is not declared before the EndpointSlices said so (1 s: watch delivery jitter).
        last_not_ready = max(rollouts.histories[p].not_ready_at or 0.0 for p in r.cut_over)
        assert r.cut_over, f"rollout to {r.applied.version}: no pod cut over?"
        assert t >= last_not_ready - 1.0, (
            f"rollout to {r.applied.version}: TrafficStopped at {t:.2f} but an old endpoint went not ready "
            f"at {last_not_ready:.2f}"
        )
        not_ready = {p: rollouts.histories[p].not_ready_at for p in r.cut_over}
        violations += an.traffic_stop_violations(
            rollouts.results,
            not_ready={p: at for p, at in not_ready.items() if at is not None},
            traffic_stopped_at=t,
            until=until,
            version=r.applied.version,
        )
    assert not violations, (
        f"old pods got new requests past the stated propagation bound ({an.PROPAGATION_BOUND_S}s), "
        f"{len(violations)} findings: {violations[:5]}"
    )


def test_ready_capacity_never_below_replicas(rollouts: Run, e2e_report: dict[str, Any]) -> None:
    counts = an.ready_counts(rollouts.timeline)
    lowest, when = an.min_ready_between(counts, rollouts.load_started, rollouts.load_stopped)
    e2e_report.setdefault("capacity", {})["rollouts"] = {"min_ready": lowest, "samples": len(counts)}
    e2e_report.setdefault("summary_lines", []).append(
        f"capacity during the rollouts: min {lowest} ready endpoints (replicas {REPLICAS}) over {len(counts)} "
        "EndpointSlice events"
    )
    assert lowest >= REPLICAS, f"ready endpoints fell to {lowest} at +{when - rollouts.load_started:.2f}s"


# ------------------------------------------------------------------------------------------ crash


@dataclasses.dataclass
class CrashRun:
    results: list[Result]
    applied: Applied
    phases: list[str]
    final: dict[str, Any]
    stable_before: dict[str, tuple[str, int]]
    stable_after: dict[str, tuple[str, int]]
    stable_version: str
    crash_pods: list[str]
    crash_endpoint_ready: list[str]
    min_ready: int
    rolled_back_s: float
    event_reasons: list[str]  # Kubernetes events on the FastRollout since the apply, oldest first


def _stable_pods(fleet: Fleet) -> dict[str, tuple[str, int]]:
    """Non-terminating pods now: name -> (uid, restarts)."""
    out = {}
    for name, pod in fleet.pods.latest().items():
        if pod["metadata"].get("deletionTimestamp"):
            continue
        restarts = sum(
            int(s.get("restartCount", 0)) for s in (pod.get("status") or {}).get("containerStatuses") or []
        )
        out[name] = (pod["metadata"]["uid"], restarts)
    return out


@pytest.fixture(scope="module")
def crash(fleet: Fleet, e2e_report: dict[str, Any]) -> CrashRun:
    stable = fleet.status().get("stableVersion") or "v1"
    # Wait until only the stable version's pods are left, so "untouched" is judged on a settled fleet.
    fleet.bed.wait_for(
        lambda: len(_stable_pods(fleet)) == REPLICAS and len(fleet.pods.latest()) == REPLICAS,
        timeout=GRACE_S + 60,
        message=f"only the {REPLICAS} pods of the stable version {stable}",
    )
    before = _stable_pods(fleet)
    load = LoadGenerator(
        fleet.cluster_ip, 80, clients=LOAD_CLIENTS // 2, pause=LOAD_PAUSE_S, timeout=60, max_seconds=300
    ).start()
    try:
        time.sleep(2)
        applied = fleet.apply("v4-crash", crash=True)
        rolled_back = fleet.wait_for_status(
            applied,
            "RolledBack",
            lambda o: (o.get("status") or {}).get("phase") == "RolledBack",
            ROLLOUT_TIMEOUT_S,
        )
        crash_version = "v4-crash"
        fleet.bed.wait_for(
            lambda: (
                not any(
                    p["metadata"]["labels"].get(an.VERSION_LABEL) == crash_version
                    for p in fleet.pods.latest().values()
                )
            ),
            timeout=GRACE_S + 30,
            message="the crashing pods gone",
        )
        time.sleep(3)
    finally:
        results = load.stop()
    assert_intact(fleet.recorders)  # "untouched", phases and capacity are read off the recordings
    after = _stable_pods(fleet)
    events = [e for e in fleet.rollout.events() if e.t >= applied.at]
    phases: list[str] = []
    for e in events:
        phase = (e.obj.get("status") or {}).get("phase")
        if phase and (not phases or phases[-1] != phase):
            phases.append(phase)
    pods = an.pod_infos(fleet.pods.events())
    crash_pods = sorted(p.name for p in pods.values() if p.version == "v4-crash")
    timeline = an.endpoint_timeline(fleet.slices.events())
    crash_ready = sorted(
        {pod for _, snap in timeline for pod, ep in snap.items() if ep.ready and pod in crash_pods}
    )
    assert load.started_at is not None
    assert load.stopped_at is not None
    lowest, _ = an.min_ready_between(an.ready_counts(timeline), load.started_at, load.stopped_at)
    k8s_events = fleet.bed.kubectl_json(
        "get",
        "events",
        "-n",
        fleet.namespace,
        "--field-selector",
        f"involvedObject.kind=FastRollout,involvedObject.name={NAME}",
    )["items"]
    since = applied.at - 1.0

    def when(e: dict[str, Any]) -> float:
        stamp = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"]["creationTimestamp"]
        return an.timestamp(stamp) or 0.0

    ordered = sorted(k8s_events, key=lambda e: (when(e), int(e["metadata"]["resourceVersion"])))
    reasons = [e["reason"] for e in ordered if when(e) >= since]
    run = CrashRun(
        results=results,
        applied=applied,
        phases=phases,
        final=fleet.status(),
        stable_before=before,
        stable_after=after,
        stable_version=stable,
        crash_pods=crash_pods,
        crash_endpoint_ready=crash_ready,
        min_ready=lowest,
        rolled_back_s=rolled_back.t - applied.at,
        event_reasons=reasons,
    )
    s = summarize(results)
    e2e_report["crash_on_start"] = {
        "load": s,
        "phases": phases,
        "rolled_back_s": round(run.rolled_back_s, 2),
        "message": run.final.get("message"),
        "crash_pods": len(crash_pods),
        "min_ready": lowest,
        "events": reasons,
        "progressing": an.condition({"status": run.final}, "Progressing"),
    }
    e2e_report.setdefault("summary_lines", []).append(
        f"crash on start (v4-crash): phases {' -> '.join(phases)} in {run.rolled_back_s:.1f} s; "
        f"{s['sent']} requests, {s['failed']} failed {s['failures'] or ''}; min ready {lowest}; "
        f"message: {run.final.get('message')}"
    )
    return run


def _answered_by(results: list[Result], versions: set[str]) -> None:
    """No request failed, and the answers came from exactly these versions."""
    failed = [r for r in results if r.failure]
    assert not failed, f"{len(failed)} requests failed: {Counter(r.failure for r in failed)}; {failed[:3]}"
    answered = Counter(r.version for r in results)
    assert set(answered) == versions, f"answers by version: {dict(answered)}"


def test_crashing_version_fails_and_rolls_back_without_failing_a_request(crash: CrashRun) -> None:
    assert crash.results, "no request sent"
    _answered_by(crash.results, {crash.stable_version})
    assert crash.phases[-1] == "RolledBack", f"phases: {crash.phases}"
    # Failed, then rolled back: with rollbackOnFailure the phase goes straight to RolledBack; the failure
    # is the Progressing condition (False, a failure reason) and a RolloutFailed event before RolledBack.
    progressing = an.condition({"status": crash.final}, "Progressing") or {}
    assert progressing.get("status") == "False", progressing
    assert progressing.get("reason") == "NewPodsCrashing", progressing
    assert "RolloutFailed" in crash.event_reasons, crash.event_reasons
    assert "RolledBack" in crash.event_reasons, crash.event_reasons
    assert crash.event_reasons.index("RolloutFailed") <= crash.event_reasons.index("RolledBack"), (
        crash.event_reasons
    )
    assert "roll" in (crash.final.get("message") or "").lower(), crash.final.get("message")
    assert crash.final.get("stableVersion") == crash.stable_version
    assert crash.crash_pods, "no pod of the crashing version was ever created"
    assert not crash.crash_endpoint_ready, f"crashing pods were ready endpoints: {crash.crash_endpoint_ready}"
    # The stable version untouched: the same pods (uid), not restarted, none added or removed.
    assert crash.stable_after == crash.stable_before
    assert crash.min_ready >= REPLICAS, f"ready endpoints fell to {crash.min_ready}"


# ------------------------------------------------------------------------------------------ selector

SELECTOR_STRATEGY = {"cutover": "ServiceSelector", "rollbackWindowSeconds": 600}


@dataclasses.dataclass
class SelectorRun:
    results: list[Result]
    forward: RolloutTimes  # stable -> v5 by the Service's selector
    back: RolloutTimes  # v5 -> stable inside the rollback window
    stable_version: str
    stable_before: dict[str, tuple[str, int]]  # the stable pods before the cutover
    stable_warm: dict[str, tuple[str, int]]  # ... while v5 served (warm, out of the Service)
    stable_after: dict[str, tuple[str, int]]  # ... after the rollback
    terminating_before_stop: list[str]  # pods deleted before their version's TrafficStopped
    lags: dict[str, float]
    min_ready: int


def _cut_over_at(
    timeline: list[tuple[float, an.Snapshot]], pods: dict[str, an.PodInfo], version: str, since: float
) -> dict[str, float]:
    """For each pod of `version` with a ready endpoint at `since`: the first recorded moment after it
    with no ready endpoint (not ready, or removed from the slices by the selector switch)."""
    before = [snap for t, snap in timeline if t <= since]
    last = before[-1] if before else {}
    ready = {p for p, ep in last.items() if ep.ready and p in pods and pods[p].version == version}
    out: dict[str, float] = {}
    for t, snap in timeline:
        if t <= since:
            continue
        for pod in ready - out.keys():
            if not (pod in snap and snap[pod].ready):
                out[pod] = t
    return out


@pytest.fixture(scope="module")
def selector(fleet: Fleet, crash: CrashRun, e2e_report: dict[str, Any]) -> SelectorRun:
    """After `crash` (the stable version serving alone): switch the fleet to cutover ServiceSelector with
    a rollback window, then under load cut over to v5 by the selector and roll back to the stable
    version inside the window; finally back to cutover Delete (v5's warm pods go, the pin is removed)."""
    stable = crash.stable_version
    pin = fleet.apply(stable, strategy=SELECTOR_STRATEGY)
    fleet.wait_for_status(pin, "seen", lambda o: True, 30)
    fleet.bed.wait_for(
        lambda: (
            "fastrollout.io/revision"
            in fleet.bed.kubectl_json("get", "service", NAME, "-n", fleet.namespace)["spec"]["selector"]
        ),
        timeout=30,
        message="the Service pinned to the stable revision",
    )
    before = _stable_pods(fleet)
    load = LoadGenerator(
        fleet.cluster_ip, 80, clients=LOAD_CLIENTS // 2, pause=LOAD_PAUSE_S, timeout=60, max_seconds=300
    ).start()
    try:
        time.sleep(2)
        forward = RolloutTimes(fleet.apply("v5", strategy=SELECTOR_STRATEGY))
        forward.traffic_stopped = fleet.wait_for_status(
            forward.applied, "TrafficStopped", traffic_stopped("v5"), ROLLOUT_TIMEOUT_S
        )
        time.sleep(4)  # past the propagation margin: the window must keep the stable pods running
        warm = {n: v for n, v in _stable_pods(fleet).items() if n in before}
        back = RolloutTimes(fleet.apply(stable, strategy=SELECTOR_STRATEGY))
        back.traffic_stopped = fleet.wait_for_status(
            back.applied, "TrafficStopped", traffic_stopped(stable), 60
        )
        time.sleep(4)
    finally:
        results = load.stop()
    after = {n: v for n, v in _stable_pods(fleet).items() if n in before}
    done = fleet.apply(stable)  # cutover Delete again: v5's warm pods are deleted, the pin removed
    fleet.wait_for_status(
        done,
        "Drained",
        lambda o: (an.condition(o, "Drained") or {}).get("status") == "True",
        timeout=GRACE_S + 60,
    )
    assert_intact(fleet.recorders)
    assert load.started_at is not None
    assert load.stopped_at is not None
    pods = an.pod_infos(fleet.pods.events())
    timeline = an.endpoint_timeline(fleet.slices.events())
    forward_cut = _cut_over_at(timeline, pods, stable, forward.applied.at)
    back_cut = _cut_over_at(timeline, pods, "v5", back.applied.at)
    forward.cut_over, back.cut_over = sorted(forward_cut), sorted(back_cut)
    # Per pod: the last request it served (before the next switch) minus when it left the Service.
    lags = {
        **an.propagation_lags([r for r in results if r.start < back.applied.at], forward_cut),
        **an.propagation_lags(results, back_cut),
    }
    early = sorted(
        p.name
        for p in pods.values()
        if p.terminating_seen is not None
        and (
            (p.version == stable and forward.applied.at <= p.terminating_seen < forward.t_stopped)
            or (p.version == "v5" and p.terminating_seen < back.t_stopped)
        )
    )
    lowest, _ = an.min_ready_between(an.ready_counts(timeline), load.started_at, load.stopped_at)
    run = SelectorRun(
        results=results,
        forward=forward,
        back=back,
        stable_version=stable,
        stable_before=before,
        stable_warm=warm,
        stable_after=after,
        terminating_before_stop=early,
        lags=lags,
        min_ready=lowest,
    )
    s, values = summarize(results), sorted(lags.values())
    numbers = {
        "load": s,
        "cutover_traffic_stopped_s": _rel(forward.traffic_stopped.t, forward.applied.at),
        "rollback_traffic_stopped_s": _rel(back.traffic_stopped.t, back.applied.at),
        "propagation_lag_s": {
            "pods": len(values),
            "p50": round(an.percentile(values, 50), 3) if values else None,
            "max": round(values[-1], 3) if values else None,
        },
        "min_ready": lowest,
    }
    e2e_report["selector_cutover"] = numbers
    e2e_report.setdefault("summary_lines", []).append(
        f"cutover ServiceSelector under load: {stable} -> v5 TrafficStopped "
        f"{numbers['cutover_traffic_stopped_s']} s after apply (new pods start included); rollback to {stable} "
        f"inside the window {numbers['rollback_traffic_stopped_s']} s; {s['sent']} requests, {s['failed']} "
        f"failed {s['failures'] or ''}; propagation lag (pod out of the Service -> last request it got) "
        f"p50 {numbers['propagation_lag_s']['p50']} s, max {numbers['propagation_lag_s']['max']} s over "
        f"{len(values)} pods; min ready endpoints {lowest}"
    )
    return run


def test_selector_cutover_and_rollback_in_the_window_fail_no_request(selector: SelectorRun) -> None:
    _answered_by(selector.results, {selector.stable_version, "v5"})
    assert selector.min_ready >= REPLICAS, f"ready endpoints fell to {selector.min_ready}"


def test_selector_rollback_finds_the_previous_pods_warm(selector: SelectorRun) -> None:
    # The same pods (uid), never restarted, through the cutover, the window and the rollback.
    assert selector.stable_warm == selector.stable_before
    assert selector.stable_after == selector.stable_before
    assert selector.forward.cut_over, "no stable pod left the Service at the cutover"
    assert selector.back.cut_over, "no v5 pod left the Service at the rollback"
    assert selector.back.traffic_stopped is not None
    took = selector.back.traffic_stopped.t - selector.back.applied.at
    assert took < 10, f"rollback inside the window took {took:.1f}s to TrafficStopped"


def test_selector_cutover_deletes_no_pod_that_still_receives_traffic(selector: SelectorRun) -> None:
    assert not selector.terminating_before_stop, (
        f"pods deleted before their version's TrafficStopped: {selector.terminating_before_stop}"
    )
    # Old pods stopped getting new requests within the stated propagation bound of leaving the Service.
    assert selector.lags, "no propagation lag measured: no old pod served a request?"
    late = {p: round(v, 3) for p, v in selector.lags.items() if v > an.PROPAGATION_BOUND_S}
    assert not late, f"pods got new requests past {an.PROPAGATION_BOUND_S}s after leaving the Service: {late}"
