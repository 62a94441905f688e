"""errors.after_actions: a refused call becomes ReplicaFailure and one event; a clean pass clears it."""

from datetime import UTC, datetime, timedelta

from fastrollout.api import Condition, FastRolloutStatus
from fastrollout.plan import reasons
from fastrollout.plan.errors import ApiFailure, after_actions

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
REFUSED = ApiFailure(
    "create ReplicaSet w-abc", reasons.FAILED_CREATE, 422, 'spec.template: Invalid value: "lots"'
)
PROGRESSING = Condition(type="Progressing", status="True", reason="RolloutProgressing")


def failure_of(status: FastRolloutStatus) -> Condition | None:
    return next((c for c in status.conditions if c.type == reasons.REPLICA_FAILURE), None)


def test_a_refusal_sets_the_condition_with_the_api_message_and_posts_one_event() -> None:
    status = FastRolloutStatus(observed_generation=4, conditions=[PROGRESSING])
    first, event = after_actions(status, REFUSED, NOW)
    condition = failure_of(first)
    assert condition is not None
    assert (condition.status, condition.reason) == ("True", "FailedCreate")
    assert (
        condition.message == 'create ReplicaSet w-abc failed (HTTP 422): spec.template: Invalid value: "lots"'
    )
    assert condition.observed_generation == 4
    assert event is not None
    assert (event.reason, event.warning, event.message) == ("FailedCreate", True, condition.message)
    assert first.conditions[0] == PROGRESSING  # the others are kept as they were

    # The same refusal on the next passes (decide() carried the condition): no event, no change.
    again, event = after_actions(first, REFUSED, NOW + timedelta(seconds=30))
    assert event is None
    assert again == first

    # Another refusal: a new event, lastTransitionTime kept while the condition stays True.
    forbidden = ApiFailure("scale ReplicaSet w-abc", reasons.FAILED_SCALE, 403, "exceeded quota: pods=10")
    other, event = after_actions(first, forbidden, NOW + timedelta(seconds=60))
    assert event is not None
    assert event.reason == "FailedScale"
    changed = failure_of(other)
    assert changed is not None
    assert changed.last_transition_time == condition.last_transition_time


def test_no_answer_says_so() -> None:
    timeout = ApiFailure("delete pods of revision abc", reasons.FAILED_DELETE, 0, "read timed out")
    status, _ = after_actions(FastRolloutStatus(), timeout, NOW)
    condition = failure_of(status)
    assert condition is not None
    assert "(no answer)" in condition.message


def test_a_clean_pass_clears_an_api_failure_but_not_foreign_pods() -> None:
    refused, _ = after_actions(FastRolloutStatus(conditions=[PROGRESSING]), REFUSED, NOW)
    cleared, event = after_actions(refused, None, NOW)
    assert event is None
    assert failure_of(cleared) is None
    assert cleared.conditions == [PROGRESSING]

    foreign = Condition(type=reasons.REPLICA_FAILURE, status="True", reason=reasons.FOREIGN_PODS)
    kept = FastRolloutStatus(conditions=[PROGRESSING, foreign])
    assert after_actions(kept, None, NOW) == (kept, None)
    assert after_actions(FastRolloutStatus(), None, NOW) == (FastRolloutStatus(), None)
