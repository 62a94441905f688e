"""Phase and the conditions, from what the pass decided and what the cluster shows.

TrafficStopped and Drained only turn True for a target that has cut over: before that, old pods
serving is the point, not a problem.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from fastrollout.api import CompleteWhen, Condition, Phase
from fastrollout.plan import reasons
from fastrollout.plan.outcome import Mode, Outcome


@dataclass(frozen=True)
class Traffic:
    """old_serving: pods of other revisions that can receive new traffic. old_pods: pods of other
    revisions still running, non-terminating or draining."""

    old_serving: int
    old_pods: int
    cut_over: bool

    @property
    def stopped(self) -> bool:
        return self.cut_over and self.old_serving == 0

    @property
    def drained(self) -> bool:
        """Nothing old left to reach: a served endpoint that outlived its pod is not drained yet."""
        return self.stopped and self.old_pods == 0


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str
    message: str


def phase_of(outcome: Outcome, traffic: Traffic, complete_when: CompleteWhen) -> Phase:
    if outcome.mode is not Mode.ROLLING:
        return Phase(outcome.mode.value)
    done = traffic.stopped if complete_when is CompleteWhen.TRAFFIC_STOPPED else traffic.drained
    return Phase.COMPLETE if done else Phase.PROGRESSING


def progressing(
    phase: Phase, outcome: Outcome, traffic: Traffic, version: str, rolling_message: str
) -> Verdict:
    if phase is Phase.PAUSED:
        return Verdict(reasons.UNKNOWN, reasons.ROLLOUT_PAUSED, "spec.paused is true: no step is taken")
    if outcome.failure is not None:
        return Verdict(reasons.FALSE, outcome.failure.reason, outcome.failure.message)
    if phase is Phase.COMPLETE:
        return Verdict(reasons.FALSE, reasons.ROLLOUT_COMPLETE, f"version {version} complete")
    if not traffic.cut_over and outcome.blocked is not None:
        # A Service that cannot route to the new pods is named as the cause (one Warning event); pods
        # whose endpoints only lag, or a targetPort that may be wrong, are progress with the counts.
        reason = outcome.misconfigured or reasons.ROLLOUT_PROGRESSING
        return Verdict(reasons.TRUE, reason, outcome.blocked)
    if not traffic.cut_over:
        return Verdict(reasons.TRUE, reasons.ROLLOUT_PROGRESSING, rolling_message)
    if not traffic.stopped:
        message = f"cut over; {traffic.old_serving} old pod(s) can still receive new traffic"
        return Verdict(reasons.TRUE, reasons.WAITING_FOR_TRAFFIC_STOP, message)
    return Verdict(
        reasons.TRUE, reasons.WAITING_FOR_DRAIN, f"traffic stopped; {traffic.old_pods} old pod(s) draining"
    )


def reconciling(phase: Phase, progressing: Verdict) -> Verdict:
    """kstatus' Reconciling: True while the rollout moves (kstatus reads InProgress), False once it
    rests: Complete, Paused, Failed or RolledBack. Progressing's reason and message say why.

    A FastRollout whose new generation the operator has not seen yet is InProgress for kstatus by
    metadata.generation != status.observedGeneration, before any pass writes this condition."""
    moving = phase in (Phase.PENDING, Phase.PROGRESSING)
    return Verdict(reasons.TRUE if moving else reasons.FALSE, progressing.reason, progressing.message)


def stalled(phase: Phase, progressing: Verdict) -> Verdict:
    """kstatus' Stalled: True when the rollout failed and will not retry this template (kstatus reads
    Failed), with the failure's reason and message; False otherwise."""
    failed = phase in (Phase.FAILED, Phase.ROLLED_BACK)
    return Verdict(reasons.TRUE if failed else reasons.FALSE, progressing.reason, progressing.message)


def available(ready: int, threshold: int) -> Verdict:
    """Available while Ready pods of any version reach the cutover threshold (minReadyPercent)."""
    if ready >= threshold:
        return Verdict(
            reasons.TRUE, reasons.MINIMUM_REPLICAS_AVAILABLE, f"{ready} pod(s) Ready, {threshold} needed"
        )
    return Verdict(
        reasons.FALSE, reasons.MINIMUM_REPLICAS_UNAVAILABLE, f"{ready} pod(s) Ready, {threshold} needed"
    )


NOT_YET = "the target version has not cut over"


def traffic_stopped(traffic: Traffic) -> Verdict:
    if not traffic.cut_over:
        return Verdict(reasons.FALSE, reasons.NOT_CUT_OVER, NOT_YET)
    if traffic.old_serving:
        message = f"{traffic.old_serving} pod(s) of older versions can still receive new traffic"
        return Verdict(reasons.FALSE, reasons.OLD_PODS_SERVING, message)
    return Verdict(
        reasons.TRUE, reasons.OLD_PODS_NOT_SERVING, "no pod of an older version receives new traffic"
    )


def drained(traffic: Traffic) -> Verdict:
    if not traffic.cut_over:
        return Verdict(reasons.FALSE, reasons.NOT_CUT_OVER, NOT_YET)
    if traffic.old_pods:
        return Verdict(
            reasons.FALSE, reasons.OLD_PODS_RUNNING, f"{traffic.old_pods} pod(s) of older versions running"
        )
    if traffic.old_serving:
        message = f"{traffic.old_serving} endpoint(s) of deleted older pods still receive new traffic"
        return Verdict(reasons.FALSE, reasons.OLD_PODS_SERVING, message)
    return Verdict(reasons.TRUE, reasons.OLD_PODS_GONE, "no pod of an older version is running")


def replica_failure(
    foreign: int, previous: Sequence[Condition], now_text: str, generation: int
) -> Condition | None:
    """ReplicaFailure, present only while True (like the Deployment controller's): pods that carry this
    FastRollout's labels but another controller owns (seen now), else a refused API call as the
    handler recorded it (`errors.after_actions`), kept until a pass runs clean."""
    if foreign:
        message = (
            f"{foreign} pod(s) carry this FastRollout's labels but another controller owns them: "
            "they are not counted, and old pods are removed by scaling their ReplicaSet instead of by "
            "label, so those are never deleted"
        )
        verdict = Verdict(reasons.TRUE, reasons.FOREIGN_PODS, message)
        return condition(reasons.REPLICA_FAILURE, verdict, previous, now_text, generation)
    before = next((c for c in previous if c.type == reasons.REPLICA_FAILURE), None)
    return before if before is not None and before.reason in reasons.API_FAILURE_REASONS else None


def condition(
    type_: str, verdict: Verdict, previous: Sequence[Condition], now_text: str, generation: int
) -> Condition:
    """A metav1.Condition; lastTransitionTime moves only when the status does."""
    before = next((c for c in previous if c.type == type_), None)
    unchanged = before is not None and before.status == verdict.status and before.last_transition_time
    return Condition(
        type=type_,
        status=verdict.status,
        reason=verdict.reason,
        message=verdict.message,
        last_transition_time=before.last_transition_time if unchanged and before else now_text,
        observed_generation=generation,
    )
