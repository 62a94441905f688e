"""Events, one per transition: comparing the status before and after a pass, never on every pass."""

from fastrollout.api import Condition, FastRolloutStatus, Phase
from fastrollout.plan import reasons
from fastrollout.plan.model import Event
from fastrollout.plan.outcome import Outcome


def transitions(before: FastRolloutStatus, after: FastRolloutStatus, outcome: Outcome) -> tuple[Event, ...]:
    events: list[Event] = []
    new_target = before.revision != after.revision
    if new_target:
        stable = f", stable version {after.stable_version}" if after.stable_version else ""
        events.append(Event(reasons.EVENT_NEW_VERSION, f"rolling out version {after.version}{stable}"))
        in_flight = before.revision not in (None, before.stable_revision, before.failed_revision)
        if in_flight:
            events.append(
                Event(reasons.EVENT_SUPERSEDED, f"version {before.version} superseded by {after.version}")
            )
    # Nothing older ran when the target took over (a first rollout): one completion event instead of
    # a cutover, a traffic stop and a drain that never concerned any pod.
    alone = outcome.cut_over_now and after.phase is Phase.COMPLETE and _only_target(after)
    if alone:
        message = f"version {after.version} complete: no older version was running, nothing to cut over"
        events.append(Event(reasons.EVENT_COMPLETE, message))
    elif outcome.cut_over_now and outcome.by_selector:
        message = f"cut over to version {after.version}: the Service's selector now pins its revision"
        events.append(Event(reasons.EVENT_CUT_OVER, message))
    elif outcome.cut_over_now:
        message = f"cut over to version {after.version}: old pods are being deleted"
        events.append(Event(reasons.EVENT_CUT_OVER, message))
    if after.traffic_stopped_at and (new_target or not before.traffic_stopped_at) and not alone:
        message = f"no pod of an older version receives new traffic; version {after.version} serves"
        events.append(Event(reasons.EVENT_TRAFFIC_STOPPED, message))
    if after.drained_at and (new_target or not before.drained_at) and not alone:
        message = f"no pod of an older version is running; version {after.version} serves"
        events.append(Event(reasons.EVENT_DRAINED, message))
    progressing = _reason(after, reasons.PROGRESSING)
    if progressing in reasons.SERVICE_MISCONFIGURED and progressing != _reason(before, reasons.PROGRESSING):
        events.append(Event(progressing, after.message or "", warning=True))
    failure = _condition(after, reasons.REPLICA_FAILURE)
    if failure is not None and failure.reason != _reason(before, reasons.REPLICA_FAILURE):
        events.append(Event(failure.reason, failure.message, warning=True))
    if outcome.failed_now and outcome.failure is not None:
        events.append(Event(reasons.EVENT_FAILED, outcome.failure.message, warning=True))
    rolled_back = after.phase is Phase.ROLLED_BACK and (
        outcome.failed_now or before.phase is not Phase.ROLLED_BACK
    )
    if rolled_back:
        message = f"version {after.version} removed; version {after.stable_version} keeps serving"
        events.append(Event(reasons.EVENT_ROLLED_BACK, message, warning=True))
    return tuple(events)


def _only_target(status: FastRolloutStatus) -> bool:
    """No other version has pods or a ReplicaSet asking for some, and no old endpoint serves."""
    others = [v for v in status.versions if v.revision != status.revision]
    return not others and status.old_serving_replicas == 0


def _condition(status: FastRolloutStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def _reason(status: FastRolloutStatus, type_: str) -> str | None:
    found = _condition(status, type_)
    return found.reason if found is not None else None
