"""Pure analysis of a recorded run: request results + timestamped watch events -> the facts tests assert.

Nothing here talks to the cluster, so the reasoning can be read (and unit-checked) on its own:

- endpoint timeline: after each EndpointSlice event, every pod's endpoint (ready, serving, terminating),
  merged over the Service's slices, as kube-proxy sees them;
- per pod: when its endpoint first became ready and when it last stopped being ready (``not_ready_at``);
- propagation lag of a pod: the start of the last request it served minus ``not_ready_at``. kube-proxy
  reads the same EndpointSlices; until it rewrote its rules, new connections still reached the pod. That
  is the delay the injected preStop sleep must cover;
- capacity: the number of ready endpoints after each event;
- :func:`traffic_stop_violations`: old pods that kept getting new requests longer than
  :data:`PROPAGATION_BOUND_S` after their endpoint went not ready, or after the rollout said
  TrafficStopped. The bound is a constant of the test bed, never taken from the run being judged, so a
  slower kube-proxy (or an early TrafficStopped) fails the check instead of widening it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from tests.e2e.load import Result
from tests.e2e.recorder import Event

VERSION_LABEL = "fastrollout.io/version"

# kube-proxy rewrites its rules at most once per minSyncPeriod: tests/cluster/realnode.sh configures
# `minSyncPeriod: 1s` (kube-proxy's default; tests/unit/test_e2e_analysis.py keeps the two in step).
KUBE_PROXY_MIN_SYNC_S = 1.0
# How long after an endpoint goes not ready in the EndpointSlice kube-proxy may still send the pod new
# connections: one minSyncPeriod wait, plus 1 s for the watch delivery to kube-proxy, one
# iptables-restore and the load generator's thread scheduling on the loaded 2-core CI VM. Measured:
# p50 ~0.55 s, max ~1.06 s (README, end-to-end tests). The preStop sleep the tests configure (4 s) must
# exceed it: that sleep is what keeps such late requests from meeting a worker that got SIGTERM.
PROPAGATION_BOUND_S = KUBE_PROXY_MIN_SYNC_S + 1.0


@dataclasses.dataclass(frozen=True)
class Endpoint:
    ready: bool
    serving: bool
    terminating: bool
    ip: str


Snapshot = dict[str, Endpoint]  # pod name -> endpoint


def endpoint_timeline(events: Iterable[Event]) -> list[tuple[float, Snapshot]]:
    """The Service's endpoints after each EndpointSlice event, merged over slices, by pod name."""
    slices: dict[str, list[dict[str, Any]]] = {}
    out: list[tuple[float, Snapshot]] = []
    for ev in events:
        if ev.type == "DELETED":
            slices.pop(ev.name, None)
        else:
            slices[ev.name] = ev.obj.get("endpoints") or []
        merged: Snapshot = {}
        for endpoints in slices.values():
            for ep in endpoints:
                pod = (ep.get("targetRef") or {}).get("name")
                if not pod:
                    continue
                cond = ep.get("conditions") or {}
                view = Endpoint(
                    ready=cond.get("ready") is not False,  # absent means ready (EndpointSlice API)
                    serving=cond.get("serving", cond.get("ready")) is not False,
                    terminating=bool(cond.get("terminating")),
                    ip=(ep.get("addresses") or [""])[0],
                )
                seen = merged.get(pod)
                if seen is not None:  # a pod moving between slices: ready if ready in any
                    view = dataclasses.replace(
                        view, ready=view.ready or seen.ready, serving=view.serving or seen.serving
                    )
                merged[pod] = view
        out.append((ev.t, merged))
    return out


@dataclasses.dataclass
class EndpointHistory:
    first_ready: float | None = None
    not_ready_at: float | None = None  # last ready -> not ready (or removed) transition


def endpoint_histories(timeline: Sequence[tuple[float, Snapshot]]) -> dict[str, EndpointHistory]:
    histories: dict[str, EndpointHistory] = {}
    previous: Snapshot = {}
    for t, snap in timeline:
        for pod in set(previous) | set(snap):
            was = pod in previous and previous[pod].ready
            now = pod in snap and snap[pod].ready
            h = histories.setdefault(pod, EndpointHistory())
            if now and not was and h.first_ready is None:
                h.first_ready = t
            if was and not now:
                h.not_ready_at = t
        previous = snap
    return histories


def ready_counts(timeline: Sequence[tuple[float, Snapshot]]) -> list[tuple[float, int]]:
    return [(t, sum(ep.ready for ep in snap.values())) for t, snap in timeline]


def min_ready_between(counts: Sequence[tuple[float, int]], since: float, until: float) -> tuple[int, float]:
    """Lowest ready count in force at any moment of [since, until], and when it was reached."""
    in_force = [(t, n) for t, n in counts if t <= since]
    lowest = (in_force[-1][1], since) if in_force else (0, since)
    for t, n in counts:
        if since < t <= until and n < lowest[0]:
            lowest = (n, t)
    return lowest


# ------------------------------------------------------------------------------------------ pods


@dataclasses.dataclass
class PodInfo:
    name: str
    version: str | None
    first_seen: float
    created: str
    ip: str | None = None
    terminating_seen: float | None = None  # when a deletionTimestamp was first seen
    deleted_seen: float | None = None
    uid: str = ""
    restarts: int = 0
    exit_code: int | None = None  # the worker container's, once it terminated after deletion
    finished_at: float | None = None  # its terminated.finishedAt (1 s resolution)


def pod_infos(events: Iterable[Event]) -> dict[str, PodInfo]:
    pods: dict[str, PodInfo] = {}
    for ev in events:
        meta = ev.obj["metadata"]
        info = pods.get(ev.name)
        if info is None:
            info = pods[ev.name] = PodInfo(
                name=ev.name,
                version=(meta.get("labels") or {}).get(VERSION_LABEL),
                first_seen=ev.t,
                created=meta.get("creationTimestamp", ""),
                uid=meta.get("uid", ""),
            )
        info.ip = (ev.obj.get("status") or {}).get("podIP") or info.ip
        statuses = (ev.obj.get("status") or {}).get("containerStatuses") or []
        info.restarts = max([info.restarts, *(int(s.get("restartCount", 0)) for s in statuses)])
        if meta.get("deletionTimestamp"):
            for s in statuses:
                done = (s.get("state") or {}).get("terminated")
                if done and info.exit_code is None:
                    info.exit_code = int(done.get("exitCode", -1))
                    info.finished_at = timestamp(done.get("finishedAt"))
        if meta.get("deletionTimestamp") and info.terminating_seen is None:
            info.terminating_seen = ev.t
        if ev.type == "DELETED":
            info.deleted_seen = ev.t
    return pods


# ------------------------------------------------------------------------------------------ FastRollout


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def first_event(
    events: Iterable[Event],
    *,
    version: str,
    generation: int,
    condition_type: str | None = None,
    phase: str | None = None,
) -> Event | None:
    """First FastRollout event whose status has observed ``generation``, targets ``version``, and has
    the condition ``condition_type`` True (or is in ``phase``)."""
    for ev in events:
        status = ev.obj.get("status") or {}
        if status.get("version") != version or int(status.get("observedGeneration") or 0) < generation:
            continue
        if condition_type is not None:
            cond = condition(ev.obj, condition_type)
            if not cond or cond.get("status") != "True":
                continue
        if phase is not None and status.get("phase") != phase:
            continue
        return ev
    return None


def timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# ------------------------------------------------------------------------------------------ traffic


def last_request_start_by_pod(results: Iterable[Result]) -> dict[str, float]:
    last: dict[str, float] = {}
    for r in results:
        if r.ok and r.pod is not None:
            last[r.pod] = max(last.get(r.pod, 0.0), r.start)
    return last


def propagation_lags(results: Sequence[Result], not_ready: dict[str, float]) -> dict[str, float]:
    """Per pod that served requests: start of the last request it served minus when its endpoint went
    not ready. Positive: kube-proxy still sent it new connections that long after the API said not ready.
    """
    last = last_request_start_by_pod(results)
    return {pod: last[pod] - t for pod, t in not_ready.items() if pod in last}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def served_outside(
    results: Iterable[Result], *, since: float, until: float, allowed: set[str]
) -> list[Result]:
    """Requests that STARTED in [since, until) and were answered by a version not in ``allowed``."""
    return [r for r in results if r.ok and since <= r.start < until and r.version not in allowed]


def traffic_stop_violations(
    results: Sequence[Result],
    *,
    not_ready: dict[str, float],
    traffic_stopped_at: float,
    until: float,
    version: str,
    bound: float = PROPAGATION_BOUND_S,
) -> list[str]:
    """What contradicts "old pods stop receiving new traffic" for one rollout to ``version``, one line
    each (empty: none):

    - a pod this rollout cut over (``not_ready``: pod -> when its endpoint went not ready) answered a
      request that started ``bound`` seconds or more after that;
    - a request that started in ``[traffic_stopped_at + bound, until)`` was answered by another version.

    ``bound`` is stated up front (:data:`PROPAGATION_BOUND_S`), never derived from ``results``.
    """
    lags = propagation_lags(results, not_ready)
    out = [
        f"{pod} got a new request {lag:.2f}s after its endpoint went not ready (bound {bound}s)"
        for pod, lag in sorted(lags.items())
        if lag >= bound
    ]
    late = served_outside(results, since=traffic_stopped_at + bound, until=until, allowed={version})
    out += [
        f"{r.pod} ({r.version}) answered a request started {r.start - traffic_stopped_at:.2f}s after "
        f"TrafficStopped of {version} (bound {bound}s)"
        for r in late
    ]
    return out
