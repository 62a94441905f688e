"""FastRollout status: what the operator observed and decided, in the order of DESIGN.md section 1."""

from enum import StrEnum

from pydantic import Field
from pydantic.config import JsonDict

from fastrollout.api.base import ApiModel

# RFC 3339 timestamps, as the operator writes them ("2026-11-27T10:04:05Z"): the API server checks them.
DATE_TIME: JsonDict = {"format": "date-time"}
# metav1.ConditionStatus. The schema carries the enum; the Python type stays str so the planner's
# verdicts need no cast, and the planner only ever writes these three.
CONDITION_STATUS: JsonDict = {"enum": ["True", "False", "Unknown"]}


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETE = "Complete"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class Condition(ApiModel):
    """One aspect of the rollout's state, in the standard metav1.Condition shape."""

    type: str = Field(
        description=(
            "What the condition is about, for example Progressing, Available, TrafficStopped (no old pod "
            "can receive new traffic), Drained (no old pod runs) or ReplicaFailure (the API refused a write)."
        )
    )
    status: str = Field(description="True, False or Unknown.", json_schema_extra=CONDITION_STATUS)
    reason: str = Field(description="Why, as one CamelCase word, for tools.")
    message: str = Field(default="", description="Why, for people (a refused API call's own message).")
    last_transition_time: str | None = Field(
        default=None, description="When status last changed.", json_schema_extra=DATE_TIME
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed from."
    )


class VersionStatus(ApiModel):
    """The pods of one version that still has pods."""

    version: str = Field(description="The version's label (spec.version when it was the target).")
    revision: str = Field(
        default="", description="Template hash of the version (label fastrollout.io/revision)."
    )
    replica_set: str = Field(default="", description="Name of the version's ReplicaSet.")
    replicas: int = Field(default=0, description="Non-terminating pods of the version.")
    ready_replicas: int = Field(default=0, description="Ready non-terminating pods of the version.")
    serving_replicas: int = Field(default=0, description="Pods of the version able to receive new traffic.")
    draining_replicas: int = Field(default=0, description="Terminating pods of the version still running.")


class FastRolloutStatus(ApiModel):
    """What the operator observed and decided; written by the operator only."""

    # Written in this order (STYLE.md 4): what was seen, then the conditions, then the phase they imply.
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="The rollout's state for tools (kubectl wait, GitOps health checks).",
    )
    phase: Phase | None = Field(
        default=None,
        description="Pending, Progressing, Paused, Complete (per spec.completeWhen), Failed or RolledBack.",
    )
    version: str | None = Field(default=None, description="The target version.")
    stable_version: str | None = Field(default=None, description="The last version that completed cutover.")
    replicas: int = Field(default=0, description="Non-terminating pods of all versions.")
    ready_replicas: int = Field(default=0, description="Ready non-terminating pods of all versions.")
    updated_replicas: int = Field(default=0, description="Non-terminating pods of the target version.")
    old_serving_replicas: int = Field(
        default=0, description="Pods of other versions still able to get new traffic."
    )
    draining_replicas: int = Field(default=0, description="Terminating pods (any version) still running.")
    selector: str | None = Field(
        default=None, description="String form of the selector, for the scale subresource."
    )
    versions: list[VersionStatus] = Field(
        default_factory=list, description="One entry per version that still has pods."
    )
    rollout_started_at: str | None = Field(
        default=None,
        description="When the current target version was first seen.",
        json_schema_extra=DATE_TIME,
    )
    traffic_stopped_at: str | None = Field(
        default=None,
        description="When oldServingReplicas reached 0 for the target version.",
        json_schema_extra=DATE_TIME,
    )
    drained_at: str | None = Field(
        default=None,
        description="When the last old pod of the target version's rollout went away.",
        json_schema_extra=DATE_TIME,
    )
    # Beyond the contract's fields: the bookkeeping that keeps the operator level-triggered across restarts.
    revision: str | None = Field(default=None, description="Template hash of the target version.")
    stable_revision: str | None = Field(default=None, description="Template hash of the stable version.")
    failed_revision: str | None = Field(
        default=None, description="Template hash that failed; not retried until the template changes."
    )
    message: str | None = Field(default=None, description="Why the rollout is in its phase, for people.")
