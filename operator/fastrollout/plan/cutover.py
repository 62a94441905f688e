"""Cutover: every old pod out at once, in O(1) API calls per revision.

One ScaleReplicaSet to 0 (so the ReplicaSet controller does not replace what we delete) and one
DeletePods collection delete per old revision: 4,000 pods leave in seconds instead of the ReplicaSet
controller's one-by-one deletes. Both are skipped when already done, so a pass repeated after a crash
issues nothing twice.
"""

from collections.abc import Iterable

from fastrollout.plan.fleet import RevisionState
from fastrollout.plan.model import Action, DeletePods, ScaleReplicaSet


def ready_to_cut_over(target_ready: int, threshold: int, target_size: int, replicas: int) -> bool:
    """minReadyPercent of the new pods Ready, and the target ReplicaSet asked at full size.

    replicas 10, minReadyPercent 90: threshold 9; 9 Ready of a ReplicaSet at 10 -> cut over;
    10 Ready of a ReplicaSet still at 7 (a wave in progress) -> not yet.
    """
    return target_ready >= threshold and target_size == replicas


def remove(revisions: Iterable[RevisionState]) -> tuple[Action, ...]:
    """Scale each revision to 0, then delete its non-terminating pods: all scales come first, so no
    ReplicaSet recreates pods deleted a moment before.

    A collection delete selects by label, and labels prove no ownership: when pods of another
    controller carry the revision's labels (`foreign`), only the scale is issued and the ReplicaSet
    controller removes exactly the pods it owns (slower, one by one, but never someone else's)."""
    chosen = tuple(revisions)
    scales = tuple(action for r in chosen for action in r.scale(0))
    deletes = tuple(
        DeletePods(revision=r.revision) for r in chosen if r.pods.replicas > 0 and r.pods.foreign == 0
    )
    return scales + deletes


def scales_first(actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """Actions run in order; scaling down before deleting keeps ReplicaSets from replacing pods."""
    scales = tuple(a for a in actions if isinstance(a, ScaleReplicaSet))
    return scales + tuple(a for a in actions if not isinstance(a, ScaleReplicaSet))
