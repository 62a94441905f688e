"""What one pass decided, before it is written down as status and events."""

from dataclasses import dataclass
from enum import StrEnum

from fastrollout.plan.model import Action
from fastrollout.plan.progress import Failure


class Mode(StrEnum):
    ROLLING = "Rolling"  # rolling out or settled; phase Progressing or Complete by traffic
    PAUSED = "Paused"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


@dataclass(frozen=True)
class Outcome:
    """cut_over: the target has taken over (this pass or earlier). cut_over_now: this pass made it the
    stable revision or deleted old pods for it. failure: why it failed (found now or earlier)."""

    mode: Mode
    actions: tuple[Action, ...] = ()
    cut_over: bool = False
    cut_over_now: bool = False
    failure: Failure | None = None
    failed_now: bool = False
    requeue_after: float | None = None
    # Why Ready new pods do not count for cutover (not behind the Service), in words; None otherwise.
    blocked: str | None = None
    # ... and the Progressing reason when that is certain to last (no Service, it does not select the
    # new pods, or it is shared with other pods under cutover ServiceSelector), not a moment's lag.
    misconfigured: str | None = None
    by_selector: bool = False
