"""Cleanup: ReplicaSets nobody needs any more."""

from fastrollout.plan.fleet import Fleet
from fastrollout.plan.model import DeleteReplicaSet


def empty_replica_sets(fleet: Fleet, stable_revision: str | None) -> tuple[DeleteReplicaSet, ...]:
    """Old ReplicaSets at 0 whose pods are all gone, draining ones included (deleting the ReplicaSet
    earlier would orphan them from `versions`), and none still served through an endpoint that
    outlived its pod (observe traces those to the revision through this ReplicaSet's name). The
    target's and the stable one's are kept: the target is what spec asks for, the stable one is what
    a rollback scales back up. No revision history is kept: going back is re-applying the old
    template, a new and fast rollout."""
    return tuple(
        DeleteReplicaSet(name=r.replica_set.name)
        for r in fleet.others
        if r.replica_set is not None
        and r.replica_set.replicas == 0
        and r.pods.replicas == 0
        and r.pods.draining == 0
        and r.pods.serving == 0
        and r.revision != stable_revision
    )
