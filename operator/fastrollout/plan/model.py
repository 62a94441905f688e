"""The planner's inputs and outputs: frozen values, no I/O.

`observe.py` builds an `Observed` from the cluster; `plan.decide()` turns
`(Rollout, Observed, now)` into a `Plan`; `apply.py` carries the plan's actions out and writes its status.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastrollout.api import LABEL_REVISION, FastRolloutSpec, FastRolloutStatus


@dataclass(frozen=True)
class RevisionPods:
    """The pods of one revision, counted. Pods are counted, never listed: the planner must not grow with N."""

    revision: str  # template hash, from the fastrollout.io/revision label
    version: str  # from the fastrollout.io/version label
    replicas: int = 0  # pods without a deletionTimestamp
    ready: int = 0  # of those, with condition Ready=True
    serving: int = (
        0  # pods that can receive new traffic (observe's TrafficJudge), any state, deleted ones too
    )
    draining: int = 0  # pods with a deletionTimestamp that still exist
    crashing: int = 0  # non-terminating pods with a container waiting in CrashLoopBackOff (or similar)
    # Of `ready`, those that also receive traffic: with a Service, a `ready` endpoint in its
    # EndpointSlices. None: not judged apart from readiness (no Service), every Ready pod counts.
    in_service: int | None = None
    # Pods carrying this revision's labels that another controller owns: never counted, never deleted.
    foreign: int = 0

    @property
    def capacity(self) -> int:
        """Ready pods that receive traffic: what the capacity invariant and the cutover gate count."""
        return self.ready if self.in_service is None else min(self.in_service, self.ready)


@dataclass(frozen=True)
class ReplicaSetView:
    """One ReplicaSet the operator owns, as the planner needs it."""

    name: str
    revision: str
    version: str
    replicas: int  # spec.replicas
    # metadata.creationTimestamp: which old revisions are newest (revisionHistoryLimit keeps those).
    # None when unknown; such a ReplicaSet counts as the oldest.
    created: datetime | None = None


@dataclass(frozen=True)
class ServiceView:
    """The Service named by spec.serviceName: whether it exists and the labels it selects on."""

    name: str
    found: bool
    selector: tuple[tuple[str, str], ...] = ()  # spec.selector, sorted by key
    # Endpoints of the Service whose pod is not this FastRollout's (another workload behind the same
    # Service): pinning the selector to one revision would cut those off.
    strangers: int = 0

    def selects(self, labels: dict[str, str]) -> bool:
        """Whether pods with `labels` match the selector (an empty selector selects no pod)."""
        return bool(self.selector) and all(labels.get(key) == value for key, value in self.selector)

    @property
    def pinned(self) -> str | None:
        """The revision the selector is pinned to (its fastrollout.io/revision key), None when unpinned."""
        return next((value for key, value in self.selector if key == LABEL_REVISION), None)

    def selects_any_revision(self, labels: dict[str, str]) -> bool:
        """Whether the selector, its pin aside, matches pods with `labels`: what pinning needs to hold
        (a selector of the pin alone selects nothing of ours once it is removed, so it does not count)."""
        rest = tuple((key, value) for key, value in self.selector if key != LABEL_REVISION)
        return bool(rest) and all(labels.get(key) == value for key, value in rest)

    def describe(self) -> str:
        """`Service w (selector app=w,tier=web)`, or `Service w (not found)`."""
        if not self.found:
            return f"Service {self.name} (not found)"
        labels = ",".join(f"{key}={value}" for key, value in self.selector) or "none: selects no pod"
        return f"Service {self.name} (selector {labels})"


@dataclass(frozen=True)
class Observed:
    """One frozen snapshot of what the cluster shows for a FastRollout.

    replica_sets: every ReplicaSet this FastRollout controls (controller ownerReference with its UID).
    pods: one entry per revision that still has pods of those ReplicaSets (terminating ones included).
    service: spec.serviceName's Service as observed; None without serviceName.
    """

    replica_sets: tuple[ReplicaSetView, ...] = ()
    pods: tuple[RevisionPods, ...] = ()
    service: ServiceView | None = None

    def pods_of(self, revision: str) -> RevisionPods:
        for entry in self.pods:
            if entry.revision == revision:
                return entry
        return RevisionPods(revision=revision, version="")

    def replica_set_of(self, revision: str) -> ReplicaSetView | None:
        for replica_set in self.replica_sets:
            if replica_set.revision == revision:
                return replica_set
        return None


@dataclass(frozen=True)
class Rollout:
    """The FastRollout object as the planner sees it: identity, desired state, last written status.

    deleting: metadata.deletionTimestamp is set. finalized: it carries the operator's finalizer
    (FINALIZER), held while the Service's selector is pinned so that deleting the FastRollout unpins it.
    """

    name: str
    namespace: str
    generation: int
    spec: FastRolloutSpec
    status: FastRolloutStatus
    deleting: bool = False
    finalized: bool = False


# --- actions: each one API call (or one small fixed set), never one per pod ---


@dataclass(frozen=True)
class CreateReplicaSet:
    name: str
    revision: str
    version: str
    replicas: int
    template: dict[str, Any]  # the pod template with labels, preStop and grace period injected
    source: str = ""  # revision_source(spec): kept on the ReplicaSet for history and undo


@dataclass(frozen=True)
class ScaleReplicaSet:
    name: str
    replicas: int


@dataclass(frozen=True)
class DeletePods:
    """Delete every pod of one revision in one DeleteCollection call (labels name + revision)."""

    revision: str


@dataclass(frozen=True)
class DeleteReplicaSet:
    name: str


@dataclass(frozen=True)
class PinService:
    """Set the Service's selector key fastrollout.io/revision to `revision` (that key only)."""

    service: str
    revision: str


@dataclass(frozen=True)
class UnpinService:
    """Remove the key fastrollout.io/revision from the Service's selector (that key only)."""

    service: str


@dataclass(frozen=True)
class AddFinalizer:
    """Put FINALIZER on the FastRollout: set before the first pin, so a delete unpins first."""


@dataclass(frozen=True)
class RemoveFinalizer:
    """Take FINALIZER off the FastRollout once no pin is left (a deleting one then goes)."""


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


Action = (
    CreateReplicaSet
    | ScaleReplicaSet
    | DeletePods
    | DeleteReplicaSet
    | PinService
    | UnpinService
    | AddFinalizer
    | RemoveFinalizer
)


@dataclass(frozen=True)
class Plan:
    """What to do now. Actions run in order; status is written after them, once, if it changed."""

    actions: tuple[Action, ...] = ()
    status: FastRolloutStatus = field(default_factory=FastRolloutStatus)
    events: tuple[Event, ...] = ()
    # Seconds until the plan must be recomputed even if nothing changes (e.g. a progress deadline).
    requeue_after: float | None = None
    now: datetime | None = None
