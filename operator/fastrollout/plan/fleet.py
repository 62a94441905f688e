"""The fleet: every revision of one FastRollout, sorted into target, stable and the others.

The planner reasons about revisions, never about single pods: each one is a ReplicaSet (maybe gone)
plus its pods, counted.
"""

from dataclasses import dataclass

from fastrollout.api import FastRolloutStatus
from fastrollout.plan.model import (
    Action,
    Observed,
    ReplicaSetView,
    RevisionPods,
    ScaleReplicaSet,
    ServiceView,
)


@dataclass(frozen=True)
class RevisionState:
    """One revision: its ReplicaSet if it still exists, and its pods."""

    revision: str
    version: str
    replica_set: ReplicaSetView | None
    pods: RevisionPods

    @property
    def size(self) -> int:
        """spec.replicas of the ReplicaSet; 0 without one."""
        return self.replica_set.replicas if self.replica_set else 0

    @property
    def active(self) -> bool:
        """Holds or asks for non-terminating pods: old capacity until cut over."""
        return self.size > 0 or self.pods.replicas > 0

    @property
    def present(self) -> bool:
        """Anything left of it: a ReplicaSet, a pod, or an endpoint still served after its pod went."""
        pods = self.pods
        return self.replica_set is not None or pods.replicas > 0 or pods.draining > 0 or pods.serving > 0

    def scale(self, replicas: int) -> tuple[Action, ...]:
        """Scale to `replicas`, or nothing when already there (or no ReplicaSet to scale)."""
        if self.replica_set is None or self.replica_set.replicas == replicas:
            return ()
        return (ScaleReplicaSet(name=self.replica_set.name, replicas=replicas),)


@dataclass(frozen=True)
class Fleet:
    """target: the revision spec asks for. stable: the last revision that completed cutover (may be
    the target itself), None when there is none. others: every other revision still present, stable
    included, sorted by revision. service: spec.serviceName's Service as observed (None without one)."""

    target: RevisionState
    stable: RevisionState | None
    others: tuple[RevisionState, ...]
    service: ServiceView | None = None

    @property
    def old_stable(self) -> RevisionState | None:
        """The stable revision when it is not the target: what rollback returns to."""
        if self.stable is None or self.stable.revision == self.target.revision:
            return None
        return self.stable

    @property
    def target_is_stable(self) -> bool:
        return self.stable is not None and self.stable.revision == self.target.revision

    @property
    def superseded(self) -> tuple[RevisionState, ...]:
        """Other revisions that are not the stable one: never-cut-over targets and leftovers."""
        stable = self.old_stable
        return tuple(r for r in self.others if stable is None or r.revision != stable.revision)

    @property
    def settled(self) -> bool:
        """Cut over earlier and nothing of another revision left to cut over."""
        return self.target_is_stable and not any(r.active for r in self.others)


def build_fleet(observed: Observed, status: FastRolloutStatus, target: str, target_version: str) -> Fleet:
    """Sorts the observed revisions. The stable revision comes from status; when status is empty
    (never written, or lost in a restore) it is inferred from what runs, so an empty status never
    makes serving pods look like garbage."""
    revisions = sorted({rs.revision for rs in observed.replica_sets} | {p.revision for p in observed.pods})
    states = {rev: _state(observed, rev) for rev in revisions}
    target_state = states.pop(target, None) or RevisionState(
        target, target_version, None, RevisionPods(revision=target, version=target_version)
    )
    others = tuple(state for state in states.values() if state.present)
    stable: RevisionState | None = None
    if status.stable_revision is not None:
        candidates = (target_state, *others)
        stable = next((s for s in candidates if s.revision == status.stable_revision and s.present), None)
    elif status.revision is None:
        stable = infer_stable(others)
    return Fleet(target=target_state, stable=stable, others=others, service=observed.service)


def infer_stable(others: tuple[RevisionState, ...]) -> RevisionState | None:
    """The non-target revision with the most Ready pods (then most pods, then the larger ReplicaSet,
    then the revision name, so the choice is deterministic); None when nothing else runs."""
    active = [r for r in others if r.active]
    if not active:
        return None
    return max(active, key=lambda r: (r.pods.ready, r.pods.replicas, r.size, r.revision))


def _state(observed: Observed, revision: str) -> RevisionState:
    replica_set = observed.replica_set_of(revision)
    pods = observed.pods_of(revision)
    version = replica_set.version if replica_set else pods.version
    return RevisionState(revision=revision, version=version, replica_set=replica_set, pods=pods)
