"""Prometheus metrics, on their own registry and HTTP port.

    fastrollout_pods{namespace,fastrollout,version,state}        gauge; state: ready | serving | draining
    fastrollout_version_info{namespace,fastrollout,version,role} gauge, always 1; role: target | stable
    fastrollout_rollout_traffic_stopped_duration_seconds          histogram: rollout start -> TrafficStopped
    fastrollout_rollout_drained_duration_seconds                  histogram: rollout start -> Drained
    fastrollout_rollouts_total{result}                            counter; result: complete | failed | rolled_back
    fastrollout_rollout_phase{namespace,fastrollout,phase}        gauge: 1 for the current phase, 0 for the
                                                                  others (Pending ... RolledBack)
    fastrollout_rollout_deadline_timestamp_seconds{namespace,fastrollout}
                                                                  gauge: the progress deadline (Unix time)
                                                                  while Progressing and not cut over
    fastrollout_reconcile_duration_seconds                        histogram: one snapshot-plan-apply pass
    fastrollout_reconcile_errors_total{reason}                    counter: refused actions and failed passes
    fastrollout_watch_synced{kind,scope}                          gauge: 1 while a child watch's cache is in
                                                                  and current; 0 never listed, or failing
    fastrollout_watch_errors_total{kind,scope,reason}             counter: failed list/watch calls
                                                                  (scope: the namespace, or * for all)
    fastrollout_leader{identity}                                  gauge: 1 on the replica holding the lease,
                                                                  0 on a standby (only with leader election)

Everything is derived from the status the operator writes (old vs new), so a restarted operator
neither double-counts a finished rollout nor misses one it finishes. Series of a deleted FastRollout,
or of a version that no longer has pods, are removed.
"""

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from fastrollout.api import FastRolloutSpec, FastRolloutStatus, Phase
from fastrollout.plan import progress, reasons

# Bulk rollouts take seconds to minutes; drains are bounded by the grace period (default 600 s).
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Progressing reasons of a rollout that has cut over: the progress deadline is behind it.
CUT_OVER_REASONS = frozenset({reasons.WAITING_FOR_TRAFFIC_STOP, reasons.WAITING_FOR_DRAIN})

# fastrollout_reconcile_errors_total's reason for a pass that raised (the others are ReplicaFailure's).
ERROR_REASON = "Error"

RESULTS = {Phase.COMPLETE: "complete", Phase.FAILED: "failed", Phase.ROLLED_BACK: "rolled_back"}

Labels = tuple[str, ...]


@dataclass(frozen=True)
class Transition:
    """What finished between two statuses of one FastRollout."""

    result: str | None = None  # a RESULTS value when the phase just became terminal
    traffic_stopped_seconds: float | None = None
    drained_seconds: float | None = None


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        began = datetime.fromisoformat(start)
        ended = datetime.fromisoformat(end)
    except ValueError:
        return None
    return max((ended - began).total_seconds(), 0.0)


def transition(old: FastRolloutStatus, new: FastRolloutStatus) -> Transition:
    """Pure: which results and durations `new` reports that `old` did not.

    A phase counts when it is entered (Progressing -> Complete counts once; Complete -> Complete never).
    A duration counts when its timestamp first appears for the current rollout.
    """
    result = None
    if new.phase != old.phase and new.phase in RESULTS:
        result = RESULTS[new.phase]
    same_rollout = new.rollout_started_at == old.rollout_started_at
    stopped = None
    if new.traffic_stopped_at and not (same_rollout and old.traffic_stopped_at):
        stopped = _seconds(new.rollout_started_at, new.traffic_stopped_at)
    drained = None
    if new.drained_at and not (same_rollout and old.drained_at):
        drained = _seconds(new.rollout_started_at, new.drained_at)
    return Transition(result=result, traffic_stopped_seconds=stopped, drained_seconds=drained)


def pod_series(status: FastRolloutStatus) -> Iterator[tuple[str, str, int]]:
    """(version, state, count) for every version the status lists."""
    for entry in status.versions:
        yield entry.version, "ready", entry.ready_replicas
        yield entry.version, "serving", entry.serving_replicas
        yield entry.version, "draining", entry.draining_replicas


def version_series(status: FastRolloutStatus) -> Iterator[tuple[str, str]]:
    """(version, role) pairs: which version is the target and which is stable."""
    if status.version:
        yield status.version, "target"
    if status.stable_version:
        yield status.stable_version, "stable"


def phase_series(status: FastRolloutStatus) -> Iterator[tuple[str, int]]:
    """(phase, 1 or 0) for every phase, once the status has one: a state timeline needs the zeros."""
    if status.phase is None:
        return
    for phase in Phase:
        yield phase.value, int(phase == status.phase)


def deadline(spec: FastRolloutSpec, status: FastRolloutStatus, now: datetime) -> datetime | None:
    """The progress deadline the planner holds a rollout to (plan.progress.clock: from the start, or
    from the last resume) while it is Progressing and has not cut over; None otherwise. Past it the
    planner ends the rollout Failed or RolledBack, so a series still present well after it names a
    rollout the operator is not finishing (the FastRolloutStuck alert). After cutover the deadline no
    longer applies: stopping traffic and draining take as long as the grace period allows.
        started 12:00:00, progressDeadlineSeconds 600            -> deadline 12:10:00
        started 12:00:00, paused 12:05 to 12:30, deadline 600 s  -> deadline 12:40:00
    """
    if status.phase != Phase.PROGRESSING or not status.revision:
        return None
    condition = next((c for c in status.conditions if c.type == reasons.PROGRESSING), None)
    if condition is not None and condition.reason in CUT_OVER_REASONS:
        return None
    return progress.clock(spec, status, status.revision, now).deadline


class WatchState(Protocol):
    """One child watch as the metrics see it (observe.WatchHealth has this shape)."""

    @property
    def kind(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def current(self) -> bool: ...
    @property
    def errors(self) -> Mapping[str, int]: ...


class WatchCollector:
    """Reads the watches' own counts at scrape time: the watch threads never touch prometheus_client."""

    def __init__(self, watches: Callable[[], Iterable[WatchState]]) -> None:
        self._watches = watches

    def collect(self) -> Iterator[Metric]:
        synced = GaugeMetricFamily(
            "fastrollout_watch_synced",
            "1 while a child watch's cache is listed and current; 0 if never listed or its calls keep failing.",
            labels=["kind", "scope"],
        )
        errors = CounterMetricFamily(
            "fastrollout_watch_errors",
            "Failed list/watch calls of a child watch, by reason (e.g. Forbidden).",
            labels=["kind", "scope", "reason"],
        )
        for watch in self._watches():
            synced.add_metric([watch.kind, watch.scope], 1.0 if watch.current else 0.0)
            for reason, count in sorted(watch.errors.items()):
                errors.add_metric([watch.kind, watch.scope, reason], count)
        yield synced
        yield errors


class Metrics:
    def __init__(self, leader_identity: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._leader_identity = leader_identity
        self.leader = Gauge(
            "fastrollout_leader",
            "1 on the replica that holds the leader-election lease (the only one that writes), 0 on a standby.",
            ["identity"],
            registry=self.registry,
        )
        fleet = ["namespace", "fastrollout"]
        self.pods = Gauge(
            "fastrollout_pods",
            "Pods of a FastRollout by version and state (ready, serving, draining).",
            [*fleet, "version", "state"],
            registry=self.registry,
        )
        self.version_info = Gauge(
            "fastrollout_version_info",
            "1 for the target and the stable version of each FastRollout.",
            [*fleet, "version", "role"],
            registry=self.registry,
        )
        self.traffic_stopped = Histogram(
            "fastrollout_rollout_traffic_stopped_duration_seconds",
            "Time from a rollout's start until no old pod could receive new traffic.",
            fleet,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.drained = Histogram(
            "fastrollout_rollout_drained_duration_seconds",
            "Time from a rollout's start until the last old pod was gone.",
            fleet,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rollouts = Counter(
            "fastrollout_rollouts",
            "Rollouts that ended, by result (complete, failed, rolled_back).",
            ["result"],
            registry=self.registry,
        )
        self.reconcile = Histogram(
            "fastrollout_reconcile_duration_seconds",
            "Duration of one reconcile pass: snapshot, plan, apply.",
            buckets=RECONCILE_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "fastrollout_reconcile_errors",
            "Passes that failed: an action the API refused, by ReplicaFailure reason (FailedCreate, "
            "FailedScale, FailedDelete, ReplicaSetCollision), or Error for a pass that raised.",
            ["reason"],
            registry=self.registry,
        )
        self.phase = Gauge(
            "fastrollout_rollout_phase",
            "1 for the current phase of each FastRollout, 0 for the other phases.",
            [*fleet, "phase"],
            registry=self.registry,
        )
        self.deadline = Gauge(
            "fastrollout_rollout_deadline_timestamp_seconds",
            "Progress deadline (Unix time) of each FastRollout Progressing and not yet cut over: start "
            "(or last resume) plus progressDeadlineSeconds.",
            fleet,
            registry=self.registry,
        )
        for result in RESULTS.values():
            self.rollouts.labels(result)  # export zeros, so rate() works from the first rollout
        self._pod_labels: dict[tuple[str, str], set[Labels]] = {}
        self._version_labels: dict[tuple[str, str], set[Labels]] = {}
        self._phase_labels: dict[tuple[str, str], set[Labels]] = {}
        self._deadline_labels: dict[tuple[str, str], set[Labels]] = {}

    def set_leader(self, *, leading: bool) -> None:
        """With leader election: whether this replica leads now."""
        if self._leader_identity is not None:
            self.leader.labels(self._leader_identity).set(1 if leading else 0)

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def watch(self, watches: Callable[[], Iterable[WatchState]]) -> None:
        """Exports the child watches' health (`Observer.health`) as fastrollout_watch_* series."""
        self.registry.register(WatchCollector(watches))

    def record(
        self,
        namespace: str,
        name: str,
        old: FastRolloutStatus,
        new: FastRolloutStatus,
        *,
        spec: FastRolloutSpec,
        now: datetime,
    ) -> None:
        """Updates the gauges to `new` (of a rollout of `spec` at `now`); counts what finished between
        `old` and `new`."""
        key = (namespace, name)
        pods: dict[Labels, float] = {
            (namespace, name, version, state): count for version, state, count in pod_series(new)
        }
        self._replace(self.pods, self._pod_labels, key, pods)
        versions: dict[Labels, float] = {
            (namespace, name, version, role): 1 for version, role in version_series(new)
        }
        self._replace(self.version_info, self._version_labels, key, versions)
        phases: dict[Labels, float] = {(namespace, name, phase): on for phase, on in phase_series(new)}
        self._replace(self.phase, self._phase_labels, key, phases)
        due = deadline(spec, new, now)
        deadlines: dict[Labels, float] = {(namespace, name): due.timestamp()} if due else {}
        self._replace(self.deadline, self._deadline_labels, key, deadlines)
        change = transition(old, new)
        if change.result:
            self.rollouts.labels(change.result).inc()
        if change.traffic_stopped_seconds is not None:
            self.traffic_stopped.labels(namespace, name).observe(change.traffic_stopped_seconds)
        if change.drained_seconds is not None:
            self.drained.labels(namespace, name).observe(change.drained_seconds)

    @staticmethod
    def _replace(
        gauge: Gauge,
        known: dict[tuple[str, str], set[Labels]],
        key: tuple[str, str],
        values: dict[Labels, float],
    ) -> None:
        for labels in known.get(key, set()) - values.keys():
            gauge.remove(*labels)
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        if values:
            known[key] = set(values)
        else:
            known.pop(key, None)

    def forget(self, namespace: str, name: str) -> None:
        """Removes every series of a deleted FastRollout."""
        key = (namespace, name)
        self._replace(self.pods, self._pod_labels, key, {})
        self._replace(self.version_info, self._version_labels, key, {})
        self._replace(self.phase, self._phase_labels, key, {})
        self._replace(self.deadline, self._deadline_labels, key, {})
        for histogram in (self.traffic_stopped, self.drained):
            with contextlib.suppress(KeyError):  # it never observed a rollout
                histogram.remove(namespace, name)
