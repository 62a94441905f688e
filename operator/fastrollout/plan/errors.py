"""Refused API calls become state (STYLE.md 15): a ReplicaFailure condition with the API's own message
and one Warning event, never only a log line.

The handler runs the plan's actions; when one is refused it asks `after_actions` what status to keep.
The condition stays (decide() carries it) until a pass runs all its actions clean, so a call refused
on every pass changes nothing after the first: one event, no status write per pass.
"""

from dataclasses import dataclass
from datetime import datetime

from fastrollout.api import Condition, FastRolloutStatus
from fastrollout.plan import conditions, reasons
from fastrollout.plan.clock import to_text
from fastrollout.plan.model import Event


@dataclass(frozen=True)
class ApiFailure:
    """One action the API refused (or never answered)."""

    action: str  # what was asked, e.g. "create ReplicaSet w-5f2a1c3d4e"
    reason: str  # a ReplicaFailure reason: FailedCreate, FailedScale, FailedDelete, ReplicaSetCollision
    code: int  # HTTP status; 0 when no answer came (timeout, connection reset)
    message: str  # the API's own message

    @property
    def text(self) -> str:
        answer = f"HTTP {self.code}" if self.code else "no answer"
        return f"{self.action} failed ({answer}): {self.message}"


def after_actions(
    status: FastRolloutStatus, failure: ApiFailure | None, now: datetime
) -> tuple[FastRolloutStatus, Event | None]:
    """The status to keep after the actions ran, and the event to post (None: nothing new to say).

    A failure sets ReplicaFailure (lastTransitionTime kept while it stays True); a new reason or
    message posts one Warning event. A clean pass drops a ReplicaFailure that records an API failure;
    one about foreign pods is the planner's, from what it observes, and stays.
    """
    kept = [c for c in status.conditions if c.type != reasons.REPLICA_FAILURE]
    before = next((c for c in status.conditions if c.type == reasons.REPLICA_FAILURE), None)
    if failure is None:
        if before is None or before.reason not in reasons.API_FAILURE_REASONS:
            return status, None
        return _with_conditions(status, kept), None
    verdict = conditions.Verdict(reasons.TRUE, failure.reason, failure.text)
    generation = status.observed_generation or 0
    new = conditions.condition(reasons.REPLICA_FAILURE, verdict, status.conditions, to_text(now), generation)
    same = before is not None and (before.reason, before.message) == (new.reason, new.message)
    event = None if same else Event(failure.reason, failure.text, warning=True)
    return _with_conditions(status, [*kept, new]), event


def _with_conditions(status: FastRolloutStatus, new: list[Condition]) -> FastRolloutStatus:
    return status.model_copy(update={"conditions": new})
