"""Counting: a FastRollout's child records in, one frozen `Observed` out. Pure.

Ownership decides what counts, never labels alone (labels are free for anyone to set): ReplicaSets
whose controller is this FastRollout (its UID), and pods whose controller is one of those. A pod that
carries the labels but has another controller is `foreign`: reported, never counted, never deleted.
"""

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from fastrollout.observe.records import PodRecord, ReplicaSetRecord
from fastrollout.observe.traffic import TrafficJudge
from fastrollout.plan.model import Observed, ReplicaSetView, RevisionPods, ServiceView
from fastrollout.plan.revision import replica_set_name


@dataclass
class _Tally:
    version: str = ""
    replicas: int = 0
    ready: int = 0
    serving: int = 0
    draining: int = 0
    crashing: int = 0
    in_service: int = 0


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
        serving = judge.serving(pod)
        if pod.terminating:
            tally.draining += 1
        else:
            tally.replicas += 1
            tally.ready += pod.ready
            tally.crashing += pod.crashing
            tally.in_service += pod.ready and serving
        tally.serving += serving
    return tuple(
        RevisionPods(
            revision=revision,
            version=tally.version,
            replicas=tally.replicas,
            ready=tally.ready,
            serving=tally.serving,
            draining=tally.draining,
            crashing=tally.crashing,
            in_service=tally.in_service,
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
            name=record.name,
            revision=record.revision,
            version=record.version,
            replicas=record.replicas,
            created=record.created,
        )
        for record in sorted(records, key=lambda record: record.name)
    )


def owned(
    uid: str, pods: Collection[PodRecord], replica_sets: Collection[ReplicaSetRecord]
) -> tuple[list[PodRecord], list[ReplicaSetRecord], list[PodRecord]]:
    """(our pods, our ReplicaSets, foreign pods) among the records labelled with a FastRollout's name.

    A pod whose controller is a ReplicaSet named as ours but not in the cache yet (the ReplicaSet
    watch lags the pod watch by moments) is neither: it is left out until the cache catches up,
    rather than reported as foreign.
    """
    ours = [r for r in replica_sets if r.owner is not None and r.owner.uid == uid]
    uids = {r.uid for r in ours}
    counted: list[PodRecord] = []
    foreign: list[PodRecord] = []
    for pod in pods:
        if pod.owner is not None and pod.owner.uid in uids:
            counted.append(pod)
        elif not _ours_in_flight(pod, replica_sets):
            foreign.append(pod)
    return counted, ours, foreign


def _ours_in_flight(pod: PodRecord, replica_sets: Collection[ReplicaSetRecord]) -> bool:
    """Controlled by a ReplicaSet with the name we derive that the cache does not hold at all."""
    owner = pod.owner
    if owner is None or owner.kind != "ReplicaSet":
        return False
    expected = replica_set_name(pod.fastrollout, pod.revision)
    return owner.name == expected and all(r.name != expected for r in replica_sets)


def strangers(
    endpoints: Collection[str], counted: Collection[PodRecord], ours: Collection[ReplicaSetRecord]
) -> int:
    """Endpoints (by pod name) of the Service whose pod is not one of ours: neither a counted pod nor,
    for one already gone from the pod cache, named after one of our ReplicaSets."""
    names = {pod.name for pod in counted}
    replica_set_names = {record.name for record in ours}
    return sum(
        1 for name in endpoints if name not in names and name.rpartition("-")[0] not in replica_set_names
    )


def build_observed(
    pods: Collection[PodRecord],
    replica_sets: Collection[ReplicaSetRecord],
    judge: TrafficJudge,
    uid: str,
    service: ServiceView | None = None,
    *,
    endpoints: Collection[str] = (),
) -> Observed:
    """The snapshot of one FastRollout (UID `uid`): only what it controls counts. `endpoints`: the pod
    names behind its Service, any state, to count the ones that are not its own."""
    counted, ours, foreign = owned(uid, pods, replica_sets)
    if service is not None and service.found:
        service = replace(service, strangers=strangers(endpoints, counted, ours))
    revisions = list(count_pods(counted, judge, ours))
    for revision, number in Counter(pod.revision for pod in foreign).items():
        at = next((i for i, r in enumerate(revisions) if r.revision == revision), None)
        if at is None:
            revisions.append(RevisionPods(revision=revision, version="", foreign=number))
        else:
            revisions[at] = replace(revisions[at], foreign=number)
    return Observed(
        replica_sets=replica_set_views(ours),
        pods=tuple(sorted(revisions, key=lambda r: r.revision)),
        service=service,
    )
