"""Pure parts of the benchmarks: no cluster, no clock, no I/O.

- `parse_request_totals` / `write_deltas`: kube-apiserver `/metrics` text -> `apiserver_request_total`
  summed by (verb, resource, subresource); the writes one rollout caused are the delta of two scrapes.
- `Fleet`: the state of one namespace's pods and EndpointSlices, updated incrementally from watch events
  (O(changed endpoints) per event, so 50,000 events of a 4,000-pod rollout replay in well under a second).
- `analyze`: from a recorded event sequence (the state at the spec change as synthetic ADDED events, then
  every watch event after it) the times to (a) all new pods Ready, (b) no old pod able to receive new
  traffic, judged from EndpointSlices the same way for every system (no endpoint of an old-version pod
  with `ready` true; `ready` absent counts as true, as the API says), (c) all old pods gone; the lowest
  ready capacity (unique pods with a ready endpoint) and how long it stayed below N; for a FastRollout,
  when its status first said TrafficStopped and the cutover latency from `minReadyPercent` of the new
  pods Ready to that status; for a ServiceSelector cutover, when the Service's selector key
  `fastrollout.io/revision` changed, when all N new pods first had a ready endpoint, and when that held
  with no old pod's endpoint ready (the switch as the EndpointSlices show it).
- `spread`: median and min-max of repeated measurements.

Events are plain lists (JSON-ready, so the raw recordings can be stored and re-analysed):
    ["p", t, type, namespace, name, version, ready, deleting]          a pod
    ["s", t, type, namespace, name, [[pod, ready], ...]]                an EndpointSlice
    ["f", t, type, namespace, name, status-summary-dict]               a FastRollout
    ["v", t, type, namespace, name, {selector}]                         a Service's spec.selector
`t` is seconds on one clock (the recorder's `time.time()`); `type` is ADDED | MODIFIED | DELETED.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")
# Resources a rollout writes (directly or through controllers, the scheduler and the simulated kubelet).
# Leases (node heartbeats, leader election) and the authn/authz reviews are background noise, reported
# apart as "other".
ROLLOUT_RESOURCES = (
    "pods",
    "replicasets",
    "deployments",
    "endpointslices",
    "endpoints",
    "fastrollouts",
    "events",
)

Key = tuple[str, str, str]  # (verb, resource, subresource)

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_request_totals(text: str) -> dict[Key, float]:
    """`apiserver_request_total` from kube-apiserver's Prometheus text, summed over every label but
    verb, resource and subresource (code, component, group, version, scope, dry_run)."""
    totals: dict[Key, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group("labels")))
        if labels.get("dry_run"):
            continue  # a dry run writes nothing
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        totals[key] = totals.get(key, 0.0) + float(m.group("value"))
    return totals


@dataclass(frozen=True)
class Writes:
    """API writes between two scrapes."""

    total: int  # writes to ROLLOUT_RESOURCES
    by_key: dict[str, int]  # "VERB resource[/subresource]" -> count, ROLLOUT_RESOURCES only
    other: dict[str, int]  # writes to anything else (leases, reviews): background, not counted

    def count(self, verb: str, resource: str, subresource: str = "") -> int:
        key = f"{verb} {resource}" + (f"/{subresource}" if subresource else "")
        return self.by_key.get(key, 0)

    def control_writes(self) -> int:
        """Writes minus those a real cluster spends per pod whatever the controller: the scheduler's
        bindings and the kubelet's status patches and final deletes (here kwok's)."""
        return self.total - self.count("POST", "pods", "binding") - self.count("PATCH", "pods", "status")

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "control": self.control_writes(),
            "by_key": self.by_key,
            "other": self.other,
        }


def write_deltas(before: Mapping[Key, float], after: Mapping[Key, float]) -> Writes:
    by_key: dict[str, int] = {}
    other: dict[str, int] = {}
    for key, value in after.items():
        verb, resource, subresource = key
        if verb not in WRITE_VERBS:
            continue
        delta = round(value - before.get(key, 0.0))
        if delta <= 0:
            continue
        name = f"{verb} {resource}" + (f"/{subresource}" if subresource else "")
        (by_key if resource in ROLLOUT_RESOURCES else other)[name] = delta
    return Writes(
        total=sum(by_key.values()), by_key=dict(sorted(by_key.items())), other=dict(sorted(other.items()))
    )


# --- fleet state from watch events ---------------------------------------------------------------------


@dataclass
class Counts:
    """What a fleet looks like at one moment, relative to a target version."""

    new_ready: int  # target-version pods Ready and not terminating
    old_serving: int  # unique pods of other versions with a ready endpoint
    old_present: int  # pods of other versions still in the API (terminating ones included)
    old_draining: int  # pods of other versions terminating
    ready_capacity: int  # unique pods (any version) with a ready endpoint
    pods_ready: int  # pods (any version) Ready and not terminating


@dataclass
class Fleet:
    """Pods and EndpointSlice endpoints of one namespace, with counters kept up to date per event.

    `versions` maps pod name -> version for endpoints whose pod event has not (yet) been applied;
    when analysing a finished recording it holds every pod's version, so stream order does not matter.
    """

    target: str
    versions: dict[str, str] = field(default_factory=dict)
    # name -> (version, ready, deleting)
    pods: dict[str, tuple[str, bool, bool]] = field(default_factory=dict)
    slices: dict[str, dict[str, bool]] = field(default_factory=dict)  # slice -> pod -> ready
    _present: Counter[str] = field(default_factory=Counter)
    _ready: Counter[str] = field(default_factory=Counter)  # ready and not deleting, by version
    _deleting: Counter[str] = field(default_factory=Counter)
    _ep_refs: Counter[str] = field(default_factory=Counter)  # pod -> slices listing it ready
    _ep_version: dict[str, str] = field(default_factory=dict)  # pod -> version counted for its endpoint
    _ep_ready: Counter[str] = field(default_factory=Counter)  # version -> unique pods with ready endpoint

    def version_of(self, pod: str) -> str:
        known = self.pods.get(pod)
        if known is not None:
            return known[0]
        return self.versions.get(pod, "?")

    def _pod_delta(self, state: tuple[str, bool, bool], sign: int) -> None:
        version, ready, deleting = state
        self._present[version] += sign
        if ready and not deleting:
            self._ready[version] += sign
        if deleting:
            self._deleting[version] += sign

    def apply_pod(self, kind: str, name: str, version: str, ready: bool, deleting: bool) -> None:
        self.versions.setdefault(name, version)
        old = self.pods.pop(name, None)
        if old is not None:
            self._pod_delta(old, -1)
        if kind != "DELETED":
            new = (version, ready, deleting)
            self.pods[name] = new
            self._pod_delta(new, +1)

    def _endpoint(self, pod: str, sign: int) -> None:
        before = self._ep_refs[pod]
        after = before + sign
        if after <= 0:
            del self._ep_refs[pod]
        else:
            self._ep_refs[pod] = after
        if before == 0 and after > 0:
            version = self.version_of(pod)
            self._ep_version[pod] = version
            self._ep_ready[version] += 1
        elif before > 0 and after <= 0:
            version = self._ep_version.pop(pod, self.version_of(pod))
            self._ep_ready[version] -= 1

    def apply_slice(self, kind: str, name: str, endpoints: Iterable[Sequence[Any]]) -> None:
        old = self.slices.pop(name, {})
        new: dict[str, bool] = {} if kind == "DELETED" else {str(e[0]): bool(e[1]) for e in endpoints}
        for pod, ready in old.items():
            if ready and not new.get(pod, False):
                self._endpoint(pod, -1)
        for pod, ready in new.items():
            if ready and not old.get(pod, False):
                self._endpoint(pod, +1)
        if kind != "DELETED":
            self.slices[name] = new

    def apply(self, event: Sequence[Any]) -> None:
        """Applies one recorded event (`p` or `s`; `f` and `v` events carry no fleet state)."""
        if event[0] == "p":
            self.apply_pod(event[2], event[4], event[5], bool(event[6]), bool(event[7]))
        elif event[0] == "s":
            self.apply_slice(event[2], event[4], event[5])

    def counts(self) -> Counts:
        t = self.target
        present = sum(self._present.values())
        capacity = sum(self._ep_ready.values())
        return Counts(
            new_ready=self._ready[t],
            old_serving=capacity - self._ep_ready[t],
            old_present=present - self._present[t],
            old_draining=sum(self._deleting.values()) - self._deleting[t],
            ready_capacity=capacity,
            pods_ready=sum(self._ready.values()),
        )

    def snapshot_events(self, t: float, namespace: str) -> list[list[Any]]:
        """The current state as ADDED events at time `t` (the start of a recording)."""
        out: list[list[Any]] = [
            ["p", t, "ADDED", namespace, name, v, ready, deleting]
            for name, (v, ready, deleting) in self.pods.items()
        ]
        out += [
            ["s", t, "ADDED", namespace, name, [[pod, ready] for pod, ready in eps.items()]]
            for name, eps in self.slices.items()
        ]
        return out


# --- one rollout's numbers -----------------------------------------------------------------------------


@dataclass
class TimelinePoint:
    t: float  # seconds from the spec change
    new_ready: int
    old_serving: int
    old_draining: int
    old_present: int
    ready_capacity: int


@dataclass
class RolloutTimes:
    """Seconds from the spec change (None: never happened in the recording)."""

    new_ready_s: float | None
    traffic_stopped_s: float | None
    drained_s: float | None
    min_ready_percent_s: float | None  # the new pods reached minReadyPercent (fastrollout's cutover gate)
    first_old_terminating_s: float | None  # the first old pod got its deletionTimestamp
    all_old_terminating_s: float | None  # every old pod terminating (or gone): the cutover's deletes done
    cutover_started_s: float | None  # first old pod turning terminating at or after the min-ready gate
    status_traffic_stopped_s: float | None  # a FastRollout's status first said TrafficStopped
    cutover_latency_s: float | None  # status_traffic_stopped_s - min_ready_percent_s
    service_switched_s: float | None  # the Service's fastrollout.io/revision key changed (ServiceSelector)
    new_serving_s: float | None  # all N new pods had a ready endpoint
    switched_s: float | None  # all N new pods with a ready endpoint and none of an old pod
    min_ready_capacity: int
    capacity_below_n_s: float  # total time with fewer than N ready endpoints
    capacity_dipped: bool
    min_pods_ready: int
    events: int
    timeline: list[TimelinePoint]

    def as_dict(self, with_timeline: bool = True) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "timeline"}
        if with_timeline:
            out["timeline"] = [list(p.__dict__.values()) for p in self.timeline]
            out["timeline_fields"] = list(TimelinePoint.__dataclass_fields__)
        return out


PIN_KEY = "fastrollout.io/revision"


def _status_says_stopped(status: Mapping[str, Any], target: str) -> bool:
    return status.get("version") == target and status.get("trafficStopped") is True


def analyze(
    events: Sequence[Sequence[Any]],
    t0: float,
    target: str,
    n: int,
    min_ready_percent: int = 100,
    timeline_step: float | None = 1.0,
) -> RolloutTimes:
    """The numbers of one rollout from its recorded events (see the module docstring).

    `events` must hold the state at `t0` (e.g. `Fleet.snapshot_events`) followed by the events after it,
    in the order received. (b) and (c) are the last moments the count became zero (a count that went back
    up, say a new old pod, restarts it); (a) is the first moment all N new pods were Ready.
    """
    versions = {str(e[4]): str(e[5]) for e in events if e[0] == "p"}
    fleet = Fleet(target=target, versions=versions)
    threshold = math.ceil(n * min_ready_percent / 100)
    new_ready_at: float | None = None
    gate_at: float | None = None
    serving_zero_at: float | None = None
    present_zero_at: float | None = None
    status_stopped_at: float | None = None
    first_term_at: float | None = None
    all_term_at: float | None = None
    cut_start_at: float | None = None
    pin_before: str | None = None  # the Service's pin at t0
    pin_changed_at: float | None = None
    new_serving_at: float | None = None
    switched_at: float | None = None
    min_capacity: int | None = None
    min_pods_ready: int | None = None
    below_since: float | None = None
    below_total = 0.0
    timeline: list[TimelinePoint] = []
    next_sample = t0
    last_t = t0
    c = fleet.counts()
    started = False
    count = 0

    def sample_until(t: float) -> None:
        nonlocal next_sample
        if timeline_step is None:
            return
        while next_sample <= t:
            timeline.append(
                TimelinePoint(
                    round(next_sample - t0, 3),
                    c.new_ready,
                    c.old_serving,
                    c.old_draining,
                    c.old_present,
                    c.ready_capacity,
                )
            )
            next_sample += timeline_step

    def start() -> None:
        nonlocal started, min_capacity, min_pods_ready, below_since, serving_zero_at, present_zero_at
        nonlocal new_ready_at, gate_at, new_serving_at, switched_at
        started = True
        min_capacity, min_pods_ready = c.ready_capacity, c.pods_ready
        below_since = t0 if c.ready_capacity < n else None
        serving_zero_at = t0 if c.old_serving == 0 else None
        present_zero_at = t0 if c.old_present == 0 else None
        new_ready_at = t0 if c.new_ready >= n else None
        gate_at = t0 if c.new_ready >= threshold else None
        new_serving = c.ready_capacity - c.old_serving
        new_serving_at = t0 if new_serving >= n else None
        switched_at = t0 if new_serving >= n and c.old_serving == 0 else None

    for e in events:
        t = float(e[1])
        if not started and t >= t0:
            start()
        if started:
            sample_until(t)
            count += 1
        prev = c
        if e[0] == "f":
            if started and status_stopped_at is None and _status_says_stopped(e[5], target):
                status_stopped_at = t
            continue
        if e[0] == "v":
            pin = (e[5] or {}).get(PIN_KEY) if e[2] != "DELETED" else None
            if not started:
                pin_before = pin
            elif pin_changed_at is None and pin != pin_before:
                pin_changed_at = t
            continue
        fleet.apply(e)
        c = fleet.counts()
        if not started:
            continue
        last_t = max(last_t, t)
        if new_ready_at is None and c.new_ready >= n:
            new_ready_at = t
        if gate_at is None and c.new_ready >= threshold:
            gate_at = t
        new_serving = c.ready_capacity - c.old_serving
        if new_serving_at is None and new_serving >= n:
            new_serving_at = t
        if switched_at is None and new_serving >= n and c.old_serving == 0:
            switched_at = t
        if cut_start_at is None and gate_at is not None and c.old_draining > prev.old_draining:
            cut_start_at = t
        if first_term_at is None and c.old_draining > 0:
            first_term_at = t
        live_old = c.old_present - c.old_draining
        if live_old == 0 and prev.old_present - prev.old_draining > 0:
            all_term_at = t
        elif live_old > 0:
            all_term_at = None
        if c.old_serving == 0 and prev.old_serving > 0:
            serving_zero_at = t
        elif c.old_serving > 0:
            serving_zero_at = None
        if c.old_present == 0 and prev.old_present > 0:
            present_zero_at = t
        elif c.old_present > 0:
            present_zero_at = None
        assert min_capacity is not None
        assert min_pods_ready is not None
        min_capacity = min(min_capacity, c.ready_capacity)
        min_pods_ready = min(min_pods_ready, c.pods_ready)
        if c.ready_capacity < n and below_since is None:
            below_since = t
        elif c.ready_capacity >= n and below_since is not None:
            below_total += t - below_since
            below_since = None
    if not started:
        start()
    sample_until(last_t)
    if below_since is not None:
        below_total += last_t - below_since

    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    cutover = (
        round(status_stopped_at - gate_at, 3)
        if status_stopped_at is not None and gate_at is not None
        else None
    )
    assert min_capacity is not None
    assert min_pods_ready is not None
    return RolloutTimes(
        new_ready_s=rel(new_ready_at),
        traffic_stopped_s=rel(serving_zero_at),
        drained_s=rel(present_zero_at),
        min_ready_percent_s=rel(gate_at),
        first_old_terminating_s=rel(first_term_at),
        all_old_terminating_s=rel(all_term_at),
        cutover_started_s=rel(cut_start_at),
        status_traffic_stopped_s=rel(status_stopped_at),
        cutover_latency_s=cutover,
        service_switched_s=rel(pin_changed_at),
        new_serving_s=rel(new_serving_at),
        switched_s=rel(switched_at),
        min_ready_capacity=min_capacity,
        capacity_below_n_s=round(below_total, 3),
        capacity_dipped=min_capacity < n,
        min_pods_ready=min_pods_ready,
        events=count,
        timeline=timeline,
    )


# --- repeated measurements -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    median: float | None
    low: float | None
    high: float | None
    count: int  # values that were measured (None values are left out)
    missing: int  # repeats where the value was never reached

    def fmt(self, digits: int = 1) -> str:
        if self.median is None or self.low is None or self.high is None:
            return "n/a"
        if self.count == 1 or self.low == self.high:
            text = f"{self.median:.{digits}f}"
        else:
            text = f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"
        return text + (f" [{self.missing} missing]" if self.missing else "")


def spread(values: Iterable[float | None]) -> Spread:
    """Median and min-max of the values that are not None."""
    items = list(values)
    got = [float(v) for v in items if v is not None]
    if not got:
        return Spread(None, None, None, 0, len(items))
    return Spread(statistics.median(got), min(got), max(got), len(got), len(items) - len(got))


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class Probe:
    """One child-event-to-status measurement: a pod turned not-Ready at `t_write` (our status patch);
    when our watches saw the pod and its endpoint change, and when the FastRollout's status showed it."""

    t_write: float
    t_pod: float | None  # pod event with Ready=False
    t_slice: float | None  # EndpointSlice event with the pod's endpoint not ready
    t_status_ready: float | None  # status.readyReplicas went down to the expected count
    t_status_serving: float | None  # the versions' servingReplicas went down to the expected count

    def pod_to_status(self) -> float | None:
        if self.t_pod is None or self.t_status_ready is None:
            return None
        return self.t_status_ready - self.t_pod

    def slice_to_status(self) -> float | None:
        if self.t_slice is None or self.t_status_serving is None:
            return None
        return self.t_status_serving - self.t_slice

    def event_to_status(self) -> float | None:
        """The later of the two: until the status reflects both the pod and its endpoint."""
        a, b = self.pod_to_status(), self.slice_to_status()
        if a is None or b is None:
            return None
        return max(a, b)


def probe(events: Iterable[Sequence[Any]], t_write: float, pod: str, fastrollout: str, expect: int) -> Probe:
    """Finds, in events recorded after `t_write`, the first sight of `pod` not Ready, of its endpoint not
    ready, and of the FastRollout's status with readyReplicas / servingReplicas equal to `expect`."""
    t_pod = t_slice = t_ready = t_serving = None
    for e in events:
        t = float(e[1])
        if t < t_write:
            continue
        if e[0] == "p" and t_pod is None and e[4] == pod and not e[6]:
            t_pod = t
        elif e[0] == "s" and t_slice is None and any(ep[0] == pod and not ep[1] for ep in e[5]):
            t_slice = t
        elif e[0] == "f" and e[4] == fastrollout:
            st = e[5]
            if t_ready is None and st.get("readyReplicas") == expect:
                t_ready = t
            if t_serving is None and st.get("servingReplicas") == expect:
                t_serving = t
    return Probe(t_write, t_pod, t_slice, t_ready, t_serving)
