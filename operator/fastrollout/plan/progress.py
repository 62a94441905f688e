"""Progress: when the rollout started, its deadline, and the signs that it failed.

Like the Deployment controller's progress.go, the planner computes the exact delay to the deadline
and asks to be woken then, instead of polling.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastrollout.api import FastRolloutSpec, FastRolloutStatus
from fastrollout.plan import reasons
from fastrollout.plan.clock import from_text, to_text, whole_seconds
from fastrollout.plan.fleet import RevisionState
from fastrollout.plan.surge import ready_threshold


@dataclass(frozen=True)
class Clock:
    """started_at: when this target was first seen (rolloutStartedAt). deadline: progress deadline."""

    started_at: datetime
    deadline: datetime

    def seconds_left(self, now: datetime) -> float:
        return (self.deadline - now).total_seconds()


@dataclass(frozen=True)
class Failure:
    reason: str  # one of reasons.FAILURE_REASONS
    message: str


def clock(spec: FastRolloutSpec, status: FastRolloutStatus, target: str, now: datetime) -> Clock:
    """rolloutStartedAt is kept while the target stays the same and reset on a new one.

    The deadline counts from the start, or from the last resume: a rollout paused for an hour is not
    failed the moment it resumes (the Deployment controller resets its progress timer on resume too).
    The resume moment is the Progressing condition turning True again after RolloutPaused.
        started 12:00:00, deadline 600 s, paused 12:05 to 12:30 -> deadline 12:40:00
    """
    started = from_text(status.rollout_started_at) if status.revision == target else None
    started = started or whole_seconds(now)
    base = started
    progressing = next((c for c in status.conditions if c.type == reasons.PROGRESSING), None)
    if progressing is not None and not spec.paused:
        if progressing.reason == reasons.ROLLOUT_PAUSED:
            base = max(base, whole_seconds(now))
        elif progressing.status == reasons.TRUE:
            base = max(base, from_text(progressing.last_transition_time) or base)
    return Clock(started_at=started, deadline=base + timedelta(seconds=spec.progress_deadline_seconds))


def failure(
    spec: FastRolloutSpec,
    target: RevisionState,
    cut_over: bool,
    now: datetime,
    when: Clock,
    *,
    blocked: str | None = None,
    refused: str | None = None,
    crash_fails: bool = True,
) -> Failure | None:
    """Crash-looping new pods fail the rollout at once, even when enough are Ready to cut over: a
    version that crashes is not one to send all traffic to. The deadline fails it only if it is not
    ready to cut over now; a rollout that got there, however late, completes. `blocked` (why Ready
    pods are not behind the Service) becomes the deadline's message: it is what to fix; so does
    `refused`, the API call refused on the last pass (ReplicaFailure), which a failed rollout stops
    retrying and so stops reporting."""
    if spec.replicas == 0:
        return None
    label = target.version
    if crash_fails and target.pods.crashing > 0:
        return Failure(
            reasons.NEW_PODS_CRASHING,
            f"{target.pods.crashing} pod(s) of version {label} are crash-looping",
        )
    if not cut_over and now >= when.deadline:
        threshold = ready_threshold(spec.replicas, spec.strategy.min_ready_percent)
        counts = blocked or (
            f"version {label} had {target.pods.ready}/{spec.replicas} pods Ready (cutover needs {threshold})"
        )
        cause = f"; last refused: {refused}" if refused else ""
        return Failure(
            reasons.PROGRESS_DEADLINE_EXCEEDED,
            f"{counts} at its progress deadline {to_text(when.deadline)}{cause}",
        )
    return None
