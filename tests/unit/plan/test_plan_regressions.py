"""Named regression cases: each counterexample the generated scenarios (test_plan_invariants.py) shrank,
replayed as the plain program hypothesis printed, so it runs the same way on every run.

A case the planner still fails would be a strict xfail with the analysis in its reason (none now).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.plan.cluster_model import Behavior, PassFaults
from tests.unit.plan.test_plan_invariants import RolloutMachine

from fastrollout.api import Phase


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
        "selector": None,
    }
    state = RolloutMachine()
    state.start(**{**config, **start})  # type: ignore[arg-type]
    return state


def test_back_to_stable_while_service_selects_no_pod_ends_failed_and_keeps_ready_pods() -> None:
    """Liveness. The Service selects none of the pods (tier=b), v2 starts (Ready, not behind it), the
    user goes back to v1's template. v1 is the stable revision and the target, so no deadline ran, and
    the planner kept v2's Ready pods as old capacity for a cutover that could never come: Progressing
    for ever. Now the deadline runs until the rollout has settled: Failed, naming the Service, with
    every Ready pod kept (removing v2's would lower Ready pods, which the capacity invariant counts)."""
    state = machine(service=True)
    state.service_selector(selector=(("app", "w"), ("tier", "b")))
    state.new_version(behavior=Behavior(start=1))
    state.wait(ticks=1)
    state.back_to_an_earlier_template(back=1)
    state.teardown()
    world = state.world
    assert world.status.phase is Phase.FAILED
    assert "does not select" in (world.status.message or ""), world.status.message
    assert len({p.revision for p in world.cluster.pods}) == 2


def test_revert_and_scale_up_keep_the_superseded_ready_pods_until_the_stable_serves() -> None:
    """Capacity. v2's pod is Ready but its endpoint lags (not behind the Service yet) when the user goes
    back to v1 and scales to 2 in one step. Removing "superseded revisions that carry no load" took
    the Ready v2 pod (Ready pods 2 -> 1, replicas 2). A superseded revision now goes at once only when
    it has no Ready pod, or the stable one carries the full load."""
    state = machine(service=True, endpoint_lag=2)
    state.new_version(behavior=Behavior(start=1))
    state.passes(faults=[PassFaults()])
    state.back_to_an_earlier_template(back=1)
    state.scale(replicas=2)
    state.teardown()
    assert state.world.status.phase is Phase.COMPLETE


def test_back_to_stable_after_a_never_ready_version_while_service_selects_no_pod() -> None:
    """The same stall with v2 never Ready (its pods are not Ready at all)."""
    state = machine(service=True)
    state.new_version(behavior=Behavior(never_ready=True))
    state.wait(ticks=1)
    state.back_to_an_earlier_template(back=1)
    state.service_selector(selector=(("app", "w"), ("tier", "b")))
    state.teardown()
    assert state.world.status.phase is Phase.COMPLETE


def test_scale_to_zero_with_a_refused_template_finishes() -> None:
    """replicas 0 makes the first pass cut over (threshold 0) with [create T 0, scale s1 0,
    delete-pods s1]; the create was refused first and ended the pass, so the old pods never went and
    no deadline ran for a cut-over target. Now no ReplicaSet is created at size 0, and at cutover the
    old revisions' removal runs before the target's actions (plan/rolling.py)."""
    state = machine()
    state.new_version(behavior=Behavior(refused=True))
    state.scale(replicas=0)
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


# --- cutover ServiceSelector ----------------------------------------------------------------------


def test_selector_scale_to_zero_while_the_service_selects_no_pod_finishes() -> None:
    """Liveness. ServiceSelector, replicas 0, and a Service that cannot be pinned to the new pods
    (template tier=a, Service tier=b): the cutover waited for a pin that could never be set, and at
    replicas 0 no deadline runs, so it stayed Progressing for ever. At replicas 0 the old versions now go
    as with Delete (there is no pod to pin to)."""
    state = machine(selector=0)
    state.scale(replicas=0)
    state.template_labels(tier="a")
    state.service_selector(keep_pin=False, selector=(("app", "w"), ("tier", "b")))
    assert state._settle(limit=80), state.world.status.message


def _selector_target_crashes_after_its_cutover(remove_pin: bool) -> RolloutMachine:
    state = machine(selector=0)
    state.new_version(behavior=Behavior(start=1, crash_after=1, crash_every=1))
    state.wait(ticks=2)  # pinned to w:2 (cut over), then its pod crash-loops
    if remove_pin:
        state.someone_removes_the_pin()
    state.world.check = True
    return state


def test_selector_target_crashing_after_its_cutover_stays_cut_over() -> None:
    """A cutover is never undone. The cutover was judged again on every pass until the old versions
    were gone, so a target that cut over and then crash-looped was no longer cut over: never
    TrafficStopped, the old version never removed, and at the deadline the serving version marked
    Failed for good. Now a target the Service is pinned to stays cut over
    (`selector.pinned_to_target`), and crash loops fail only a target that has not."""
    state = _selector_target_crashes_after_its_cutover(remove_pin=False)
    world = state.world
    for _ in range(40):
        world.step()
    assert world.status.phase is Phase.COMPLETE, world.status.message
    assert {p.revision for p in world.cluster.pods if not p.terminating} == {world.status.revision}


def test_selector_pin_is_not_put_back_on_a_crashing_target() -> None:
    """Capacity. Someone removes the pin after the cutover, the warm old version serves again, and the
    target's pods crash: putting the pin back on the target took the Service from 1 ready endpoint to
    0. The pin now moves only to a target whose Ready pods reach the cutover threshold."""
    state = _selector_target_crashes_after_its_cutover(remove_pin=True)
    world = state.world
    world.step()
    serving = world.cluster.serving_now()
    assert serving, "no pod serves after the pin was re-asserted"


def test_selector_lost_cutover_write_then_a_crash_keeps_the_cutover() -> None:
    """Durability. The pass that pins the target loses its status write; the target's pods crash
    before the next pass, which (status still saying stable = the old version) failed the target,
    rolled back and pinned the old version again. The pin on the target is proof of the cutover: the
    planner reads it (`selector.pinned_to_target`)."""
    state = machine(selector=0)
    state.new_version(behavior=Behavior(start=1, crash_after=1, crash_every=1))
    state.wait(ticks=1)  # w:2 created
    state.passes(faults=[PassFaults(status_write="lost")])  # pin w:2: the cutover, status lost
    target = state.world.cut_over_to
    state.wait(ticks=1)
    service = state.world.cluster.service
    assert service is not None
    assert service.pinned == target, f"pin moved back from {target} to {service.pinned}"


def test_selector_switch_mid_rollout_keeps_the_serving_new_pods() -> None:
    """Capacity. Switching to ServiceSelector while a rollout runs (the Service selects only the new
    pods) pinned the Service to the stable revision first thing, cutting every serving endpoint. The
    pin now goes to the stable revision only when its pods behind the Service alone serve `replicas`."""
    state = machine(replicas=2, surge="25%", service=True)
    state.service_selector(keep_pin=False, selector=(("app", "w"), ("tier", "b")))
    state.template_labels(tier="b")
    state.new_version(behavior=Behavior(start=1))
    state.wait(ticks=1)
    state.cutover_mode(cutover="ServiceSelector", window=None)
    world = state.world
    world.step()
    assert world.cluster.serving_now(), "no pod serves after the switch to ServiceSelector"


def test_selector_delete_with_a_stale_service_view_unpins_before_the_finalizer_goes() -> None:
    """Ownership of the pin. The FastRollout is deleted while the planner's Service view is 3 ticks
    old, from before the pin: it saw no pin, removed only the finalizer, and the FastRollout went with
    the Service still pinned. While the finalizer is held the unpin is now sent regardless of the
    cached Service (removing an absent key changes nothing)."""
    state = machine(selector=0, stale_watches=True)
    state.delete_fastrollout()
    state.passes(faults=[PassFaults(watch_lag=3)])
    state.teardown()
    service = state.world.cluster.service
    assert service is None or service.pinned is None


def test_selector_revert_mid_wave_with_a_shared_service_keeps_the_serving_newer_pods() -> None:
    """Capacity. Waves (maxSurge 25%) with another workload behind the Service: the stable version
    shrank to 1 and the new one serves 1 of 2. The user goes back to the stable template and switches
    to ServiceSelector. The stable revision is the target, so it counted as cut over, and with a
    Service that cannot take the pin the old versions went as with Delete at once: serving pods 2 -> 1.
    They now go only once the target serves at the cutover threshold, as with Delete."""
    state = machine(replicas=2, surge="25%", service=True)
    state.new_version(behavior=Behavior(start=1))
    state.another_workload(count=1)
    state.passes(faults=[PassFaults(), PassFaults()])
    state.back_to_an_earlier_template(back=1)
    state.cutover_mode(cutover="ServiceSelector", window=0)
    state.world.check = True
    for _ in range(12):
        state.world.step()
    state.teardown()


def test_selector_rollback_after_a_switch_from_delete_waits_for_the_pin_before_removing() -> None:
    """SIGTERM only without traffic. Waves in Delete mode left a superseded version serving beside the
    shrunk stable one; a never-Ready version then fails after the switch to ServiceSelector, and the
    rollback removed the superseded version in the same pass that pinned the Service to the stable
    revision: its pods got SIGTERM with a ready endpoint. Now what the Service still routes to waits
    for the pin to take it out, and goes on a later pass."""
    state = machine(replicas=2, rollback=True, endpoint_lag=1, selector=0)
    state.cutover_mode(cutover="Delete", window=None)
    state.someone_removes_the_pin()
    state.template_labels(tier="a")
    state.strategy(min_ready=100, surge="25%")
    state.wait(ticks=3)
    state.new_version(behavior=Behavior(never_ready=True))
    state.wait(ticks=8)
    state.cutover_mode(cutover="ServiceSelector", window=None)
    state.wait(ticks=5)
    state.teardown()


def test_selector_revert_while_the_service_selects_no_pod_ends() -> None:
    """Liveness. Back to the stable template while the Service (rewritten, its pin dropped) selects
    none of the pods, with completeWhen Drained: the stable target counted as cut over, the Service
    could not take the pin, the newer version was kept for a traffic stop that had already happened
    and a drain that never would: Progressing for ever. Only a pin on the target proves a cutover now;
    otherwise the Delete gate decides, and the deadline ends it as with Delete."""
    state = machine(selector=0)
    state.new_version(behavior=Behavior(start=1))
    state.completion(complete_when="Drained", rollback=False)
    state.passes(faults=[PassFaults()])
    state.back_to_an_earlier_template(back=1)
    state.service_selector(keep_pin=False, selector=(("app", "w"), ("tier", "b")))
    state.teardown()
