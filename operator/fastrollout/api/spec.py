"""FastRollout spec: what the user asks for.

Validation lives here twice on purpose: the field constraints and the `x-kubernetes-validations` (CEL)
rules below become the CRD schema, so the API server rejects bad input at admission with the same
messages; pydantic re-checks when the operator reads an object (for example one stored before a CRD
upgrade) so a bad spec can never reach the planner.
"""

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.config import JsonDict

from fastrollout.api.base import ApiModel
from fastrollout.api.constants import DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS

# A label value (the version becomes one): at most 63 characters, alphanumerics at both ends.
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$"
# A Service name is a DNS-1035 label.
DNS1035_PATTERN = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"


class CompleteWhen(StrEnum):
    TRAFFIC_STOPPED = "TrafficStopped"
    DRAINED = "Drained"


class Cutover(StrEnum):
    """How old pods stop receiving traffic at cutover."""

    DELETE = "Delete"  # one collection delete per old revision; endpoints go as the pods terminate
    SERVICE_SELECTOR = "ServiceSelector"  # the Service's selector is pinned to the target revision


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One CEL validation rule as the CRD schema spells it."""
    validation: JsonDict = {"rule": rule, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


# Bounds on every string, list and map a CEL rule reads are what let the API server estimate the rules'
# cost (unbounded ones are sized from the 3 MB request limit, and the CRD is refused over budget).
# Label values are at most 63 characters and label keys at most 317 (a 253-character DNS prefix, "/",
# a 63-character name): Kubernetes' own limits. 64 labels or requirements is far above real selectors.
MAX_LABELS = 64
MAX_LABEL_VALUE_LENGTH = 63
MAX_LABEL_KEY_LENGTH = 317
MAX_SELECTOR_REQUIREMENTS = 64
MAX_REQUIREMENT_VALUES = 64
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE_LENGTH)]

# The FastRollout's name becomes the value of the fastrollout.io/name label on every ReplicaSet and pod,
# so it must be a valid label value: at most 63 characters (the API server allows 253 for the object).
# The names derived from it stay valid too: the ReplicaSet `<name>-<10 hex>` has at most 74 of the 253 a
# ReplicaSet name may have, and pod names are the ReplicaSet's name cut to 58 plus 5 random characters.
MAX_NAME_LENGTH = 63
NAME_DESCRIPTION = (
    f"At most {MAX_NAME_LENGTH} characters: the fastrollout.io/name label of its ReplicaSets and pods."
)
NAME_TOO_LONG = (
    f"metadata.name must be at most {MAX_NAME_LENGTH} characters: it becomes the value of the"
    f" fastrollout.io/name label on every ReplicaSet and pod, and a label value is limited to"
    f" {MAX_NAME_LENGTH} characters"
)

REQUIREMENT_VALUES = (
    "values must be non-empty when operator is In or NotIn, and empty when it is Exists or DoesNotExist"
)


class LabelSelectorRequirement(ApiModel):
    """One requirement on a label: a key, an operator, and (for In and NotIn) the values."""

    # Kubernetes refuses such a requirement in its own selectors ("tier in ()" selects nothing).
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.operator == 'In' || self.operator == 'NotIn'"
                    " ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
                    REQUIREMENT_VALUES,
                    ".values",
                )
            ]
        }
    )

    key: str = Field(min_length=1, max_length=MAX_LABEL_KEY_LENGTH, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description=(
            "In: the label is set to one of the values. NotIn: it is unset or set to none of them. "
            "Exists: it is set. DoesNotExist: it is unset."
        )
    )
    values: list[LabelValue] | None = Field(
        default=None,
        max_length=MAX_REQUIREMENT_VALUES,
        description="Label values: non-empty for In and NotIn, empty or absent for Exists and DoesNotExist.",
    )

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a pod with `labels` satisfies this requirement (Kubernetes' semantics)."""
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        listed = self.key in labels and labels[self.key] in (self.values or [])
        return listed if self.operator == "In" else not listed

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> "LabelSelectorRequirement":
        # Mirrors the CEL rule in model_config above, for objects that reach the operator without admission.
        if bool(self.values) != (self.operator in ("In", "NotIn")):
            raise ValueError(REQUIREMENT_VALUES)
        return self


class LabelSelector(ApiModel):
    """A label query over pods, as apimachinery's metav1.LabelSelector; its requirements are ANDed."""

    # Atomic like metav1.LabelSelector (`+structType=atomic`): server-side apply replaces the selector
    # whole instead of merging one manager's matchLabels into another's.
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    match_labels: dict[str, LabelValue] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description=(
            "A map of {key, value} pairs. A single {key, value} in it is equivalent to an element of "
            'matchExpressions whose key field is "key", whose operator is "In", and whose values array '
            'contains only "value". The requirements are ANDed.'
        ),
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None,
        max_length=MAX_SELECTOR_REQUIREMENTS,
        description="A list of label selector requirements. The requirements are ANDed.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )


MAX_SURGE_LENGTH = 8


class Strategy(ApiModel):
    """How many new pods may exist beside the old ones, and when the old ones are cut over."""

    max_surge: int | str = Field(
        default="100%",
        description=(
            "New pods started beyond spec.replicas, as a count or a percent of replicas (rounded up). "
            '"100%" starts the whole new version at once; lower values roll in waves.'
        ),
        json_schema_extra={
            # Bounds the regex match's cost; "100%" is the longest valid value, and room for a typo
            # ("100 %", "12.5%") lets the rule's own message explain it.
            "maxLength": MAX_SURGE_LENGTH,
            "x-kubernetes-validations": [
                cel(
                    "type(self) == int ? self >= 1 : self.matches('^([1-9][0-9]?|100)%$')",
                    'maxSurge must be a positive integer or a percent from "1%" to "100%"',
                )
            ],
        },
    )
    min_ready_percent: int = Field(
        default=100,
        ge=1,
        le=100,
        description="Share of the new version's pods that must be Ready before old pods are cut over.",
    )
    cutover: Cutover = Field(
        default=Cutover.DELETE,
        description=(
            "Delete: old pods leave by one collection delete per version. ServiceSelector: the operator "
            "pins the Service's selector to the target revision (key fastrollout.io/revision), so "
            "traffic switches in one EndpointSlice update, and deletes old pods only once they receive "
            "no traffic; needs serviceName and a surge of the whole fleet (maxSurge 100% or >= replicas)."
        ),
    )
    rollback_window_seconds: int = Field(
        default=0,
        ge=0,
        le=86_400,
        description=(
            "ServiceSelector only: the previous version's pods stay Running and Ready, out of the "
            "Service, this long after TrafficStopped; applying its template again inside the window "
            "switches the selector back at once."
        ),
    )

    @field_validator("max_surge")
    @classmethod
    def _surge_is_positive_count_or_percent(cls, value: int | str) -> int | str:
        # Mirrors the CEL rule on maxSurge, for objects that reach the operator without admission.
        valid = (
            value >= 1 if isinstance(value, int) else re.fullmatch(r"([1-9][0-9]?|100)%", value) is not None
        )
        if not valid:
            raise ValueError('maxSurge must be a positive integer or a percent from "1%" to "100%"')
        return value


class Drain(ApiModel):
    """How an old pod leaves: a preStop sleep for endpoint propagation, then SIGTERM, bounded by the grace."""

    pre_stop_sleep_seconds: int = Field(
        default=5,
        ge=0,
        le=3600,
        description=(
            "Injected as a native preStop sleep into every container that has no preStop of its own, "
            "so kube-proxy stops sending requests before the worker sees SIGTERM. 0 disables it."
        ),
    )
    termination_grace_period_seconds: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Upper bound of one pod's drain (preStop + finishing the request in flight). "
            f"Default: the template's value, else {DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS}."
        ),
    )


# The template is an embedded PodTemplateSpec. Its schema stays open (preserve-unknown-fields) so any
# pod field works without us copying the core API, but the few fields the CEL rules read are declared.
POD_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The pod template of every version's pods, as in a Deployment.",
    "x-kubernetes-preserve-unknown-fields": True,
    "required": ["metadata", "spec"],
    "properties": {
        "metadata": {
            "type": "object",
            "description": "Metadata of every pod; only its labels are checked here.",
            "x-kubernetes-preserve-unknown-fields": True,
            "required": ["labels"],
            "properties": {
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 63},
                    "minProperties": 1,
                    "maxProperties": MAX_LABELS,
                    "description": "Pod labels; the selector must match them.",
                }
            },
        },
        "spec": {
            "type": "object",
            "description": "The pod spec (core/v1 PodSpec); fields other than those listed are kept as given.",
            "x-kubernetes-preserve-unknown-fields": True,
            "required": ["containers"],
            "properties": {
                "containers": {
                    "type": "array",
                    "description": "The pod's containers (at least one); each gets the preStop sleep of spec.drain.",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "description": "A core/v1 Container.",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "required": ["name", "image"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "description": "Container name."},
                            "image": {"type": "string", "minLength": 1, "description": "Container image."},
                        },
                    },
                },
                "terminationGracePeriodSeconds": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "The pod's grace period; spec.drain.terminationGracePeriodSeconds overrides it.",
                },
            },
        },
    },
}

MATCH_EXPRESSIONS_MISMATCH = (
    "selector.matchExpressions must match template.metadata.labels (In: the label is set to one of the"
    " values; NotIn: it is unset or set to none of them; Exists: it is set; DoesNotExist: it is unset)"
)
SELECTOR_EMPTY = "selector must set matchLabels or matchExpressions (omit it to select the template labels)"
SELECTOR_ADDED_OR_REMOVED = (
    "selector is immutable: it cannot be added or removed after creation"
    " (recreate the FastRollout to change it)"
)

_GRACE = (
    "(has(self.drain) && has(self.drain.terminationGracePeriodSeconds) ? self.drain.terminationGracePeriodSeconds"
    " : has(self.template.spec.terminationGracePeriodSeconds) ? self.template.spec.terminationGracePeriodSeconds"
    f" : {DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS})"
)

SELECTOR_CUTOVER_NEEDS_SERVICE = "strategy.cutover ServiceSelector needs serviceName: it pins that Service's selector to the target revision"
SELECTOR_CUTOVER_NEEDS_FULL_SURGE = (
    'strategy.cutover ServiceSelector needs a surge of the whole fleet (maxSurge "100%" or an integer'
    " >= replicas): the selector switches every pod at once, so the whole new version must run first"
)
WINDOW_NEEDS_SELECTOR = (
    "strategy.rollbackWindowSeconds needs strategy.cutover ServiceSelector: with Delete the previous"
    " version's pods are deleted at cutover, so there is nothing warm to roll back to"
)
_SELECTOR_CUTOVER = (
    "has(self.strategy) && has(self.strategy.cutover) && self.strategy.cutover == 'ServiceSelector'"
)

# Rules on the whole object: only these can read metadata.name.
ROOT_VALIDATIONS = [cel(f"size(self.metadata.name) <= {MAX_NAME_LENGTH}", NAME_TOO_LONG, ".metadata.name")]

SPEC_VALIDATIONS = [
    cel(
        "!has(self.selector) || !has(self.selector.matchLabels) || self.selector.matchLabels.all(k,"
        " k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k])",
        "selector.matchLabels must match template.metadata.labels (every key, same value)",
        ".selector",
    ),
    cel(
        "!has(self.selector) || !has(self.selector.matchExpressions) || self.selector.matchExpressions.all(r,"
        " r.operator == 'Exists' ? r.key in self.template.metadata.labels"
        " : r.operator == 'DoesNotExist' ? !(r.key in self.template.metadata.labels)"
        " : r.operator == 'In' ? r.key in self.template.metadata.labels && has(r.values)"
        " && self.template.metadata.labels[r.key] in r.values"
        " : !(r.key in self.template.metadata.labels) || !has(r.values)"
        " || !(self.template.metadata.labels[r.key] in r.values))",
        MATCH_EXPRESSIONS_MISMATCH,
        ".selector",
    ),
    cel(
        # An empty matchLabels or matchExpressions counts as unset: a selector with no requirement selects
        # every pod in the namespace.
        "!has(self.selector) || (has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0)"
        " || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)",
        SELECTOR_EMPTY,
        ".selector",
    ),
    cel(
        # A transition rule (only runs on update): `self == oldSelf` on the selector itself cannot see
        # the selector appear or go away, because rules on a field run only when it exists in both.
        "has(self.selector) == has(oldSelf.selector)",
        SELECTOR_ADDED_OR_REMOVED,
        ".selector",
    ),
    cel(
        "!has(self.drain) || !has(self.drain.preStopSleepSeconds) || self.drain.preStopSleepSeconds == 0"
        f" || self.drain.preStopSleepSeconds < {_GRACE}",
        "drain.preStopSleepSeconds must be shorter than the termination grace period"
        " (drain.terminationGracePeriodSeconds, else the template's, else 600)",
        ".drain.preStopSleepSeconds",
    ),
    cel(f"!({_SELECTOR_CUTOVER}) || has(self.serviceName)", SELECTOR_CUTOVER_NEEDS_SERVICE, ".serviceName"),
    cel(
        # maxSurge and replicas have defaults, so both are set once the API server has defaulted the object.
        f"!({_SELECTOR_CUTOVER}) || !has(self.strategy.maxSurge) || (type(self.strategy.maxSurge) == int"
        " ? self.strategy.maxSurge >= self.replicas : self.strategy.maxSurge == '100%')",
        SELECTOR_CUTOVER_NEEDS_FULL_SURGE,
        ".strategy.maxSurge",
    ),
    cel(
        "!has(self.strategy) || !has(self.strategy.rollbackWindowSeconds)"
        f" || self.strategy.rollbackWindowSeconds == 0 || ({_SELECTOR_CUTOVER})",
        WINDOW_NEEDS_SELECTOR,
        ".strategy.rollbackWindowSeconds",
    ),
    cel(
        "!self.template.metadata.labels.exists(k, k.startsWith('fastrollout.io/'))",
        "template.metadata.labels must not use the fastrollout.io/ prefix: the operator sets those labels",
        ".template.metadata.labels",
    ),
]


class FastRolloutSpec(ApiModel):
    """What the user asks for: a fleet of pods from one template, rolled out in bulk on every change."""

    replicas: int = Field(default=1, ge=0, le=1_000_000, description="Desired pods of the target version.")
    selector: LabelSelector | None = Field(
        default=None,
        description="Pods of this FastRollout; default: the template labels. Must match them. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [cel("self == oldSelf", "selector is immutable")]},
    )
    template: dict[str, Any] = Field(json_schema_extra=POD_TEMPLATE_SCHEMA)
    version: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_VALUE_PATTERN,
        description="Human label of the target version (a label value); default: the template's revision hash.",
    )
    service_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS1035_PATTERN,
        description=(
            "Service whose EndpointSlices define 'receives traffic': a pod receives new traffic while its "
            "endpoint is ready. Without it, a pod stops receiving traffic when it starts terminating."
        ),
    )
    # `default: {}` lets the API server apply the nested defaults when the block is left out.
    strategy: Strategy = Field(default_factory=Strategy, json_schema_extra={"default": {}})
    drain: Drain = Field(default_factory=Drain, json_schema_extra={"default": {}})
    complete_when: CompleteWhen = Field(
        default=CompleteWhen.TRAFFIC_STOPPED,
        description="TrafficStopped: Complete once no old pod can receive new traffic. Drained: once none runs.",
    )
    progress_deadline_seconds: int = Field(
        default=600, ge=1, description="New pods not Ready by then (from the rollout's start): Failed."
    )
    rollback_on_failure: bool = Field(
        default=True, description="On failure, remove the new pods and keep the stable version serving."
    )
    paused: bool = Field(default=False, description="Take no step; status still updates.")
    revision_history_limit: int = Field(
        default=10,
        ge=0,
        description=(
            "Old ReplicaSets kept at 0 replicas, newest first, for history and undo "
            "(kubectl fastrollout history/undo); older empty ones are deleted."
        ),
    )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "FastRolloutSpec":
        # Mirrors SPEC_VALIDATIONS (CEL) so the planner only ever sees a spec admission would accept.
        # The add/remove rule compares with the stored object (oldSelf): admission alone can check it.
        labels = self.template_labels()
        if not labels:
            raise ValueError("template.metadata.labels must not be empty")
        match_labels = (self.selector.match_labels if self.selector else None) or {}
        match_expressions = (self.selector.match_expressions if self.selector else None) or []
        if any(labels.get(key) != value for key, value in match_labels.items()):
            raise ValueError(
                "selector.matchLabels must match template.metadata.labels (every key, same value)"
            )
        if not all(requirement.matches(labels) for requirement in match_expressions):
            raise ValueError(MATCH_EXPRESSIONS_MISMATCH)
        if self.selector is not None and not match_labels and not match_expressions:
            raise ValueError(SELECTOR_EMPTY)
        sleep = self.drain.pre_stop_sleep_seconds
        if sleep and sleep >= self.termination_grace_period_seconds():
            raise ValueError("drain.preStopSleepSeconds must be shorter than the termination grace period")
        if any(key.startswith("fastrollout.io/") for key in labels):
            raise ValueError("template.metadata.labels must not use the fastrollout.io/ prefix")
        strategy = self.strategy
        if strategy.cutover is Cutover.SERVICE_SELECTOR:
            if self.service_name is None:
                raise ValueError(SELECTOR_CUTOVER_NEEDS_SERVICE)
            surge = strategy.max_surge
            if not (surge >= self.replicas if isinstance(surge, int) else surge == "100%"):
                raise ValueError(SELECTOR_CUTOVER_NEEDS_FULL_SURGE)
        elif strategy.rollback_window_seconds > 0:
            raise ValueError(WINDOW_NEEDS_SELECTOR)
        return self

    def termination_grace_period_seconds(self) -> int:
        """The drain bound every pod gets: spec.drain, else the template's, else the default."""
        if self.drain.termination_grace_period_seconds is not None:
            return self.drain.termination_grace_period_seconds
        template_value = self.template.get("spec", {}).get("terminationGracePeriodSeconds")
        if isinstance(template_value, int):
            return template_value
        return DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS

    def template_labels(self) -> dict[str, str]:
        labels = self.template.get("metadata", {}).get("labels") or {}
        return {str(k): str(v) for k, v in labels.items()}
