"""decide() driven step by step against a tiny in-memory cluster, through whole rollouts.

The fake cluster does what matters here and nothing else: ReplicaSets keep their pod count (creating
pods not Ready, removing not-Ready pods first, like the ReplicaSet controller), pods become Ready after
a start time, terminating pods drain for a while and vanish, a collection delete terminates all
non-terminating pods of a revision. Without a Service, a pod serves while Ready and not terminating.
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from fastrollout.api import FastRolloutSpec, FastRolloutStatus, Phase
from fastrollout.plan import decide, revision_of
from fastrollout.plan.model import (
    Action,
    CreateReplicaSet,
    DeletePods,
    DeleteReplicaSet,
    Observed,
    Plan,
    ReplicaSetView,
    RevisionPods,
    Rollout,
    ScaleReplicaSet,
)
from fastrollout.plan.surge import surge_count

START_TICKS = 3  # a new pod is Ready three passes after it was created
CREATED_BASE = datetime(2026, 11, 27, tzinfo=UTC)
DRAIN_TICKS = 4  # a terminating pod is gone four passes after its delete


@dataclass
class Pod:
    revision: str
    age: int = 0
    terminating_for: int | None = None
    crashing: bool = False
    scheduled: bool = False
    crash_at: int | None = None  # age at which a Ready pod starts crash-looping; None: never

    @property
    def ready(self) -> bool:
        return (
            self.terminating_for is None and not self.crashing and self.scheduled and self.age >= START_TICKS
        )

    def grow(self) -> None:
        self.age += self.scheduled
        if self.crash_at is not None and self.age >= self.crash_at:
            self.crashing = True


@dataclass
class FakeCluster:
    replica_sets: dict[str, ReplicaSetView] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    crashing_revisions: set[str] = field(default_factory=set)
    capacity: int | None = None  # pods the nodes hold, terminating ones included; None: unlimited
    creations: int = 0  # ReplicaSets created so far: their creationTimestamps follow this order

    def apply(self, actions: tuple[Action, ...]) -> None:
        for action in actions:
            match action:
                case CreateReplicaSet():
                    assert action.name not in self.replica_sets, "created twice"
                    self.creations += 1
                    created = CREATED_BASE + timedelta(seconds=self.creations)
                    view = ReplicaSetView(
                        action.name, action.revision, action.version, action.replicas, created
                    )
                    self.replica_sets[action.name] = view
                case ScaleReplicaSet():
                    self.replica_sets[action.name] = replace(
                        self.replica_sets[action.name], replicas=action.replicas
                    )
                case DeletePods():
                    for pod in self.live(action.revision):
                        pod.terminating_for = 0
                case DeleteReplicaSet():
                    revision = self.replica_sets.pop(action.name).revision
                    assert not [p for p in self.pods if p.revision == revision], (
                        "deleted a ReplicaSet with pods"
                    )
            self.reconcile()

    def live(self, revision: str) -> list[Pod]:
        return [p for p in self.pods if p.revision == revision and p.terminating_for is None]

    def reconcile(self) -> None:
        """The ReplicaSet controller: not-Ready pods go first, then the youngest."""
        for view in self.replica_sets.values():
            live = self.live(view.revision)
            for _ in range(view.replicas - len(live)):
                self.pods.append(Pod(view.revision, crashing=view.revision in self.crashing_revisions))
            for pod in sorted(live, key=lambda p: (p.ready, -p.age))[: max(0, len(live) - view.replicas)]:
                pod.terminating_for = 0

    def tick(self) -> None:
        for pod in self.pods:  # the scheduler: oldest Pending pod first, while there is room
            if not pod.scheduled and (
                self.capacity is None or sum(p.scheduled for p in self.pods) < self.capacity
            ):
                pod.scheduled = True
        for pod in self.pods:
            pod.grow()
            if pod.terminating_for is not None:
                pod.terminating_for += 1
        self.pods = [p for p in self.pods if p.terminating_for is None or p.terminating_for < DRAIN_TICKS]

    def observe(self) -> Observed:
        revisions = sorted({p.revision for p in self.pods})
        counts = []
        for revision in revisions:
            mine = [p for p in self.pods if p.revision == revision]
            live = [p for p in mine if p.terminating_for is None]
            ready = sum(p.ready for p in live)
            counts.append(
                RevisionPods(
                    revision=revision,
                    version=revision,
                    replicas=len(live),
                    ready=ready,
                    serving=ready,
                    draining=len(mine) - len(live),
                    crashing=sum(p.crashing for p in live),
                )
            )
        return Observed(replica_sets=tuple(self.replica_sets.values()), pods=tuple(counts))

    def ready_capacity(self) -> int:
        return sum(p.ready for p in self.pods)

    def non_terminating(self) -> int:
        return sum(p.terminating_for is None for p in self.pods)


def make_spec(image: str, replicas: int, surge: int | str, **extra: object) -> FastRolloutSpec:
    return FastRolloutSpec.model_validate(
        {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "w", "image": image}]},
            },
            "strategy": {"maxSurge": surge},
            **extra,
        }
    )


@dataclass
class Driver:
    cluster: FakeCluster
    spec: FastRolloutSpec
    status: FastRolloutStatus = field(default_factory=FastRolloutStatus)
    now: datetime = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    plans: list[Plan] = field(default_factory=list)

    def step(self, *, lose_status: bool = False) -> Plan:
        rollout = Rollout(name="w", namespace="ns", generation=1, spec=self.spec, status=self.status)
        plan = decide(rollout, self.cluster.observe(), self.now)
        self.cluster.apply(plan.actions)
        if not lose_status:
            self.status = plan.status
        self.cluster.tick()
        self.now += timedelta(seconds=1)
        self.plans.append(plan)
        return plan

    def run_until(self, phase: Phase, *, drained: bool = True, limit: int = 400, check: bool = True) -> None:
        replicas = self.spec.replicas
        for _ in range(limit):
            plan = self.step()
            if check:
                assert self.cluster.ready_capacity() >= replicas, f"capacity dropped: {plan}"
            done = plan.status.phase is phase and (not drained or plan.status.drained_at is not None)
            if done and not plan.actions:
                return
        pytest.fail(f"no {phase} after {limit} passes: {self.status}")


def settled(driver: Driver) -> None:
    """A finished rollout is a fixed point: no actions, no events, the same status."""
    before = driver.status
    plan = driver.step()
    assert plan.actions == ()
    assert plan.events == ()
    assert plan.status == before
    target = revision_of(driver.spec)
    assert {p.revision for p in driver.cluster.pods} == {target}
    kept = [v for v in driver.cluster.replica_sets.values() if v.revision != target]
    assert [v.revision for v in driver.cluster.replica_sets.values() if v.revision == target] == [target]
    # Old ReplicaSets stay as revision history: empty, and no more than the limit.
    assert all(v.replicas == 0 for v in kept)
    assert len(kept) <= driver.spec.revision_history_limit


SCENARIOS = [
    pytest.param(10, "100%", id="bulk-10"),
    pytest.param(10, 3, id="waves-10-surge-3"),
    pytest.param(7, "25%", id="waves-7-surge-25pct"),
    pytest.param(40, 1, id="waves-40-surge-1"),
    pytest.param(1, 1, id="single-pod"),
    pytest.param(25, "40%", id="waves-25-surge-40pct"),
]


@pytest.mark.parametrize("limited", [False, True], ids=["room-to-spare", "room-for-surge-only"])
@pytest.mark.parametrize(("replicas", "surge"), SCENARIOS)
def test_rollout_never_drops_capacity(replicas: int, surge: int | str, limited: bool) -> None:
    """With room for replicas + surge pods only (terminating ones hold theirs), waves still finish."""
    room = replicas + surge_count(surge, replicas) if limited else None
    driver = Driver(FakeCluster(capacity=room), make_spec("w:1", replicas, surge))
    driver.run_until(Phase.COMPLETE, check=False)  # first rollout: nothing serves before it
    settled(driver)
    driver.spec = make_spec("w:2", replicas, surge)
    bound = replicas + surge_count(surge, replicas)
    for _ in range(400):
        plan = driver.step()
        assert driver.cluster.ready_capacity() >= replicas
        assert driver.cluster.non_terminating() <= bound
        if plan.status.phase is Phase.COMPLETE and plan.status.drained_at and not plan.actions:
            break
    settled(driver)
    reasons = [e.reason for p in driver.plans for e in p.events]
    # the first rollout had no old pods: it completes without a cutover; the second cuts over once
    assert reasons == ["NewVersion", "RolloutComplete", "NewVersion", "CutOver", "TrafficStopped", "Drained"]


@pytest.mark.parametrize("after", [2, 5, 9], ids=lambda n: f"after-{n}-passes")
@pytest.mark.parametrize(("replicas", "surge"), SCENARIOS)
def test_newer_version_supersedes_in_flight_without_capacity_loss(
    replicas: int, surge: int | str, after: int
) -> None:
    driver = Driver(FakeCluster(), make_spec("w:1", replicas, surge))
    driver.run_until(Phase.COMPLETE, check=False)
    driver.spec = make_spec("w:2", replicas, surge)
    for _ in range(after):
        driver.step()
        assert driver.cluster.ready_capacity() >= replicas
    in_flight = driver.status.stable_revision != revision_of(driver.spec)
    driver.spec = make_spec("w:3", replicas, surge)
    driver.run_until(Phase.COMPLETE)
    settled(driver)
    superseded = "Superseded" in [e.reason for p in driver.plans for e in p.events]
    assert superseded == in_flight


def test_operator_crash_at_cutover_changes_nothing() -> None:
    """The status write of the cutover pass is lost: the next pass finishes the job without repeats."""
    driver = Driver(FakeCluster(), make_spec("w:1", 10, 3))
    driver.run_until(Phase.COMPLETE, check=False)
    driver.spec = make_spec("w:2", 10, 3)
    while True:
        rollout = Rollout(name="w", namespace="ns", generation=1, spec=driver.spec, status=driver.status)
        plan = decide(rollout, driver.cluster.observe(), driver.now)
        if plan.status.stable_revision == revision_of(driver.spec):
            break
        driver.step()
    driver.step(lose_status=True)
    after_crash = driver.step()
    assert after_crash.actions == ()
    driver.run_until(Phase.COMPLETE)
    settled(driver)


def test_crash_looping_version_rolls_back_and_keeps_capacity() -> None:
    driver = Driver(FakeCluster(), make_spec("w:1", 10, 3))
    driver.run_until(Phase.COMPLETE, check=False)
    bad = make_spec("w:bad", 10, 3)
    driver.cluster.crashing_revisions.add(revision_of(bad))
    driver.spec = bad
    driver.run_until(Phase.ROLLED_BACK, drained=False)
    for _ in range(10):
        plan = driver.step()
        assert driver.cluster.ready_capacity() >= 10
    assert plan.status.phase is Phase.ROLLED_BACK
    assert plan.actions == ()
    assert not driver.cluster.live(revision_of(bad))


def test_some_new_pods_ready_then_one_crash_loops_rolls_back_without_capacity_loss() -> None:
    """Crash-from-birth hides capacity loss (nothing new is ever Ready). Here waves shrink the stable
    version while new pods turn Ready; then one Ready new pod crash-loops: the rollback must keep
    Ready pods >= replicas until the stable version serves alone again."""
    driver = Driver(FakeCluster(), make_spec("w:1", 10, 3))
    driver.run_until(Phase.COMPLETE, check=False)
    bad = make_spec("w:bad", 10, 3)
    driver.spec = bad
    target = revision_of(bad)
    for _ in range(6):  # the first waves: some new pods Ready, the stable one already shrunk
        driver.step()
        assert driver.cluster.ready_capacity() >= 10
    ready_new = [p for p in driver.cluster.live(target) if p.ready]
    assert ready_new, "no new pod Ready yet: the case would not test the rollback of Ready pods"
    assert len(driver.cluster.live(revision_of(make_spec("w:1", 10, 3)))) < 10, "the stable one shrank"
    ready_new[0].crash_at = ready_new[0].age + 1  # one Ready pod crash-loops from the next tick
    driver.run_until(Phase.ROLLED_BACK, drained=False)
    for _ in range(20):
        plan = driver.step()
        assert driver.cluster.ready_capacity() >= 10
    assert plan.status.phase is Phase.ROLLED_BACK
    assert plan.actions == ()
    assert not driver.cluster.live(target)
