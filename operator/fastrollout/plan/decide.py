"""decide(): the one entry point. (rollout, observed, now) -> plan, with no I/O and no hidden state.

Order of concerns on one pass:
  paused          -> nothing is done; status still reports what runs
  failed revision -> hold (rolled back or failed), the stable version follows replicas
  rolling         -> size the target, shrink old ones in waves, cut over when ready
  failure found   -> fail (and roll back) instead of the rolling step
and, unless paused, empty old ReplicaSets past revisionHistoryLimit are deleted, and the Service's pin
is set (cutover ServiceSelector) or removed (otherwise, and when the FastRollout is being deleted).
"""

from dataclasses import replace
from datetime import datetime

from fastrollout.api import FastRolloutSpec, FastRolloutStatus
from fastrollout.plan import cleanup, events, progress, reasons, rollback, rolling, selector, service
from fastrollout.plan.clock import utc
from fastrollout.plan.fleet import Fleet, build_fleet
from fastrollout.plan.model import Observed, Plan, Rollout
from fastrollout.plan.outcome import Mode, Outcome
from fastrollout.plan.progress import Clock, Failure
from fastrollout.plan.revision import revision_of, version_of
from fastrollout.plan.status import build_status
from fastrollout.plan.surge import ready_threshold


def decide(rollout: Rollout, observed: Observed, now: datetime) -> Plan:
    """What to do now for one FastRollout, and the status to write after doing it."""
    now = utc(now)
    spec, before = rollout.spec, rollout.status
    target = revision_of(spec)
    fleet = build_fleet(observed, before, target, version_of(spec, target))
    when = progress.clock(spec, before, target, now)
    outcome = _outcome(name=rollout.name, spec=spec, before=before, fleet=fleet, when=when, now=now)
    status = build_status(rollout, fleet, outcome, when, now)
    if rollout.deleting:
        # Only the pin and the finalizer are ours to undo: the garbage collector removes the rest.
        outcome = replace(outcome, actions=selector.release(rollout, fleet), requeue_after=None)
    elif outcome.mode is not Mode.PAUSED:
        outcome = _with_cleanup(outcome, fleet, status.stable_revision, spec.revision_history_limit)
        outcome = _with_pin(rollout, fleet, outcome)
    return Plan(
        actions=outcome.actions,
        status=status,
        events=events.transitions(before, status, outcome),
        requeue_after=outcome.requeue_after,
        now=now,
    )


def _outcome(
    *, name: str, spec: FastRolloutSpec, before: FastRolloutStatus, fleet: Fleet, when: Clock, now: datetime
) -> Outcome:
    if spec.paused:
        return Outcome(Mode.PAUSED, cut_over=fleet.settled)
    if before.failed_revision == fleet.target.revision:
        return _failed(spec, fleet, _kept_failure(before), failed_now=False)
    step = rolling.roll(fleet, spec, name, before, now)
    blocked, misconfigured = _why_not_cut_over(fleet, spec, name) if not step.cut_over else (None, None)
    # The deadline runs until the rollout has settled, also when the target is the stable revision
    # with other versions still to cut over (a revert while the Service selects only the newer pods
    # must end, Failed, not wait for ever). Crash loops fail only a target that has not cut over: a
    # version that once took the traffic is not "failed" by a pod crashing later.
    if not fleet.settled:
        refused = next((c.message for c in before.conditions if c.type == reasons.REPLICA_FAILURE), None)
        failure = progress.failure(
            spec,
            fleet.target,
            step.cut_over,
            now,
            when,
            blocked=blocked,
            refused=refused,
            crash_fails=not (
                fleet.target_is_stable or (selector.by_selector(spec) and selector.pinned_to_target(fleet))
            ),
        )
        if failure is not None:
            return _failed(spec, fleet, failure, failed_now=True)
    cut_over = step.cut_over or fleet.settled
    # With Delete, the removal of the old versions is the cutover (repeated after a lost write, it is
    # still this one). With a selector cutover the switch is the pin, which follows the stored stable
    # revision: the later removal of the old versions, or a pin re-asserted, is no second cutover.
    switched = not selector.by_selector(spec) and bool(step.old_actions)
    cut_over_now = step.cut_over and (before.stable_revision != fleet.target.revision or switched)
    waiting = not cut_over and not fleet.settled
    return Outcome(
        Mode.ROLLING,
        actions=step.actions,
        cut_over=cut_over,
        cut_over_now=cut_over_now,
        requeue_after=when.seconds_left(now) if waiting else step.wake_in,
        blocked=blocked,
        misconfigured=misconfigured,
        by_selector=selector.by_selector(spec),
    )


def _why_not_cut_over(fleet: Fleet, spec: FastRolloutSpec, name: str) -> tuple[str | None, str | None]:
    """(message, Progressing reason when the Service is certainly the cause) for Ready new pods that
    the Service does not take; (None, None) when the Service is not what holds the cutover."""
    if selector.by_selector(spec):
        threshold = ready_threshold(spec.replicas, spec.strategy.min_ready_percent)
        found = selector.not_switchable(fleet, spec, name, threshold)
        return (found[1], found[0]) if found is not None else (None, None)
    blocked = service.not_behind_service(fleet, spec, name)
    certain = blocked is not None and service.misconfigured(fleet, spec, name)
    return blocked, reasons.NEW_PODS_NOT_IN_SERVICE if certain else None


def _with_pin(rollout: Rollout, fleet: Fleet, outcome: Outcome) -> Outcome:
    """ServiceSelector: the pin first (before new pods could become Ready behind an unpinned Service,
    and at cutover before anything else), with the finalizer before the first pin. Otherwise the pin
    and the finalizer go, last: after this pass's deletes, so no old pod is selected again by it."""
    if selector.by_selector(rollout.spec):
        pin = selector.pin(fleet, rollout.spec, rollout.name, cut_over=outcome.cut_over)
        actions = selector.with_finalizer(rollout, pin + outcome.actions)
    else:
        actions = outcome.actions + selector.release(rollout, fleet)
    return replace(outcome, actions=actions)


def _failed(spec: FastRolloutSpec, fleet: Fleet, failure: Failure, *, failed_now: bool) -> Outcome:
    rolled_back = rollback.can_roll_back(fleet, spec)
    if rolled_back and failed_now:
        stable = fleet.old_stable.version if fleet.old_stable else ""
        failure = Failure(failure.reason, f"{failure.message}; rolled back to version {stable}")
    return Outcome(
        Mode.ROLLED_BACK if rolled_back else Mode.FAILED,
        actions=rollback.failed_actions(fleet, spec),
        failure=failure,
        failed_now=failed_now,
    )


def _kept_failure(before: FastRolloutStatus) -> Failure:
    """The failure recorded by the pass that found it: Progressing's reason, status.message."""
    progressing = next((c for c in before.conditions if c.type == reasons.PROGRESSING), None)
    reason = progressing.reason if progressing and progressing.reason in reasons.FAILURE_REASONS else None
    return Failure(reason or reasons.ROLLOUT_FAILED, before.message or "the rollout of this version failed")


def _with_cleanup(outcome: Outcome, fleet: Fleet, stable_revision: str | None, history_limit: int) -> Outcome:
    deletes = cleanup.empty_replica_sets(fleet, stable_revision, history_limit)
    return replace(outcome, actions=outcome.actions + deletes) if deletes else outcome
