"""The planner's small parts: surge arithmetic, revisions and pod templates, selector text, time."""

import copy
from datetime import UTC, datetime

import pytest

from fastrollout.api import LABEL_NAME, LABEL_REVISION, LABEL_VERSION, FastRolloutSpec
from fastrollout.plan import render_pod_template, replica_set_name, revision_of
from fastrollout.plan.clock import from_text, to_text, utc
from fastrollout.plan.status import selector_text
from fastrollout.plan.surge import OldShare, ready_threshold, shrink_old, surge_count, target_size

TEMPLATE = {
    "metadata": {"labels": {"app": "w", "tier": "b"}, "annotations": {"a": "1"}},
    "spec": {
        "containers": [
            {"name": "worker", "image": "w:1"},
            {"name": "own", "image": "w:1", "lifecycle": {"preStop": {"exec": {"command": ["x"]}}}},
            {"name": "poststart", "image": "w:1", "lifecycle": {"postStart": {"exec": {"command": ["y"]}}}},
        ],
        "initContainers": [{"name": "init", "image": "i:1"}],
    },
}


def make(**fields: object) -> FastRolloutSpec:
    return FastRolloutSpec.model_validate({"template": copy.deepcopy(TEMPLATE), **fields})


@pytest.mark.parametrize(
    ("max_surge", "replicas", "expected"),
    [
        pytest.param("100%", 4000, 4000, id="percent-100-is-everything"),
        pytest.param("25%", 10, 3, id="percent-rounds-up"),
        pytest.param("1%", 1, 1, id="percent-at-least-one"),
        pytest.param("100%", 0, 0, id="zero-replicas-no-surge"),
        pytest.param(3, 10, 3, id="int-as-is"),
        pytest.param(50, 10, 50, id="int-above-replicas-kept-target-caps-it"),
        pytest.param("5", 10, 5, id="digit-string-is-a-count"),
    ],
)
def test_surge_count(max_surge: int | str, replicas: int, expected: int) -> None:
    assert surge_count(max_surge, replicas) == expected


def test_surge_count_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="maxSurge"):
        surge_count("lots", 10)


@pytest.mark.parametrize(
    ("replicas", "percent", "expected"),
    [
        pytest.param(10, 100, 10, id="all"),
        pytest.param(10, 90, 9, id="ninety"),
        pytest.param(1, 99, 1, id="one-pod-99-rounds-up"),
        pytest.param(3, 50, 2, id="half-of-three-rounds-up"),
        pytest.param(4000, 1, 40, id="one-percent-of-4000"),
        pytest.param(0, 100, 0, id="zero"),
    ],
)
def test_ready_threshold(replicas: int, percent: int, expected: int) -> None:
    assert ready_threshold(replicas, percent) == expected


@pytest.mark.parametrize(
    ("current", "old_pods", "replicas", "surge", "expected"),
    [
        pytest.param(0, 10, 10, 10, 10, id="bulk-all-at-once"),
        pytest.param(0, 10, 10, 3, 3, id="first-wave"),
        pytest.param(3, 7, 10, 3, 6, id="second-wave"),
        pytest.param(6, 10, 10, 3, 6, id="never-shrinks-for-old-pods"),
        pytest.param(10, 0, 8, 2, 8, id="follows-replicas-down"),
        pytest.param(0, 20, 10, 3, 0, id="no-room-yet"),
    ],
)
def test_target_size(current: int, old_pods: int, replicas: int, surge: int, expected: int) -> None:
    assert target_size(replicas, surge, current, old_pods) == expected


def test_shrink_old_takes_superseded_first_and_unready_pods_free() -> None:
    shares = [OldShare("a1", size=6, ready=3), OldShare("s1", size=10, ready=7)]
    assert shrink_old(shares, excess=13, spare_ready=0) == {"a1": 3, "s1": 7}
    assert shrink_old(shares, excess=13, spare_ready=4) == {"a1": 0, "s1": 6}
    assert shrink_old(shares, excess=-2, spare_ready=5) == {"a1": 6, "s1": 10}


def test_revision_is_deterministic_short_hex_and_follows_template_version_and_drain() -> None:
    base = revision_of(make())
    assert base == revision_of(make())
    assert len(base) == 10
    assert int(base, 16) >= 0
    assert revision_of(make(version="v2")) != base
    assert revision_of(make(drain={"preStopSleepSeconds": 9})) != base
    reordered = FastRolloutSpec.model_validate(
        {"template": dict(reversed(list(copy.deepcopy(TEMPLATE).items())))}
    )
    assert revision_of(reordered) == base
    # The default grace period written out explicitly renders identical pods: same revision.
    assert revision_of(make(drain={"terminationGracePeriodSeconds": 600})) == base
    assert replica_set_name("w", base) == f"w-{base}"


def test_pod_template_gets_labels_grace_and_prestop_without_touching_the_input() -> None:
    spec = make(drain={"preStopSleepSeconds": 7, "terminationGracePeriodSeconds": 90})
    pristine = copy.deepcopy(spec.template)
    rendered = render_pod_template(spec, "w", "abc")
    assert spec.template == pristine
    assert rendered["metadata"]["labels"] == {
        "app": "w",
        "tier": "b",
        LABEL_NAME: "w",
        LABEL_VERSION: "abc",
        LABEL_REVISION: "abc",
    }
    assert rendered["metadata"]["annotations"] == {"a": "1"}
    assert rendered["spec"]["terminationGracePeriodSeconds"] == 90
    worker, own, poststart = rendered["spec"]["containers"]
    assert worker["lifecycle"] == {"preStop": {"sleep": {"seconds": 7}}}
    assert own["lifecycle"] == {"preStop": {"exec": {"command": ["x"]}}}
    assert poststart["lifecycle"] == {
        "postStart": {"exec": {"command": ["y"]}},
        "preStop": {"sleep": {"seconds": 7}},
    }
    assert "lifecycle" not in rendered["spec"]["initContainers"][0]


def test_pod_template_version_label_and_no_prestop_when_sleep_is_zero() -> None:
    spec = make(version="2026.11.27-1", drain={"preStopSleepSeconds": 0})
    rendered = render_pod_template(spec, "w", "abc")
    assert rendered["metadata"]["labels"][LABEL_VERSION] == "2026.11.27-1"
    assert "lifecycle" not in rendered["spec"]["containers"][0]
    assert rendered["spec"]["terminationGracePeriodSeconds"] == 600


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param(None, "app=w,tier=b", id="template-labels"),
        pytest.param({"matchLabels": {"tier": "b", "app": "w"}}, "app=w,tier=b", id="match-labels-sorted"),
        pytest.param(
            {
                "matchLabels": {"app": "w"},
                "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["c", "b"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "app", "operator": "Exists"},
                    {"key": "canary", "operator": "DoesNotExist"},
                ],
            },
            "app=w,app,!canary,env notin (dev),tier in (b,c)",
            id="expressions",
        ),
    ],
)
def test_selector_text(selector: dict[str, object] | None, expected: str) -> None:
    spec = make(**({"selector": selector} if selector else {}))
    assert selector_text(spec) == expected


def test_time_text_is_rfc3339_utc_seconds() -> None:
    naive = datetime(2026, 11, 27, 12, 0, 1, 999_000)
    assert utc(naive).tzinfo is UTC
    assert to_text(naive) == "2026-11-27T12:00:01Z"
    assert from_text("2026-11-27T12:00:01Z") == datetime(2026, 11, 27, 12, 0, 1, tzinfo=UTC)
    assert from_text(None) is None
    assert from_text("yesterday") is None
