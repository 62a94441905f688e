"""What a failed rollout does, on the pass it fails and on every pass after while spec stays the same.

Failed is sticky per revision: the same template is not retried (status.failed_revision) until the
template changes. Scaling still works: the stable ReplicaSet keeps following spec.replicas.
"""

from fastrollout.api import FastRolloutSpec
from fastrollout.plan import cutover
from fastrollout.plan.fleet import Fleet
from fastrollout.plan.model import Action


def can_roll_back(fleet: Fleet, spec: FastRolloutSpec) -> bool:
    """rollbackOnFailure, and a stable revision other than the target whose ReplicaSet still exists."""
    stable = fleet.old_stable
    return spec.rollback_on_failure and stable is not None and stable.replica_set is not None


def failed_actions(fleet: Fleet, spec: FastRolloutSpec) -> tuple[Action, ...]:
    """Rolled back: the target's pods go at once (scale 0 + one collection delete), the stable one is
    scaled back to replicas, and superseded revisions go too once the stable one carries the load.
    The target's Ready pods go at once on purpose: in a capacity-limited cluster the stable pods can
    only start once the failed ones free their room.

    Failed without rollback: no rollout step; only the stable ReplicaSet follows replicas."""
    stable = fleet.old_stable
    restore = stable.scale(spec.replicas) if stable is not None else ()
    if not can_roll_back(fleet, spec):
        return restore
    assert stable is not None  # can_roll_back checked it; narrows the type
    superseded = [r for r in fleet.superseded if r.active]
    leftovers = cutover.remove(superseded) if stable.pods.ready >= spec.replicas else ()
    target = cutover.remove((fleet.target,))
    return cutover.scales_first(target + restore + leftovers)
