"""Generated scenarios: the safety invariants of DESIGN.md 1b, checked after every operator action.

hypothesis drives a `RuleBasedStateMachine` (STYLE.md 14): a model of the cluster (cluster_model.py:
ReplicaSet controller with a create rate, readiness delays, crash loops, node room, draining pods, an
EndpointSlice controller with lag and a Service selector), random user actions (version bumps, going
back to an earlier template, scale, pause/resume, broken templates, template label and Service selector
changes, minReadyPercent, maxSurge, completeWhen, rollbackOnFailure) and faults in every pass (refused or
unanswered API calls, failed and lost status writes, an operator crash between any two steps, stale
watches). The operator's pass follows the handler's order; the planner is the real `decide()`.

Invariants (World in cluster_model.py checks them; a violation raises with the last steps):
- capacity: around each operator action, pods serving (Ready, not terminating, selected by the
  Service if there is one) never fall below min(replicas, serving before the action). Pods the planner's
  snapshot showed serving that stopped on their own since (a crash, a selector change, a stale view) are
  excused: they are not the action's doing.
- traffic: with a Service, an action that removes the serving pods of the version last cut over to
  (DeletePods, or a scale to 0) for a new target needs minReadyPercent of replicas of target pods
  behind the Service (a ready endpoint, now or in the planner's snapshot and not removed since).
- visibility: a refused call shows in the status the pass writes (ReplicaFailure with the API's
  message), and a run of identical refusals posts exactly one Warning event (a lost write or crash in
  the run excuses a repeat: the operator cannot know it already told).
- durability: once the model saw the cutover to the target, no later pass scales an older ReplicaSet
  back up or fails/rolls back the target by removing its pods.
- liveness: teardown resumes a paused rollout, stops faults and user actions, and requires Complete,
  Failed or RolledBack, with no action left, within a bound of passes.

Profiles: `ci` (default, bounded) and `long` (FASTROLLOUT_FUZZ=long) for soak runs; FASTROLLOUT_FUZZ_SEED
pins another seed. A failure prints the shrunk program of rules and the reproduce blob.
"""

import contextlib
import os
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.plan.cluster_model import (
    NO_FAULTS,
    TERMINAL,
    TICK,
    Behavior,
    Cluster,
    PassFaults,
    ServiceModel,
    UserSpec,
    World,
)

from fastrollout.api import LABEL_REVISION
from fastrollout.api import Phase as RolloutPhase
from fastrollout.plan import revision_of
from fastrollout.plan.clock import from_text
from fastrollout.plan.selector import PROPAGATION_MARGIN_SECONDS
from fastrollout.plan.surge import surge_count

PROFILE = os.environ.get("FASTROLLOUT_FUZZ", "ci")
# Shared by every profile: no deadline (a scenario is many passes), no example database (CI starts
# clean), the blob to reproduce a failure, and the health checks a stateful model trips by design.
COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
# No explain phase in the seeded profiles: it reruns every failing example and only adds comments.
SEEDED = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
settings.register_profile(
    "ci", max_examples=3000, stateful_step_count=25, derandomize=True, phases=SEEDED, **COMMON
)
settings.register_profile(
    "dev", max_examples=150, stateful_step_count=25, derandomize=True, phases=SEEDED, **COMMON
)
settings.register_profile("long", max_examples=20_000, stateful_step_count=60, derandomize=False, **COMMON)

GOOD = Behavior(start=2)
BEHAVIORS = st.one_of(
    st.builds(Behavior, start=st.integers(1, 4)),
    st.builds(Behavior, start=st.integers(1, 3), crash_after=st.just(0)),  # crash from birth
    # some new pods Ready, then one (or a share) crash-loops
    st.builds(
        Behavior, start=st.integers(1, 3), crash_after=st.integers(1, 6), crash_every=st.integers(1, 12)
    ),
    st.just(Behavior(never_ready=True)),
    st.just(Behavior(refused=True)),
    st.just(Behavior(collides=True)),
)
SURGES = st.sampled_from(["100%", "25%", "50%", 1, 3])
# cutover: None is Delete; a number is ServiceSelector with that rollbackWindowSeconds (TICK is 2 s).
WINDOWS = st.sampled_from([None, None, 0, 4, 10])
SELECTORS = st.sampled_from(
    [
        (("app", "w"),),
        (("app", "w"), ("tier", "b")),
        (("app", "w-old"),),
        None,  # the Service is deleted
    ]
)
FAULTS = st.one_of(
    st.just(NO_FAULTS),
    st.builds(
        PassFaults,
        watch_lag=st.sampled_from([0, 0, 0, 1, 2, 3]),
        status_write=st.sampled_from(["ok", "ok", "ok", "fails", "lost"]),
        final_write_lost=st.sampled_from([False, False, False, True]),
        refuse=st.none() | st.tuples(st.integers(0, 3), st.sampled_from([409, 422, 403, 500, 0])),
        applied=st.booleans(),
        crash_after=st.none() | st.integers(0, 5),
    ),
)


def _note(text: str) -> None:
    """A line in hypothesis's report of a failing case; nothing when a regression case replays it."""
    with contextlib.suppress(InvalidArgument):
        note(text)


class RolloutMachine(RuleBasedStateMachine):
    world: World

    @initialize(
        replicas=st.integers(1, 12),
        surge=SURGES,
        min_ready=st.sampled_from([100, 80, 50]),
        service=st.booleans(),
        endpoint_lag=st.integers(0, 2),
        create_rate=st.sampled_from([None, 2, 5]),
        room=st.sampled_from([None, 0, 2]),
        drain=st.integers(1, 4),
        complete_when=st.sampled_from(["TrafficStopped", "Drained"]),
        rollback=st.booleans(),
        deadline=st.sampled_from([20, 40, 80]),
        stale_watches=st.booleans(),
        selector=WINDOWS,
    )
    def start(
        self,
        replicas: int,
        surge: int | str,
        min_ready: int,
        service: bool,
        endpoint_lag: int,
        create_rate: int | None,
        room: int | None,
        drain: int,
        complete_when: str,
        rollback: bool,
        deadline: int,
        stale_watches: bool,
        selector: int | None = None,
    ) -> None:
        if selector is not None:  # cutover ServiceSelector: needs the Service and a whole-fleet surge
            service, surge = True, "100%"
        user = UserSpec(
            replicas=replicas,
            max_surge=surge,
            min_ready=min_ready,
            complete_when=complete_when,
            rollback=rollback,
            deadline=deadline,
            service=service,
            cutover="Delete" if selector is None else "ServiceSelector",
            window=selector or 0,
        )
        # node room: replicas + surge (+ slack) pods, terminating ones included; None: unlimited
        node_room = None if room is None else replicas + surge_count(surge, replicas) + room
        cluster = Cluster(
            create_rate=create_rate,
            node_room=node_room,
            drain_ticks=drain,
            endpoint_lag=endpoint_lag if service else 0,
            service=ServiceModel() if service else None,
            room_slack=room or 0,
            stale_watches=stale_watches,
            behaviors={"w:1": GOOD},
        )
        self.world = World(cluster, user)
        self.images = ["w:1"]
        self.stale_watches = stale_watches
        # The first rollout, on a healthy cluster: nothing serves before it, so it is not checked.
        self.world.check = False
        self._settle(limit=200)
        assert self.world.status.phase is RolloutPhase.COMPLETE, self.world.trace
        self.world.check = True
        self.world.cut_over_to = revision_of(self.world.spec)
        _note(f"initial: {user} on {cluster.summary()}, node_room={node_room}")

    def _settle(self, limit: int) -> bool:
        """Clean passes until a terminal phase with nothing left to do."""
        for _ in range(limit):
            record = self.world.step()
            settled = record is not None and record.plan.status.phase in TERMINAL and not record.plan.actions
            if settled and self.world.status.phase in TERMINAL:
                return True
        return False

    # --- user actions ---

    @rule(behavior=BEHAVIORS)
    def new_version(self, behavior: Behavior) -> None:
        image = f"w:{len(self.images) + 1}"
        self.images.append(image)
        self.world.cluster.behaviors[image] = behavior
        self.world.edit(image=image)
        _note(f"{image} is {behavior!r}")

    @rule(back=st.integers(1, 3))
    def back_to_an_earlier_template(self, back: int) -> None:
        image = self.images[max(0, len(self.images) - 1 - back)]
        if image != self.world.user.image:
            self.world.edit(image=image)

    @rule(replicas=st.integers(0, 12))
    def scale(self, replicas: int) -> None:
        self.world.edit(replicas=replicas)

    @rule(paused=st.booleans())
    def pause_or_resume(self, paused: bool) -> None:
        self.world.edit(paused=paused)

    @rule(tier=st.sampled_from([None, "a", "b"]))
    def template_labels(self, tier: str | None) -> None:
        self.world.edit(tier=tier)

    @precondition(lambda self: self.world.cluster.service is not None)
    @rule(selector=SELECTORS, keep_pin=st.booleans())
    def service_selector(self, selector: tuple[tuple[str, str], ...] | None, keep_pin: bool = True) -> None:
        """The user rewrites the Service's selector (a whole-map write: spec.selector is atomic, so the
        pin survives only when their tool leaves that key alone), or deletes the Service."""
        service = self.world.cluster.service
        assert service is not None
        pin = service.pinned if keep_pin else None
        service.found = selector is not None
        service.selector = selector or ()
        if service.found and pin is not None:
            service.set_pin(pin)
        self.world.note(f"t={self.world.ticks} user: Service selector {selector}, pin {pin}")

    @precondition(lambda self: self.world.user.service)
    @rule(cutover=st.sampled_from(["Delete", "ServiceSelector"]), window=WINDOWS)
    def cutover_mode(self, cutover: str, window: int | None) -> None:
        """Switch between Delete and ServiceSelector (with the whole-fleet surge it needs)."""
        if cutover == "ServiceSelector":
            self.world.edit(cutover=cutover, window=window or 0, max_surge="100%")
        else:
            self.world.edit(cutover=cutover, window=0)

    @precondition(lambda self: self.world.cluster.service is not None and self.world.cluster.service.pinned)
    @rule()
    def someone_removes_the_pin(self) -> None:
        service = self.world.cluster.service
        assert service is not None
        service.set_pin(None)
        self.world.note(f"t={self.world.ticks} user: removes the Service's fastrollout.io/revision key")

    @precondition(lambda self: self.world.cluster.service is not None)
    @rule(count=st.integers(0, 2))
    def another_workload(self, count: int) -> None:
        """Pods of another workload labelled app=w: behind the Service whenever it is not pinned."""
        self.world.cluster.strangers = count
        self.world.note(f"t={self.world.ticks} user: {count} pod(s) of another workload (app=w)")

    @precondition(lambda self: not self.world.deleting)
    @rule()
    def delete_fastrollout(self) -> None:
        self.world.delete()

    @rule(surge=SURGES, min_ready=st.sampled_from([100, 80, 50, 1]))
    def strategy(self, surge: int | str, min_ready: int) -> None:
        self.world.edit(max_surge=surge, min_ready=min_ready)

    @rule(history=st.sampled_from([0, 1, 10]))
    def revision_history(self, history: int) -> None:
        self.world.edit(history=history)

    @rule(complete_when=st.sampled_from(["TrafficStopped", "Drained"]), rollback=st.booleans())
    def completion(self, complete_when: str, rollback: bool) -> None:
        self.world.edit(complete_when=complete_when, rollback=rollback)

    # --- time and faults ---

    @rule(faults=st.lists(FAULTS, min_size=1, max_size=8))
    def passes(self, faults: list[PassFaults]) -> None:
        for fault in faults:
            stale = self.stale_watches or not fault.watch_lag
            self.world.step(fault if stale else replace(fault, watch_lag=0))

    @rule(ticks=st.integers(1, 12))
    def wait(self, ticks: int) -> None:
        for _ in range(ticks):
            self.world.step()

    # --- liveness ---

    def teardown(self) -> None:
        world = getattr(self, "world", None)
        if world is None:
            return
        if world.deleting:
            self._deleted(world)
            return
        if world.user.paused:
            world.edit(paused=False)
        deadline_ticks = int(world.user.deadline / TICK.total_seconds())
        bound = 2 * deadline_ticks + 60
        if not self._settle(limit=bound):
            raise AssertionError(
                f"liveness: no Complete/Failed/RolledBack within {bound} clean passes: phase "
                f"{world.status.phase}, {world.status.message}\n  last steps:\n    {world.trace_text()}"
            )
        self._released_or_pinned(world)
        # Settled, old pods drain on (TrafficStopped completes before they are gone); once the planner has
        # seen them go, the empty old ReplicaSets are the revision history: no more than the limit keeps.
        kept: list[str] = []
        for _ in range(world.cluster.drain_ticks + world.cluster.endpoint_lag + 10):
            world.step()
            kept = self._history(world)
            if len(kept) <= world.user.history:
                break
        assert len(kept) <= world.user.history, f"history: {kept} kept, limit {world.user.history}"

    @staticmethod
    def _deleted(world: World) -> None:
        """A deleted FastRollout goes within a few clean passes (the pin first, then the finalizer);
        World._gone checks that no pin is left behind."""
        for _ in range(10):
            if world.gone:
                return
            world.step()
        raise AssertionError(
            f"liveness: the deleted FastRollout is still there (finalizer {world.finalized}) after 10 "
            f"clean passes\n  last steps:\n    {world.trace_text()}"
        )

    @staticmethod
    def _released_or_pinned(world: World) -> None:
        """Settled with cutover Delete: no pin and no finalizer left. With ServiceSelector and the
        target cut over: the old versions go by the window's end plus a bound, and the pin names the
        target whenever the Service can take it (re-asserted after someone removed it)."""
        service = world.cluster.service
        if not world.user.by_selector:
            pinned = service.pinned if service is not None else None
            released = f"release: cutover Delete, settled, pin {pinned}, finalizer {world.finalized}"
            assert pinned is None, f"{released}\n  last steps:\n    {world.trace_text()}"
            assert not world.finalized, f"{released}\n  last steps:\n    {world.trace_text()}"
            return
        target = world.status.revision
        if target is None or world.status.stable_revision != target:
            return  # failed or rolled back: the stable version serves, nothing old to remove
        if world.status.phase is not RolloutPhase.COMPLETE:
            # Failed: Ready pods of the other version are kept, as with Delete (back to the stable
            # version while the Service selects none of its pods).
            return
        stopped = from_text(world.status.traffic_stopped_at)
        window = timedelta(seconds=PROPAGATION_MARGIN_SECONDS + world.user.window)
        bound = (world.cluster.endpoint_lag + world.cluster.drain_ticks + 3) * TICK
        deadline = (stopped or world.now) + window + bound
        while _old_running(world, target) and world.now < deadline:
            world.step()
            if world.status.phase is not RolloutPhase.COMPLETE:
                break  # the target's pods crash after its cutover: it stays cut over, not Complete
        assert not _old_running(world, target), (
            f"liveness: old versions {_old_running(world, target)} still running at {world.now:%H:%M:%S}, "
            f"TrafficStopped {world.status.traffic_stopped_at}, window {world.user.window}s, "
            f"phase {world.status.phase}: {world.status.message}\n  last steps:\n    {world.trace_text()}"
        )
        pods = [p for p in world.cluster.pods if p.revision == target]
        if service is None or not service.found or world.cluster.strangers or not pods:
            return
        rest = tuple((k, v) for k, v in service.selector if k != LABEL_REVISION)
        if rest and all(pods[0].labels.get(k) == v for k, v in rest):
            # The pin is put back from what the planner observes: give it the endpoint lag to see
            # that no other workload is behind the Service any more.
            for _ in range(world.cluster.endpoint_lag + 2):
                if service.pinned == target:
                    break
                world.step()
            assert service.pinned == target, (
                f"pin: settled on {target[:6]} and the Service pinned to {service.pinned}\n"
                f"  last steps:\n    {world.trace_text()}"
            )

    @staticmethod
    def _history(world: World) -> list[str]:
        """The old ReplicaSets at 0 without pods: what revisionHistoryLimit bounds."""
        current = {world.status.revision, world.status.stable_revision}
        return [
            rs.name
            for rs in world.cluster.replica_sets.values()
            if rs.revision not in current
            and rs.replicas == 0
            and not any(p.revision == rs.revision for p in world.cluster.pods)
        ]


def _old_running(world: World, target: str) -> list[str]:
    """Revisions other than the target with non-terminating pods or a ReplicaSet asking for some."""
    pods = {p.revision for p in world.cluster.pods if p.revision != target and not p.terminating}
    sets = {
        rs.revision for rs in world.cluster.replica_sets.values() if rs.revision != target and rs.replicas
    }
    return sorted(revision[:6] for revision in pods | sets)


RolloutMachine.TestCase.settings = settings.get_profile(PROFILE)
if "FASTROLLOUT_FUZZ_SEED" in os.environ:
    RolloutMachine.TestCase = seed(int(os.environ["FASTROLLOUT_FUZZ_SEED"]))(RolloutMachine.TestCase)
TestGeneratedScenarios = RolloutMachine.TestCase
