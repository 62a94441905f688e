"""The planner's inputs and outputs: frozen values, no I/O.

`observe.py` builds an `Observed` from the cluster; `plan.decide()` turns
`(Rollout, Observed, now)` into a `Plan`; `apply.py` carries the plan's actions out and writes its status.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastrollout.api import FastRolloutSpec, FastRolloutStatus


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


@dataclass(frozen=True)
class ReplicaSetView:
    """One ReplicaSet the operator owns, as the planner needs it."""

    name: str
    revision: str
    version: str
    replicas: int  # spec.replicas


@dataclass(frozen=True)
class Observed:
    """One frozen snapshot of what the cluster shows for a FastRollout.

    replica_sets: every ReplicaSet labelled with this FastRollout's name, any revision.
    pods: one entry per revision that still has pods (terminating ones included).
    """

    replica_sets: tuple[ReplicaSetView, ...] = ()
    pods: tuple[RevisionPods, ...] = ()

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
    """The FastRollout object as the planner sees it: identity, desired state, last written status."""

    name: str
    namespace: str
    generation: int
    spec: FastRolloutSpec
    status: FastRolloutStatus


# --- actions: each one API call (or one small fixed set), never one per pod ---


@dataclass(frozen=True)
class CreateReplicaSet:
    name: str
    revision: str
    version: str
    replicas: int
    template: dict[str, Any]  # the pod template with labels, preStop and grace period injected


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
class Event:
    reason: str
    message: str
    warning: bool = False


Action = CreateReplicaSet | ScaleReplicaSet | DeletePods | DeleteReplicaSet


@dataclass(frozen=True)
class Plan:
    """What to do now. Actions run in order; status is written after them, once, if it changed."""

    actions: tuple[Action, ...] = ()
    status: FastRolloutStatus = field(default_factory=FastRolloutStatus)
    events: tuple[Event, ...] = ()
    # Seconds until the plan must be recomputed even if nothing changes (e.g. a progress deadline).
    requeue_after: float | None = None
    now: datetime | None = None
