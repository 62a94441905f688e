"""The pydantic models accept what admission accepts and reject what it rejects, with the same words."""

import re
from typing import Any

import pytest
from pydantic import ValidationError

from fastrollout import crd
from fastrollout.api import FastRolloutSpec
from fastrollout.api.spec import (
    MAX_LABEL_KEY_LENGTH,
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_REQUIREMENT_VALUES,
    MAX_SELECTOR_REQUIREMENTS,
    NAME_TOO_LONG,
    SELECTOR_ADDED_OR_REMOVED,
    SELECTOR_CUTOVER_NEEDS_FULL_SURGE,
    SELECTOR_CUTOVER_NEEDS_SERVICE,
    WINDOW_NEEDS_SELECTOR,
)


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "replicas": 3,
        "template": {
            "metadata": {"labels": {"app": "w"}},
            "spec": {"containers": [{"name": "w", "image": "w:1"}]},
        },
    }
    base.update(overrides)
    return base


def test_defaults() -> None:
    parsed = FastRolloutSpec.model_validate(spec())
    assert parsed.strategy.max_surge == "100%"
    assert parsed.strategy.min_ready_percent == 100
    assert parsed.drain.pre_stop_sleep_seconds == 5
    assert parsed.termination_grace_period_seconds() == 600
    assert parsed.complete_when == "TrafficStopped"
    assert parsed.rollback_on_failure is True


@pytest.mark.parametrize(
    ("drain", "template_grace", "expected"),
    [
        pytest.param({"terminationGracePeriodSeconds": 30}, 90, 30, id="drain-wins"),
        pytest.param({}, 90, 90, id="template-next"),
        pytest.param({}, None, 600, id="default-last"),
    ],
)
def test_grace_period_precedence(drain: dict[str, int], template_grace: int | None, expected: int) -> None:
    raw = spec(drain=drain)
    if template_grace is not None:
        raw["template"]["spec"]["terminationGracePeriodSeconds"] = template_grace
    assert FastRolloutSpec.model_validate(raw).termination_grace_period_seconds() == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"replicas": -1}, "greater than or equal to 0", id="negative-replicas"),
        pytest.param({"strategy": {"maxSurge": "150%"}}, "maxSurge must be", id="surge-over-100"),
        pytest.param({"strategy": {"maxSurge": 0}}, "maxSurge must be", id="surge-zero"),
        pytest.param({"strategy": {"maxSurge": "ten"}}, "maxSurge must be", id="surge-word"),
        pytest.param({"strategy": {"minReadyPercent": 0}}, "greater than or equal to 1", id="min-ready-zero"),
        pytest.param({"selector": {"matchLabels": {"app": "other"}}}, "selector.matchLabels", id="selector"),
        pytest.param(
            {"drain": {"preStopSleepSeconds": 30, "terminationGracePeriodSeconds": 30}},
            "preStopSleepSeconds",
            id="prestop-too-long",
        ),
        pytest.param({"completeWhen": "Eventually"}, "TrafficStopped", id="complete-when"),
        pytest.param({"version": "has space"}, "pattern", id="version-not-a-label"),
    ],
)
def test_rejects_bad_specs(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FastRolloutSpec.model_validate(spec(**overrides))


def test_rejects_reserved_labels() -> None:
    raw = spec()
    raw["template"]["metadata"]["labels"]["fastrollout.io/version"] = "x"
    with pytest.raises(ValidationError, match=r"fastrollout\.io/ prefix"):
        FastRolloutSpec.model_validate(raw)


def with_selector(selector: dict[str, Any]) -> dict[str, Any]:
    return spec(selector=selector)


@pytest.mark.parametrize(
    "expressions",
    [
        pytest.param([{"key": "app", "operator": "In", "values": ["v", "w"]}], id="in"),
        pytest.param([{"key": "app", "operator": "NotIn", "values": ["v"]}], id="notin-other-value"),
        pytest.param([{"key": "tier", "operator": "NotIn", "values": ["w"]}], id="notin-missing-label"),
        pytest.param([{"key": "app", "operator": "Exists"}], id="exists"),
        pytest.param([{"key": "tier", "operator": "DoesNotExist"}], id="doesnotexist"),
        pytest.param(
            [{"key": "app", "operator": "Exists"}, {"key": "app", "operator": "In", "values": ["w"]}],
            id="all-of-several",
        ),
    ],
)
def test_accepts_match_expressions_that_match_the_template(expressions: list[dict[str, Any]]) -> None:
    parsed = FastRolloutSpec.model_validate(with_selector({"matchExpressions": expressions}))
    assert parsed.selector is not None
    assert [r.key for r in parsed.selector.match_expressions or []] == [e["key"] for e in expressions]


MISMATCH = "selector.matchExpressions must match template.metadata.labels"
VALUES = "values must be non-empty when operator is In or NotIn, and empty when it is Exists or DoesNotExist"


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}, MISMATCH, id="in"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["w"]}]},
            MISMATCH,
            id="in-unset",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["w"]}]}, MISMATCH, id="notin"
        ),
        pytest.param({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, MISMATCH, id="exists"),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, MISMATCH, id="doesnotexist"
        ),
        pytest.param(
            {
                "matchExpressions": [
                    {"key": "app", "operator": "Exists"},
                    {"key": "tier", "operator": "Exists"},
                ]
            },
            MISMATCH,
            id="one-of-several",
        ),
        pytest.param(
            {
                "matchLabels": {"app": "w"},
                "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["w"]}],
            },
            MISMATCH,
            id="labels-match-expressions-do-not",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "In"}]}, VALUES, id="in-without-values"
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": []}]},
            VALUES,
            id="notin-empty",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["w"]}]},
            VALUES,
            id="exists-values",
        ),
        pytest.param({}, "selector must set matchLabels or matchExpressions", id="empty-selector"),
        pytest.param(
            {"matchLabels": {}}, "selector must set matchLabels or matchExpressions", id="empty-labels"
        ),
        pytest.param(
            {"matchExpressions": []},
            "selector must set matchLabels or matchExpressions",
            id="empty-expressions",
        ),
    ],
)
def test_rejects_selectors_admission_refuses(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        FastRolloutSpec.model_validate(with_selector(selector))


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        pytest.param(
            {"matchExpressions": [{"key": "k" * 318, "operator": "Exists"}]},
            "at most 317 characters",
            id="key",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["w", "v" * 64]}]},
            "at most 63 characters",
            id="value",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["w"] * 65}]},
            "at most 64 items",
            id="values",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "app", "operator": "Exists"}] * 65},
            "at most 64 items",
            id="expressions",
        ),
        pytest.param(
            {"matchLabels": {"app": "w", **{f"k{i}": "v" for i in range(64)}}},
            "at most 64 items",
            id="labels",
        ),
    ],
)
def test_selector_sizes_are_bounded_as_in_the_crd(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FastRolloutSpec.model_validate(with_selector(selector))


def crd_node(*path: str) -> dict[str, Any]:
    """A node of the rendered CRD schema, found by property names from the root."""
    node: dict[str, Any] = crd.render()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name in path:
        node = node["items"] if name == "[]" else node["properties"][name]
    return node


def test_model_bounds_are_the_crd_bounds() -> None:
    requirement = crd_node("spec", "selector", "matchExpressions", "[]")
    assert crd_node("spec", "selector", "matchExpressions")["maxItems"] == MAX_SELECTOR_REQUIREMENTS
    assert requirement["properties"]["key"]["maxLength"] == MAX_LABEL_KEY_LENGTH
    assert requirement["properties"]["values"]["maxItems"] == MAX_REQUIREMENT_VALUES
    assert requirement["properties"]["values"]["items"]["maxLength"] == MAX_LABEL_VALUE_LENGTH
    assert crd_node("spec", "selector", "matchLabels")["maxProperties"] == MAX_LABELS
    assert crd_node("spec", "strategy", "maxSurge")["maxLength"] == len("100%") + 4


def test_the_name_rule_is_on_the_root_where_cel_can_read_metadata_name() -> None:
    # The operator validates spec only, so the name has no pydantic mirror; the rule is the CRD's own.
    rules = crd_node()["x-kubernetes-validations"]
    assert {
        "rule": "size(self.metadata.name) <= 63",
        "message": NAME_TOO_LONG,
        "fieldPath": ".metadata.name",
    } in rules
    assert "fastrollout.io/name label" in NAME_TOO_LONG


def test_selector_add_or_remove_is_a_transition_rule_on_spec() -> None:
    rules = crd_node("spec")["x-kubernetes-validations"]
    transition = [rule for rule in rules if "oldSelf" in rule["rule"]]
    assert transition == [
        {
            "rule": "has(self.selector) == has(oldSelf.selector)",
            "message": SELECTOR_ADDED_OR_REMOVED,
            "fieldPath": ".selector",
        }
    ]
    assert SELECTOR_ADDED_OR_REMOVED.startswith("selector is immutable")


def selector_cutover(**strategy: Any) -> dict[str, Any]:
    return spec(serviceName="w", strategy={"cutover": "ServiceSelector", **strategy})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            spec(strategy={"cutover": "ServiceSelector"}), SELECTOR_CUTOVER_NEEDS_SERVICE, id="no-service"
        ),
        pytest.param(selector_cutover(maxSurge="50%"), SELECTOR_CUTOVER_NEEDS_FULL_SURGE, id="surge-percent"),
        pytest.param(
            selector_cutover(maxSurge=2), SELECTOR_CUTOVER_NEEDS_FULL_SURGE, id="surge-below-replicas"
        ),
        pytest.param(
            spec(serviceName="w", strategy={"rollbackWindowSeconds": 60}),
            WINDOW_NEEDS_SELECTOR,
            id="window-delete",
        ),
        pytest.param(
            selector_cutover(rollbackWindowSeconds=-1), "greater than or equal to 0", id="window-negative"
        ),
        pytest.param(selector_cutover(cutover="Swap"), "Delete", id="cutover-word"),
    ],
)
def test_selector_cutover_rules_mirror_admission(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        FastRolloutSpec.model_validate(raw)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(selector_cutover(), id="default-surge-100-percent"),
        pytest.param(
            selector_cutover(maxSurge=3, rollbackWindowSeconds=600), id="integer-surge-equal-replicas"
        ),
        pytest.param(selector_cutover(maxSurge=5), id="integer-surge-above-replicas"),
        pytest.param(spec(serviceName="w", strategy={"rollbackWindowSeconds": 0}), id="delete-window-zero"),
    ],
)
def test_selector_cutover_accepts_what_admission_accepts(raw: dict[str, Any]) -> None:
    FastRolloutSpec.model_validate(raw)


def test_selector_cutover_rules_are_cel_rules_on_spec() -> None:
    messages = {rule["message"] for rule in crd_node("spec")["x-kubernetes-validations"]}
    assert {
        SELECTOR_CUTOVER_NEEDS_SERVICE,
        SELECTOR_CUTOVER_NEEDS_FULL_SURGE,
        WINDOW_NEEDS_SELECTOR,
    } <= messages
