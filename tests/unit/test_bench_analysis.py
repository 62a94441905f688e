"""Pure parts of the benchmarks (bench/analysis.py): apiserver metrics, (a)(b)(c) from recorded events,
capacity, cutover latency, median and spread. No cluster, no clock."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import analysis as a

METRICS_BEFORE = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 10
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_total{code="201",component="apiserver",dry_run="All",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 100
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 4
apiserver_request_duration_seconds_bucket{verb="POST",le="0.1"} 5
"""

METRICS_AFTER = """\
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 110
apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="DELETECOLLECTION",version="v1"} 1
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 130
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 204
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="binding",verb="POST",version="v1"} 100
"""


def test_parse_request_totals_sums_codes_and_skips_dry_runs() -> None:
    totals = a.parse_request_totals(METRICS_BEFORE)
    assert totals[("POST", "pods", "")] == 11  # 201 + 409, dry run left out
    assert totals[("LIST", "pods", "")] == 3
    assert totals[("PATCH", "pods", "status")] == 4
    assert ("POST", "", "") not in totals  # other metric families are ignored


def test_write_deltas_counts_rollout_writes_and_sets_background_apart() -> None:
    w = a.write_deltas(a.parse_request_totals(METRICS_BEFORE), a.parse_request_totals(METRICS_AFTER))
    assert w.by_key == {
        "DELETECOLLECTION pods": 1,
        "PATCH pods/status": 200,
        "POST pods": 100,
        "POST pods/binding": 100,
    }
    assert w.total == 401  # reads (LIST) are not writes
    assert w.other == {"PUT leases": 30}
    assert w.count("POST", "pods", "binding") == 100
    assert w.control_writes() == 101  # minus bindings and kubelet status patches
    assert w.as_dict()["control"] == 101


# --- recorded event sequences -----------------------------------------------------------------------------

NS = "ns"


def pod(
    t: float, name: str, version: str, ready: bool, deleting: bool = False, kind: str = "MODIFIED"
) -> list[Any]:
    return ["p", t, kind, NS, name, version, ready, deleting]


def gone(t: float, name: str, version: str) -> list[Any]:
    return ["p", t, "DELETED", NS, name, version, False, True]


def eps(t: float, name: str, endpoints: dict[str, bool], kind: str = "MODIFIED") -> list[Any]:
    return ["s", t, kind, NS, name, [[p, r] for p, r in endpoints.items()]]


def status(t: float, version: str, stopped: bool) -> list[Any]:
    return ["f", t, "MODIFIED", NS, "fr", {"version": version, "trafficStopped": stopped}]


def initial(n: int) -> list[list[Any]]:
    """n ready v1 pods in one slice, at t = -1."""
    out = [pod(-1, f"old-{i}", "v1", True, kind="ADDED") for i in range(n)]
    out.append(eps(-1, "slice-a", {f"old-{i}": True for i in range(n)}, kind="ADDED"))
    return out


def bulk_rollout() -> list[list[Any]]:
    """A fastrollout-like bulk rollout of 2 pods: both new pods at once, one collection delete."""
    return [
        *initial(2),
        pod(0.5, "new-0", "v2", False, kind="ADDED"),
        pod(0.6, "new-1", "v2", False, kind="ADDED"),
        pod(2.5, "new-0", "v2", True),
        eps(2.6, "slice-a", {"old-0": True, "old-1": True, "new-0": True}),
        pod(3.0, "new-1", "v2", True),  # (a) all new Ready at 3.0 (min-ready gate too)
        eps(3.1, "slice-a", {"old-0": True, "old-1": True, "new-0": True, "new-1": True}),
        pod(4.0, "old-0", "v1", True, deleting=True),
        pod(4.0, "old-1", "v1", True, deleting=True),
        eps(4.5, "slice-a", {"old-0": False, "old-1": False, "new-0": True, "new-1": True}),  # (b) 4.5
        status(5.2, "v2", True),
        gone(24.0, "old-0", "v1"),
        gone(24.2, "old-1", "v1"),  # (c) 24.2
        eps(24.3, "slice-a", {"new-0": True, "new-1": True}),
    ]


def test_bulk_rollout_times() -> None:
    r = a.analyze(bulk_rollout(), t0=0.0, target="v2", n=2)
    assert r.new_ready_s == 3.0
    assert r.min_ready_percent_s == 3.0
    assert r.first_old_terminating_s == 4.0
    assert r.all_old_terminating_s == 4.0
    assert r.cutover_started_s == 4.0
    assert r.traffic_stopped_s == 4.5
    assert r.drained_s == 24.2
    assert r.status_traffic_stopped_s == 5.2
    assert r.cutover_latency_s == pytest.approx(2.2)
    assert r.min_ready_capacity == 2
    assert not r.capacity_dipped
    assert r.capacity_below_n_s == 0.0


def test_timeline_samples_state_at_each_step() -> None:
    r = a.analyze(bulk_rollout(), t0=0.0, target="v2", n=2, timeline_step=5.0)
    # at t = 0, 5, 10, 15, 20 (state after the last event at or before each step)
    assert [(p.t, p.new_ready, p.old_serving, p.old_draining, p.ready_capacity) for p in r.timeline] == [
        (0.0, 0, 2, 0, 2),
        (5.0, 2, 0, 2, 2),
        (10.0, 2, 0, 2, 2),
        (15.0, 2, 0, 2, 2),
        (20.0, 2, 0, 2, 2),
    ]
    d = r.as_dict()
    assert d["timeline_fields"] == [
        "t",
        "new_ready",
        "old_serving",
        "old_draining",
        "old_present",
        "ready_capacity",
    ]
    assert d["timeline"][1] == [5.0, 2, 0, 2, 2, 2]


def rolling_with_dip() -> list[list[Any]]:
    """A Deployment 25/25-like step on 4 pods: one old pod deleted before its replacement is Ready."""
    return [
        *initial(4),
        pod(0.2, "old-3", "v1", True, deleting=True),
        eps(0.4, "slice-a", {"old-0": True, "old-1": True, "old-2": True, "old-3": False}),  # capacity 3
        pod(0.3, "new-0", "v2", False, kind="ADDED"),
        pod(2.3, "new-0", "v2", True),
        eps(
            2.4, "slice-a", {"old-0": True, "old-1": True, "old-2": True, "old-3": False, "new-0": True}
        ),  # 4
    ]


def test_capacity_dip_is_measured_from_endpoints() -> None:
    r = a.analyze(rolling_with_dip(), t0=0.0, target="v2", n=4)
    assert r.capacity_dipped
    assert r.min_ready_capacity == 3
    assert r.capacity_below_n_s == pytest.approx(2.0)
    assert r.min_pods_ready == 3
    assert r.new_ready_s is None  # never got 4 new pods in this recording
    assert r.traffic_stopped_s is None
    assert r.drained_s is None
    assert r.cutover_latency_s is None
    assert r.cutover_started_s is None  # the gate (4 new Ready) was never reached


def test_endpoint_listed_in_two_slices_counts_once_and_absent_ready_is_ready() -> None:
    events = [
        *initial(2),
        # the endpoint controller moves old-1 into a second slice before removing it from the first
        eps(1.0, "slice-b", {"old-1": True}, kind="ADDED"),
        eps(1.1, "slice-a", {"old-0": True}),
    ]
    r = a.analyze(events, t0=0.0, target="v2", n=2)
    assert r.min_ready_capacity == 2
    assert not r.capacity_dipped


def test_traffic_stopped_is_the_last_time_old_serving_reached_zero() -> None:
    events = [
        *initial(1),
        pod(0.1, "new-0", "v2", True, kind="ADDED"),
        eps(0.2, "slice-a", {"old-0": False, "new-0": True}),  # zero at 0.2 ...
        eps(0.3, "slice-a", {"old-0": True, "new-0": True}),  # ... but old-0 is ready again
        eps(0.9, "slice-a", {"old-0": False, "new-0": True}),  # for good at 0.9
    ]
    assert a.analyze(events, t0=0.0, target="v2", n=1).traffic_stopped_s == 0.9


def test_endpoint_before_its_pod_event_uses_the_recorded_version() -> None:
    # The slice watch may deliver a new pod's endpoint before the pod watch delivers the pod: the pod's
    # version comes from the whole recording, so it is not counted as an old pod.
    events = [
        *initial(1),
        eps(0.5, "slice-a", {"old-0": False, "new-0": True}),
        pod(0.6, "new-0", "v2", True, kind="ADDED"),
    ]
    r = a.analyze(events, t0=0.0, target="v2", n=1)
    assert r.traffic_stopped_s == 0.5


def test_status_of_an_older_version_is_not_traffic_stopped() -> None:
    events = [*bulk_rollout()[:-4], status(4.6, "v1", True), *bulk_rollout()[-4:]]
    r = a.analyze(events, t0=0.0, target="v2", n=2)
    assert r.status_traffic_stopped_s == 5.2


def test_min_ready_percent_gate() -> None:
    r = a.analyze(bulk_rollout(), t0=0.0, target="v2", n=2, min_ready_percent=50)
    assert r.min_ready_percent_s == 2.5
    assert r.cutover_latency_s == pytest.approx(2.7)


def test_fleet_snapshot_round_trips() -> None:
    fleet = a.Fleet(target="v2")
    for e in bulk_rollout()[:9]:
        fleet.apply(e)
    again = a.Fleet(target="v2")
    for e in fleet.snapshot_events(7.0, NS):
        again.apply(e)
    assert again.counts() == fleet.counts()
    assert fleet.counts() == a.Counts(
        new_ready=2, old_serving=2, old_present=2, old_draining=0, ready_capacity=4, pods_ready=4
    )


def test_events_before_t0_only_build_state() -> None:
    events = bulk_rollout()
    r = a.analyze(events, t0=3.5, target="v2", n=2)
    assert r.new_ready_s == 0.0  # already true at t0
    assert r.traffic_stopped_s == 1.0
    assert r.drained_s == pytest.approx(20.7)


@pytest.mark.parametrize(
    ("values", "median", "low", "high", "missing", "text"),
    [
        pytest.param([3.0, 1.0, 2.0], 2.0, 1.0, 3.0, 0, "2.0 (1.0-3.0)", id="odd"),
        pytest.param([1.0, 2.0, 3.0, 10.0], 2.5, 1.0, 10.0, 0, "2.5 (1.0-10.0)", id="even"),
        pytest.param([4.0], 4.0, 4.0, 4.0, 0, "4.0", id="one"),
        pytest.param([4.0, None], 4.0, 4.0, 4.0, 1, "4.0 [1 missing]", id="missing"),
        pytest.param([None], None, None, None, 1, "n/a", id="none"),
        pytest.param([], None, None, None, 0, "n/a", id="empty"),
    ],
)
def test_spread(
    values: list[float | None],
    median: float | None,
    low: float | None,
    high: float | None,
    missing: int,
    text: str,
) -> None:
    s = a.spread(values)
    assert (s.median, s.low, s.high, s.missing) == (median, low, high, missing)
    assert s.fmt() == text


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([1.0, 2.0, 3.0, 4.0], 50, 2.5, id="median-even"),
        pytest.param([5.0, 1.0, 3.0], 50, 3.0, id="median-odd-unsorted"),
        pytest.param([float(i) for i in range(1, 101)], 99, 99.01, id="p99-of-100"),
        pytest.param([7.0], 99, 7.0, id="one"),
        pytest.param([1.0, 2.0], 100, 2.0, id="max"),
        pytest.param([1.0, 2.0], 0, 1.0, id="min"),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert a.percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing() -> None:
    assert a.percentile([], 50) is None


def test_probe_latencies_from_events() -> None:
    fr = "fr"
    events = [
        ["f", 0.5, "MODIFIED", NS, fr, {"readyReplicas": 9, "servingReplicas": 9}],  # before the write
        pod(1.0, "other", "v1", False),
        pod(1.02, "p-3", "v1", False),
        eps(1.10, "slice-a", {"p-3": False, "p-4": True}),
        ["f", 1.30, "MODIFIED", NS, fr, {"readyReplicas": 9, "servingReplicas": 10}],
        ["f", 1.90, "MODIFIED", NS, "another", {"readyReplicas": 9, "servingReplicas": 9}],
        ["f", 2.05, "MODIFIED", NS, fr, {"readyReplicas": 9, "servingReplicas": 9}],
    ]
    p = a.probe(events, t_write=1.0, pod="p-3", fastrollout=fr, expect=9)
    assert (p.t_pod, p.t_slice, p.t_status_ready, p.t_status_serving) == (1.02, 1.10, 1.30, 2.05)
    assert p.pod_to_status() == pytest.approx(0.28)
    assert p.slice_to_status() == pytest.approx(0.95)
    assert p.event_to_status() == pytest.approx(0.95)


def test_probe_never_reflected() -> None:
    p = a.probe([pod(1.1, "p-3", "v1", False)], t_write=1.0, pod="p-3", fastrollout="fr", expect=9)
    assert p.t_pod == 1.1
    assert p.pod_to_status() is None
    assert p.event_to_status() is None


def service(t: float, pin: str | None, kind: str = "MODIFIED") -> list[Any]:
    selector = {"app": "w"} | ({"fastrollout.io/revision": pin} if pin else {})
    return ["v", t, kind, NS, "w", selector]


def selector_rollout() -> list[list[Any]]:
    """A ServiceSelector cutover of 2 pods: new pods Ready out of the Service, the pin switches, the
    EndpointSlice controller swaps the endpoints (old ones removed, not turned not-ready), and the old
    pods are deleted only after TrafficStopped."""
    return [
        *initial(2),
        service(-1, "rev1", kind="ADDED"),
        pod(0.5, "new-0", "v2", False, kind="ADDED"),
        pod(0.6, "new-1", "v2", False, kind="ADDED"),
        pod(2.5, "new-0", "v2", True),
        pod(3.0, "new-1", "v2", True),  # gate
        service(3.4, "rev2"),  # the operator's pin
        eps(3.6, "slice-a", {"old-0": True, "old-1": True, "new-0": True}),
        eps(3.7, "slice-a", {"new-0": True, "new-1": True}),  # switched: all new, no old
        status(4.1, "v2", True),
        pod(6.0, "old-0", "v1", True, deleting=True),
        pod(6.0, "old-1", "v1", True, deleting=True),
    ]


def test_selector_cutover_times() -> None:
    r = a.analyze(selector_rollout(), t0=0.0, target="v2", n=2)
    assert r.min_ready_percent_s == 3.0
    assert r.service_switched_s == 3.4
    assert r.new_serving_s == 3.7
    assert r.switched_s == 3.7
    assert r.traffic_stopped_s == 3.7
    assert r.status_traffic_stopped_s == 4.1
    assert r.cutover_latency_s == pytest.approx(1.1)
    assert r.first_old_terminating_s == 6.0
    assert r.min_ready_capacity == 2
    assert not r.capacity_dipped


def test_pin_unchanged_after_t0_is_not_a_switch() -> None:
    events = [*initial(2), service(-1, "rev1", kind="ADDED"), service(1.0, "rev1")]
    r = a.analyze(events, t0=0.0, target="v2", n=2)
    assert r.service_switched_s is None
    assert r.switched_s is None


def test_rollback_to_warm_pods_is_switched_when_slices_show_only_them() -> None:
    """v2 serving, v1 Ready out of the Service; v1 applied again at t0 = 0: the gate passes at once."""
    warm = [pod(-1, f"new-{i}", "v2", True, kind="ADDED") for i in range(2)]
    events = [
        *initial(2),  # v1 pods ("old-*") Ready
        *warm,
        eps(-1, "slice-a", {"new-0": True, "new-1": True}),
        service(-1, "rev2", kind="ADDED"),
        service(0.2, "rev1"),
        eps(0.3, "slice-a", {"new-0": True, "new-1": True, "old-0": True}),
        eps(0.35, "slice-a", {"old-0": True, "old-1": True}),
        status(0.7, "v1", True),
    ]
    r = a.analyze(events, t0=0.0, target="v1", n=2)
    assert r.min_ready_percent_s == 0.0
    assert r.service_switched_s == 0.2
    assert r.new_serving_s == 0.35
    assert r.switched_s == 0.35
    assert r.cutover_latency_s == pytest.approx(0.7)
    assert r.min_ready_capacity == 2
