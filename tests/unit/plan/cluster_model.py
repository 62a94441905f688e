"""A model of the cluster around one FastRollout, and of the operator's pass, for generated scenarios.

Pure Python, no Kubernetes: what matters to the planner's safety and nothing else.
- ReplicaSet controller: creates at most `create_rate` pods per tick per ReplicaSet; a scale-down
  removes not-Ready pods first, then the youngest, at once (the same call, as far as capacity goes).
- Pods: scheduled while the nodes have room (`node_room`, terminating pods hold theirs), Ready
  `start` ticks later; a revision's `Behavior` can make them never Ready, crash from birth, or crash
  some ticks after being Ready (every n-th pod only: "some Ready, then one crash-loops").
- Terminating pods drain `drain_ticks` then vanish; a terminating pod that was Ready stays `serving`.
- EndpointSlice controller: the published endpoints are the truth of `endpoint_lag` ticks ago, for the
  pods the Service's selector selects (ready = Ready and not terminating; serving = still serving).
- The API refuses a create of a `refused` template (422), or of a name another owner holds (409).

The operator's pass (`Operator.run_pass`) follows the handler's order exactly: read the FastRollout,
take a snapshot (maybe `watch_lag` ticks stale), decide, (1) write plan.status (a failed write aborts the
pass), (2) post plan.events, (3) run the actions in order until the first refusal, then
`errors.after_actions` and its status write and event. Faults (`PassFaults`) fail or lose a status
write, refuse one action (a timeout may have been applied), crash the operator between any two steps.

The invariants of DESIGN.md 1b are checked inside the pass, around every operator action, against the
model's truth (`World.violations`): see `test_plan_invariants.py` for how each is stated.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ValidationError

from fastrollout.api import LABEL_REVISION, Cutover, FastRolloutSpec, FastRolloutStatus, Phase
from fastrollout.plan import decide, reasons, revision_of
from fastrollout.plan.clock import from_text
from fastrollout.plan.errors import ApiFailure, after_actions
from fastrollout.plan.model import (
    Action,
    AddFinalizer,
    CreateReplicaSet,
    DeletePods,
    DeleteReplicaSet,
    Event,
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
from fastrollout.plan.selector import PROPAGATION_MARGIN_SECONDS
from fastrollout.plan.surge import ready_threshold, surge_count

NAME = "w"
NAMESPACE = "ns"
SERVICE = "w-svc"
TICK = timedelta(seconds=2)
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TERMINAL = (Phase.COMPLETE, Phase.FAILED, Phase.ROLLED_BACK)
# Labels of another workload's pods behind the same Service (ServiceView.strangers): selected by the
# Service's usual selector app=w, never by a pin (they carry no fastrollout.io/revision label).
STRANGER_LABELS = {"app": "w"}


# --- what a template does when it runs ------------------------------------------------------------


@dataclass(frozen=True)
class Behavior:
    """How pods of one template behave. crash_after: None never; 0 from birth (never Ready); k: k ticks
    after being Ready. crash_every: only pods whose ordinal is a multiple of it crash (1: all)."""

    start: int = 2
    never_ready: bool = False
    crash_after: int | None = None
    crash_every: int = 1
    refused: bool = False  # the API refuses the ReplicaSet: 422
    collides: bool = False  # a ReplicaSet of that name exists and belongs to someone else: 409

    def __repr__(self) -> str:
        if self.refused:
            return "Behavior.REFUSED_422"
        if self.collides:
            return "Behavior.NAME_TAKEN_409"
        if self.never_ready:
            return "Behavior.NEVER_READY"
        if self.crash_after is not None:
            who = "all" if self.crash_every == 1 else f"1 in {self.crash_every}"
            return f"Behavior(crash {who}, {self.crash_after} ticks after Ready, start {self.start})"
        return f"Behavior(start {self.start})"


@dataclass
class Pod:
    uid: int
    revision: str
    labels: dict[str, str]
    behavior: Behavior
    ordinal: int
    scheduled: bool = False
    age: int = 0  # ticks since scheduled
    terminating_for: int | None = None
    serving_while_terminating: bool = False

    @property
    def terminating(self) -> bool:
        return self.terminating_for is not None

    @property
    def crashing(self) -> bool:
        b = self.behavior
        return (
            self.scheduled
            and b.crash_after is not None
            and self.ordinal % b.crash_every == 0
            and self.age >= b.start + b.crash_after
        )

    @property
    def running_ready(self) -> bool:
        """Readiness, terminating or not (kubelet keeps probing a terminating pod)."""
        b = self.behavior
        return self.scheduled and not b.never_ready and self.age >= b.start and not self.crashing

    @property
    def ready(self) -> bool:
        """Condition Ready and not terminating: what RevisionPods.ready counts."""
        return not self.terminating and self.running_ready


@dataclass
class ReplicaSet:
    name: str
    revision: str
    version: str
    replicas: int
    labels: dict[str, str]
    behavior: Behavior
    next_ordinal: int = 0
    created: datetime | None = None  # creationTimestamp: which kept revisions are newest


@dataclass(frozen=True)
class Endpoint:
    revision: str  # "" for a stranger (another workload's pod)
    ready: bool
    serving: bool


@dataclass
class ServiceModel:
    """The Service: `selector` is its whole spec.selector, the operator's pin (fastrollout.io/revision)
    included; the EndpointSlice controller selects by all of it."""

    found: bool = True
    selector: tuple[tuple[str, str], ...] = (("app", "w"),)

    def selects(self, labels: dict[str, str]) -> bool:
        return self.found and bool(self.selector) and all(labels.get(k) == v for k, v in self.selector)

    @property
    def pinned(self) -> str | None:
        return next((v for k, v in self.selector if k == LABEL_REVISION), None) if self.found else None

    def set_pin(self, revision: str | None) -> None:
        """A merge patch of the one key: set it, or (None) remove it."""
        rest = tuple((k, v) for k, v in self.selector if k != LABEL_REVISION)
        self.selector = rest + (((LABEL_REVISION, revision),) if revision is not None else ())

    def view(self, strangers: int = 0) -> ServiceView:
        if not self.found:
            return ServiceView(SERVICE, False)
        return ServiceView(SERVICE, True, tuple(sorted(self.selector)), strangers=strangers)


class ApiError(Exception):
    def __init__(self, code: int, message: str, *, applied: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.applied = code, message, applied


API_MESSAGES = {
    403: 'replicasets.apps is forbidden: User "system:serviceaccount:fastrollout:operator" cannot do this',
    409: "the object has been modified or already exists",
    422: 'ReplicaSet.apps is invalid: spec.template.spec.containers[0].resources.limits.memory: Invalid value: "lots"',
    500: "etcdserver: request timed out",
    0: "read timed out (no answer)",
}


def describe(action: Action) -> tuple[str, str]:
    """(what was asked, the ReplicaFailure reason the handler records for a refusal)."""
    match action:
        case CreateReplicaSet():
            return f"create ReplicaSet {action.name}", reasons.FAILED_CREATE
        case ScaleReplicaSet():
            return f"scale ReplicaSet {action.name} to {action.replicas}", reasons.FAILED_SCALE
        case DeletePods():
            return f"delete pods of revision {action.revision}", reasons.FAILED_DELETE
        case DeleteReplicaSet():
            return f"delete ReplicaSet {action.name}", reasons.FAILED_DELETE
        case PinService():
            return f"pin Service {action.service} to revision {action.revision}", reasons.FAILED_UPDATE
        case UnpinService():
            return f"unpin Service {action.service}", reasons.FAILED_UPDATE
        case AddFinalizer():
            return f"add finalizer to FastRollout {NAME}", reasons.FAILED_UPDATE
        case RemoveFinalizer():
            return f"remove finalizer from FastRollout {NAME}", reasons.FAILED_UPDATE


@dataclass
class Cluster:
    create_rate: int | None = None  # pods per tick per ReplicaSet; None: all at once
    # Pods the nodes hold, terminating ones included; None: unlimited. World.edit grows it with the
    # spec (replicas + surge + room_slack, at most): nodes are added for a larger spec, never removed.
    node_room: int | None = None
    room_slack: int = 0
    drain_ticks: int = 3
    endpoint_lag: int = 0
    service: ServiceModel | None = None
    strangers: int = 0  # Ready pods of another workload labelled STRANGER_LABELS (behind the Service?)
    behaviors: dict[str, Behavior] = field(default_factory=dict)  # by image: what the user "wrote"
    replica_sets: dict[str, ReplicaSet] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    uids: int = 0
    rs_created: int = 0  # ReplicaSets created so far: their creationTimestamps follow this order
    # endpoints as the EndpointSlice controller saw them at the end of each tick (newest last)
    endpoint_history: deque[dict[int, Endpoint]] = field(default_factory=lambda: deque(maxlen=8))
    # (Observed, planner-view serving uids) at the end of each tick, for stale watches (newest last)
    snapshots: deque[tuple[Observed, frozenset[int]]] = field(default_factory=lambda: deque(maxlen=8))
    stale_watches: bool = False  # keep the snapshots above (costly)

    # --- the API ---

    def call(self, action: Action) -> None:
        """One API call, as the API server does it (404 on a missing object is ignored, like apply)."""
        match action:
            case CreateReplicaSet():
                behavior = self.behaviors[action.template["spec"]["containers"][0]["image"]]
                if behavior.refused:
                    raise ApiError(422, API_MESSAGES[422])
                if behavior.collides:
                    raise ApiError(409, f'replicasets.apps "{action.name}" already exists (owned by another)')
                if action.name in self.replica_sets:
                    return  # AlreadyExists and ours (a stale watch): the handler adopts it
                labels = dict(action.template["metadata"]["labels"])
                self.rs_created += 1
                self.replica_sets[action.name] = ReplicaSet(
                    action.name,
                    action.revision,
                    action.version,
                    action.replicas,
                    labels,
                    behavior,
                    created=START + timedelta(seconds=self.rs_created),
                )
            case ScaleReplicaSet():
                rs = self.replica_sets.get(action.name)
                if rs is not None:
                    rs.replicas = action.replicas
                    self.scale_down(rs)
            case DeletePods():
                for pod in self.live(action.revision):
                    self.terminate(pod)
            case DeleteReplicaSet():
                rs = self.replica_sets.pop(action.name, None)
                if rs is not None:  # background propagation: its pods go too
                    for pod in self.live(rs.revision):
                        self.terminate(pod)
            case PinService() | UnpinService():
                if self.service is not None and self.service.found:  # 404 ignored, like apply
                    self.service.set_pin(action.revision if isinstance(action, PinService) else None)
            case AddFinalizer() | RemoveFinalizer():
                raise AssertionError("the FastRollout's finalizer is the World's, not the cluster's")

    def collect_garbage(self) -> None:
        """The FastRollout is gone: the garbage collector deletes its ReplicaSets, and their pods."""
        for rs in list(self.replica_sets.values()):
            self.call(DeleteReplicaSet(rs.name))

    def terminate(self, pod: Pod) -> None:
        pod.serving_while_terminating = pod.running_ready
        pod.terminating_for = 0

    def live(self, revision: str) -> list[Pod]:
        return [p for p in self.pods if p.revision == revision and not p.terminating]

    def scale_down(self, rs: ReplicaSet) -> None:
        live = self.live(rs.revision)
        excess = len(live) - rs.replicas
        if excess > 0:
            for pod in sorted(live, key=lambda p: (p.ready, -p.age, -p.uid))[:excess]:
                self.terminate(pod)

    # --- time ---

    def tick(self) -> None:
        for rs in self.replica_sets.values():
            missing = rs.replicas - len(self.live(rs.revision))
            for _ in range(max(0, min(missing, self.create_rate or missing))):
                self.uids += 1
                self.pods.append(Pod(self.uids, rs.revision, rs.labels, rs.behavior, rs.next_ordinal))
                rs.next_ordinal += 1
            self.scale_down(rs)
        held = sum(p.scheduled for p in self.pods)
        for pod in self.pods:
            if not pod.scheduled and (self.node_room is None or held < self.node_room):
                pod.scheduled, held = True, held + 1
        for pod in self.pods:
            if pod.scheduled and not pod.terminating:
                pod.age += 1
            if pod.terminating_for is not None:
                pod.terminating_for += 1
        self.pods = [
            p for p in self.pods if p.terminating_for is None or p.terminating_for < self.drain_ticks
        ]
        self.endpoint_history.append(self.endpoints_now())
        if self.stale_watches:
            self.snapshots.append((self.observe(), self.view_serving()))

    # --- what the Service and the watches show ---

    def endpoints_now(self) -> dict[int, Endpoint]:
        if self.service is None:
            return {}
        endpoints = {
            p.uid: Endpoint(
                p.revision, ready=p.ready, serving=p.ready or (p.terminating and p.serving_while_terminating)
            )
            for p in self.pods
            if self.service.selects(p.labels)
        }
        if self.service.selects(STRANGER_LABELS):
            endpoints.update(
                {-n: Endpoint("", ready=True, serving=True) for n in range(1, self.strangers + 1)}
            )
        return endpoints

    def published(self) -> dict[int, Endpoint]:
        """The EndpointSlices now: the truth of `endpoint_lag` ticks ago (lag 0: the truth now)."""
        history = self.endpoint_history
        if self.endpoint_lag == 0 or not history:
            return self.endpoints_now()
        return history[max(0, len(history) - self.endpoint_lag)]

    def serving_now(self) -> frozenset[int]:
        """Truth: pods that carry load now or as soon as endpoints catch up (Ready, not terminating and,
        with a Service, selected by it). What the capacity invariant counts."""
        service = self.service
        return frozenset(
            p.uid for p in self.pods if p.ready and (service is None or service.selects(p.labels))
        )

    def view_serving(self) -> frozenset[int]:
        """What a snapshot taken now counts as capacity: Ready and, with a Service, a ready endpoint."""
        if self.service is None:
            return frozenset(p.uid for p in self.pods if p.ready)
        endpoints = self.published()
        return frozenset(
            p.uid for p in self.pods if p.ready and p.uid in endpoints and endpoints[p.uid].ready
        )

    def observe(self) -> Observed:
        endpoints = self.published() if self.service is not None else {}
        any_ready = any(e.ready for e in endpoints.values())
        strangers = sum(1 for e in endpoints.values() if not e.revision)
        revisions = sorted(
            {p.revision for p in self.pods} | {e.revision for e in endpoints.values() if e.revision}
        )
        versions = {rs.revision: rs.version for rs in self.replica_sets.values()}
        counts = []
        for revision in revisions:
            mine = [p for p in self.pods if p.revision == revision]
            live = [p for p in mine if not p.terminating]
            ready = [p for p in live if p.ready]
            if self.service is None:
                serving, in_service = len(ready), None
            else:
                theirs = [e for e in endpoints.values() if e.revision == revision]
                serving = sum(e.ready if any_ready else e.serving for e in theirs)
                in_service = sum(1 for p in ready if p.uid in endpoints and endpoints[p.uid].ready)
            counts.append(
                RevisionPods(
                    revision=revision,
                    version=versions.get(revision, revision),
                    replicas=len(live),
                    ready=len(ready),
                    serving=serving,
                    draining=len(mine) - len(live),
                    crashing=sum(p.crashing for p in live),
                    in_service=in_service,
                )
            )
        return Observed(
            replica_sets=tuple(
                ReplicaSetView(rs.name, rs.revision, rs.version, rs.replicas, rs.created)
                for rs in sorted(self.replica_sets.values(), key=lambda rs: rs.name)
            ),
            pods=tuple(counts),
            service=self.service.view(strangers) if self.service is not None else None,
        )

    def snapshot(self, lag: int) -> tuple[Observed, frozenset[int]]:
        """What the watch caches show: now, or as they were `lag` ticks ago."""
        if lag == 0 or not self.snapshots:
            return self.observe(), self.view_serving()
        return self.snapshots[max(0, len(self.snapshots) - lag)]  # lag 2: before the last pass acted

    def summary(self) -> str:
        parts = []
        for revision in sorted(
            {p.revision for p in self.pods} | {r.revision for r in self.replica_sets.values()}
        ):
            mine = [p for p in self.pods if p.revision == revision]
            rs = next((r for r in self.replica_sets.values() if r.revision == revision), None)
            parts.append(
                f"{revision[:6]}(rs={rs.replicas if rs else '-'} live={sum(not p.terminating for p in mine)} "
                f"ready={sum(p.ready for p in mine)} crash={sum(p.crashing and not p.terminating for p in mine)} "
                f"term={sum(p.terminating for p in mine)})"
            )
        service = self.service
        if service is not None and service.pinned is not None:
            parts.append(f"pin={service.pinned[:6]}")
        if self.strangers:
            parts.append(f"strangers={self.strangers}")
        return " ".join(parts) or "empty"


# --- the user's spec ------------------------------------------------------------------------------


@dataclass
class UserSpec:
    """The FastRollout spec as the user edits it; `build()` validates it like admission."""

    replicas: int = 10
    image: str = "w:1"
    tier: str | None = None  # an extra template label (renaming it makes a Service stop selecting)
    max_surge: int | str = "100%"
    min_ready: int = 100
    complete_when: str = "TrafficStopped"
    rollback: bool = True
    paused: bool = False
    deadline: int = 40
    service: bool = False
    history: int = 10  # revisionHistoryLimit
    cutover: str = "Delete"  # or "ServiceSelector" (needs service and a whole-fleet surge)
    window: int = 0  # rollbackWindowSeconds (ServiceSelector only)

    @property
    def by_selector(self) -> bool:
        return self.cutover == Cutover.SERVICE_SELECTOR

    def build(self) -> FastRolloutSpec:
        labels = {"app": "w", **({"tier": self.tier} if self.tier else {})}
        return _spec(
            self.replicas,
            self.image,
            tuple(sorted(labels.items())),
            self.max_surge,
            self.min_ready,
            self.complete_when,
            self.rollback,
            self.paused,
            self.deadline,
            self.service,
            self.history,
            self.cutover,
            self.window,
        )


_SPECS: dict[tuple[Any, ...], FastRolloutSpec] = {}


def _spec(*key: Any) -> FastRolloutSpec:
    if key not in _SPECS:
        (
            replicas,
            image,
            labels,
            surge,
            min_ready,
            complete_when,
            rollback,
            paused,
            deadline,
            service,
            history,
            cutover,
            window,
        ) = key
        _SPECS[key] = FastRolloutSpec.model_validate(
            {
                "replicas": replicas,
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": "w", "image": image}]},
                },
                "strategy": {
                    "maxSurge": surge,
                    "minReadyPercent": min_ready,
                    "cutover": cutover,
                    "rollbackWindowSeconds": window,
                },
                "completeWhen": complete_when,
                "rollbackOnFailure": rollback,
                "paused": paused,
                "progressDeadlineSeconds": deadline,
                "revisionHistoryLimit": history,
                **({"serviceName": SERVICE} if service else {}),
            }
        )
    return _SPECS[key]


# --- faults of one pass ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PassFaults:
    """What goes wrong in one pass. crash_after: the operator dies after this many of the steps
    (status write, events, each action, the after-actions write). refuse: (index of the action, HTTP
    code; 0 is a timeout, `applied` says whether it took effect anyway)."""

    watch_lag: int = 0
    status_write: Literal["ok", "fails", "lost"] = "ok"
    final_write_lost: bool = False
    refuse: tuple[int, int] | None = None
    applied: bool = False
    crash_after: int | None = None

    def __repr__(self) -> str:
        parts = []
        if self.watch_lag:
            parts.append(f"watch_lag={self.watch_lag}")
        if self.status_write != "ok":
            parts.append(f"status_write={self.status_write!r}")
        if self.final_write_lost:
            parts.append("final_write_lost=True")
        if self.refuse:
            parts.append(f"refuse={self.refuse}" + (", applied=True" if self.applied else ""))
        if self.crash_after is not None:
            parts.append(f"crash_after={self.crash_after}")
        return f"PassFaults({', '.join(parts)})"

    @property
    def clean(self) -> bool:
        return self == NO_FAULTS


NO_FAULTS = PassFaults()


class OperatorCrashError(Exception):
    """The operator process died mid-pass."""


class InvariantViolationError(AssertionError):
    pass


# --- the world: cluster + FastRollout object + operator + invariant checks -----------------------


@dataclass
class PassRecord:
    plan: Plan
    observed: Observed
    refused: ApiFailure | None = None
    written: bool = False  # the after-actions status reached the API
    log: list[str] = field(default_factory=list)


@dataclass
class World:
    cluster: Cluster
    user: UserSpec
    now: datetime = START
    generation: int = 1
    status: FastRolloutStatus = field(default_factory=FastRolloutStatus)  # as persisted
    events: list[Event] = field(default_factory=list)
    passes: int = 0
    # model bookkeeping for the invariants
    cut_over_to: str | None = None  # the revision whose cutover the model saw happen last
    refusal_run: tuple[str, str] | None = None  # (reason, text) of the current run of refusals
    refusal_run_events: int = 0
    refusal_run_clean: bool = True  # no write lost or crash since the run began
    trace: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    pass_broken: bool = False
    view_stale: bool = False  # this pass decided on a stale snapshot  # this pass lost a write or crashed
    sizes_before: dict[str, int] = field(default_factory=dict)  # ReplicaSet sizes before the action
    check: bool = True
    # The FastRollout object itself: its finalizer (Rollout.finalized), its deletionTimestamp
    # (Rollout.deleting), and whether it is gone (deleted with no finalizer left: no more passes).
    finalized: bool = False
    deleting: bool = False
    gone: bool = False
    observed: Observed = field(default_factory=Observed)  # this pass's snapshot
    selector_seen: tuple[tuple[str, str], ...] | None = None  # the Service's selector at the last tick
    selector_age: int = 0  # ticks it has been the same (the pin's propagation)
    pinned_before: str | None = None  # the Service's pin before the action
    served: set[str] = field(default_factory=set)  # revisions the Service's pin ever named
    live_before: list[Pod] = field(default_factory=list)  # non-terminating pods before the action
    published_before: dict[int, Endpoint] = field(default_factory=dict)  # EndpointSlices before it

    # --- user ---

    def note(self, line: str) -> None:
        """One line of the trace printed with a violation."""
        self.trace.append(line)

    def trace_text(self) -> str:
        """The last steps, a block of lines repeating pass after pass shown once with its count."""
        lines = list(self.trace)
        bodies = [line.split(" ", 1)[1] for line in lines]
        out, i = [], 0
        while i < len(lines):
            for size in (1, 2, 3):
                block = bodies[i : i + size]
                repeats = 1
                while bodies[i + repeats * size : i + (repeats + 1) * size] == block:
                    repeats += 1
                if repeats > 1:
                    last = lines[i + repeats * size - 1].split(" ", 1)[0]
                    out += [*lines[i : i + size - 1], f"{lines[i + size - 1]}   [x{repeats}, to {last}]"]
                    i += repeats * size
                    break
            else:
                out.append(lines[i])
                i += 1
        return "\n    ".join(out)

    def edit(self, **changes: Any) -> bool:
        """A spec update; one admission refuses (CEL, mirrored by the models) changes nothing."""
        if self.gone:
            return False
        old = {key: getattr(self.user, key) for key in changes}
        for key, value in changes.items():
            setattr(self.user, key, value)
        try:
            self.user.build()
        except ValidationError:
            for key, value in old.items():
                setattr(self.user, key, value)
            self.note(f"t={self.ticks} user: {changes} refused by admission")
            return False
        self.generation += 1
        if self.cluster.node_room is not None:
            wanted = self.user.replicas + surge_count(self.user.max_surge, self.user.replicas)
            self.cluster.node_room = max(self.cluster.node_room, wanted + self.cluster.room_slack)
        self.note(f"t={self.ticks} user: {changes}")
        return True

    def delete(self) -> None:
        """The user deletes the FastRollout: it goes at once unless it carries the finalizer."""
        self.deleting = True
        self.note(f"t={self.ticks} user: delete the FastRollout (finalizer {self.finalized})")
        if not self.finalized:
            self._gone()

    def _gone(self) -> None:
        self.gone = True
        self.cluster.collect_garbage()
        self.note(f"t={self.ticks}   FastRollout gone: garbage collector deletes its ReplicaSets")
        service = self.cluster.service
        if self.check and service is not None and service.pinned is not None:
            self._fail(
                "finalizer",
                f"the FastRollout is gone and the Service is still pinned to {service.pinned[:6]}",
            )

    @property
    def spec(self) -> FastRolloutSpec:
        return self.user.build()

    @property
    def ticks(self) -> int:
        return int((self.now - START) / TICK)

    # --- time ---

    def step(self, faults: PassFaults = NO_FAULTS) -> PassRecord | None:
        record = None if self.gone else self.run_pass(faults)
        self.cluster.tick()
        self.now += TICK
        self._pin_propagated()
        return record

    def _pin_propagated(self) -> None:
        """Model check at each tick: once a pin has been in place for the endpoint lag, only pods of
        the pinned revision are ready endpoints (the EndpointSlice controller selects by the pin)."""
        service = self.cluster.service
        selector = service.selector if service is not None and service.found else None
        if selector != self.selector_seen:
            self.selector_seen, self.selector_age = selector, 0
        else:
            self.selector_age += 1
        pinned = service.pinned if service is not None else None
        if pinned is not None:
            self.served.add(pinned)
        if pinned is None or self.selector_age < self.cluster.endpoint_lag:
            return
        others = {e.revision for e in self.cluster.published().values() if e.ready and e.revision != pinned}
        if others:
            self._fail(
                "pin", f"pinned to {pinned[:6]} for {self.selector_age} ticks, {others} still routed to"
            )

    # --- the operator's pass, in the handler's order ---

    def run_pass(self, faults: PassFaults) -> PassRecord | None:
        self.passes += 1
        self.pass_broken = False
        spec = self.spec
        observed, view = self.cluster.snapshot(faults.watch_lag)
        self.view_stale = faults.watch_lag > 0
        self.observed = observed
        rollout = Rollout(
            NAME,
            NAMESPACE,
            self.generation,
            spec,
            self.status,
            deleting=self.deleting,
            finalized=self.finalized,
        )
        plan = decide(rollout, observed, self.now)
        record = PassRecord(plan, observed)
        self.note(
            f"t={self.ticks} pass {faults!r}: phase {plan.status.phase} actions {list(map(short, plan.actions))} "
            f"| {self.cluster.summary()}"
        )
        steps = 0

        def done_step() -> None:
            nonlocal steps
            steps += 1
            if faults.crash_after is not None and steps > faults.crash_after:
                self.note(f"t={self.ticks}   operator crashed after step {faults.crash_after}")
                raise OperatorCrashError

        try:
            if faults.status_write == "fails":
                self.note(f"t={self.ticks}   status write failed: pass aborted")
                self._run_broken()
                return record
            if faults.status_write == "ok":
                self.status = plan.status
            done_step()
            self.events.extend(plan.events)
            done_step()
            failure = None
            for index, action in enumerate(plan.actions):
                failure = self._act(index, action, faults, view, plan)
                if failure is not None:
                    break
                done_step()
            record.refused = failure
            kept, event = after_actions(plan.status, failure, self.now)
            if failure is not None or kept != plan.status:
                if faults.final_write_lost:
                    self._run_broken()
                else:
                    self.status = kept
                    record.written = True
            elif faults.status_write == "ok":
                record.written = True
            if event is not None:
                self.events.append(event)
            self._visibility(failure, event, record)
        except OperatorCrashError:
            self._run_broken()
        return record

    def _run_broken(self) -> None:
        """A lost write or a crash: the one-event-per-run rule cannot hold through it, so its run ends."""
        self.refusal_run_clean = False
        self.pass_broken = True

    def _act(
        self, index: int, action: Action, faults: PassFaults, view: frozenset[int], plan: Plan
    ) -> ApiFailure | None:
        text, reason = describe(action)
        before = self.cluster.serving_now()
        self.sizes_before = {rs.name: rs.replicas for rs in self.cluster.replica_sets.values()}
        self.live_before = [p for p in self.cluster.pods if not p.terminating]
        self.published_before = self.cluster.published()
        self.pinned_before = self.cluster.service.pinned if self.cluster.service is not None else None
        try:
            self._call(index, action, faults)
        except ApiError as error:
            if error.applied:  # the call timed out but the API server did it
                try:
                    self._do(action)
                    self._after_action(action, before, view, plan)
                except ApiError:
                    pass  # it was refused after all: nothing happened
            if error.code == 409 and isinstance(action, CreateReplicaSet):
                reason = reasons.REPLICA_SET_COLLISION
            self.note(f"t={self.ticks}   refused {short(action)}: {error.code}")
            return ApiFailure(action=text, reason=reason, code=error.code, message=error.message)
        self._after_action(action, before, view, plan)
        return None

    def _call(self, index: int, action: Action, faults: PassFaults) -> None:
        if faults.refuse is not None and faults.refuse[0] == index:
            code = faults.refuse[1]
            raise ApiError(code, API_MESSAGES[code], applied=code == 0 and faults.applied)
        self._do(action)

    def _do(self, action: Action) -> None:
        """The API server carries the action out: the finalizer is on the FastRollout, the rest in the
        cluster. The last finalizer off a deleting FastRollout lets it go."""
        if isinstance(action, AddFinalizer) and not self.gone:
            self.finalized = True
        elif isinstance(action, RemoveFinalizer):
            self.finalized = False
            if self.deleting and not self.gone:
                self._gone()
        else:
            self.cluster.call(action)

    # --- invariants around each operator action ---

    def _fail(self, invariant: str, message: str) -> None:
        raise InvariantViolationError(f"{invariant}: {message}\n  last steps:\n    {self.trace_text()}")

    def _after_action(self, action: Action, before: frozenset[int], view: frozenset[int], plan: Plan) -> None:
        if not self.check or self.gone:  # gone: the garbage collector's deletes are not the operator's
            return
        cluster = self.cluster
        after = cluster.serving_now()
        replicas = self.user.replicas
        pods = {p.uid: p for p in cluster.pods}
        # Pods the planner was shown serving that stopped on their own (crash, Service selector change,
        # endpoint lag) since the snapshot: a stale view cannot be held against the planner.
        target = revision_of(self.spec)
        removed = {pods[uid].revision for uid in before - after if uid in pods}
        stable = self.cut_over_to
        healthy = plan.status.stable_revision == target and plan.status.phase not in (
            Phase.FAILED,
            Phase.ROLLED_BACK,
        )
        # ServiceSelector: the cutover is the pin moving to the target.
        pin_cut = isinstance(action, PinService) and action.revision == target and healthy
        # A cutover step: the plan makes the target stable and this action takes every pod of another
        # revision (DeletePods, or a scale to 0), or the pin. It may go down to minReadyPercent of replicas.
        taking = (
            isinstance(action, DeletePods | ScaleReplicaSet)
            and (isinstance(action, DeletePods) or action.replicas == 0)
            and healthy
        ) or pin_cut
        cutting = taking and bool(removed - {target})
        # ... and the cutover away from the version the model last saw cut over to: judged by the
        # revision the action takes, not by serving pods it removed (a Service that selects none of
        # the old pods makes a cutover that removes no serving pod, and it is a cutover all the same).
        cutover = (
            taking
            and stable is not None
            and stable != target
            and (pin_cut or _revision_taken(action, cluster) == stable)
        )
        excused = sum(1 for uid in view - before if uid in pods and not pods[uid].terminating)
        if self.view_stale:
            # A stale snapshot also predates pods that became Ready since: the planner counted them
            # as free to remove (not Ready), and the ReplicaSet controller removed Ready ones. The same
            # race as the Deployment controller's; only fencing snapshots (observe) can close it.
            excused += len(before - view)
        # The cutover may go down to minReadyPercent of replicas: the user chose that floor (spec).
        floor = ready_threshold(replicas, self.user.min_ready) if cutting else replicas
        if len(after) < min(floor, len(before)) - excused:
            self._fail(
                "capacity",
                f"{short(action)} took serving pods from {len(before)} to {len(after)} "
                f"(replicas {replicas}, floor {floor}, excused {excused})",
            )
        if cutover and stable is not None:
            if pin_cut:
                self._traffic_pinned(target)
            else:
                self._traffic(target, view, pods)
            self.note(f"t={self.ticks}   cutover {stable[:6]} -> {target[:6]}")
            self.cut_over_to = target
        self._selector_invariants(action, plan, target)
        # durability: once cut over to the target, nothing scales an older revision back up
        if self.cut_over_to == target and isinstance(action, ScaleReplicaSet):
            rs = cluster.replica_sets.get(action.name)
            grown = rs is not None and rs.revision != target and action.replicas > self.sizes_before[rs.name]
            if grown:
                self._fail("durability", f"{short(action)} after the cutover to {target[:6]}")
        undone = self.cut_over_to == target and plan.status.phase in (Phase.FAILED, Phase.ROLLED_BACK)
        if undone and target in removed:
            self._fail("durability", f"{short(action)} removes Ready pods of {target[:6]} after its cutover")

    def _selector_invariants(self, action: Action, plan: Plan, target: str) -> None:
        """The ServiceSelector mode's own invariants around one operator action."""
        service = self.cluster.service
        pinned = service.pinned if service is not None else None
        # The pin is held by the finalizer: whenever the Service is pinned, the FastRollout carries it
        # (added before the first pin, removed only after the pin), so a delete always unpins first.
        if pinned is not None and not self.finalized:
            self._fail("finalizer", f"{short(action)}: the Service is pinned to {pinned[:6]}, no finalizer")
        if isinstance(action, PinService):
            # Never pin a Service that routes to other pods: the pin would cut them off.
            strangers = sum(1 for e in self.published_before.values() if not e.revision)
            if strangers and not self.view_stale:
                self._fail(
                    "shared", f"{short(action)} while the Service routes to {strangers} stranger pod(s)"
                )
            # The pin names the stable revision the plan writes: a not-yet-cut-over target never gets
            # endpoints while a stable revision exists.
            if action.revision != plan.status.stable_revision:
                self._fail(
                    "traffic",
                    f"{short(action)} while the plan's stable revision is {plan.status.stable_revision}",
                )
            # durability: once the model saw the cutover to the target, no pass pins another revision.
            if self.cut_over_to == target and action.revision != target:
                self._fail("durability", f"{short(action)} after the cutover to {target[:6]}")
        if not self.user.by_selector or not isinstance(action, DeletePods | ScaleReplicaSet):
            return
        if isinstance(action, ScaleReplicaSet) and action.replicas >= self.user.replicas:
            return  # the stable version following spec.replicas down: a scale, not a removal
        taken = [p for p in self.live_before if p.terminating and p.revision != target]
        # Old pods are deleted only when no ready endpoint routes to them (the pin has propagated) ...
        # while the Service is pinned: unpinned (someone removed the key, and another workload's pods
        # keep it from being set again: ServiceShared) the mode is refused and rolls like Delete.
        routed = [p for p in taken if p.uid in self.published_before and self.published_before[p.uid].ready]
        if routed and not self.view_stale and self.pinned_before is not None:
            self._fail(
                "selector",
                f"{short(action)} deleted {len(routed)} pod(s) with a ready endpoint (ServiceSelector)",
            )
        # ... and a version that served is kept warm until TrafficStopped + margin + rollback window.
        warm = [p for p in taken if p.running_ready and p.revision in self.served]
        if (
            warm
            and plan.status.stable_revision == target
            and plan.status.phase not in (Phase.FAILED, Phase.ROLLED_BACK)
        ):
            stopped = from_text(plan.status.traffic_stopped_at)
            wait = timedelta(seconds=PROPAGATION_MARGIN_SECONDS + self.user.window)
            if stopped is None or self.now < stopped + wait:
                self._fail(
                    "selector",
                    f"{short(action)} deleted {len(warm)} Ready old pod(s) at {self.now:%H:%M:%S}, "
                    f"TrafficStopped {plan.status.traffic_stopped_at}, window {self.user.window}s",
                )

    def _traffic_pinned(self, target: str) -> None:
        """ServiceSelector: at the pin's move to the target, minReadyPercent of replicas of its pods
        are Ready and selected by the Service (now, or in the planner's stale view)."""
        service = self.cluster.service
        assert service is not None
        behind = sum(
            1 for p in self.cluster.pods if p.revision == target and p.ready and service.selects(p.labels)
        )
        if self.view_stale:
            behind = max(behind, self.observed.pods_of(target).ready)
        threshold = ready_threshold(self.user.replicas, self.user.min_ready)
        if behind < threshold:
            self._fail("traffic", f"pinned {target[:6]} with {behind} of its pods Ready (needs {threshold})")

    def _traffic(self, target: str, view: frozenset[int], pods: dict[int, Pod]) -> None:
        """With a Service: the target had minReadyPercent of replicas behind it (ready endpoints now,
        or in the planner's view and not since removed by the operator)."""
        if self.cluster.service is None:
            return
        published = self.cluster.published()
        behind = {uid for uid, e in published.items() if e.ready and e.revision == target} | {
            uid for uid in view if uid in pods and pods[uid].revision == target and not pods[uid].terminating
        }
        threshold = ready_threshold(self.user.replicas, self.user.min_ready)
        if len(behind) < threshold:
            self._fail(
                "traffic",
                f"cut over to {target[:6]} with {len(behind)} new pod(s) behind the Service (needs {threshold})",
            )

    def _visibility(self, failure: ApiFailure | None, event: Event | None, record: PassRecord) -> None:
        if failure is None:  # a pass that ran all its actions ends the run (the condition is dropped)
            self.refusal_run, self.refusal_run_events, self.refusal_run_clean = None, 0, True
            return
        key = (failure.reason, failure.text)
        if self.pass_broken:  # its write did not land: the persisted condition (and run) is unchanged
            self.refusal_run_clean = False
            return
        if key != self.refusal_run:
            self.refusal_run, self.refusal_run_events = key, 0
            self.refusal_run_clean = not self.pass_broken
        warnings = [e for e in record.plan.events if e.warning and e.reason in reasons.API_FAILURE_REASONS]
        self.refusal_run_events += len(warnings) + (event is not None)
        if not self.check:
            return
        if record.written:
            condition = next((c for c in self.status.conditions if c.type == reasons.REPLICA_FAILURE), None)
            if condition is None or failure.message not in condition.message:
                self._fail("visibility", f"{failure.text} refused, status shows {condition}")
        if self.refusal_run_clean and self.refusal_run_events != 1:
            self._fail(
                "visibility",
                f"{self.refusal_run_events} Warning events for one run of refusals: {failure.text}",
            )


def short(action: Action) -> str:
    match action:
        case CreateReplicaSet():
            return f"create {action.revision[:6]} {action.replicas}"
        case ScaleReplicaSet():
            return f"scale {action.name.removeprefix(NAME + '-')[:6]} {action.replicas}"
        case DeletePods():
            return f"delete-pods {action.revision[:6]}"
        case DeleteReplicaSet():
            return f"delete-rs {action.name.removeprefix(NAME + '-')[:6]}"
        case PinService():
            return f"pin {action.revision[:6]}"
        case UnpinService():
            return "unpin"
        case AddFinalizer():
            return "+finalizer"
        case RemoveFinalizer():
            return "-finalizer"


def _revision_taken(action: Action, cluster: Cluster) -> str | None:
    """The revision whose pods a DeletePods or scale-to-0 takes."""
    if isinstance(action, DeletePods):
        return action.revision
    if isinstance(action, ScaleReplicaSet):
        rs = cluster.replica_sets.get(action.name)
        return rs.revision if rs is not None else None
    return None
