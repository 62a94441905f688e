"""What a failed rollout does, on the pass it fails and on every pass after while spec stays the same.

Failed is sticky per revision: the same template is not retried (status.failed_revision) until the
template changes. Scaling still works: the stable ReplicaSet keeps following spec.replicas.
"""

from fastrollout.api import FastRolloutSpec
from fastrollout.plan import cutover, selector
from fastrollout.plan.fleet import Fleet
from fastrollout.plan.model import Action


def can_roll_back(fleet: Fleet, spec: FastRolloutSpec) -> bool:
    """rollbackOnFailure, and a stable revision other than the target whose ReplicaSet still exists."""
    stable = fleet.old_stable
    return spec.rollback_on_failure and stable is not None and stable.replica_set is not None


def failed_actions(fleet: Fleet, spec: FastRolloutSpec) -> tuple[Action, ...]:
    """Rolled back: the stable ReplicaSet is scaled back to replicas at once, and the target gives up
    its pods only as the stable version takes the load: never fewer pods serving than before.

    The target keeps `replicas - stable serving` of its pods, at most its Ready ones (scaling a
    ReplicaSet down removes its not-Ready pods first, so crash-looping ones go at once and free room
    for the stable pods in a capacity-limited cluster); once the stable version serves `replicas`
    alone, the rest go with one collection delete, and so do superseded revisions.
        replicas 20, surge 25%: stable shrank to 10 (10 serving), target 10 Ready at the deadline
        -> stable scaled to 20, target kept at 10; stable 16 serving -> target 4; 20 -> target removed.

    Failed without rollback: no rollout step; only the stable ReplicaSet follows replicas."""
    stable = fleet.old_stable
    restore = stable.scale(spec.replicas) if stable is not None else ()
    if not can_roll_back(fleet, spec):
        return restore
    assert stable is not None  # can_roll_back checked it; narrows the type
    missing = max(0, spec.replicas - stable.pods.capacity)
    if missing == 0:
        # With a selector cutover, only what no endpoint routes to: the pin (to the stable revision,
        # first in the pass) takes the rest out of the Service, and a later pass removes it.
        gone = selector.out_of_service(spec, (fleet.target, *(r for r in fleet.superseded if r.active)))
        return cutover.scales_first(restore + cutover.remove(gone))
    target = fleet.target
    keep = min(target.size, target.pods.ready, missing)
    return cutover.scales_first(target.scale(keep) + restore)
