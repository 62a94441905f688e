"""Counting: a FastRollout's child records in, one frozen `Observed` out. Pure."""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from fastrollout.observe.records import PodRecord, ReplicaSetRecord
from fastrollout.observe.traffic import TrafficJudge
from fastrollout.plan.model import Observed, ReplicaSetView, RevisionPods


@dataclass
class _Tally:
    version: str = ""
    replicas: int = 0
    ready: int = 0
    serving: int = 0
    draining: int = 0
    crashing: int = 0


def count_pods(
    pods: Collection[PodRecord], judge: TrafficJudge, replica_sets: Collection[ReplicaSetRecord]
) -> tuple[RevisionPods, ...]:
    """One `RevisionPods` per revision that has pods, sorted by revision (deterministic plans).

    Terminating pods count as draining only; `ready` and `crashing` count the others; `serving` is the
    judge's call for every pod, since a terminating pod may still be served (see traffic_endpoints),
    plus the endpoints still served after their pod was deleted (`serving_after_deletion`).
    """
    tallies: dict[str, _Tally] = {}
    for revision, version in serving_after_deletion(pods, replica_sets, judge):
        tally = tallies.setdefault(revision, _Tally(version=version))
        tally.serving += 1
    for pod in pods:
        tally = tallies.setdefault(pod.revision, _Tally())
        tally.version = tally.version or pod.version
        if pod.terminating:
            tally.draining += 1
        else:
            tally.replicas += 1
            tally.ready += pod.ready
            tally.crashing += pod.crashing
        tally.serving += judge.serving(pod)
    return tuple(
        RevisionPods(
            revision=revision,
            version=tally.version,
            replicas=tally.replicas,
            ready=tally.ready,
            serving=tally.serving,
            draining=tally.draining,
            crashing=tally.crashing,
        )
        for revision, tally in sorted(tallies.items())
    )


def serving_after_deletion(
    pods: Collection[PodRecord], replica_sets: Collection[ReplicaSetRecord], judge: TrafficJudge
) -> list[tuple[str, str]]:
    """(revision, version) of each endpoint the judge still serves whose pod is gone from the cache.

    Such an endpoint is traced to its revision by name: the ReplicaSet controller names pods
    `<replicaset name>-<random suffix>`. One that traces to no ReplicaSet of this FastRollout is some
    other workload's behind the same Service and is not ours to count.
    """
    owners = {record.name: (record.revision, record.version) for record in replica_sets}
    traced = (
        owners.get(name.rpartition("-")[0]) for name in judge.serving_without_pod({p.name for p in pods})
    )
    return [owner for owner in traced if owner is not None]


def replica_set_views(records: Iterable[ReplicaSetRecord]) -> tuple[ReplicaSetView, ...]:
    return tuple(
        ReplicaSetView(
            name=record.name, revision=record.revision, version=record.version, replicas=record.replicas
        )
        for record in sorted(records, key=lambda record: record.name)
    )


def build_observed(
    pods: Collection[PodRecord], replica_sets: Collection[ReplicaSetRecord], judge: TrafficJudge
) -> Observed:
    return Observed(replica_sets=replica_set_views(replica_sets), pods=count_pods(pods, judge, replica_sets))
