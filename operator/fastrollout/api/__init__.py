"""The FastRollout API: pydantic models that are the one source of the CRD schema."""

from fastrollout.api.constants import (
    ANNOTATION_SOURCE,
    API_VERSION,
    FINALIZER,
    GROUP,
    KIND,
    LABEL_NAME,
    LABEL_REVISION,
    LABEL_VERSION,
    PLURAL,
    VERSION,
)
from fastrollout.api.spec import CompleteWhen, Cutover, Drain, FastRolloutSpec, LabelSelector, Strategy
from fastrollout.api.status import Condition, FastRolloutStatus, Phase, VersionStatus

__all__ = [
    "ANNOTATION_SOURCE",
    "API_VERSION",
    "FINALIZER",
    "GROUP",
    "KIND",
    "LABEL_NAME",
    "LABEL_REVISION",
    "LABEL_VERSION",
    "PLURAL",
    "VERSION",
    "CompleteWhen",
    "Condition",
    "Cutover",
    "Drain",
    "FastRolloutSpec",
    "FastRolloutStatus",
    "LabelSelector",
    "Phase",
    "Strategy",
    "VersionStatus",
]
