"""FastRollout status: what the operator observed and decided, in the order of DESIGN.md section 1."""

from enum import StrEnum

from pydantic import Field

from fastrollout.api.base import ApiModel


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETE = "Complete"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class Condition(ApiModel):
    """The standard metav1.Condition shape."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class VersionStatus(ApiModel):
    version: str
    revision: str = ""
    replica_set: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    serving_replicas: int = 0
    draining_replicas: int = 0


class FastRolloutStatus(ApiModel):
    # Written in this order (STYLE.md 4): what was seen, then the conditions, then the phase they imply.
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: Phase | None = None
    version: str | None = Field(default=None, description="The target version.")
    stable_version: str | None = Field(default=None, description="The last version that completed cutover.")
    replicas: int = Field(default=0, description="Non-terminating pods of all versions.")
    ready_replicas: int = 0
    updated_replicas: int = Field(default=0, description="Non-terminating pods of the target version.")
    old_serving_replicas: int = Field(
        default=0, description="Pods of other versions still able to get new traffic."
    )
    draining_replicas: int = Field(default=0, description="Terminating pods (any version) still running.")
    selector: str | None = Field(
        default=None, description="String form of the selector, for the scale subresource."
    )
    versions: list[VersionStatus] = Field(default_factory=list)
    rollout_started_at: str | None = None
    traffic_stopped_at: str | None = None
    drained_at: str | None = None
    # Beyond the contract's fields: the bookkeeping that keeps the operator level-triggered across restarts.
    revision: str | None = Field(default=None, description="Template hash of the target version.")
    stable_revision: str | None = Field(default=None, description="Template hash of the stable version.")
    failed_revision: str | None = Field(
        default=None, description="Template hash that failed; not retried until the template changes."
    )
    message: str | None = Field(default=None, description="Why the rollout is in its phase, for people.")
