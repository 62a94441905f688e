"""Named regression cases: each counterexample the generated scenarios (test_plan_invariants.py) shrank,
replayed as the plain program hypothesis printed, so it runs the same way on every run.

A case the planner still fails is a strict xfail with the analysis in its reason: it turns into a
failure (XPASS) the day the planner is fixed, and then loses its mark.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.plan.cluster_model import Behavior, PassFaults
from tests.unit.plan.test_plan_invariants import RolloutMachine

from fastrollout.api import Phase
from fastrollout.plan import revision_of


def machine(**start: object) -> RolloutMachine:
    """A machine started like the shrunk examples: one pod, bulk surge, no faults, short deadline."""
    config: dict[str, object] = {
        "replicas": 1,
        "surge": "100%",
        "min_ready": 100,
        "service": False,
        "endpoint_lag": 0,
        "create_rate": None,
        "room": None,
        "drain": 1,
        "complete_when": "TrafficStopped",
        "rollback": False,
        "deadline": 20,
        "stale_watches": False,
    }
    state = RolloutMachine()
    state.start(**{**config, **start})  # type: ignore[arg-type]
    return state


def test_back_to_stable_while_service_selects_no_pod_removes_the_superseded_version() -> None:
    """Liveness. The Service selects none of the pods (tier=b), v2 starts (Ready, not behind it), the
    user goes back to v1's template. v1 is the stable revision and the target, so no deadline runs;
    the planner kept v2's pods as "old capacity" until a cutover that could never come (v1 is not
    behind the Service either): Progressing for ever, v2's pods never removed. Fixed in rolling.roll:
    a superseded revision that carries no load (capacity 0) goes at once."""
    state = machine(service=True)
    state.service_selector(selector=(("app", "w"), ("tier", "b")))
    state.new_version(behavior=Behavior(start=1))
    state.wait(ticks=1)
    state.back_to_an_earlier_template(back=1)
    state.teardown()
    world = state.world
    assert world.status.phase is Phase.COMPLETE
    assert {p.revision for p in world.cluster.pods} == {revision_of(world.spec)}


def test_back_to_stable_after_a_never_ready_version_while_service_selects_no_pod() -> None:
    """The same stall with v2 never Ready (its pods are not Ready at all)."""
    state = machine(service=True)
    state.new_version(behavior=Behavior(never_ready=True))
    state.wait(ticks=1)
    state.back_to_an_earlier_template(back=1)
    state.service_selector(selector=(("app", "w"), ("tier", "b")))
    state.teardown()
    assert state.world.status.phase is Phase.COMPLETE


@pytest.mark.xfail(
    strict=True,
    reason=(
        "planner: replicas 0 with a refused template never finishes. threshold 0 makes the first pass "
        "'cut over' (status: stable = the new revision) with actions [create T 0, scale s1 0, delete-pods "
        "s1]; the create is refused (422) and stops the pass, so the old pods are never removed; "
        "progress.failure returns None for replicas 0 and the deadline skips a cut-over target: "
        "Progressing (WaitingForTrafficStop) for ever. Fix: at cutover, run the old revisions' removal "
        "before the target's create when the target has no ReplicaSet yet (only possible at replicas "
        "0), or keep the deadline for a target whose ReplicaSet does not exist."
    ),
)
def test_scale_to_zero_with_a_refused_template_finishes() -> None:
    state = machine()
    state.new_version(behavior=Behavior(refused=True))
    state.scale(replicas=0)
    state._known_stall = lambda: False  # type: ignore[method-assign]  # the liveness check, unexcused
    state.teardown()


def test_refusal_then_a_lost_write_posts_one_event_per_refused_call() -> None:
    """Visibility (harness, not planner): 422 on the create, then a 409 whose status write is lost,
    then the 422 again. The persisted condition still names the 422, so no second event for it: one
    Warning per run of refusals as the status records them."""
    state = machine()
    state.new_version(behavior=Behavior(refused=True))
    state.wait(ticks=1)

    state.passes(faults=[PassFaults(final_write_lost=True, refuse=(0, 409)), PassFaults()])
    warnings = [e for e in state.world.events if e.warning and e.reason == "FailedCreate"]
    assert len(warnings) == 1
