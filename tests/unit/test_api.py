"""The pydantic models accept what admission accepts and reject what it rejects, with the same words."""

from typing import Any

import pytest
from pydantic import ValidationError

from fastrollout.api import FastRolloutSpec


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
