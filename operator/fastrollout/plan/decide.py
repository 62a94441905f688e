"""decide(): the one entry point. (rollout, observed, now) -> plan, with no I/O and no hidden state.

Order of concerns on one pass:
  paused          -> nothing is done; status still reports what runs
  failed revision -> hold (rolled back or failed), the stable version follows replicas
  rolling         -> size the target, shrink old ones in waves, cut over when ready
  failure found   -> fail (and roll back) instead of the rolling step
and, unless paused, empty old ReplicaSets past revisionHistoryLimit are deleted.
"""

from dataclasses import replace
from datetime import datetime

from fastrollout.api import FastRolloutSpec, FastRolloutStatus
from fastrollout.plan import cleanup, events, progress, reasons, rollback, rolling, service
from fastrollout.plan.clock import utc
from fastrollout.plan.fleet import Fleet, build_fleet
from fastrollout.plan.model import Observed, Plan, Rollout
from fastrollout.plan.outcome import Mode, Outcome
from fastrollout.plan.progress import Clock, Failure
from fastrollout.plan.revision import revision_of, version_of
from fastrollout.plan.status import build_status


def decide(rollout: Rollout, observed: Observed, now: datetime) -> Plan:
    """What to do now for one FastRollout, and the status to write after doing it."""
    now = utc(now)
    spec, before = rollout.spec, rollout.status
    target = revision_of(spec)
    fleet = build_fleet(observed, before, target, version_of(spec, target))
    when = progress.clock(spec, before, target, now)
    outcome = _outcome(name=rollout.name, spec=spec, before=before, fleet=fleet, when=when, now=now)
    status = build_status(rollout, fleet, outcome, when, now)
    if outcome.mode is not Mode.PAUSED:
        outcome = _with_cleanup(outcome, fleet, status.stable_revision, spec.revision_history_limit)
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
    step = rolling.roll(fleet, spec, name)
    blocked = None if step.cut_over else service.not_behind_service(fleet, spec, name)
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
            crash_fails=not fleet.target_is_stable,
        )
        if failure is not None:
            return _failed(spec, fleet, failure, failed_now=True)
    cut_over = step.cut_over or fleet.settled
    cut_over_now = step.cut_over and (
        before.stable_revision != fleet.target.revision or bool(step.old_actions)
    )
    waiting = not cut_over and not fleet.settled
    return Outcome(
        Mode.ROLLING,
        actions=step.actions,
        cut_over=cut_over,
        cut_over_now=cut_over_now,
        requeue_after=when.seconds_left(now) if waiting else None,
        blocked=blocked,
        misconfigured=blocked is not None and service.misconfigured(fleet, spec, name),
    )


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
