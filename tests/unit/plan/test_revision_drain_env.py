"""FASTROLLOUT_DRAIN_SECONDS: the time each container has after SIGTERM, injected with the preStop."""

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from fastrollout.api import FastRolloutSpec
from fastrollout.plan import render_pod_template, revision_of
from fastrollout.plan.revision import DRAIN_ENV


@dataclass(frozen=True)
class Case:
    name: str
    container: dict[str, Any]
    drain: dict[str, int]
    expected: str | None
    """The injected value, or None when the user's own entry must be kept untouched."""
    kept_env: list[dict[str, Any]] = field(default_factory=list)


CASES = [
    Case("defaults: 600 - 5 - 2", {}, {}, "593"),
    Case("short grace: 30 - 5 - 2", {}, {"terminationGracePeriodSeconds": 30}, "23"),
    Case(
        "own preStop, length unknown: 30 - 2",
        {"lifecycle": {"preStop": {"exec": {"command": ["drain"]}}}},
        {"terminationGracePeriodSeconds": 30},
        "28",
    ),
    Case(
        "preStop sleep disabled: 30 - 0 - 2",
        {},
        {"preStopSleepSeconds": 0, "terminationGracePeriodSeconds": 30},
        "28",
    ),
    Case("floor of 1 s: 3 - 2 - 2", {}, {"preStopSleepSeconds": 2, "terminationGracePeriodSeconds": 3}, "1"),
    Case(
        "other env kept, ours appended",
        {"env": [{"name": "A", "value": "1"}]},
        {},
        "593",
        kept_env=[{"name": "A", "value": "1"}],
    ),
    Case(
        "the user's own value wins",
        {"env": [{"name": DRAIN_ENV, "value": "42"}]},
        {},
        None,
        kept_env=[{"name": DRAIN_ENV, "value": "42"}],
    ),
    Case(
        "the user's valueFrom wins too",
        {"env": [{"name": DRAIN_ENV, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
        {},
        None,
        kept_env=[{"name": DRAIN_ENV, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
    ),
]


def spec_with(container: dict[str, Any], drain: dict[str, int]) -> FastRolloutSpec:
    template = {
        "metadata": {"labels": {"app": "w"}},
        "spec": {
            "containers": [{"name": "worker", "image": "w:1", **copy.deepcopy(container)}],
            "initContainers": [{"name": "init", "image": "i:1"}],
        },
    }
    return FastRolloutSpec.model_validate({"template": template, "drain": drain})


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_drain_seconds_env(case: Case) -> None:
    spec = spec_with(case.container, case.drain)
    pristine = copy.deepcopy(spec.template)
    rendered = render_pod_template(spec, "w", "abc")
    (container,) = rendered["spec"]["containers"]
    if case.expected is None:
        assert container["env"] == case.kept_env
    else:
        assert container["env"] == [*case.kept_env, {"name": DRAIN_ENV, "value": case.expected}]
    assert "env" not in rendered["spec"]["initContainers"][0], "init containers serve no requests"
    assert spec.template == pristine, "the spec's template is never mutated"


def test_injection_does_not_change_the_revision() -> None:
    """The revision hashes the spec, so an operator that starts injecting the variable rolls no fleet."""
    spec = spec_with({}, {})
    before = revision_of(spec)
    render_pod_template(spec, "w", before)
    assert revision_of(spec) == before
    assert revision_of(spec_with({}, {})) == before
