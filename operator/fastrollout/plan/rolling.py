"""One rollout step: size the target, shrink old revisions in waves, cut over when ready.

Bulk (maxSurge >= replicas) and waves (maxSurge < replicas) are the same arithmetic: old revisions
shrink only as far as the target needs room and only as far as Ready capacity allows, so with a
100% surge nothing old shrinks before cutover.
"""

from dataclasses import dataclass
from datetime import datetime

from fastrollout.api import FastRolloutSpec, FastRolloutStatus
from fastrollout.plan import cutover, selector
from fastrollout.plan.fleet import Fleet, RevisionState
from fastrollout.plan.model import Action, CreateReplicaSet
from fastrollout.plan.revision import render_pod_template, replica_set_name, revision_source
from fastrollout.plan.surge import OldShare, ready_threshold, shrink_old, surge_count, target_size


@dataclass(frozen=True)
class Step:
    """target_actions create or resize the target; old_actions shrink, remove or cut over the rest.
    cut_over: this pass cut over (or found nothing left to cut over).

    Order: the target first while rolling (its pods are what the old ones wait for); the old ones
    first at cutover, when the target no longer has to grow for them to go: a target the API refuses
    to create (possible only at replicas 0, where the cutover needs no new pod) must not keep the
    old pods running, since the first refused action ends the pass."""

    target_actions: tuple[Action, ...]
    old_actions: tuple[Action, ...]
    cut_over: bool
    # ServiceSelector: seconds until a kept version may go (the window's end), or until the next look
    # when TrafficStopped is not stamped yet; None when nothing is kept.
    wake_in: float | None = None

    @property
    def actions(self) -> tuple[Action, ...]:
        if self.cut_over:
            return self.old_actions + self.target_actions
        return self.target_actions + self.old_actions


def roll(fleet: Fleet, spec: FastRolloutSpec, name: str, before: FastRolloutStatus, now: datetime) -> Step:
    """`before` (the stored status) and `now` matter only with cutover ServiceSelector: when the old
    versions may go."""
    replicas = spec.replicas
    surge = surge_count(spec.strategy.max_surge, replicas)
    target = fleet.target
    stable = fleet.old_stable
    # Superseded in-flight revisions go at once when the stable one alone carries the full load;
    # otherwise they are old capacity like the stable one, cut over with it. One without a Ready pod
    # goes at once too: it carries nothing, and kept it would wait for a cutover that may never come.
    # (Ready but not behind the Service is kept: its endpoints may only lag, and Ready pods count.)
    # With a selector cutover they wait for the pin to take them out of the Service (after a switch
    # from Delete they may still have endpoints): SIGTERM only for pods that get no new connections.
    full = stable is not None and stable.pods.capacity >= replicas
    quiet = set(selector.out_of_service(spec, fleet.others))
    removed = tuple(r for r in fleet.superseded if (full and r in quiet) or r.pods.ready == 0)
    removed_revisions = {r.revision for r in removed}
    capacity = [r for r in fleet.others if r.active and r.revision not in removed_revisions]
    sizes = _old_sizes(capacity, stable, replicas, surge, target.pods.capacity)
    # A superseded version the Service still routes to (just after a switch from Delete) leaves it by
    # the pin first, and shrinks on a later pass: SIGTERM only for pods without new connections.
    held = (r for r in capacity if r not in quiet and (stable is None or r.revision != stable.revision))
    sizes |= {r.revision: max(sizes[r.revision], r.size) for r in held}
    occupied = sum(max(sizes[r.revision], r.pods.replicas) for r in capacity)
    size = target_size(replicas, surge, target.size, occupied)
    target_actions = _size_target(target, spec, name, size)
    threshold = ready_threshold(replicas, spec.strategy.min_ready_percent)
    by_pin = selector.by_selector(spec) and replicas > 0
    switchable = by_pin and selector.switchable(fleet, spec, name)
    ready = cutover.ready_to_cut_over(target.pods.ready, threshold, size, replicas)
    # The new pods are out of the Service until the pin names them: Ready is what counts, and whether
    # the Service will select them once it does. A target the Service is pinned to has cut over,
    # whatever its pods do later (and whatever a lost status write forgot).
    if by_pin and (selector.pinned_to_target(fleet) or (ready and switchable)):
        return _keep_then_remove(fleet, spec, target_actions, before=before, now=now)
    # Counted in service, not merely Ready: with a Service, cut over only to pods behind it. Also the
    # selector cutover's way when the pin cannot be set on the stable target (the Service is shared,
    # or gone, or does not select it: waiting for the pin would never end), and at replicas 0.
    gate = not by_pin or (not switchable and fleet.target_is_stable)
    if gate and cutover.ready_to_cut_over(target.pods.capacity, threshold, size, replicas):
        return Step(target_actions, cutover.remove(fleet.others), cut_over=True)
    shrinks = tuple(action for r in capacity for action in r.scale(sizes[r.revision]))
    removals = cutover.remove(removed)
    return Step(target_actions, cutover.scales_first(shrinks + removals), cut_over=False)


def _keep_then_remove(
    fleet: Fleet,
    spec: FastRolloutSpec,
    target_actions: tuple[Action, ...],
    *,
    before: FastRolloutStatus,
    now: datetime,
) -> Step:
    """ServiceSelector at cutover: the pin moves (decide() adds it); old versions are removed only
    once TrafficStopped has held for the margin and the rollback window, and only those no endpoint
    routes to."""
    end = selector.window_end(spec, before, fleet.target.revision)
    gone = selector.expired(fleet.others, end, now)
    kept = [r for r in fleet.others if r.active and r not in gone]
    wake_in: float | None = None
    if kept and end is not None and now < end:
        wake_in = (end - now).total_seconds()
    elif kept:
        wake_in = 1.0  # TrafficStopped not stamped yet, or endpoints not yet updated: look again soon
    return Step(target_actions, cutover.remove(gone), cut_over=True, wake_in=wake_in)


def _old_sizes(
    capacity: list[RevisionState],
    stable: RevisionState | None,
    replicas: int,
    surge: int,
    target_serving: int,
) -> dict[str, int]:
    """Sizes of the old ReplicaSets for this wave.

    The stable one starts from `replicas` (it follows scaling until cut over; pods a past wave removed
    count as missing, hence free to cut again), a superseded one from its current size (never grown).
    A stable one at 0 stays at 0: nothing serves there, the new version starts directly.
        replicas 10, surge 3: old may total 3 for the target to reach 10, so 7 are in excess;
        Ready old pods must stay >= 10 - target Ready.
    Capacity is counted in service (`RevisionPods.capacity`): a Ready pod the Service does not route to
    carries no load, so it never pays for shrinking another one. Which pods a shrink removes is the
    ReplicaSet controller's choice (not-Ready first), so every Ready pod cut is charged to the spare.
    """

    def start(r: RevisionState) -> int:
        return replicas if stable is not None and r.revision == stable.revision and r.size > 0 else r.size

    ordered = sorted(
        capacity,
        key=lambda r: (stable is not None and r.revision == stable.revision, r.pods.ready, r.revision),
    )
    shares = [OldShare(r.revision, start(r), min(r.pods.ready, start(r))) for r in ordered]
    excess = sum(s.size for s in shares) - surge
    serving = sum(min(r.pods.capacity, start(r)) for r in ordered)
    spare_ready = serving - max(0, replicas - target_serving)
    return shrink_old(shares, excess, max(0, spare_ready))


def _size_target(target: RevisionState, spec: FastRolloutSpec, name: str, size: int) -> tuple[Action, ...]:
    """Create the target's ReplicaSet at `size`, or scale it there. No ReplicaSet is made at size 0 (a
    first wave with no room yet, or replicas 0): it would hold nothing but a name, and a template the
    API refuses would be refused for nothing, on every pass of a rollout that needs no new pod."""
    if target.replica_set is None and size == 0:
        return ()
    if target.replica_set is None:
        version = target.version
        return (
            CreateReplicaSet(
                name=replica_set_name(name, target.revision),
                revision=target.revision,
                version=version,
                replicas=size,
                template=render_pod_template(spec, name, target.revision),
                source=revision_source(spec),
            ),
        )
    return target.scale(size)
