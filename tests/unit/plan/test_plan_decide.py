"""Named table tests for plan.decide(): one FastRollout, one observed snapshot, one moment -> one plan.

"T" stands for the target revision (the hash of the case's spec); other revisions are plain names:
s1 is the stable one, a1 an in-flight one being superseded. Actions are written compactly:
"create T 10", "scale s1 0", "delete-pods s1", "delete-rs s1".
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fastrollout.api import Condition, FastRolloutSpec, FastRolloutStatus, Phase
from fastrollout.plan import decide, revision_of
from fastrollout.plan.model import (
    Action,
    AddFinalizer,
    CreateReplicaSet,
    DeletePods,
    DeleteReplicaSet,
    Observed,
    PinService,
    Plan,
    RemoveFinalizer,
    ReplicaSetView,
    RevisionPods,
    Rollout,
    ScaleReplicaSet,
    ServiceView,
    UnpinService,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-27T12:00:00Z"
STARTED = "2026-11-27T11:55:00Z"  # five minutes ago: 300 s left of the default 600 s deadline
LONG_AGO = "2026-11-27T11:00:00Z"  # an hour ago: past any default deadline
SKIP = object()


def spec(
    *,
    image: str = "w:2",
    replicas: int = 10,
    surge: int | str = "100%",
    min_ready: int = 100,
    complete_when: str = "TrafficStopped",
    rollback: bool = True,
    paused: bool = False,
    deadline: int = 600,
    history: int = 10,
) -> FastRolloutSpec:
    return FastRolloutSpec.model_validate(
        {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "w", "image": image}]},
            },
            "strategy": {"maxSurge": surge, "minReadyPercent": min_ready},
            "completeWhen": complete_when,
            "rollbackOnFailure": rollback,
            "paused": paused,
            "progressDeadlineSeconds": deadline,
            "revisionHistoryLimit": history,
        }
    )


def rs(revision: str, replicas: int, *, age_minutes: int | None = None) -> ReplicaSetView:
    """A ReplicaSet; `age_minutes` before NOW is its creationTimestamp (None: unknown)."""
    created = None if age_minutes is None else NOW - timedelta(minutes=age_minutes)
    return ReplicaSetView(
        name=f"w-{revision}", revision=revision, version=f"v-{revision}", replicas=replicas, created=created
    )


def pods(
    revision: str,
    replicas: int = 0,
    *,
    ready: int | None = None,
    serving: int | None = None,
    draining: int = 0,
    crashing: int = 0,
    in_service: int | None = None,
    foreign: int = 0,
) -> RevisionPods:
    ready = replicas if ready is None else ready
    return RevisionPods(
        revision=revision,
        version=f"v-{revision}",
        replicas=replicas,
        ready=ready,
        serving=ready if serving is None else serving,
        draining=draining,
        crashing=crashing,
        in_service=in_service,
        foreign=foreign,
    )


def fleet(revision: str, rs_size: int, running: int | None = None, **counts: int) -> tuple[Any, ...]:
    """A ReplicaSet and its pods: fleet("s1", 10) is 10 asked, 10 running and Ready."""
    return (rs(revision, rs_size), pods(revision, rs_size if running is None else running, **counts))


def cond(type_: str, status: str, reason: str, ltt: str = STARTED) -> Condition:
    return Condition(type=type_, status=status, reason=reason, last_transition_time=ltt)


ROLLING = [cond("Progressing", "True", "RolloutProgressing")]
# Status of a rollout of T from stable s1, started five minutes ago.
IN_FLIGHT: dict[str, Any] = {
    "revision": "T",
    "stable_revision": "s1",
    "version": "T",
    "stable_version": "v-s1",
    "phase": Phase.PROGRESSING,
    "rollout_started_at": STARTED,
    "conditions": ROLLING,
}
CUT_OVER: dict[str, Any] = {**IN_FLIGHT, "stable_revision": "T"}
COMPLETE: dict[str, Any] = {
    **CUT_OVER,
    "phase": Phase.COMPLETE,
    "traffic_stopped_at": STARTED,
    "drained_at": STARTED,
    "conditions": [cond("Progressing", "False", "RolloutComplete")],
}
# Stable s1 complete; T is a new template nobody has seen yet.
STABLE_S1: dict[str, Any] = {**COMPLETE, "revision": "s1", "stable_revision": "s1", "version": "v-s1"}


@dataclass(frozen=True)
class Case:
    name: str
    observed: tuple[Any, ...]
    actions: tuple[str, ...]
    spec: FastRolloutSpec = field(default_factory=spec)
    status: dict[str, Any] = field(default_factory=dict)
    now: datetime = NOW
    expect: dict[str, Any] = field(default_factory=dict)  # status fields; "T" means the target revision
    conditions: dict[str, str] = field(default_factory=dict)  # type -> status or "status/reason"
    events: tuple[str, ...] | None = None
    requeue: object = SKIP


def flat(*groups: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for group in groups:
        out.extend(group if isinstance(group, tuple) else (group,))
    return tuple(out)


CASES = [
    # --- first rollout -------------------------------------------------------------------------
    Case(
        "first-rollout-creates-target-at-full-size",
        observed=(),
        actions=("create T 10",),
        expect={"phase": Phase.PROGRESSING, "stable_revision": None, "rollout_started_at": NOW_TEXT},
        conditions={
            "Progressing": "True/RolloutProgressing",
            "TrafficStopped": "False/NotCutOver",
            "Reconciling": "True/RolloutProgressing",
            "Stalled": "False/RolloutProgressing",
        },
        events=("NewVersion",),
        requeue=600.0,
    ),
    Case(
        "first-rollout-complete-when-ready",
        status={**IN_FLIGHT, "stable_revision": None},
        observed=fleet("T", 10),
        actions=(),
        expect={
            "phase": Phase.COMPLETE,
            "stable_revision": "T",
            "traffic_stopped_at": NOW_TEXT,
            "drained_at": NOW_TEXT,
        },
        conditions={
            "Progressing": "False/RolloutComplete",
            "TrafficStopped": "True",
            "Drained": "True",
            "Reconciling": "False/RolloutComplete",
            "Stalled": "False/RolloutComplete",
        },
        events=("RolloutComplete",),  # no CutOver, TrafficStopped or Drained: no old pod ever ran
        requeue=None,
    ),
    Case(
        "first-rollout-one-pod-99-percent-waits-for-it",
        spec=spec(replicas=1, min_ready=99),
        status={**IN_FLIGHT, "stable_revision": None},
        observed=fleet("T", 1, ready=0),
        actions=(),
        expect={"phase": Phase.PROGRESSING},
        conditions={"Available": "False"},
    ),
    Case(
        "first-rollout-one-pod-99-percent-ready",
        spec=spec(replicas=1, min_ready=99),
        status={**IN_FLIGHT, "stable_revision": None},
        observed=fleet("T", 1),
        actions=(),
        expect={"phase": Phase.COMPLETE},
        events=("RolloutComplete",),
    ),
    Case(
        "first-rollout-complete-when-drained-posts-only-its-completion",
        spec=spec(complete_when="Drained"),
        status={**IN_FLIGHT, "stable_revision": None},
        observed=fleet("T", 10),
        actions=(),
        expect={"phase": Phase.COMPLETE, "traffic_stopped_at": NOW_TEXT, "drained_at": NOW_TEXT},
        conditions={"TrafficStopped": "True", "Drained": "True", "Reconciling": "False/RolloutComplete"},
        events=("RolloutComplete",),
    ),
    Case(
        "new-version-after-the-old-pods-went-is-a-completion-not-a-cutover",
        spec=spec(replicas=10),
        status={**IN_FLIGHT, "stable_revision": "s1"},
        observed=flat(rs("s1", 0), fleet("T", 10)),
        actions=(),  # s1's empty ReplicaSet stays as revision history
        expect={"phase": Phase.COMPLETE, "stable_revision": "T"},
        events=("RolloutComplete",),
    ),
    # --- bulk ----------------------------------------------------------------------------------
    Case(
        "bulk-new-version-created-at-full-size-stable-untouched",
        status=STABLE_S1,
        observed=fleet("s1", 10),
        actions=("create T 10",),
        expect={
            "phase": Phase.PROGRESSING,
            "stable_revision": "s1",
            "rollout_started_at": NOW_TEXT,
            "traffic_stopped_at": None,
            "drained_at": None,
        },
        events=("NewVersion",),
        requeue=600.0,
    ),
    Case(
        "bulk-waits-until-min-ready",
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=9)),
        actions=(),
        expect={"phase": Phase.PROGRESSING, "updated_replicas": 10, "ready_replicas": 19, "replicas": 20},
        events=(),
        requeue=300.0,
    ),
    Case(
        "bulk-cutover-one-scale-one-collection-delete",
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10)),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"phase": Phase.PROGRESSING, "stable_revision": "T", "old_serving_replicas": 10},
        conditions={"TrafficStopped": "False/OldPodsServing", "Progressing": "True/WaitingForTrafficStop"},
        events=("CutOver",),
        requeue=None,
    ),
    Case(
        "min-ready-90-cuts-over-at-9",
        spec=spec(min_ready=90),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=9)),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"stable_revision": "T"},
    ),
    Case(
        "cutover-second-pass-after-crash-issues-nothing",
        status=IN_FLIGHT,  # the crash lost the status write of the cutover pass
        observed=flat(rs("s1", 0), pods("s1", 0, draining=10), fleet("T", 10)),
        actions=(),
        expect={"phase": Phase.COMPLETE, "stable_revision": "T", "draining_replicas": 10},
    ),
    Case(
        "cutover-resumed-after-crash-between-scale-and-delete",
        status=IN_FLIGHT,
        observed=flat(rs("s1", 0), pods("s1", 6, draining=4), fleet("T", 10)),
        actions=("delete-pods s1",),
        expect={"stable_revision": "T"},
    ),
    Case(
        "traffic-stopped-complete-while-draining",
        status=CUT_OVER,
        observed=flat(rs("s1", 0), pods("s1", 0, draining=10), fleet("T", 10)),
        actions=(),
        expect={
            "phase": Phase.COMPLETE,
            "traffic_stopped_at": NOW_TEXT,
            "drained_at": None,
            "draining_replicas": 10,
            "old_serving_replicas": 0,
        },
        conditions={
            "TrafficStopped": "True/OldPodsNotServing",
            "Drained": "False/OldPodsRunning",
            "Progressing": "False/RolloutComplete",
        },
        events=("TrafficStopped",),
    ),
    Case(
        "traffic-not-stopped-while-old-endpoints-serve",
        status=CUT_OVER,
        observed=flat(rs("s1", 0), pods("s1", 0, draining=10, serving=3), fleet("T", 10)),
        actions=(),
        expect={"phase": Phase.PROGRESSING, "old_serving_replicas": 3, "traffic_stopped_at": None},
        events=(),
    ),
    Case(
        # publishNotReadyAddresses: the pod is deleted before the EndpointSlice controller drops its
        # still-ready endpoint; observe counts that endpoint as serving for the revision.
        "endpoint-outliving-its-pod-keeps-traffic-not-stopped-and-its-replica-set",
        status=CUT_OVER,
        observed=flat(rs("s1", 0), pods("s1", 0, serving=1), fleet("T", 10)),
        actions=(),
        expect={
            "phase": Phase.PROGRESSING,
            "old_serving_replicas": 1,
            "draining_replicas": 0,
            "drained_at": None,
        },
        conditions={"TrafficStopped": "False/OldPodsServing", "Drained": "False/OldPodsServing"},
        events=(),
    ),
    Case(
        "drained-keeps-empty-old-replica-set-as-history",
        status={**CUT_OVER, "phase": Phase.COMPLETE, "traffic_stopped_at": STARTED},
        observed=flat(rs("s1", 0), fleet("T", 10)),
        actions=(),
        expect={"phase": Phase.COMPLETE, "drained_at": NOW_TEXT, "traffic_stopped_at": STARTED},
        conditions={"Drained": "True/OldPodsGone"},
        events=("Drained",),
    ),
    Case(
        "drained-without-history-deletes-empty-old-replica-set",
        spec=spec(history=0),
        status={**CUT_OVER, "phase": Phase.COMPLETE, "traffic_stopped_at": STARTED},
        observed=flat(rs("s1", 0), fleet("T", 10)),
        actions=("delete-rs s1",),
        expect={"phase": Phase.COMPLETE, "drained_at": NOW_TEXT, "traffic_stopped_at": STARTED},
        conditions={"Drained": "True/OldPodsGone"},
        events=("Drained",),
    ),
    Case(
        "complete-when-drained-waits-for-drain",
        spec=spec(complete_when="Drained"),
        status=CUT_OVER,
        observed=flat(rs("s1", 0), pods("s1", 0, draining=2), fleet("T", 10)),
        actions=(),
        expect={"phase": Phase.PROGRESSING, "traffic_stopped_at": NOW_TEXT},
        conditions={"Progressing": "True/WaitingForDrain", "TrafficStopped": "True"},
    ),
    Case(
        "complete-when-drained-completes",
        spec=spec(complete_when="Drained", history=0),
        status=CUT_OVER,
        observed=flat(rs("s1", 0), fleet("T", 10)),
        actions=("delete-rs s1",),
        expect={"phase": Phase.COMPLETE, "drained_at": NOW_TEXT},
    ),
    # --- surge and waves -----------------------------------------------------------------------
    Case(
        "max-surge-int-first-wave",
        spec=spec(surge=3),
        status=STABLE_S1,
        observed=fleet("s1", 10),
        actions=("create T 3",),
    ),
    Case(
        "max-surge-percent-rounds-up",
        spec=spec(surge="25%"),  # ceil(2.5) = 3
        status=STABLE_S1,
        observed=fleet("s1", 10),
        actions=("create T 3",),
    ),
    Case(
        "max-surge-above-replicas-capped-at-replicas",
        spec=spec(surge=50),
        status=STABLE_S1,
        observed=fleet("s1", 10),
        actions=("create T 10",),
    ),
    Case(
        "wave-stable-shrinks-as-new-pods-become-ready",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 3)),
        actions=("scale s1 7",),
    ),
    Case(
        "wave-shrinks-only-by-ready-pods",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 3, ready=1)),
        actions=("scale s1 9",),
    ),
    Case(
        "wave-target-grows-once-old-pods-went",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 7), pods("s1", 0, draining=3), fleet("T", 3)),
        actions=("scale T 6",),
    ),
    Case(
        "wave-final-cutover",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 3), fleet("T", 10)),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"stable_revision": "T"},
    ),
    Case(
        "wave-full-target-not-ready-keeps-surge-of-old",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 3), fleet("T", 10, ready=8)),
        actions=(),
    ),
    # --- supersede -----------------------------------------------------------------------------
    Case(
        "supersede-with-full-stable-removes-in-flight-at-once",
        status={**IN_FLIGHT, "revision": "a1", "version": "v-a1"},
        observed=flat(fleet("s1", 10), fleet("a1", 10, ready=4)),
        actions=("create T 10", "scale a1 0", "delete-pods a1"),
        expect={"stable_revision": "s1", "rollout_started_at": NOW_TEXT},
        events=("NewVersion", "Superseded"),
    ),
    Case(
        "supersede-without-full-stable-keeps-in-flight-as-capacity",
        spec=spec(surge=3),
        status={**IN_FLIGHT, "revision": "a1", "version": "v-a1"},
        observed=flat(fleet("s1", 7), fleet("a1", 6, ready=3)),
        actions=("scale a1 3",),  # a1 loses its 3 unready pods, no capacity; T has no room yet
        events=("NewVersion", "Superseded"),
    ),
    Case(
        "supersede-cutover-removes-stable-and-in-flight",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 3), fleet("a1", 2), fleet("T", 10)),
        actions=("scale a1 0", "scale s1 0", "delete-pods a1", "delete-pods s1"),
        expect={"stable_revision": "T"},
    ),
    Case(
        "two-old-versions-draining-all-reported",
        status=CUT_OVER,
        observed=flat(
            rs("s1", 0), pods("s1", 0, draining=3), rs("a1", 0), pods("a1", 0, draining=2), fleet("T", 10)
        ),
        actions=(),
        expect={
            "phase": Phase.COMPLETE,
            "draining_replicas": 5,
            "versions": [("T", 10, 0), ("a1", 0, 2), ("s1", 0, 3)],
        },
    ),
    Case(
        "manual-rollback-mid-wave-regrows-stable-before-removing-in-flight",
        spec=spec(surge=3),
        status={**IN_FLIGHT, "revision": "a1", "stable_revision": "T", "version": "v-a1"},
        observed=flat(fleet("T", 4), fleet("a1", 9, ready=6)),
        actions=("scale a1 6",),
        expect={"phase": Phase.PROGRESSING, "stable_revision": "T"},
        events=("NewVersion", "Superseded"),
        requeue=600.0,  # the deadline runs until nothing else is left to cut over
    ),
    # --- progress deadline and crashes ---------------------------------------------------------
    Case(
        "deadline-requeue-is-exact",
        status=IN_FLIGHT,
        now=NOW + timedelta(milliseconds=250),
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=3)),
        actions=(),
        requeue=299.75,
    ),
    Case(
        "deadline-exceeded-rolls-back",
        status={
            **IN_FLIGHT,
            "rollout_started_at": LONG_AGO,
            "conditions": [cond("Progressing", "True", "RolloutProgressing", LONG_AGO)],
        },
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=5)),
        actions=("scale T 0", "delete-pods T"),
        expect={"phase": Phase.ROLLED_BACK, "failed_revision": "T", "stable_revision": "s1"},
        conditions={
            "Progressing": "False/ProgressDeadlineExceeded",
            "Reconciling": "False/ProgressDeadlineExceeded",
            "Stalled": "True/ProgressDeadlineExceeded",
        },
        events=("RolloutFailed", "RolledBack"),
        requeue=None,
    ),
    Case(
        "deadline-passed-but-ready-cuts-over",
        status={
            **IN_FLIGHT,
            "rollout_started_at": LONG_AGO,
            "conditions": [cond("Progressing", "True", "RolloutProgressing", LONG_AGO)],
        },
        observed=flat(fleet("s1", 10), fleet("T", 10)),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"stable_revision": "T"},
    ),
    Case(
        "crash-looping-new-pods-roll-back",
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=2, crashing=3)),
        actions=("scale T 0", "delete-pods T"),
        expect={"phase": Phase.ROLLED_BACK, "failed_revision": "T"},
        conditions={"Progressing": "False/NewPodsCrashing"},
        events=("RolloutFailed", "RolledBack"),
    ),
    Case(
        "crash-during-cutover-wins-over-cutover",
        spec=spec(min_ready=90),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=9, crashing=1)),
        actions=("scale T 0", "delete-pods T"),
        expect={"phase": Phase.ROLLED_BACK, "stable_revision": "s1"},
    ),
    Case(
        "rollback-with-waves-scales-stable-back",
        spec=spec(surge=3),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 4), fleet("T", 9, ready=6, crashing=1)),
        # 4 stable + 6 new serve: the new Ready pods stay until the stable version serves 10 alone.
        actions=("scale T 6", "scale s1 10"),
        expect={"phase": Phase.ROLLED_BACK},
    ),
    Case(
        "rollback-keeps-new-ready-pods-while-stable-starts",
        spec=spec(surge=3),
        status={**IN_FLIGHT, "failed_revision": "T", "phase": Phase.ROLLED_BACK},
        observed=flat(fleet("s1", 10, running=10, ready=7), fleet("T", 6, ready=6)),
        actions=("scale T 3",),
        expect={"phase": Phase.ROLLED_BACK},
    ),
    Case(
        "rollback-removes-new-pods-once-stable-serves-all",
        spec=spec(surge=3),
        status={**IN_FLIGHT, "failed_revision": "T", "phase": Phase.ROLLED_BACK},
        observed=flat(fleet("s1", 10), fleet("T", 3)),
        actions=("scale T 0", "delete-pods T"),
        expect={"phase": Phase.ROLLED_BACK},
    ),
    Case(
        "rollback-counts-stable-pods-behind-the-service",
        status={**IN_FLIGHT, "failed_revision": "T", "phase": Phase.ROLLED_BACK},
        observed=flat(fleet("s1", 10, in_service=4), fleet("T", 10, ready=8, crashing=2)),
        actions=("scale T 6",),
        expect={"phase": Phase.ROLLED_BACK},
    ),
    Case(
        "service-not-selecting-new-pods-holds-cutover",
        status=IN_FLIGHT,
        observed=(
            *flat(fleet("s1", 10), fleet("T", 10, in_service=0)),
            ServiceView("w", found=True, selector=(("app", "w-old"),)),
        ),
        actions=(),
        expect={"phase": Phase.PROGRESSING, "stable_revision": "s1"},
        conditions={"Progressing": "True/NewPodsNotInService", "TrafficStopped": "False/NotCutOver"},
        events=("NewPodsNotInService",),
    ),
    Case(
        "service-missing-holds-cutover",
        status=IN_FLIGHT,
        observed=(*flat(fleet("s1", 10), fleet("T", 10, in_service=0)), ServiceView("w", found=False)),
        actions=(),
        expect={"phase": Phase.PROGRESSING, "stable_revision": "s1"},
        conditions={"Progressing": "True/NewPodsNotInService"},
    ),
    Case(
        "service-lagging-endpoints-hold-cutover-without-blame",
        status=IN_FLIGHT,
        observed=(
            *flat(fleet("s1", 10), fleet("T", 10, in_service=9)),
            ServiceView("w", found=True, selector=(("app", "w"),)),
        ),
        actions=(),
        conditions={"Progressing": "True/RolloutProgressing"},
        events=(),
    ),
    Case(
        "service-selecting-new-pods-cuts-over",
        status=IN_FLIGHT,
        observed=(
            *flat(fleet("s1", 10), fleet("T", 10, in_service=10)),
            ServiceView("w", found=True, selector=(("app", "w"),)),
        ),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"stable_revision": "T"},
    ),
    Case(
        "deadline-while-not-behind-service-names-the-service",
        status={**IN_FLIGHT, "rollout_started_at": LONG_AGO, "conditions": []},
        observed=(
            *flat(fleet("s1", 10), fleet("T", 10, in_service=0)),
            ServiceView("w", found=True, selector=(("app", "w-old"),)),
        ),
        actions=("scale T 0", "delete-pods T"),
        expect={"phase": Phase.ROLLED_BACK},
        conditions={"Progressing": "False/ProgressDeadlineExceeded"},
    ),
    Case(
        "foreign-pods-are-left-to-their-owner-at-cutover",
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10, foreign=2), fleet("T", 10)),
        actions=("scale s1 0",),
        expect={"stable_revision": "T"},
        conditions={"ReplicaFailure": "True/ForeignPods"},
        events=("CutOver", "ForeignPods"),
    ),
    Case(
        "failure-without-rollback-takes-no-step",
        spec=spec(rollback=False),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=2, crashing=3)),
        actions=(),
        expect={"phase": Phase.FAILED, "failed_revision": "T"},
        events=("RolloutFailed",),
    ),
    Case(
        "first-rollout-failure-has-nothing-to-roll-back-to",
        status={**IN_FLIGHT, "stable_revision": None},
        observed=fleet("T", 10, ready=0, crashing=10),
        actions=(),
        expect={"phase": Phase.FAILED, "failed_revision": "T", "stable_revision": None},
    ),
    Case(
        "failed-revision-is-not-retried",
        status={
            **IN_FLIGHT,
            "phase": Phase.ROLLED_BACK,
            "failed_revision": "T",
            "message": "3 pods crash",
            "conditions": [cond("Progressing", "False", "NewPodsCrashing")],
        },
        observed=flat(fleet("s1", 10), rs("T", 0)),
        actions=(),
        expect={"phase": Phase.ROLLED_BACK, "failed_revision": "T", "message": "3 pods crash"},
        conditions={"Progressing": "False/NewPodsCrashing"},
        events=(),
        requeue=None,
    ),
    Case(
        "scale-while-failed-moves-the-stable",
        spec=spec(replicas=12),
        status={**IN_FLIGHT, "phase": Phase.ROLLED_BACK, "failed_revision": "T"},
        observed=flat(fleet("s1", 10), rs("T", 0)),
        actions=("scale s1 12",),
        expect={"phase": Phase.ROLLED_BACK},
        conditions={"Progressing": "False/RolloutFailed"},
    ),
    Case(
        "new-template-after-failure-is-a-new-rollout",
        status={**STABLE_S1, "revision": "f1", "failed_revision": "f1", "phase": Phase.ROLLED_BACK},
        observed=flat(fleet("s1", 10), rs("f1", 0)),
        actions=("create T 10",),
        expect={"phase": Phase.PROGRESSING, "failed_revision": None},
        events=("NewVersion",),
    ),
    # --- revision history ----------------------------------------------------------------------
    Case(
        "history-limit-keeps-the-newest-empty-replica-sets",
        spec=spec(history=2),
        status=COMPLETE,
        observed=flat(
            fleet("T", 10),
            rs("h1", 0, age_minutes=30),
            rs("h2", 0, age_minutes=20),
            rs("h3", 0, age_minutes=10),
            rs("h4", 0),  # no creationTimestamp: counts as the oldest
        ),
        actions=("delete-rs h1", "delete-rs h4"),
        expect={"phase": Phase.COMPLETE, "versions": [("T", 10, 0)]},
    ),
    Case(
        "history-limit-counts-only-empty-old-replica-sets",
        spec=spec(history=1),
        status=CUT_OVER,
        observed=flat(
            fleet("T", 10),
            rs("s1", 0, age_minutes=30),
            pods("s1", 0, draining=2),
            rs("h1", 0, age_minutes=50),
            rs("h2", 0, age_minutes=40),
        ),
        actions=("delete-rs h1",),
    ),
    Case(
        "undo-to-a-kept-revision-reuses-its-replica-set",
        status=STABLE_S1,
        observed=flat(fleet("s1", 10), rs("T", 0, age_minutes=60)),
        actions=("scale T 10",),
        expect={"phase": Phase.PROGRESSING, "stable_revision": "s1"},
        events=("NewVersion",),
    ),
    # --- paused --------------------------------------------------------------------------------
    Case(
        "paused-mid-wave-takes-no-action",
        spec=spec(surge=3, paused=True),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 3), rs("x1", 0)),
        actions=(),
        expect={"phase": Phase.PAUSED, "ready_replicas": 13},
        conditions={
            "Progressing": "Unknown/RolloutPaused",
            "Reconciling": "False/RolloutPaused",
            "Stalled": "False/RolloutPaused",
        },
        requeue=None,
    ),
    Case(
        "resume-after-pause-restarts-the-deadline",
        status={
            **IN_FLIGHT,
            "rollout_started_at": LONG_AGO,
            "phase": Phase.PAUSED,
            "conditions": [cond("Progressing", "Unknown", "RolloutPaused", LONG_AGO)],
        },
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=3)),
        actions=(),
        expect={"phase": Phase.PROGRESSING, "rollout_started_at": LONG_AGO},
        conditions={"Progressing": "True/RolloutProgressing"},
        requeue=600.0,
    ),
    # --- scaling -------------------------------------------------------------------------------
    Case(
        "scale-up-mid-rollout-target-and-stable-follow",
        spec=spec(replicas=12),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=4)),
        actions=("scale T 12", "scale s1 12"),
    ),
    Case(
        "scale-down-mid-rollout-target-and-stable-follow",
        spec=spec(replicas=8),
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=4)),
        actions=("scale T 8", "scale s1 8"),
    ),
    Case(
        "scale-after-complete",
        spec=spec(replicas=15),
        status=COMPLETE,
        observed=fleet("T", 10),
        actions=("scale T 15",),
        expect={"phase": Phase.COMPLETE},
        events=(),
    ),
    Case(
        "replicas-zero-new-version-scales-everything-to-zero",
        spec=spec(replicas=0),
        status=STABLE_S1,
        observed=fleet("s1", 10),
        actions=("scale s1 0", "delete-pods s1"),
        expect={"stable_revision": "T"},
        conditions={"Available": "True"},
    ),
    Case(
        "replicas-zero-in-place-complete-at-once",
        spec=spec(replicas=0),
        status=COMPLETE,
        observed=fleet("T", 10),
        actions=("scale T 0",),
        expect={"phase": Phase.COMPLETE},
    ),
    Case(
        "new-version-while-paused-is-reported-not-started",
        spec=spec(paused=True),
        status=STABLE_S1,
        observed=fleet("s1", 10),
        actions=(),
        expect={
            "phase": Phase.PAUSED,
            "version": "T",
            "stable_revision": "s1",
            "rollout_started_at": NOW_TEXT,
        },
        events=("NewVersion",),
    ),
    Case(
        "complete-fleet-losing-readiness-stays-complete",
        status=COMPLETE,
        observed=fleet("T", 10, ready=6),
        actions=(),
        expect={"phase": Phase.COMPLETE},
        conditions={"Available": "False/MinimumReplicasUnavailable"},
        events=(),
    ),
    Case(
        "orphan-old-pods-cut-over-by-collection-delete",
        status=IN_FLIGHT,
        observed=flat(fleet("s1", 10), pods("o1", 4), fleet("T", 10)),
        actions=("scale s1 0", "delete-pods o1", "delete-pods s1"),
    ),
    # --- status lost ---------------------------------------------------------------------------
    Case(
        "status-lost-keeps-serving-old-pods",
        status={},
        observed=flat(fleet("s1", 10), fleet("T", 10, ready=3)),
        actions=(),
        expect={"stable_revision": "s1", "phase": Phase.PROGRESSING, "rollout_started_at": NOW_TEXT},
        events=("NewVersion",),
    ),
    Case(
        "status-lost-infers-most-ready-as-stable",
        status={},
        observed=flat(fleet("a1", 4, ready=1), fleet("s1", 10), fleet("T", 10, ready=3)),
        actions=("scale a1 0", "delete-pods a1"),
        expect={"stable_revision": "s1"},
    ),
    Case(
        "status-lost-on-a-finished-fleet",
        status={},
        observed=fleet("T", 10),
        actions=(),
        expect={"phase": Phase.COMPLETE, "stable_revision": "T"},
        events=("NewVersion", "RolloutComplete"),
    ),
    Case(
        "stable-replica-set-gone-means-no-rollback",
        status={**IN_FLIGHT, "rollout_started_at": LONG_AGO, "conditions": []},
        observed=fleet("T", 10, ready=2),
        actions=(),
        expect={"phase": Phase.FAILED, "stable_revision": None},
    ),
]


def resolve(value: Any, target: str, version: str) -> Any:
    if value == "T":
        return target
    if isinstance(value, ReplicaSetView) and value.revision == "T":
        return replace(value, name=f"w-{target}", revision=target, version=version)
    if isinstance(value, RevisionPods) and value.revision == "T":
        return replace(value, revision=target, version=version)
    if isinstance(value, ServiceView):  # a pin on "T"
        return replace(value, selector=tuple((k, resolve(v, target, version)) for k, v in value.selector))
    return value


def compact(action: Action, target: str) -> str:
    def short(name_or_revision: str) -> str:
        revision = name_or_revision.removeprefix("w-")
        return "T" if revision == target else revision

    match action:
        case PinService():
            return f"pin {short(action.revision)}"
        case UnpinService():
            return "unpin"
        case AddFinalizer():
            return "+finalizer"
        case RemoveFinalizer():
            return "-finalizer"
        case CreateReplicaSet():
            return f"create {short(action.revision)} {action.replicas}"
        case ScaleReplicaSet():
            return f"scale {short(action.name)} {action.replicas}"
        case DeletePods():
            return f"delete-pods {short(action.revision)}"
        case DeleteReplicaSet():
            return f"delete-rs {short(action.name)}"


def run(case: Case) -> tuple[Plan, str]:
    target = revision_of(case.spec)
    observed_items = [resolve(item, target, target) for item in case.observed]
    observed = Observed(
        replica_sets=tuple(i for i in observed_items if isinstance(i, ReplicaSetView)),
        pods=tuple(i for i in observed_items if isinstance(i, RevisionPods)),
        service=next((i for i in observed_items if isinstance(i, ServiceView)), None),
    )
    status = FastRolloutStatus(**{k: resolve(v, target, target) for k, v in case.status.items()})
    rollout = Rollout(name="w", namespace="ns", generation=3, spec=case.spec, status=status)
    return decide(rollout, observed, case.now), target


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    plan, target = run(case)
    assert tuple(compact(a, target) for a in plan.actions) == case.actions
    for key, expected in case.expect.items():
        actual = getattr(plan.status, key)
        if key == "versions":
            actual = [
                ("T" if v.revision == target else v.revision, v.replicas, v.draining_replicas) for v in actual
            ]
        assert actual == resolve(expected, target, target), key
    by_type = {c.type: c for c in plan.status.conditions}
    for type_, expected in case.conditions.items():
        status, _, reason = expected.partition("/")
        assert by_type[type_].status == status, type_
        if reason:
            assert by_type[type_].reason == reason, type_
    if case.events is not None:
        assert tuple(e.reason for e in plan.events) == case.events
    if case.requeue is not SKIP:
        assert plan.requeue_after == case.requeue
    assert plan.status.observed_generation == 3
    assert [c.type for c in plan.status.conditions if c.type != "ReplicaFailure"] == [
        "Progressing",
        "Available",
        "TrafficStopped",
        "Drained",
        "Reconciling",
        "Stalled",
    ]
    by_type = {c.type: c for c in plan.status.conditions}
    moving = plan.status.phase in (Phase.PENDING, Phase.PROGRESSING)
    failed = plan.status.phase in (Phase.FAILED, Phase.ROLLED_BACK)
    assert (by_type["Reconciling"].status, by_type["Stalled"].status) == (str(moving), str(failed))
    for kstatus in ("Reconciling", "Stalled"):
        assert (by_type[kstatus].reason, by_type[kstatus].message) == (
            by_type["Progressing"].reason,
            by_type["Progressing"].message,
        )


def test_at_least_35_named_cases() -> None:
    assert len(CASES) >= 35
    assert len({c.name for c in CASES}) == len(CASES)


FIXED_POINTS = [
    "bulk-waits-until-min-ready",
    "traffic-stopped-complete-while-draining",
    "failed-revision-is-not-retried",
    "paused-mid-wave-takes-no-action",
    "status-lost-keeps-serving-old-pods",
    "first-rollout-complete-when-ready",
]


@pytest.mark.parametrize("name", FIXED_POINTS)
def test_second_pass_over_the_same_world_is_a_no_op(name: str) -> None:
    """Same input twice -> the identical plan; the written status fed back -> no events, same status."""
    case = next(c for c in CASES if c.name == name)
    first, target = run(case)
    assert run(case)[0] == first
    again = replace(case, status=dict(first.status), now=case.now + timedelta(seconds=30))
    second, _ = run(again)
    assert second.status == first.status
    assert second.events == ()
    assert tuple(compact(a, target) for a in second.actions) == case.actions


def test_steady_state_takes_no_action() -> None:
    case = Case("steady", status=COMPLETE, observed=fleet("T", 10), actions=())
    plan, _ = run(case)
    assert plan.actions == ()
    assert plan.events == ()
    assert plan.requeue_after is None
    assert plan.status.phase is Phase.COMPLETE
    assert plan.status.selector == "app=w"
    assert plan.status.conditions[0].last_transition_time == STARTED


def test_kstatus_conditions_keep_their_transition_time_while_their_status_holds() -> None:
    """Complete after Progressing: Reconciling turns False now; Stalled, False before and after, keeps
    its time though its reason follows Progressing's."""
    rolling = [
        cond("Progressing", "True", "RolloutProgressing"),
        cond("Reconciling", "True", "RolloutProgressing"),
        cond("Stalled", "False", "RolloutProgressing"),
    ]
    case = next(c for c in CASES if c.name == "first-rollout-complete-when-ready")
    plan, _ = run(replace(case, status={**case.status, "conditions": rolling}))
    by_type = {c.type: c for c in plan.status.conditions}
    assert (by_type["Reconciling"].status, by_type["Reconciling"].last_transition_time) == ("False", NOW_TEXT)
    assert (by_type["Stalled"].status, by_type["Stalled"].last_transition_time) == ("False", STARTED)
    assert by_type["Stalled"].reason == "RolloutComplete"
