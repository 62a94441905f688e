"""cutover ServiceSelector (plan/selector.py) and what decide() does with it: named cases.

"T" is the target revision (the hash of the case's spec); s1 is the stable one, n2 a newer version
that took over from T (for the rollback inside the window). The Service is w-svc, selecting app=w and,
when pinned, fastrollout.io/revision. Actions are written compactly: "pin T", "unpin", "+finalizer",
"-finalizer", "create T 4", "scale s1 0", "delete-pods s1".
"""

import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fastrollout.api import LABEL_REVISION, FastRolloutSpec, FastRolloutStatus, Phase
from fastrollout.plan import decide, reasons, revision_of, selector
from fastrollout.plan.fleet import build_fleet
from fastrollout.plan.model import (
    AddFinalizer,
    Observed,
    PinService,
    Plan,
    RemoveFinalizer,
    ReplicaSetView,
    RevisionPods,
    Rollout,
    ServiceView,
    UnpinService,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.plan.test_plan_decide import compact, resolve

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
STARTED = "2026-11-27T11:59:00Z"  # a minute ago: well inside the 600 s deadline
SERVICE = "w-svc"
SKIP = object()


def spec(
    *, image: str = "w:2", replicas: int = 4, cutover: str = "ServiceSelector", window: int = 0
) -> FastRolloutSpec:
    return FastRolloutSpec.model_validate(
        {
            "replicas": replicas,
            "serviceName": SERVICE,
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "w", "image": image}]},
            },
            "strategy": {"maxSurge": "100%", "cutover": cutover, "rollbackWindowSeconds": window},
        }
    )


def rs(revision: str, replicas: int) -> ReplicaSetView:
    return ReplicaSetView(name=f"w-{revision}", revision=revision, version=f"v-{revision}", replicas=replicas)


def pods(revision: str, replicas: int, *, ready: int | None = None, in_service: int = 0) -> RevisionPods:
    """`in_service` Ready pods with a ready endpoint: they are also what serves."""
    ready = replicas if ready is None else ready
    return RevisionPods(
        revision=revision,
        version=f"v-{revision}",
        replicas=replicas,
        ready=ready,
        serving=in_service,
        in_service=in_service,
    )


def fleet(revision: str, size: int, *, ready: int | None = None, in_service: int = 0) -> tuple[Any, ...]:
    return (rs(revision, size), pods(revision, size, ready=ready, in_service=in_service))


def service(pin: str | None = None, *, strangers: int = 0, found: bool = True) -> ServiceView:
    selector = (("app", "w"),) + (((LABEL_REVISION, pin),) if pin else ())
    return ServiceView(SERVICE, found, tuple(sorted(selector)) if found else (), strangers=strangers)


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# Status of a rollout of T from stable s1, started a minute ago, not cut over.
IN_FLIGHT: dict[str, Any] = {
    "revision": "T",
    "stable_revision": "s1",
    "version": "T",
    "stable_version": "v-s1",
    "phase": Phase.PROGRESSING,
    "rollout_started_at": STARTED,
}
# T cut over by the pin at NOW, TrafficStopped stamped at NOW.
STOPPED: dict[str, Any] = {
    **IN_FLIGHT,
    "stable_revision": "T",
    "stable_version": "T",
    "phase": Phase.COMPLETE,
    "traffic_stopped_at": text(NOW),
}
STABLE_S1: dict[str, Any] = {
    "revision": "s1",
    "stable_revision": "s1",
    "version": "v-s1",
    "stable_version": "v-s1",
    "phase": Phase.COMPLETE,
    "rollout_started_at": "2026-11-27T11:00:00Z",
    "traffic_stopped_at": "2026-11-27T11:01:00Z",
}


@dataclass(frozen=True)
class Case:
    name: str
    observed: tuple[Any, ...]
    actions: tuple[str, ...]
    spec: FastRolloutSpec = field(default_factory=spec)
    status: dict[str, Any] = field(default_factory=dict)
    now: datetime = NOW
    finalized: bool = True
    deleting: bool = False
    expect: dict[str, Any] = field(default_factory=dict)  # status fields; "T" means the target revision
    progressing: str | None = None  # Progressing's reason
    events: tuple[str, ...] | None = None
    requeue: object = SKIP


CASES = [
    # --- while rolling: the pin names the stable revision ---------------------------------------
    Case(
        "new-version-pins-the-stable-revision-finalizer-first",
        status=STABLE_S1,
        observed=(*fleet("s1", 4, in_service=4), service()),
        finalized=False,
        actions=("+finalizer", "pin s1", "create T 4"),
        expect={"stable_revision": "s1", "phase": Phase.PROGRESSING},
        events=("NewVersion",),
    ),
    Case(
        "new-version-with-the-finalizer-pins-without-adding-it-again",
        status=STABLE_S1,
        observed=(*fleet("s1", 4, in_service=4), service()),
        actions=("pin s1", "create T 4"),
    ),
    Case(
        "rolling-and-pinned-to-stable-nothing-to-write",
        status=IN_FLIGHT,
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4, ready=3), service("s1")),
        actions=(),
        expect={"stable_revision": "s1", "phase": Phase.PROGRESSING},
        progressing=reasons.ROLLOUT_PROGRESSING,
        events=(),
    ),
    Case(
        "pin-removed-by-someone-is-set-again",
        status=IN_FLIGHT,
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4, ready=2), service()),
        actions=("pin s1",),
    ),
    Case(
        "a-first-rollout-has-nothing-to-pin-while-starting",
        status={**IN_FLIGHT, "stable_revision": None, "stable_version": None},
        observed=(*fleet("T", 4, ready=1), service()),
        finalized=False,
        actions=(),
    ),
    # --- the cutover: the pin moves to the target ----------------------------------------------
    Case(
        "ready-target-cuts-over-by-the-pin-alone",
        status=IN_FLIGHT,
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4), service("s1")),
        actions=("pin T",),  # s1 stays: TrafficStopped is not stamped yet
        expect={"stable_revision": "T", "phase": Phase.PROGRESSING, "traffic_stopped_at": None},
        progressing=reasons.WAITING_FOR_TRAFFIC_STOP,
        events=("CutOver",),
        requeue=1.0,
    ),
    Case(
        "pin-not-yet-propagated-keeps-the-old-pods",
        status={**IN_FLIGHT, "stable_revision": "T"},
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4), service("T")),
        actions=(),
        expect={"stable_revision": "T", "traffic_stopped_at": None},
        events=(),
        requeue=1.0,
    ),
    Case(
        "pin-propagated-stamps-traffic-stopped-and-keeps-the-old-version-for-the-margin",
        spec=spec(window=30),
        status={**IN_FLIGHT, "stable_revision": "T"},
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=(),
        expect={"traffic_stopped_at": text(NOW), "phase": Phase.COMPLETE},
        events=("TrafficStopped",),
        # the first look at the end reads the stamp from the status this pass writes
        requeue=1.0,
    ),
    # --- the old version kept warm, then removed -----------------------------------------------
    Case(
        "old-version-kept-until-traffic-stopped-plus-margin-plus-window",
        spec=spec(window=30),
        status=STOPPED,
        now=at(31),
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=(),
        expect={"phase": Phase.COMPLETE},
        events=(),
        requeue=1.0,  # NOW + 2 + 30 - (NOW + 31)
    ),
    Case(
        "old-version-kept-requeue-points-at-the-window-end",
        spec=spec(window=30),
        status=STOPPED,
        now=at(10),
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=(),
        requeue=22.0,
    ),
    Case(
        "old-version-removed-at-the-window-end",
        spec=spec(window=30),
        status=STOPPED,
        now=at(32),
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"phase": Phase.COMPLETE, "stable_revision": "T"},
        events=(),  # the removal is no second cutover
        requeue=None,
    ),
    Case(
        "no-window-old-version-removed-after-the-margin",
        status=STOPPED,
        now=at(2),
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=("scale s1 0", "delete-pods s1"),
    ),
    Case(
        "no-window-old-version-kept-inside-the-margin",
        status=STOPPED,
        now=at(1),
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=(),
        requeue=1.0,
    ),
    Case(
        "old-version-still-routed-at-the-window-end-is-kept",
        status=STOPPED,
        now=at(5),
        observed=(*fleet("s1", 4, in_service=1), *fleet("T", 4, in_service=4), service("T")),
        actions=(),
        requeue=1.0,
    ),
    # --- rollback inside the window: the pin goes back at once ---------------------------------
    Case(
        "rollback-inside-the-window-pins-the-warm-version-on-the-first-pass",
        spec=spec(window=300),
        status={
            **STOPPED,
            "revision": "n2",
            "stable_revision": "n2",
            "version": "v-n2",
            "stable_version": "v-n2",
        },
        observed=(*fleet("n2", 4, in_service=4), *fleet("T", 4), service("n2")),
        actions=("pin T",),  # no create, no scale: T is there, Ready, at full size
        expect={"stable_revision": "T", "traffic_stopped_at": None},
        events=("NewVersion", "CutOver"),
        requeue=1.0,
    ),
    # --- a Service shared with another workload: never pinned ----------------------------------
    Case(
        "shared-service-is-not-pinned-while-rolling",
        status=STABLE_S1,
        observed=(*fleet("s1", 4, in_service=4), service(strangers=2)),
        finalized=False,
        actions=("create T 4",),
    ),
    Case(
        "shared-service-refuses-the-cutover-with-service-shared",
        status=IN_FLIGHT,
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4, in_service=4), service(strangers=1)),
        actions=(),
        expect={"stable_revision": "s1", "phase": Phase.PROGRESSING},
        progressing=reasons.SERVICE_SHARED,
        events=("ServiceShared",),
    ),
    # --- cutover Delete: the pin goes, after the removals, then the finalizer --------------------
    Case(
        "switched-to-delete-removes-the-old-pods-then-unpins-then-the-finalizer",
        spec=spec(cutover="Delete"),
        status=STOPPED,
        observed=(*fleet("s1", 4), *fleet("T", 4, in_service=4), service("T")),
        actions=("scale s1 0", "delete-pods s1", "unpin", "-finalizer"),
    ),
    Case(
        # The cached Service shows no pin, but it may lag a pin set a moment ago: unpin anyway.
        "delete-mode-finalizer-left-after-the-pin-went",
        spec=spec(cutover="Delete"),
        status=STOPPED,
        observed=(*fleet("T", 4, in_service=4), service()),
        actions=("unpin", "-finalizer"),
    ),
    Case(
        "delete-mode-without-pin-or-finalizer-does-nothing-of-it",
        spec=spec(cutover="Delete"),
        status=STOPPED,
        observed=(*fleet("T", 4, in_service=4), service()),
        finalized=False,
        actions=(),
    ),
    # --- the FastRollout deleted: release, nothing else ----------------------------------------
    Case(
        "deleting-unpins-then-removes-the-finalizer-and-nothing-else",
        status=IN_FLIGHT,
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4), service("s1")),
        deleting=True,
        actions=("unpin", "-finalizer"),  # no cutover, though T is ready for it
        requeue=None,
    ),
    Case(
        "deleting-while-rolling-creates-nothing",
        status=STABLE_S1,
        observed=(*fleet("s1", 4, in_service=4), service("s1")),
        deleting=True,
        actions=("unpin", "-finalizer"),
    ),
    Case(
        "deleting-without-a-pin-removes-the-finalizer",  # after an unpin, as above
        status=STOPPED,
        observed=(*fleet("T", 4, in_service=4), service()),
        deleting=True,
        actions=("unpin", "-finalizer"),
    ),
    Case(
        "deleting-with-the-service-gone-removes-the-finalizer",  # the unpin answers 404: done
        status=STOPPED,
        observed=(*fleet("T", 4), service(found=False)),
        deleting=True,
        actions=("unpin", "-finalizer"),
    ),
]


def run(case: Case) -> tuple[Plan, str]:
    target = revision_of(case.spec)
    items = [resolve(item, target, target) for item in case.observed]
    observed = Observed(
        replica_sets=tuple(i for i in items if isinstance(i, ReplicaSetView)),
        pods=tuple(i for i in items if isinstance(i, RevisionPods)),
        service=next((i for i in items if isinstance(i, ServiceView)), None),
    )
    status = FastRolloutStatus(**{k: resolve(v, target, target) for k, v in case.status.items()})
    rollout = Rollout(
        name="w",
        namespace="ns",
        generation=3,
        spec=case.spec,
        status=status,
        deleting=case.deleting,
        finalized=case.finalized,
    )
    return decide(rollout, observed, case.now), target


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_selector_cutover(case: Case) -> None:
    plan, target = run(case)
    assert tuple(compact(a, target) for a in plan.actions) == case.actions
    for key, expected in case.expect.items():
        assert getattr(plan.status, key) == resolve(expected, target, target), key
    if case.progressing is not None:
        progressing = next(c for c in plan.status.conditions if c.type == reasons.PROGRESSING)
        assert progressing.reason == case.progressing
    if case.events is not None:
        assert tuple(e.reason for e in plan.events) == case.events
    if case.requeue is not SKIP:
        assert plan.requeue_after == case.requeue


def case_named(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def test_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_finalizer_comes_before_the_first_pin() -> None:
    plan, _ = run(case_named("new-version-pins-the-stable-revision-finalizer-first"))
    kinds = [type(a) for a in plan.actions]
    assert kinds.index(AddFinalizer) < kinds.index(PinService)


def test_cut_over_event_once_with_the_selector_message() -> None:
    """The pass that pins the target posts CutOver naming the selector; the next pass over the status
    it wrote (the pin applied, the endpoints not moved yet) posts nothing."""
    case = case_named("ready-target-cuts-over-by-the-pin-alone")
    first, target = run(case)
    (event,) = first.events
    assert event.message == f"cut over to version {target}: the Service's selector now pins its revision"
    assert not event.warning
    again = replace(
        case,
        status=dict(first.status),
        observed=(*fleet("s1", 4, in_service=4), *fleet("T", 4), service("T")),
        now=at(1),
    )
    second, _ = run(again)
    assert second.events == ()
    assert second.actions == ()
    assert second.status.stable_revision == target


def test_service_shared_warns_once_per_transition() -> None:
    case = case_named("shared-service-refuses-the-cutover-with-service-shared")
    first, _ = run(case)
    (warning,) = first.events
    assert warning.warning
    assert "also routes to 1 pod(s) that are not this FastRollout's" in warning.message
    assert warning.message == first.status.message
    second, _ = run(replace(case, status=dict(first.status), now=at(5)))
    assert second.events == ()
    assert not any(isinstance(a, PinService) for a in second.actions)


def test_status_names_the_warm_version_and_the_window_end() -> None:
    case = case_named("old-version-kept-requeue-points-at-the-window-end")
    plan, _ = run(case)
    end = text(NOW + timedelta(seconds=selector.PROPAGATION_MARGIN_SECONDS + 30))
    assert f"version v-s1 kept warm, out of the Service, for rollback until {end}" in (
        plan.status.message or ""
    )
    versions = {v.revision: v for v in plan.status.versions}
    assert (versions["s1"].serving_replicas, versions["s1"].ready_replicas) == (0, 4)


def test_the_pass_that_stamps_traffic_stopped_names_the_window_end() -> None:
    plan, _ = run(
        case_named("pin-propagated-stamps-traffic-stopped-and-keeps-the-old-version-for-the-margin")
    )
    assert f"until {text(at(32))}" in (plan.status.message or "")


def test_no_warm_note_without_a_window() -> None:
    plan, _ = run(case_named("no-window-old-version-kept-inside-the-margin"))
    assert "kept warm" not in (plan.status.message or "")


def test_the_window_ends_counted_from_this_targets_traffic_stop() -> None:
    """window_end reads TrafficStopped only when the status is about the same target."""
    window = spec(window=60)
    stopped = FastRolloutStatus(revision="r2", traffic_stopped_at=text(NOW))
    assert selector.window_end(window, stopped, "r2") == at(62)
    assert selector.window_end(window, stopped, "r3") is None
    assert selector.window_end(window, FastRolloutStatus(revision="r2"), "r2") is None


def test_by_selector_needs_the_mode_and_a_service() -> None:
    assert selector.by_selector(spec())
    assert not selector.by_selector(spec(cutover="Delete"))


def test_expired_keeps_routed_and_inactive_revisions_apart() -> None:
    target = revision_of(spec())
    observed = Observed(
        replica_sets=(rs("s1", 4), rs("s2", 2), rs("s3", 0)),
        pods=(pods("s1", 4), pods("s2", 2, in_service=1)),
    )
    fleet_ = build_fleet(observed, FastRolloutStatus(stable_revision=target), target, target)
    assert selector.expired(fleet_.others, None, NOW) == ()
    assert selector.expired(fleet_.others, at(1), NOW) == ()
    assert [r.revision for r in selector.expired(fleet_.others, NOW, NOW)] == ["s1"]


def test_release_and_pin_need_a_service_that_is_there() -> None:
    target = revision_of(spec())
    rollout = Rollout("w", "ns", 1, spec(), FastRolloutStatus(), finalized=True)

    def fleet_with(view: ServiceView | None, serving: int = 4) -> Any:
        observed = Observed(
            replica_sets=(rs("s1", 4),), pods=(pods("s1", 4, in_service=serving),), service=view
        )
        return build_fleet(observed, FastRolloutStatus(stable_revision="s1"), target, target)

    def pin(view: ServiceView, *, cut_over: bool, serving: int = 4) -> tuple[Any, ...]:
        return selector.pin(fleet_with(view, serving), spec(), "w", cut_over=cut_over)

    assert selector.release(rollout, fleet_with(service("s1"))) == (UnpinService(SERVICE), RemoveFinalizer())
    assert selector.release(rollout, fleet_with(service(found=False))) == (
        UnpinService(SERVICE),
        RemoveFinalizer(),
    )
    assert selector.release(replace(rollout, finalized=False), fleet_with(service())) == ()
    assert pin(service(), cut_over=False) == (PinService(SERVICE, "s1"),)
    # The stable pods behind the Service must serve replicas alone: pinning them must cut no one off.
    assert pin(service(), cut_over=False, serving=3) == ()
    assert pin(service(found=False), cut_over=False) == ()
    assert pin(service(strangers=1), cut_over=True) == ()
    assert selector.with_finalizer(rollout, (PinService(SERVICE, "s1"),)) == (PinService(SERVICE, "s1"),)
