"""Cleanup: ReplicaSets nobody needs any more, past the revision history.

Like a Deployment's: old ReplicaSets at 0 replicas stay, newest first, up to revisionHistoryLimit, so
`kubectl fastrollout history` and `undo` can read the template of each; an undo to one of them reuses
its ReplicaSet (same revision, same name).
"""

from datetime import UTC, datetime

from fastrollout.plan.fleet import Fleet, RevisionState
from fastrollout.plan.model import DeleteReplicaSet

_UNKNOWN = datetime.min.replace(tzinfo=UTC)


def empty_replica_sets(
    fleet: Fleet, stable_revision: str | None, history_limit: int
) -> tuple[DeleteReplicaSet, ...]:
    """The empty old ReplicaSets beyond the `history_limit` newest (by creation, then name).

    Empty: at 0 with every pod gone, draining ones included (deleting the ReplicaSet earlier would
    orphan them from `versions`), and none still served through an endpoint that outlived its pod
    (observe traces those to the revision through this ReplicaSet's name). The target's and the stable
    one's are never candidates: the target is what spec asks for, the stable one is what a rollback
    scales back up. Only empty ones count toward the limit, as in the Deployment controller.
        limit 2, empty old ReplicaSets created 09:00, 10:00, 11:00 -> the 09:00 one is deleted;
        limit 0 -> all three are deleted (no history).
    """
    empty = [r for r in fleet.others if _empty(r) and r.revision != stable_revision]
    newest_first = sorted(empty, key=_age_key, reverse=True)
    return tuple(
        DeleteReplicaSet(name=r.replica_set.name)
        for r in newest_first[history_limit:]
        if r.replica_set is not None
    )


def _empty(r: RevisionState) -> bool:
    pods = r.pods
    return (
        r.replica_set is not None
        and r.replica_set.replicas == 0
        and pods.replicas == 0
        and pods.draining == 0
        and pods.serving == 0
    )


def _age_key(r: RevisionState) -> tuple[datetime, str]:
    replica_set = r.replica_set
    created = replica_set.created if replica_set is not None else None
    return (created or _UNKNOWN, replica_set.name if replica_set is not None else "")
